// Tests of database sources' pieces that need no server: type mappings,
// the CSV writer, URLs shown without passwords, and SQLite extraction end to
// end — a real SQLite file read by the driver, the extract read back by the
// `database` decoder in a real in-memory DuckDB. PostgreSQL and MariaDB are
// tested against real servers in test/cases/database_sources.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/redact.h"
#include "ingest/database.h"
#include "ingest/decoder.h"
#include "warehouse/duckdb.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DatabaseTypes, PostgresMapsEachTypeFaithfully) {
  auto t = [](uint32_t oid, int32_t typmod = -1, char cat = 'X', char typtype = 'b') {
    return MapPostgresType("c", "", oid, typmod, cat, typtype);
  };
  EXPECT_EQ(t(16).type, "BOOLEAN");
  EXPECT_EQ(t(20).type, "BIGINT");
  EXPECT_EQ(t(21).type, "SMALLINT");
  EXPECT_EQ(t(23).type, "INTEGER");
  EXPECT_EQ(t(700).type, "FLOAT");
  EXPECT_EQ(t(701).type, "DOUBLE");
  // numeric(12,2): typmod = (12 << 16 | 2) + 4
  EXPECT_EQ(t(1700, (12 << 16 | 2) + 4).type, "DECIMAL(12,2)");
  EXPECT_EQ(t(1700, (38 << 16 | 0) + 4).type, "DECIMAL(38,0)");
  // Wider than DuckDB's DECIMAL, or unbounded: typed from the values later.
  EXPECT_EQ(t(1700, (50 << 16 | 4) + 4).encoding, DbEncoding::kFit);
  EXPECT_EQ(t(1700).encoding, DbEncoding::kFit);
  EXPECT_EQ(t(1184).type, "TIMESTAMPTZ");
  EXPECT_EQ(t(1114).type, "TIMESTAMP");
  EXPECT_EQ(t(1266).type, "TIMETZ");
  EXPECT_EQ(t(1186).type, "INTERVAL");
  EXPECT_EQ(t(2950).type, "UUID");
  EXPECT_EQ(t(3802).type, "JSON");
  EXPECT_EQ(t(17).type, "BLOB");
  EXPECT_EQ(t(17).encoding, DbEncoding::kHex);
  EXPECT_EQ(t(1007, -1, 'A').type, "JSON");           // int[]
  EXPECT_EQ(t(99999, -1, 'U', 'c').type, "JSON");     // a composite type
  EXPECT_EQ(t(99999, -1, 'E', 'e').type, "VARCHAR");  // an enum keeps its label
  EXPECT_EQ(t(869, -1, 'I').type, "VARCHAR");         // inet
}

TEST(DatabaseTypes, MariaDbMapsSignednessPrecisionAndBytes) {
  auto t = [](int type, bool is_unsigned = false, bool binary = false, uint64_t length = 0,
              unsigned decimals = 0) {
    return MapMariaDbType({"c", type, is_unsigned, binary, length, decimals});
  };
  EXPECT_EQ(t(1).type, "TINYINT");
  EXPECT_EQ(t(1, true).type, "UTINYINT");
  EXPECT_EQ(t(3, true).type, "UINTEGER");
  EXPECT_EQ(t(8, true).type, "UBIGINT");
  // decimal(10,2) signed: length 12 (sign and point); unsigned: 11.
  EXPECT_EQ(t(246, false, false, 12, 2).type, "DECIMAL(10,2)");
  EXPECT_EQ(t(246, true, false, 11, 2).type, "DECIMAL(10,2)");
  EXPECT_EQ(t(246, false, false, 67, 0).encoding, DbEncoding::kFit);  // decimal(65,0)
  EXPECT_EQ(t(7).type, "TIMESTAMPTZ");
  EXPECT_EQ(t(12).type, "TIMESTAMP");
  EXPECT_EQ(t(11).type, "INTERVAL");
  EXPECT_EQ(t(253, false, true).type, "BLOB");  // varbinary
  EXPECT_EQ(t(253, false, false).type, "VARCHAR");
  EXPECT_EQ(t(252, false, true).encoding, DbEncoding::kHex);  // blob
}

TEST(DatabaseUrls, PasswordsNeverShown) {
  EXPECT_EQ(DisplayDatabaseUrl("postgresql://app:s3cr%40t@db.example:5432/shop"),
            "postgresql://app@db.example:5432/shop");
  EXPECT_EQ(DisplayDatabaseUrl("mysql://root:pw@127.0.0.1/shop?ssl=true"),
            "mysql://root@127.0.0.1/shop?ssl=true");
  EXPECT_EQ(DisplayDatabaseUrl("host=db dbname=shop password='a b' user=x"),
            "host=db dbname=shop password=*** user=x");
  EXPECT_EQ(DisplayDatabaseUrl("postgresql://h/db?password=zz&sslmode=require"),
            "postgresql://h/db?password=***&sslmode=require");
  EXPECT_EQ(DisplayDatabaseUrl("sqlite:data/app.db"), "sqlite:data/app.db");
  RegisterDatabaseSecrets("postgresql://app:unit-pw-%21x@h/db");
  EXPECT_THAT(Redact("failed: unit-pw-!x and unit-pw-%21x"), Not(HasSubstr("unit-pw")));
  EXPECT_TRUE(IsDatabaseUrl("postgres://h/db"));
  EXPECT_TRUE(IsDatabaseUrl("sqlite:x.db"));
  EXPECT_FALSE(IsDatabaseUrl("https://example.org/x.csv"));
}

