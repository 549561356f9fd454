// Tests of the decoder registry and the DuckDB-native decoders: each test
// writes a small file, asks the decoder for its table SQL, runs that SQL in a
// real in-memory DuckDB and checks the rows and column types.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/strings.h"
#include "ingest/decoder.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Rows = std::vector<std::vector<std::optional<std::string>>>;

class DecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-decoder-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
            info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    DuckDbOptions options;
    options.memory_limit = "256MB";
    options.threads = 1;
    auto db = DuckDbDatabase::Open(":memory:", options);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto conn = db_.Connect();
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string Write(const std::string& name, const std::string& content) {
    std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  // The decoder's SQL for request, run in DuckDB, rows ordered as given.
  QueryResult Decode(const DecodeRequest& request, const std::string& order_by = "1") {
    auto decoder = FindDecoder(request.format);
    EXPECT_TRUE(decoder.ok()) << decoder.status().ToString();
    if (!decoder.ok()) return {};
    auto sql = (*decoder)->TableSql(request);
    EXPECT_TRUE(sql.ok()) << sql.status().ToString();
    if (!sql.ok()) return {};
    last_sql_ = *sql;
    auto result = conn_.Query("SELECT * FROM " + *sql + " ORDER BY " + order_by);
    EXPECT_TRUE(result.ok()) << result.status().ToString() << "\n  SQL: " << *sql;
    return result.ok() ? std::move(result).value() : QueryResult{};
  }

  std::filesystem::path dir_;
  DuckDbDatabase db_;
  DuckDbConnection conn_;
  std::string last_sql_;
};

std::optional<std::string> V(const char* s) { return std::string(s); }

TEST(DecoderRegistry, BuiltinFormatsAreRegistered) {
  std::vector<std::string> formats = RegisteredFormats();
  for (const char* f : {"csv", "tsv", "json", "ndjson", "parquet"}) {
    EXPECT_NE(std::find(formats.begin(), formats.end(), f), formats.end()) << f;
    auto d = FindDecoder(f);
    ASSERT_TRUE(d.ok()) << f;
    EXPECT_EQ((*d)->Extension(), f);
  }
}

TEST(DecoderRegistry, UnknownFormatSuggestsTheClosestOne) {
  auto d = FindDecoder("cvs");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("unknown format 'cvs'"));
  EXPECT_THAT(d.status().message(), HasSubstr("did you mean csv?"));
  EXPECT_THAT(d.status().message(), HasSubstr("parquet"));  // lists the known ones

  auto far = FindDecoder("spreadsheet");
  ASSERT_FALSE(far.ok());
  EXPECT_THAT(far.status().message(), ::testing::Not(HasSubstr("did you mean")));
}

TEST(DecoderRegistry, RegisterAddsAFormat) {
  class FixedDecoder final : public Decoder {
   public:
    Result<std::string> TableSql(const DecodeRequest&) const override {
      return std::string("(SELECT 42 AS answer)");
    }
    std::string Extension() const override { return "txt"; }
  };
  EXPECT_FALSE(FindDecoder("decoder_test_fixed").ok());
  RegisterDecoder("decoder_test_fixed", [] { return std::make_unique<FixedDecoder>(); });
  auto d = FindDecoder("decoder_test_fixed");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->Extension(), "txt");
  std::vector<std::string> formats = RegisteredFormats();
  EXPECT_NE(std::find(formats.begin(), formats.end(), "decoder_test_fixed"), formats.end());
}

TEST_F(DecoderTest, CsvWithBomAndCrlf) {
  std::string path =
      Write("stops.csv", "\xEF\xBB\xBFstop_id,stop_name\r\n1,Central\r\n2,North\r\n");
  QueryResult r = Decode({path, "csv"});
  // The BOM is not part of the first column's name, and no '\r' is left over.
  EXPECT_THAT(r.columns, ElementsAre("stop_id", "stop_name"));
  EXPECT_EQ(r.types[0], "BIGINT");
  EXPECT_EQ(r.rows, (Rows{{V("1"), V("Central")}, {V("2"), V("North")}}));
  EXPECT_THAT(last_sql_, HasSubstr("header=true"));
  EXPECT_THAT(last_sql_, HasSubstr("filename=false"));
}

TEST_F(DecoderTest, Tsv) {
  std::string path = Write("routes.tsv", "route_id\troute_name\n10\tRing, inner\n11\tExpress\n");
  QueryResult r = Decode({path, "tsv"});
  EXPECT_THAT(r.columns, ElementsAre("route_id", "route_name"));
  EXPECT_EQ(r.rows, (Rows{{V("10"), V("Ring, inner")}, {V("11"), V("Express")}}));
}

TEST_F(DecoderTest, CsvQuotedFields) {
  std::string path = Write("quoted.csv",
                           "id,text\n"
                           "1,\"hello, world\"\n"
                           "2,\"she said \"\"hi\"\"\"\n"
                           "3,\"two\nlines\"\n"
                           "4,\n");
  QueryResult r = Decode({path, "csv"});
  EXPECT_EQ(r.rows, (Rows{{V("1"), V("hello, world")},
                          {V("2"), V("she said \"hi\"")},
                          {V("3"), V("two\nlines")},
                          {V("4"), std::nullopt}}));
}

