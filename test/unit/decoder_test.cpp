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
#include <set>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/strings.h"
#include "ingest/decoder.h"
#include "ingest/html_table.h"
#include "ingest/zip_member.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
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
  // The engine's sniffer decides the header: nothing forces it.
  EXPECT_THAT(last_sql_, Not(HasSubstr("header=")));
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

namespace sluice {
namespace {

TEST_F(DecoderTest, JsonRecordsAtAPath) {
  std::string path = Write(
      "page.json",
      R"({"meta": {"page": 1}, "result": {"items": [{"id": 2, "name": "b", "price": {"amount": 2.5}},
                                                          {"id": 1, "name": "a", "price": {"amount": 1}}]}})");
  QueryResult r = Decode({path, "json", {{"records", "result.items"}}}, "id");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0][r.ColumnIndex("name")], V("a"));
  EXPECT_EQ(r.rows[1][r.ColumnIndex("id")], V("2"));
  auto missing = (*FindDecoder("json"))->TableSql({path, "json", {{"records", "result.nope"}}});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(conn_.Query("SELECT * FROM " + *missing).ok());
}

TEST_F(DecoderTest, JsonArraysOfArraysWithAHeaderRow) {
  // The US Census API's shape: a header row, then rows of strings.
  std::string path = Write("census.json",
                           "[[\"NAME\",\"P1_001N\",\"state\"],\n[\"Wyoming\",\"576851\",\"56\"],\n"
                           "[\"Alabama\",\"5024279\",\"01\"]]");
  QueryResult r = Decode({path, "json"}, "state");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0],
            (std::vector<std::optional<std::string>>{V("Alabama"), V("5024279"), V("01")}));
  EXPECT_EQ(r.columns[1], "P1_001N");
  // A first row that is not a header of names is still read as one.
  std::string bad = Write("bad.json", "[[1,2],[3,4]]");
  QueryResult b = Decode({bad, "json"}, "1");
  EXPECT_EQ(b.rows.size(), 1u);
}

// Footnote markers written as plain text in a header ("Population[1]") are
// dropped like <sup> ones; brackets that are words ("[note]") stay.
TEST_F(DecoderTest, HtmlHeaderFootnotesInPlainText) {
  std::string page = Write("notes.html", R"(<table>
    <tr><th>State[a]</th><th>Population [1]</th><th>Area[12]</th><th>Rank [note]</th></tr>
    <tr><td>Ohio</td><td>11,799,448</td><td>44,825</td><td>7</td></tr></table>)");
  QueryResult r =
      Decode({page, "html_table", nlohmann::json::object(), true, (dir_ / "cache").string()});
  EXPECT_EQ(r.columns, (std::vector<std::string>{"State", "Population", "Area", "Rank [note]"}));
}

TEST_F(DecoderTest, HtmlTablesWithSpansCaptionsAndIds) {
  std::string page = Write("page.html", R"(<!DOCTYPE html><html><body>
    <table class="nav"><tr><td>Home</td><td>About</td></tr></table>
    <table id="grid"><caption> Rail  lines </caption>
      <thead>
        <tr><th rowspan="2">Line</th><th colspan="2">Stations</th></tr>
        <tr><th>First</th><th>Last</th></tr>
      </thead>
      <tbody>
        <tr><td rowspan="2"><a href="#">Red</a></td><td>Alewife<sup>[1]</sup></td><td>Ashmont</td></tr>
        <tr><td>Alewife</td><td>Braintree <br>(south)</td></tr>
        <tr><td>Blue</td><td colspan="2">Wonderland&nbsp;only <table><tr><td>nested</td></tr></table></td></tr>
        <tr><td>Green</td></tr>
      </tbody>
    </table></body></html>)");
  for (nlohmann::json selector : {nlohmann::json(nullptr), nlohmann::json(1),
                                  nlohmann::json("#grid"), nlohmann::json("rail lines")}) {
    nlohmann::json options = nlohmann::json::object();
    if (!selector.is_null()) options["table"] = selector;
    QueryResult r = Decode({page, "html_table", options, false, (dir_ / "cache").string()},
                           "\"Line\", \"Stations Last\"");
    ASSERT_EQ(r.columns, (std::vector<std::string>{"Line", "Stations First", "Stations Last"}))
        << selector.dump();
    ASSERT_EQ(r.rows.size(), 4u);
    EXPECT_EQ(r.rows[0], (std::vector<std::optional<std::string>>{V("Blue"), V("Wonderland only"),
                                                                  V("Wonderland only")}));
    EXPECT_EQ(r.rows[1],
              (std::vector<std::optional<std::string>>{V("Green"), std::nullopt, std::nullopt}));
    EXPECT_EQ(r.rows[2],
              (std::vector<std::optional<std::string>>{V("Red"), V("Alewife"), V("Ashmont")}));
    EXPECT_EQ(r.rows[3], (std::vector<std::optional<std::string>>{V("Red"), V("Alewife"),
                                                                  V("Braintree (south)")}));
  }
  auto none =
      (*FindDecoder("html_table"))
          ->TableSql(
              {page, "html_table", {{"table", "Bus lines"}}, false, (dir_ / "cache").string()});
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("The page has 3 table(s)"));
  EXPECT_THAT(none.status().message(), HasSubstr("1 #grid \"Rail lines\""));
  std::string empty = Write("empty.html", "<html><body><p>Maintenance</p></body></html>");
  auto no_table = (*FindDecoder("html_table"))->TableSql({empty, "html_table", {}, false, ""});
  ASSERT_FALSE(no_table.ok());
  EXPECT_THAT(no_table.status().message(), HasSubstr("no <table>"));
}

