// Tests of the export writers and the publish folder (publish/exports.h) on
// real DuckDB: every format reads back with every value as the engine holds
// it (wide numbers, nested values, NULLs, text that needs quoting), the
// Table Schema types follow the column types, and a commit swaps a whole
// version in while unchanged files are carried over and old versions pruned.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"
#include "core/hash.h"
#include "metadata/sqlite.h"
#include "publish/exports.h"
#include "support/memory_warehouse.h"

namespace sluice {
namespace {

class ExportsTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/sluice-exports-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(session_
                    ->Execute(R"(CREATE TABLE t AS SELECT * FROM (VALUES
      (1, 'plain', 12345678901234567890123.5::DECIMAL(38,10), 170141183460469231731687303715884105727::HUGEINT,
       [1, 2], {'a': 'x,"y"'}, 'nan'::DOUBLE, true, DATE '2024-02-29', 36.5, -119.25),
      (2, 'multi
line, "quoted"', NULL, NULL, NULL, NULL, 1.25, NULL, NULL, NULL, NULL),
      (3, 'small', 2.5, 7, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
    ) v(id, name, big, huge, list, obj, d, flag, day, lat, lon))")
                    .ok());
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  ExportFile Write(ExportFormat format, const std::string& file) {
    ExportSpec spec;
    spec.name = "t";
    spec.path = file;
    spec.format = format;
    auto written =
        WriteExportFile(*session_, spec, "SELECT * FROM t ORDER BY id", dir_ + "/" + file);
    EXPECT_TRUE(written.ok()) << written.status().ToString();
    return written.ok() ? *written : ExportFile{};
  }
  std::string Read(const std::string& file) {
    auto text = ReadFile(dir_ + "/" + file);
    return text.ok() ? *text : "";
  }

  std::string dir_;
};

TEST_F(ExportsTest, JsonKeepsEveryDigitAndNesting) {
  ExportFile f = Write(ExportFormat::kJson, "t.json");
  EXPECT_EQ(f.rows, 3);
  std::string text = Read("t.json");
  EXPECT_EQ(f.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(f.sha256, Sha256Hex(text));
  auto j = nlohmann::json::parse(text);
  ASSERT_EQ(j.size(), 3u);
  // Wider than 64 bits: strings, so no reader loses a digit; nan too.
  EXPECT_EQ(j[0]["huge"], "170141183460469231731687303715884105727");
  EXPECT_EQ(j[0]["big"], "12345678901234567890123.5000000000");
  EXPECT_EQ(j[0]["d"], "nan");
  EXPECT_EQ(j[0]["list"], nlohmann::json({1, 2}));
  EXPECT_EQ(j[0]["obj"]["a"], "x,\"y\"");
  EXPECT_EQ(j[0]["flag"], true);
  EXPECT_EQ(j[1]["name"], "multi\nline, \"quoted\"");
  EXPECT_TRUE(j[1]["big"].is_null());
}

TEST_F(ExportsTest, CsvQuotesWhatNeedsIt) {
  ExportFile f = Write(ExportFormat::kCsv, "t.csv");
  EXPECT_EQ(f.rows, 3);
  std::string text = Read("t.csv");
  EXPECT_EQ(text.substr(0, text.find("\r\n")), "id,name,big,huge,list,obj,d,flag,day,lat,lon");
  EXPECT_NE(text.find("2,\"multi\nline, \"\"quoted\"\"\",,,,,1.25,,,,\r\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(",nan,true,2024-02-29,36.5,-119.25\r\n"), std::string::npos) << text;
}

TEST_F(ExportsTest, GeoJsonPointsFromCoordinateColumns) {
  ExportFile f = Write(ExportFormat::kGeoJson, "t.geojson");
  auto j = nlohmann::json::parse(Read("t.geojson"));
  EXPECT_EQ(j["type"], "FeatureCollection");
  EXPECT_EQ(j["features"][0]["geometry"]["coordinates"], nlohmann::json({-119.25, 36.5}));
  EXPECT_FALSE(j["features"][0]["properties"].contains("lat"));
  EXPECT_TRUE(j["features"][1]["geometry"].is_null());
}

TEST_F(ExportsTest, SqliteStoresTypedValues) {
  ExportFile f = Write(ExportFormat::kSqlite, "t.sqlite");
  EXPECT_EQ(f.rows, 3);
  auto db = SqliteDb::Open(dir_ + "/t.sqlite", "t.sqlite");
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare(
      "SELECT typeof(id), typeof(flag), flag, typeof(d), typeof(lat), big, typeof(big), huge, "
      "(SELECT typeof(big) FROM t WHERE id = 3) FROM t WHERE id = 1");
  ASSERT_TRUE(st.ok());
  auto stepped = st->Step();
  ASSERT_TRUE(stepped.ok() && *stepped);
  EXPECT_EQ(st->ColumnText(0), "integer");
  EXPECT_EQ(st->ColumnText(1), "integer");
  EXPECT_EQ(st->ColumnInt64(2), 1);
  EXPECT_EQ(st->ColumnText(3), "text");  // nan: SQLite would make a NaN REAL a NULL
  EXPECT_EQ(st->ColumnText(4), "real");
  // A number SQLite cannot hold exactly stays its exact text.
  EXPECT_EQ(st->ColumnText(5), "12345678901234567890123.5000000000");
  EXPECT_EQ(st->ColumnText(6), "text");
  EXPECT_EQ(st->ColumnText(7), "170141183460469231731687303715884105727");
  // One that it can hold exactly is a number.
  EXPECT_EQ(st->ColumnText(8), "real");
}

TEST_F(ExportsTest, ParquetKeepsWideIntegersExact) {
  ExportSpec wide;
  wide.name = "t";
  wide.format = ExportFormat::kParquet;
  auto failed = WriteExportFile(*session_, wide, "SELECT huge FROM t", dir_ + "/t.parquet");
  EXPECT_FALSE(failed.ok());
  // A HUGEINT as DECIMAL(38,0): every digit, where DuckDB alone writes a
  // DOUBLE; one wider than 38 digits fails the export instead.
  ASSERT_TRUE(session_->Execute("CREATE TABLE sums AS SELECT 9007199254740993::HUGEINT AS s").ok());
  ExportSpec spec;
  spec.name = "sums";
  spec.format = ExportFormat::kParquet;
  auto sums = WriteExportFile(*session_, spec, "SELECT * FROM sums", dir_ + "/sums.parquet");
  ASSERT_TRUE(sums.ok()) << sums.status().ToString();
  auto back = session_->Query("SELECT s::VARCHAR FROM '" + dir_ + "/sums.parquet'");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rows[0][0], "9007199254740993");
  EXPECT_FALSE(FileExists(dir_ + "/t.parquet"));
  EXPECT_EQ(sums->sha256, Sha256Hex(Read("sums.parquet")));
  // Nested in a list or a struct too.
  auto nested = WriteExportFile(
      *session_, spec,
      "SELECT [9007199254740993::HUGEINT] AS l, {'s': 9007199254740995::HUGEINT} AS st;",
      dir_ + "/nested.parquet");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  auto inner =
      session_->Query("SELECT l[1]::VARCHAR, st.s::VARCHAR FROM '" + dir_ + "/nested.parquet'");
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  EXPECT_EQ(inner->rows[0][0], "9007199254740993");
  EXPECT_EQ(inner->rows[0][1], "9007199254740995");
  EXPECT_EQ(sums->columns[0].second, "DECIMAL(38,0)");
}

TEST_F(ExportsTest, ABadQueryLeavesNoFile) {
  ExportSpec spec;
  spec.name = "x";
  spec.format = ExportFormat::kCsv;
  auto written = WriteExportFile(*session_, spec, "SELECT nope FROM t", dir_ + "/x.csv");
  EXPECT_FALSE(written.ok());
  EXPECT_FALSE(FileExists(dir_ + "/x.csv"));
}

TEST(TableSchema, TypesFollowTheColumns) {
  auto type = [](const std::string& t) { return TableSchemaField("c", t).value("type", ""); };
  EXPECT_EQ(type("BIGINT"), "integer");
  EXPECT_EQ(type("HUGEINT"), "integer");
  EXPECT_EQ(type("DECIMAL(10,2)"), "number");
  EXPECT_EQ(type("DOUBLE"), "number");
  EXPECT_EQ(type("BOOLEAN"), "boolean");
  EXPECT_EQ(type("DATE"), "date");
  EXPECT_EQ(type("TIMESTAMP WITH TIME ZONE"), "datetime");
  EXPECT_EQ(type("TIME"), "time");
  EXPECT_EQ(type("INTEGER[]"), "array");
  EXPECT_EQ(type("STRUCT(a INTEGER)"), "object");
  EXPECT_EQ(type("MAP(VARCHAR, INTEGER)"), "object");
  EXPECT_EQ(type("VARCHAR"), "string");
  EXPECT_EQ(type("INTERVAL"), "string");
  EXPECT_EQ(TableSchemaField("c", "UUID").value("format", ""), "uuid");
}

TEST_F(ExportsTest, CommitSwapsWholeVersionsCarriesAndPrunes) {
  PublishFolder folder(dir_ + "/pub");
  EXPECT_TRUE(folder.CurrentPackage().is_null());
  for (int i = 1; i <= 5; ++i) {
    auto staging = folder.Begin();
    ASSERT_TRUE(staging.ok());
    std::vector<std::string> carry;
    if (i == 1) {
      ASSERT_TRUE(WriteFileAtomic(*staging + "/kept.csv", "a\r\n1\r\n").ok());
    } else {
      carry.push_back("kept.csv");
    }
    ASSERT_TRUE(WriteFileAtomic(*staging + "/new.csv", "n\r\n" + std::to_string(i) + "\r\n").ok());
    nlohmann::json package = {
        {"profile", "data-package"}, {"resources", nlohmann::json::array()}, {"i", i}};
    ASSERT_TRUE(folder.Commit(*staging, carry, package).ok());
    EXPECT_EQ(folder.CurrentPackage()["i"], i);
  }
  auto last = ReadFile(folder.CurrentDir() + "/new.csv");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, "n\r\n5\r\n");
  // Carried: the same file (one inode), never copied.
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((folder.CurrentDir() + "/kept.csv").c_str(), &a), 0);
  ASSERT_EQ(::stat((dir_ + "/pub/versions/00000004/kept.csv").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  // The newest three versions stay.
  EXPECT_FALSE(FileExists(dir_ + "/pub/versions/00000002"));
  EXPECT_TRUE(FileExists(dir_ + "/pub/versions/00000003"));
  // An abandoned staging folder goes.
  auto staging = folder.Begin();
  ASSERT_TRUE(staging.ok());
  folder.Abort(*staging);
  EXPECT_FALSE(FileExists(*staging));
}

}  // namespace
}  // namespace sluice