TEST(DatabaseNames, RelationNamesSplitAndQuote) {
  auto parts = SplitRelationName("public.orders");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (std::vector<std::string>{"public", "orders"}));
  parts = SplitRelationName("\"my.schema\".\"Odd \"\"Name\"\"\"");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (std::vector<std::string>{"my.schema", "Odd \"Name\""}));
  EXPECT_FALSE(SplitRelationName("a..b").ok());
  EXPECT_FALSE(SplitRelationName("\"open").ok());
}

class DatabaseExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-db-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    DuckDbOptions options;
    options.memory_limit = "256MB";
    options.threads = 1;
    auto db = DuckDbDatabase::Open(":memory:", options);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto conn = db_.Connect();
    ASSERT_TRUE(conn.ok());
    conn_ = std::move(conn).value();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Sqlite(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "app.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
  Result<DbExtract> Extract(const std::string& table, const std::string& query = "") {
    DbRequest req;
    req.url = "sqlite:app.db";
    req.project_root = dir_.string();
    req.table = table;
    req.query = query;
    return ExtractToFile(req, (dir_ / "extract.csv").string());
  }
  // The extract read back as the loader reads it.
  Result<QueryResult> ReadBack(const DbExtract& extract, const std::string& select,
                               const std::string& order_by = "") {
    ASSIGN_OR_RETURN(const Decoder* decoder, FindDecoder("database"));
    DecodeRequest req;
    req.path = (dir_ / "extract.csv").string();
    req.format = "database";
    req.options = {{"columns", DbColumnsToJson(extract.columns)}};
    ASSIGN_OR_RETURN(std::string sql, decoder->TableSql(req));
    return conn_.Query("SELECT " + select + " FROM " + sql + " AS t" +
                       (order_by.empty() ? "" : " ORDER BY " + order_by));
  }
  std::string TypeOf(const DbExtract& e, const std::string& name) {
    for (const DbColumn& c : e.columns) {
      if (c.name == name) return c.type;
    }
    return "?";
  }

  std::filesystem::path dir_;
  DuckDbDatabase db_;
  DuckDbConnection conn_;
};

TEST_F(DatabaseExtractTest, SqliteValuesRoundTripWithTheirTypes) {
  Sqlite(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, price REAL, born DATE, at DATETIME, "
      "ok BOOLEAN, pic BLOB, note VARCHAR(10), anything);"
      "INSERT INTO t VALUES (1, 'plain', 0.1, '2024-02-29', '2024-02-29 10:11:12', 1, x'00ff10', "
      "'', 5);"
      "INSERT INTO t VALUES (2, 'a \"quoted\", comma\nand newline', 1e300, NULL, "
      "'2024-03-01T00:00:00.125', 0, x'', NULL, 'text');"
      "INSERT INTO t VALUES (3, NULL, -2.5, '1999-12-31', NULL, NULL, NULL, 'x', 2.5);");
  Result<DbExtract> e = Extract("t");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->rows, 3);
  EXPECT_EQ(TypeOf(*e, "id"), "BIGINT");
  EXPECT_EQ(TypeOf(*e, "price"), "DOUBLE");
  EXPECT_EQ(TypeOf(*e, "born"), "DATE");
  EXPECT_EQ(TypeOf(*e, "at"), "TIMESTAMP");
  EXPECT_EQ(TypeOf(*e, "ok"), "BOOLEAN");
  EXPECT_EQ(TypeOf(*e, "pic"), "BLOB");
  EXPECT_EQ(TypeOf(*e, "anything"), "VARCHAR");  // 5, 'text', 2.5: only text holds them all
  Result<QueryResult> r = ReadBack(
      *e,
      "id, name, price = 0.1 OR price = 1e300 OR price = -2.5, born, \"at\", ok, hex(pic), note, "
      "note IS NULL, anything",
      "id");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_EQ(r->rows[0][1].value_or("NULL"), "plain");
  EXPECT_EQ(r->rows[1][1].value_or("NULL"), "a \"quoted\", comma\nand newline");
  EXPECT_EQ(r->rows[2][1].value_or("NULL"), "NULL");
  for (const auto& row : r->rows) EXPECT_EQ(row[2].value_or("NULL"), "true");  // exact reals
  EXPECT_EQ(r->rows[0][3].value_or("NULL"), "2024-02-29");
  EXPECT_EQ(r->rows[1][4].value_or("NULL"), "2024-03-01 00:00:00.125");
  EXPECT_EQ(r->rows[0][5].value_or("NULL"), "true");
  EXPECT_EQ(r->rows[0][6].value_or("NULL"), "00FF10");
  EXPECT_EQ(r->rows[1][6].value_or("NULL"), "");  // an empty blob is not NULL
  EXPECT_EQ(r->rows[0][7].value_or("NULL"), "");  // nor is empty text
  EXPECT_EQ(r->rows[0][8].value_or("NULL"), "false");
  EXPECT_EQ(r->rows[1][8].value_or("NULL"), "true");
  EXPECT_EQ(r->rows[0][9].value_or("NULL"), "5");
  EXPECT_EQ(r->rows[2][9].value_or("NULL"), "2.5");
}

