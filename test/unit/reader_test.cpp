// Readers: the statement check (what is refused, before anything binds), the
// row cap and the timeout, and the rendering of every DuckDB type.
#include "engine/reader.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/memory_warehouse.h"
#include "warehouse/watchdog.h"

namespace sluice {
namespace {

class ReaderTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse(2);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(session_
                    ->Execute("CREATE TABLE people AS SELECT range AS id, 'p' || range AS "
                              "name FROM range(5); CREATE SCHEMA _sluice; CREATE TABLE "
                              "_sluice.issues (n INTEGER); CREATE SCHEMA _sluice_v; CREATE "
                              "TABLE _sluice_v.people__v1 (id INTEGER)")
                    .ok());
    scope_.relations = {"people", "legacy.customers"};
  }

  // Runs a read in text format; the rows as "a|b" lines.
  Result<std::vector<std::string>> Read(const std::string& sql, ReadLimits limits = {}) {
    std::vector<std::string> lines;
    RowVisitor visitor;
    visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += (i ? "|" : "") + (row[i] ? std::string(*row[i]) : std::string("NULL"));
      }
      lines.push_back(line);
      return true;
    };
    ASSIGN_OR_RETURN(ReadSummary summary,
                     RunRead(*session_, sql, scope_, RenderFormat::kText, limits, visitor));
    truncated_ = summary.truncated;
    return lines;
  }

  StatusCode CodeOf(const std::string& sql) { return Read(sql).status().code(); }

  ReadScope scope_;
  bool truncated_ = false;
};

TEST_F(ReaderTest, RefusesEveryStatementThatIsNotOneSelect) {
  for (const char* sql :
       {"DROP TABLE people", "DELETE FROM people", "INSERT INTO people VALUES (1, 'x')",
        "UPDATE people SET id = 1", "CREATE TABLE x AS SELECT 1", "ATTACH 'x.db'",
        "COPY people TO 'x.csv'", "SET threads = 1", "PRAGMA version", "CHECKPOINT",
        "SELECT 1; SELECT 2", "SELECT 1; DROP TABLE people", "EXPLAIN SELECT 1",
        "CALL pragma_version()"}) {
    EXPECT_EQ(CodeOf(sql), StatusCode::kRefused) << sql;
  }
  auto people = Read("SELECT count(*) FROM people");
  ASSERT_TRUE(people.ok()) << people.status().ToString();
  EXPECT_EQ(*people, std::vector<std::string>{"5"});
}

TEST_F(ReaderTest, RefusesFilesTableFunctionsAndTheCatalog) {
  for (const char* sql :
       {"SELECT * FROM read_text('.secrets')", "SELECT * FROM 'x.csv'", "SELECT * FROM \"a/b\"",
        "SELECT * FROM '*.parquet'", "SELECT * FROM read_csv(['a.csv'])",
        "SELECT * FROM people WHERE name IN (SELECT content FROM read_text('x'))",
        "WITH t AS (SELECT * FROM read_blob('x')) SELECT * FROM t", "SELECT * FROM glob('*')",
        "SELECT * FROM duckdb_settings()", "SELECT * FROM query('SELECT 1')", "SHOW TABLES",
        "SELECT nextval('s')", "SELECT current_setting('home_directory')",
        "SELECT * FROM memory.main.people"}) {
    EXPECT_EQ(CodeOf(sql), StatusCode::kRefused) << sql;
  }
  for (const char* sql : {"SELECT * FROM information_schema.tables", "SELECT * FROM duckdb_tables",
                          "SELECT * FROM _sluice_v.people__v1", "SELECT * FROM nope"}) {
    EXPECT_EQ(CodeOf(sql), StatusCode::kNotFound) << sql;
  }
}