TEST_F(DecoderTest, HtmlTableWithoutHeaderCells) {
  std::string page = Write("plain.html",
                           "<table><tr><td>code</td><td>name</td></tr><tr><td>1</td><td>a</td></tr>"
                           "<tr><td>2</td><td>b</td><td>extra</td></tr></table>");
  QueryResult r = Decode({page, "html_table", {}, true, (dir_ / "c").string()}, "code");
  EXPECT_EQ(r.columns, (std::vector<std::string>{"code", "name", "column3"}));
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[1][2], V("extra"));
  QueryResult raw =
      Decode({page, "html_table", {{"header", false}}, true, (dir_ / "c").string()}, "column1");
  EXPECT_EQ(raw.rows.size(), 3u);
}

// Spans that expand a small page to millions of cells (each cell 1,000
// columns and rows wide, as a fuzzer found) are an error naming the
// option to choose another table, not seconds of copying.
TEST_F(DecoderTest, HtmlSpansThatExpandWithoutBoundAreAnError) {
  std::string rows;
  for (int r = 0; r < 12; ++r) {
    rows += "<tr>";
    for (int c = 0; c < 12; ++c) rows += "<td rowspan=\"1000\" colspan=\"1000\">x</td>";
    rows += "</tr>";
  }
  auto huge = ExtractHtmlTable("<table id=\"big\">" + rows + "</table>", nullptr);
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.status().message(), HasSubstr("over the 16384 columns or 5000000 cells"));
  EXPECT_THAT(huge.status().message(), HasSubstr("options.table"));
  // Another table of the page is still found and read.
  auto other = ExtractHtmlTable(
      "<table id=\"big\">" + rows + "</table><table><tr><th>a</th></tr><tr><td>1</td></tr></table>",
      nullptr);
  ASSERT_TRUE(other.ok()) << other.status().message();
  // A header spanning 3,000 columns names them a, a_2, ... a_3000 (each
  // name found in one step, not by trying every suffix again), and a
  // literal a_3 keeps its name while the spanned ones go around it.
  auto wide = ExtractHtmlTable(
      "<table><tr><th>a_3</th><th colspan=\"1000\">A</th><th colspan=\"1000\">a</th>"
      "<th colspan=\"1000\">a</th></tr><tr><td>1</td></tr></table>",
      nullptr);
  ASSERT_TRUE(wide.ok()) << wide.status().message();
  ASSERT_EQ(wide->columns.size(), 3001u);
  EXPECT_EQ(wide->columns[0], "a_3");
  EXPECT_EQ(wide->columns[1], "A");
  EXPECT_EQ(wide->columns[2], "A_2");
  EXPECT_EQ(wide->columns[3], "A_4");
  EXPECT_EQ(wide->columns[3000], "a_3001");
  std::set<std::string> distinct;
  for (const std::string& c : wide->columns) distinct.insert(ToLower(c));
  EXPECT_EQ(distinct.size(), 3001u);
  auto missing = ExtractHtmlTable("<table id=\"big\">" + rows + "</table>", "#none");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("too large to read"));
}