TEST_F(DecoderTest, CsvOptionsMapOntoReadCsv) {
  std::string path = Write("semi.txt", "7;0042;2026-01-02\n10;0100;2026-02-03\n");
  DecodeRequest req{path, "csv", {{"delimiter", ";"}, {"header", false}}};
  QueryResult typed = Decode(req);
  EXPECT_THAT(typed.columns, ElementsAre("column0", "column1", "column2"));
  EXPECT_EQ(typed.types[0], "BIGINT");
  EXPECT_EQ(typed.types[2], "DATE");
  EXPECT_EQ(typed.rows,
            (Rows{{V("7"), V("0042"), V("2026-01-02")}, {V("10"), V("0100"), V("2026-02-03")}}));
  EXPECT_THAT(last_sql_, HasSubstr("delim=';'"));
  EXPECT_THAT(last_sql_, HasSubstr("header=false"));
  EXPECT_THAT(last_sql_, ::testing::Not(HasSubstr("header=true")));

  // all_varchar reads every column as text.
  req.options["all_varchar"] = true;
  QueryResult text = Decode(req, "column2");
  EXPECT_THAT(text.types, ElementsAre("VARCHAR", "VARCHAR", "VARCHAR"));
  EXPECT_EQ(text.rows, typed.rows);
  EXPECT_THAT(last_sql_, HasSubstr("all_varchar=true"));

  // Options for other stages are not passed to the reader.
  req.options = {{"delimiter", ";"}, {"header", false}, {"records", "$.data"}, {"table", "x"}};
  QueryResult ignored = Decode(req);
  EXPECT_EQ(ignored.rows.size(), 2u);
  EXPECT_THAT(last_sql_, ::testing::Not(HasSubstr("records")));
}

TEST_F(DecoderTest, CsvAllTextAndSkip) {
  std::string path = Write("lead.csv", "generated by a tool\nid,code\n1,0042\n2,0100\n");
  DecodeRequest req{path, "csv", {{"skip", 1}}, /*all_text=*/true};
  QueryResult r = Decode(req);
  EXPECT_THAT(r.columns, ElementsAre("id", "code"));
  EXPECT_THAT(r.types, ElementsAre("VARCHAR", "VARCHAR"));
  EXPECT_EQ(r.rows, (Rows{{V("1"), V("0042")}, {V("2"), V("0100")}}));
}

TEST_F(DecoderTest, PathWithAQuoteIsQuoted) {
  std::string path = Write("it's here.csv", "a\n1\n");
  QueryResult r = Decode({path, "csv"});
  EXPECT_EQ(r.rows, (Rows{{V("1")}}));
}

TEST_F(DecoderTest, JsonArray) {
  std::string path = Write("items.json",
                           "[{\"id\": 1, \"name\": \"a\", \"tags\": [\"x\"]},\n"
                           " {\"id\": 2, \"name\": \"b\", \"tags\": []}]\n");
  QueryResult r = Decode({path, "json"});
  EXPECT_THAT(r.columns, ElementsAre("id", "name", "tags"));
  EXPECT_EQ(r.types[0], "BIGINT");
  EXPECT_EQ(r.types[2], "LIST");
  EXPECT_EQ(r.rows[0][0], V("1"));
  EXPECT_EQ(r.rows[1][1], V("b"));

  QueryResult text = Decode({path, "json", nlohmann::json::object(), /*all_text=*/true});
  EXPECT_THAT(text.types, ElementsAre("VARCHAR", "VARCHAR", "VARCHAR"));
  EXPECT_EQ(text.rows[0], (std::vector<std::optional<std::string>>{V("1"), V("a"), V("[x]")}));
}

TEST_F(DecoderTest, Ndjson) {
  std::string path = Write("events.ndjson",
                           "{\"id\": 2, \"kind\": \"stop\"}\n"
                           "{\"id\": 1, \"kind\": \"start\", \"extra\": true}\n");
  QueryResult r = Decode({path, "ndjson"});
  EXPECT_THAT(r.columns, ElementsAre("id", "kind", "extra"));
  EXPECT_EQ(r.rows, (Rows{{V("1"), V("start"), V("true")}, {V("2"), V("stop"), std::nullopt}}));
  EXPECT_THAT(last_sql_, HasSubstr("newline_delimited"));

  // A file that is not one JSON object per line is an error, not a silent guess.
  std::string bad = Write("bad.ndjson", "[{\"id\": 1},\n{\"id\": 2}]\n");
  auto decoder = FindDecoder("ndjson");
  ASSERT_TRUE(decoder.ok());
  auto sql = (*decoder)->TableSql({bad, "ndjson"});
  ASSERT_TRUE(sql.ok());
  EXPECT_FALSE(conn_.Query("SELECT * FROM " + *sql).ok());
}

TEST_F(DecoderTest, Parquet) {
  std::string path = (dir_ / "data.parquet").string();
  ASSERT_TRUE(conn_
                  .Execute("COPY (SELECT * FROM (VALUES (1, 'a', DATE '2026-01-02'), "
                           "(2, NULL, DATE '2026-03-04')) t(id, name, day)) TO " +
                           QuoteLiteral(path) + " (FORMAT parquet)")
                  .ok());
  QueryResult r = Decode({path, "parquet"});
  EXPECT_THAT(r.columns, ElementsAre("id", "name", "day"));
  EXPECT_THAT(r.types, ElementsAre("INTEGER", "VARCHAR", "DATE"));
  EXPECT_EQ(r.rows,
            (Rows{{V("1"), V("a"), V("2026-01-02")}, {V("2"), std::nullopt, V("2026-03-04")}}));

  QueryResult text = Decode({path, "parquet", nlohmann::json::object(), /*all_text=*/true});
  EXPECT_THAT(text.types, ElementsAre("VARCHAR", "VARCHAR", "VARCHAR"));
  EXPECT_EQ(text.rows, r.rows);
}

}  // namespace
}  // namespace sluice