TEST_F(DatabaseExtractTest, SqliteDeclaredIntegerHoldingTextWidensAndSaysSo) {
  Sqlite(
      "CREATE TABLE stops (stop_id INTEGER, name TEXT);"
      "INSERT INTO stops VALUES (1, 'a'), (2, 'b'), ('N12', 'c');");
  Result<DbExtract> e = Extract("stops");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(TypeOf(*e, "stop_id"), "VARCHAR");
  ASSERT_EQ(e->notes.size(), 1u);
  EXPECT_THAT(e->notes[0], HasSubstr("stop_id is declared INTEGER but holds text in 1 row"));
  Result<QueryResult> r = ReadBack(*e, "count(*), count(stop_id)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows[0][0].value_or(""), "3");  // no row lost
  EXPECT_EQ(r->rows[0][1].value_or(""), "3");
}

TEST_F(DatabaseExtractTest, SqliteDatesTheCalendarLacksStayText) {
  Sqlite(
      "CREATE TABLE d (day DATE, at DATETIME);"
      "INSERT INTO d VALUES ('2024-02-29', '2024-02-29 23:59:59'), ('2023-02-29', "
      "'2024-01-01 24:00:00');");
  Result<DbExtract> e = Extract("d");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(TypeOf(*e, "day"), "VARCHAR");  // 2023 has no 29 February
  EXPECT_EQ(TypeOf(*e, "at"), "VARCHAR");   // nor any day a 24th hour
  Result<QueryResult> r = ReadBack(*e, "count(*)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows[0][0].value_or(""), "2");
}

TEST_F(DatabaseExtractTest, SqliteReadsSinceACursorBoundAsItsType) {
  Sqlite("CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1,'a'), (2,'b'), (10,'c');");
  DbRequest req;
  req.url = "sqlite:app.db";
  req.project_root = dir_.string();
  req.table = "t";
  req.since.column = "id";
  req.since.value = "2";
  req.since.type = "BIGINT";  // as text, '10' would sort before '2'
  Result<DbExtract> e = ExtractToFile(req, (dir_ / "extract.csv").string());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->rows, 2);
  req.since.lookback_seconds = 60;  // a lookback on a number is refused
  e = ExtractToFile(req, (dir_ / "extract.csv").string());
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("lookback: applies to date and time cursors"));
}

TEST_F(DatabaseExtractTest, SqliteQueriesMustReadAndNameTheirColumns) {
  Sqlite("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);");
  Result<DbExtract> e = Extract("", "DELETE FROM t");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("would change the database"));
  e = Extract("", "SELECT a, a FROM t");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("returns the column 'a' twice"));
  e = Extract("missing");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("no such table"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "extract.csv"));  // nothing half-written left
  e = Extract("", "SELECT a * 2 AS doubled FROM t");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(TypeOf(*e, "doubled"), "BIGINT");
}

TEST_F(DatabaseExtractTest, MissingFileIsAClearError) {
  DbRequest req;
  req.url = "sqlite:nowhere.db";
  req.project_root = dir_.string();
  req.table = "t";
  Result<DbExtract> e = ExtractToFile(req, (dir_ / "x.csv").string());
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("no SQLite database at"));
  req.url = "oracle://x";
  e = ExtractToFile(req, (dir_ / "x.csv").string());
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("names no database this build reads"));
}

TEST(CsvFileWriter, QuotesWhatMustBeQuotedAndHashesWhatItWrote) {
  char path[] = "/tmp/sluice-csvw-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string sha;
  {
    CsvFileWriter w(fd);
    ASSERT_TRUE(w.Text("a", 1).ok());
    ASSERT_TRUE(w.Null().ok());
    ASSERT_TRUE(w.Text("", 0).ok());
    ASSERT_TRUE(w.Text("x,\"y\"", 5).ok());
    const unsigned char bytes[] = {0x00, 0xab};
    ASSERT_TRUE(w.Hex(bytes, 2).ok());
    ASSERT_TRUE(w.EndRow().ok());
    auto done = w.Finish();
    ASSERT_TRUE(done.ok());
    sha = *done;
  }
  ::close(fd);
  std::ifstream in(path);
  std::stringstream body;
  body << in.rdbuf();
  ::unlink(path);
  EXPECT_EQ(body.str(), "a,,\"\",\"x,\"\"y\"\"\",00ab\n");
  EXPECT_EQ(sha.size(), 64u);
}

}  // namespace
}  // namespace sluice