TEST_F(DecoderTest, ZipMembersAreExtractedOnce) {
  // A zip written by DuckDB-independent means: the system's python zipfile.
  std::string zip = (dir_ / "feed.zip").string();
  std::string cmd = "python3 -c \"import zipfile; z = zipfile.ZipFile('" + zip +
                    "', 'w', zipfile.ZIP_DEFLATED); z.writestr('gtfs/stops.txt', "
                    "'stop_id,stop_name\\n1,Main St\\n'); z.writestr('routes.txt', "
                    "'route_id\\nA\\n'); z.close()\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string cache = (dir_ / "cache").string();
  auto routes = ExtractZipMember(zip, "abc", "routes.txt", cache);
  ASSERT_TRUE(routes.ok()) << routes.status().message();
  EXPECT_EQ(*ReadFile(*routes), "route_id\nA\n");
  // Zipped inside a folder: found by its base name.
  auto stops = ExtractZipMember(zip, "abc", "stops.txt", cache);
  ASSERT_TRUE(stops.ok()) << stops.status().message();
  QueryResult r = Decode({*stops, "csv"}, "stop_id");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][1], V("Main St"));
  auto missing = ExtractZipMember(zip, "abc", "trips.txt", cache);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no member 'trips.txt'"));
  EXPECT_THAT(missing.status().message(), HasSubstr("gtfs/stops.txt, routes.txt"));
  std::string not_zip = Write("fake.zip", "<html>not a zip</html>");
  auto bad = ExtractZipMember(not_zip, "def", "stops.txt", cache);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("not a readable zip archive"));
  std::string truncated = Write("cut.zip", ReadFile(zip)->substr(0, 60));
  EXPECT_FALSE(ExtractZipMember(truncated, "ghi", "routes.txt", cache).ok());
  EXPECT_FALSE(ExtractZipMember(zip, "abc", "../etc/passwd", cache).ok());
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_F(DecoderTest, Utf8ValidationFindsTheFirstBadByte) {
  auto check = [&](const std::string& bytes) {
    auto r = FindInvalidUtf8(Write("u.txt", bytes));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  };
  EXPECT_FALSE(check("plain ascii\nline 2\n"));
  EXPECT_FALSE(check(
      "\xEF\xBB\xBFid,city\n1,M\xC3\xBCnchen\n2,\xE6\x9D\xB1\xE4\xBA\xAC\n3,\xF0\x9F\x9A\x8C\n"));
  auto latin = check("id,city\n1,M\xFCnchen\n");
  ASSERT_TRUE(latin);
  EXPECT_EQ(latin->offset, 11u);
  EXPECT_EQ(latin->line, 2u);
  EXPECT_TRUE(check("overlong \xC0\xAF"));
  EXPECT_TRUE(check("surrogate \xED\xA0\x80"));
  EXPECT_TRUE(check("cut at the end \xE2\x82"));
  EXPECT_TRUE(check("\xFF\xFEi\0d\0"));  // UTF-16 is not UTF-8
  // A sequence split across the reader's 1 MiB buffers is still valid.
  std::string big(1 << 20, 'a');
  big[big.size() - 1] = '\xC3';
  EXPECT_FALSE(check(big + "\xA9 tail\n"));
  EXPECT_TRUE(check(big + "( tail\n"));
}

