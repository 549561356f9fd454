// Readers: the statement check (what is refused, before anything binds), the
// row cap and the timeout, and the rendering of every DuckDB type.
#include "engine/reader.h"

#include <gtest/gtest.h>

#include "support/memory_warehouse.h"

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