TEST_F(ReaderTest, ReachesPublishedRelationsSluiceSchemasAndCtes) {
  for (const char* sql :
       {"SELECT * FROM people", "SELECT * FROM main.people", "SELECT * FROM \"People\"",
        "SELECT * FROM _sluice.issues",
        "WITH people2 AS (SELECT * FROM people) SELECT * FROM people2", "SELECT * FROM range(3)",
        "SELECT * FROM unnest([1, 2])", "DESCRIBE people", "FROM people",
        "SELECT 1 -- a trailing comment", "SELECT 1;"}) {
    auto r = Read(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  // An external: table passes the check; DuckDB then binds it (and it is absent here).
  EXPECT_EQ(CodeOf("SELECT * FROM legacy.customers"), StatusCode::kInvalidArgument);
}

TEST_F(ReaderTest, CapsRowsAndSaysSo) {
  ReadLimits limits;
  limits.max_rows = 3;
  auto r = Read("SELECT * FROM range(10)", limits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_TRUE(truncated_);
  r = Read("SELECT * FROM range(3)", limits);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(truncated_);
}

TEST_F(ReaderTest, TimeoutInterruptsTheRead) {
  ReadLimits limits;
  limits.timeout_seconds = 1;
  auto r = Read("SELECT count(*) FROM range(1000000000) a, range(1000000) b", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  // The session is usable afterwards.
  EXPECT_TRUE(Read("SELECT 1").ok());
}

TEST_F(ReaderTest, AnEarlierDeadlineFiresFirstAndAPassedWatchdogNever) {
  auto other = warehouse_->Connect();
  ASSERT_TRUE(other.ok());
  // A far deadline registered first, a near one after it: the near one
  // interrupts its statement while the far one waits on.
  Watchdog far(other->get(), 3600);
  ReadLimits limits;
  limits.timeout_seconds = 1;
  auto r = Read("SELECT count(*) FROM range(1000000000) a, range(1000000) b", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_FALSE(far.fired());
  // Watchdogs come and go without a thread each.
  auto threads = [] {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return n;
  };
  size_t before = threads();
  for (int i = 0; i < 1000; ++i) {
    Watchdog w(session_.get(), 60);
    EXPECT_FALSE(w.fired());
  }
  EXPECT_EQ(threads(), before);
  EXPECT_TRUE(Read("SELECT 1").ok());
}

// A built read binds its values as text, each cast by DuckDB to its
// column's type as a literal would be (or refused, when it does not fit).
TEST_F(ReaderTest, BoundValuesMatchAsTheirLiteralsWould) {
  ASSERT_TRUE(session_
                  ->Execute("CREATE TABLE typed AS SELECT range::BIGINT AS b, range::INTEGER AS i, "
                            "range::SMALLINT AS s, range::UTINYINT AS u, range / 4 AS d, "
                            "DATE '2024-02-27' + range::INTEGER AS day, 'v' || range AS t "
                            "FROM range(6)")
                  .ok());
  auto count = [&](const std::string& where, const std::optional<std::string>& value) {
    std::vector<std::string> got;
    RowVisitor visitor;
    visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
      got.push_back(row[0] ? std::string(*row[0]) : "NULL");
      return true;
    };
    ReadLimits limits;
    Result<ReadSummary> read = RunBuiltRead(*session_, "SELECT count(*) FROM typed WHERE " + where,
                                            {value}, RenderFormat::kText, limits, visitor, "tag");
    if (!read.ok()) return "error: " + read.status().message();
    return got.empty() ? std::string("none") : got[0];
  };
  EXPECT_EQ(count("b = $1", "3"), "1");
  EXPECT_EQ(count("b = $1", "+3"), "1");
  EXPECT_EQ(count("b = $1", "-0"), "1");
  EXPECT_EQ(count("b >= $1", "003"), "3");
  EXPECT_EQ(count("i = $1", "2"), "1");
  EXPECT_EQ(count("s < $1", "2"), "2");
  EXPECT_EQ(count("u = $1", "5"), "1");
  EXPECT_EQ(count("d = $1", "0.25"), "1");
  EXPECT_EQ(count("d = $1", "2.5e-1"), "1");
  EXPECT_EQ(count("d > $1", ".5"), "3");
  EXPECT_EQ(count("day = $1", "2024-02-29"), "1");
  EXPECT_EQ(count("day >= $1", "2024-03-01"), "3");
  EXPECT_EQ(count("t = $1", "v4"), "1");
  EXPECT_EQ(count("b = $1", std::nullopt), "0");
  // Not plain: DuckDB casts the text as it would a literal, or says why not.
  EXPECT_EQ(count("b = $1", " 3 "), "1");
  EXPECT_EQ(count("u = $1", "300").rfind("error: ", 0), 0u);
  EXPECT_EQ(count("b = $1", "99999999999999999999").rfind("error: ", 0), 0u);
  EXPECT_EQ(count("b = $1", "three").rfind("error: ", 0), 0u);
  EXPECT_EQ(count("day = $1", "2023-02-29").rfind("error: ", 0), 0u);
  EXPECT_EQ(count("d = $1", "inf"), "0");
  // The statement stays prepared under its tag whatever was bound before.
  EXPECT_EQ(count("b = $1", "4"), "1");
}

TEST_F(ReaderTest, RendersTypesItCannotOtherwiseRead) {
  auto r = Read(
      "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, [1, NULL], {'a': 1}, map {'k': 2}, "
      "'2024-01-01 10:00:00+02'::timestamptz, NULL::integer");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->front(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|[1, NULL]|{'a': 1}|{k=2}|2024-01-01 "
            "08:00:00+00|NULL");
}

}  // namespace
}  // namespace sluice