TEST_F(DecoderTest, CsvPlanReportsLatin1FallbackAndRaggedRows) {
  auto decoder = FindDecoder("csv");
  ASSERT_TRUE(decoder.ok());
  auto latin = (*decoder)->Plan({Write("l.csv", "id,city\n1,S\xE3o Paulo\n"), "csv"});
  ASSERT_TRUE(latin.ok()) << latin.status().message();
  ASSERT_EQ(latin->notes.size(), 1u);
  EXPECT_THAT(latin->notes[0], HasSubstr("not valid UTF-8 (line 2"));
  auto rows = conn_.Query("SELECT city FROM " + latin->sql);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(rows->rows[0][0], V("S\xC3\xA3o Paulo"));
  // Said explicitly: no note.
  auto told = (*decoder)->Plan(
      {Write("l2.csv", "id,city\n1,S\xE3o Paulo\n"), "csv", {{"encoding", "ISO-8859-1"}}});
  ASSERT_TRUE(told.ok());
  EXPECT_TRUE(told->notes.empty());
  auto unknown = (*decoder)->Plan({Write("l3.csv", "a\n1\n"), "csv", {{"encoding", "ebcdic"}}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("options.encoding: 'ebcdic'"));
  // A plain read is the engine's default: it stops at a ragged row. A guarded
  // read (with the dialect the engine's sniffer chose) keeps them aside.
  DecodeRequest ragged_req{
      Write("r.csv", "a,b\n1,2\n3,4,5\n6\n7,8\n"), "csv", {{"delimiter", ","}}};
  auto plain = (*decoder)->Plan(ragged_req);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->rejects.empty());
  EXPECT_FALSE(conn_.Query("SELECT count(*) FROM (SELECT * FROM " + plain->sql + ")").ok());
  // The strict sniffer gives up on these rows (as the engine's default read
  // does); the tolerant one (keep_rejects) finds the dialect.
  std::optional<std::string> sniff = (*decoder)->SniffSql(ragged_req);
  ASSERT_TRUE(sniff.has_value());
  EXPECT_FALSE(conn_.Query(*sniff).ok());
  ragged_req.keep_rejects = true;
  sniff = (*decoder)->SniffSql(ragged_req);
  auto sniffed = conn_.Query(*sniff);
  ASSERT_TRUE(sniffed.ok()) << sniffed.status().message();
  ragged_req.dialect = nlohmann::json::parse(sniffed->Scalar().value_or("{}"));
  auto ragged = (*decoder)->Plan(ragged_req);
  ASSERT_TRUE(ragged.ok()) << ragged.status().message();
  ASSERT_EQ(ragged->rejects.size(), 1u);
  auto loaded = conn_.Query("SELECT count(*) FROM (SELECT * FROM " + ragged->sql + ")");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->ScalarInt(), 2);
  auto rejects =
      conn_.Query("SELECT line FROM temp." + ragged->rejects[0].errors + " ORDER BY line");
  ASSERT_TRUE(rejects.ok()) << rejects.status().message();
  ASSERT_EQ(rejects->rows.size(), 2u);
  EXPECT_EQ(rejects->rows[0][0], V("3"));
  EXPECT_EQ(rejects->rows[1][0], V("4"));
  auto padded = (*decoder)->Plan({Write("p.csv", "a,b\n1,2\n6\n"), "csv", {{"ragged", "pad"}}});
  ASSERT_TRUE(padded.ok());
  auto all = conn_.Query("SELECT count(*), count(b) FROM " + padded->sql);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->rows[0][0], V("2"));
  EXPECT_EQ(all->rows[0][1], V("1"));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_F(DecoderTest, ManyObjectsInOneScan) {
  auto csv = FindDecoder("csv");
  ASSERT_TRUE(csv.ok());
  DecodeRequest many;
  many.format = "csv";
  many.paths = {Write("p1.csv", "id,a\n1,x\n"), Write("p2.csv", "id,b\n2,y\n")};
  EXPECT_FALSE((*csv)->ReadsManyFiles(many));  // rejects need one file per scan
  many.options = {{"ragged", "pad"}};
  EXPECT_FALSE((*csv)->ReadsManyFiles(many));
  // Given several files anyway, each is read on its own and joined by name.
  auto plan = (*csv)->Plan(many);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto rows = conn_.Query("SELECT id, a, b FROM " + plan->sql + " ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->rows.size(), 2u);  // columns matched by name across pages
  EXPECT_EQ(rows->rows[1][2], V("y"));
  // Mixed encodings: each file is read with its own.
  many.paths.push_back(Write("p3.csv", "id,a\n3,M\xFCnchen\n"));
  auto mixed = (*csv)->Plan(many);
  ASSERT_TRUE(mixed.ok()) << mixed.status().message();
  ASSERT_EQ(mixed->notes.size(), 1u);
  EXPECT_THAT(mixed->notes[0], HasSubstr("p3.csv: not valid UTF-8 (line 2"));
  auto all = conn_.Query("SELECT a FROM " + mixed->sql + " WHERE id = 3");
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->rows[0][0], V("M\xC3\xBCnchen"));
  auto json = FindDecoder("json");
  DecodeRequest pages;
  pages.format = "json";
  pages.options = {{"records", "data"}};
  pages.paths = {Write("j1.json", R"({"data": [{"id": 1}]})"),
                 Write("j2.json", R"({"data": [{"id": 2, "extra": true}]})")};
  ASSERT_TRUE((*json)->ReadsManyFiles(pages));
  auto jp = (*json)->Plan(pages);
  ASSERT_TRUE(jp.ok());
  auto jr = conn_.Query("SELECT count(*), count(extra) FROM " + jp->sql);
  ASSERT_TRUE(jr.ok()) << jr.status().message() << "\n" << jp->sql;
  EXPECT_EQ(jr->rows[0][0], V("2"));
  EXPECT_EQ(jr->rows[0][1], V("1"));
  // Census-style arrays of arrays are read one file at a time.
  DecodeRequest census;
  census.format = "json";
  EXPECT_FALSE((*json)->ReadsManyFiles(census));
}

}  // namespace
}  // namespace sluice
