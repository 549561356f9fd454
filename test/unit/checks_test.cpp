// Tests of data checks compiled to SQL (quality/checks.h), run against real
// tables in an in-memory DuckDB warehouse: every registered type passes on
// good data and fails with the right count and a sample on bad data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quality/checks.h"
#include "support/memory_warehouse.h"
#include "warehouse/warehouse.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

CheckSpec Check(std::string type, nlohmann::json args, Severity severity = Severity::kError,
                int line = 3) {
  CheckSpec c;
  c.type = std::move(type);
  c.args = std::move(args);
  c.severity = severity;
  c.name = c.type;
  c.loc = SourceLoc{"sources/stops.yaml", line};
  return c;
}

class ChecksTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    ASSERT_FALSE(HasFatalFailure());
    // Checks run on staged builds, whose names need quoting.
    ASSERT_TRUE(session_->Execute("CREATE SCHEMA _sluice_v").ok());
  }

  // Creates _sluice_v."<name>" from a SELECT and returns its relation name.
  std::string Table(const std::string& name, const std::string& select) {
    std::string rel = "_sluice_v.\"" + name + "\"";
    Status st = session_->Execute("CREATE OR REPLACE TABLE " + rel + " AS " + select);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return rel;
  }

  CheckOutcome RunOne(const CheckSpec& check, const std::string& relation) {
    std::vector<CheckOutcome> out = RunChecks(*session_, {check}, relation);
    EXPECT_THAT(out, SizeIs(1));
    return out.empty() ? CheckOutcome{} : out[0];
  }
};

// One check type: good data it passes, bad data it fails, and what the
// failure looks like.
struct TypeCase {
  nlohmann::json args;
  std::string good;           // a SELECT
  std::string bad;            // a SELECT
  int64_t failing_rows;       // on bad
  std::string sample_column;  // a column of the first sample row...
  std::string sample_value;   // ...and its value
};

std::map<std::string, TypeCase> TypeCases() {
  return {
      {"not_null",
       {nlohmann::json::array({"id", "name"}),
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, name)",
        "SELECT * FROM (VALUES (1, NULL), (NULL, 'b'), (3, 'c')) t(id, name) ORDER BY id NULLS "
        "LAST",
        2, "id", "1"}},
      {"unique",
       {nlohmann::json::array({"id"}), "SELECT * FROM (VALUES (1), (2), (3)) t(id)",
        "SELECT * FROM (VALUES (1), (2), (2), (3), (3), (3)) t(id)", 2, "duplicates", ""}},
      {"row_count",
       {{{"min", 2}, {"max", 3}},
        "SELECT * FROM range(3) t(id)",
        "SELECT * FROM range(1) t(id)",
        1,
        "row_count",
        "1"}},
      {"accepted_values",
       {{{"column", "status"}, {"values", {"open", "closed"}}},
        "SELECT * FROM (VALUES ('open'), ('closed'), (NULL)) t(status)",
        "SELECT * FROM (VALUES ('open'), ('Open'), (NULL)) t(status)",
        1,
        "status",
        "Open"}},
      {"range",
       {{{"column", "amount"}, {"min", 0}, {"max", 100}},
        "SELECT * FROM (VALUES (0.0), (100.0), (NULL)) t(amount)",
        "SELECT * FROM (VALUES (-0.5), (50.0), (100.5)) t(amount) ORDER BY amount",
        2,
        "amount",
        "-0.5"}},
      {"regex",
       {{{"column", "code"}, {"pattern", "[A-Z]{3}"}},
        "SELECT * FROM (VALUES ('ABC'), ('XYZ'), (NULL)) t(code)",
        "SELECT * FROM (VALUES ('ABC'), ('abc'), ('ABCD'), (NULL)) t(code) ORDER BY code",
        2,
        "code",
        "ABCD"}},
      {"expression",
       {"amount >= 0 AND amount < limit_",
        "SELECT * FROM (VALUES (0, 1), (5, 10)) t(amount, limit_)",
        "SELECT * FROM (VALUES (5, 10), (-1, 10), (NULL, 10), (10, 10)) t(amount, limit_) "
        "ORDER BY amount NULLS LAST",
        3, "amount", "-1"}},
      {"sql",
       {{{"query", "SELECT id FROM {{ this }} WHERE id > 10"}},
        "SELECT * FROM range(5) t(id)",
        "SELECT * FROM range(13) t(id)",
        2,
        "id",
        ""}},
      {"relationships",
       {{{"column", "stop_id"}, {"to", "parent_stops.id"}},
        "SELECT * FROM (VALUES (1), (2), (NULL)) t(stop_id)",
        "SELECT * FROM (VALUES (1), (3), (4), (NULL)) t(stop_id) ORDER BY stop_id",
        2,
        "stop_id",
        "3"}},
  };
}

TEST_F(ChecksTest, EveryRegisteredTypePassesOnGoodDataAndFailsOnBad) {
  ASSERT_TRUE(
      session_->Execute("CREATE TABLE parent_stops AS SELECT * FROM (VALUES (1), (2)) t(id)").ok());
  std::map<std::string, TypeCase> cases = TypeCases();
  EXPECT_EQ(RegisteredCheckTypes().size(), cases.size());
  for (const std::string& type : RegisteredCheckTypes()) {
    SCOPED_TRACE(type);
    auto it = cases.find(type);
    ASSERT_NE(it, cases.end()) << "registered check type without a unit test: " << type;
    const TypeCase& c = it->second;
    CheckSpec check = Check(type, c.args);

    CheckOutcome good = RunOne(check, Table("good__0123456789abcdef", c.good));
    EXPECT_EQ(good.status, CheckStatus::kPass) << good.message;
    EXPECT_EQ(good.failing_rows, 0);
    EXPECT_TRUE(good.sample.empty());
    EXPECT_FALSE(good.Blocks());

    CheckOutcome bad = RunOne(check, Table("bad__0123456789abcdef", c.bad));
    EXPECT_EQ(bad.status, CheckStatus::kFail) << bad.message;
    EXPECT_EQ(bad.failing_rows, c.failing_rows);
    EXPECT_TRUE(bad.Blocks());
    EXPECT_EQ(bad.message, type + ": " + std::to_string(c.failing_rows) + " failing row" +
                               (c.failing_rows == 1 ? "" : "s"));
    ASSERT_TRUE(bad.sample.is_array());
    ASSERT_EQ(static_cast<int64_t>(bad.sample.size()), std::min<int64_t>(c.failing_rows, 5));
    ASSERT_TRUE(bad.sample[0].contains(c.sample_column)) << bad.sample.dump();
    if (!c.sample_value.empty()) {
      EXPECT_EQ(bad.sample[0][c.sample_column], c.sample_value) << bad.sample.dump();
    }
  }
}

TEST_F(ChecksTest, SampleKeepsAtMostFiveRowsAndNulls) {
  std::string rel = Table("t", "SELECT NULL::INTEGER AS id, range AS n FROM range(8)");
  CheckOutcome o = RunOne(Check("not_null", {"id"}), rel);
  EXPECT_EQ(o.failing_rows, 8);
  ASSERT_THAT(o.sample, SizeIs(5));
  EXPECT_TRUE(o.sample[0]["id"].is_null());
  EXPECT_TRUE(o.sample[0]["n"].is_string());
}

TEST_F(ChecksTest, UniqueOnSeveralColumnsIsOnTheCombination) {
  CheckSpec check = Check("unique", {"route_id", "day"});
  std::string distinct =
      Table("ok", "SELECT * FROM (VALUES (1, 'mon'), (1, 'tue'), (2, 'mon')) t(route_id, day)");
  EXPECT_EQ(RunOne(check, distinct).status, CheckStatus::kPass);

  std::string dup = Table(
      "dup",
      "SELECT * FROM (VALUES (1, 'mon'), (1, 'mon'), (1, 'mon'), (1, 'tue')) t(route_id, day)");
  CheckOutcome o = RunOne(check, dup);
  EXPECT_EQ(o.status, CheckStatus::kFail);
  EXPECT_EQ(o.failing_rows, 1);
  ASSERT_THAT(o.sample, SizeIs(1));
  EXPECT_EQ(o.sample[0]["route_id"], "1");
  EXPECT_EQ(o.sample[0]["day"], "mon");
  EXPECT_EQ(o.sample[0]["duplicates"], "3");
}

TEST_F(ChecksTest, AChangeHasItsRowsCheckedAndTheWholeTableForTheRest) {
  // Row 1 broke range before the change; the change wrote rows 2 and 3,
  // and row 3 duplicates row 4's code.
  std::string table = Table("t",
                            "SELECT * FROM (VALUES (1, -1, 'a'), (2, 5, 'b'), (3, 6, 'c'), "
                            "(4, 7, 'c')) t(id, amount, code)");
  std::string rows = "(SELECT * FROM " + table + " WHERE id IN (2, 3))";
  std::vector<CheckSpec> checks = {Check("range", {{"column", "amount"}, {"min", 0}}),
                                   Check("unique", {"code"}), Check("not_null", {"code"})};
  EXPECT_TRUE(CheckLooksAtRows(checks[0]));
  EXPECT_FALSE(CheckLooksAtRows(checks[1]));
  std::vector<CheckOutcome> out = RunChecksOnChange(*session_, checks, table, rows);
  ASSERT_THAT(out, SizeIs(3));
  EXPECT_EQ(out[0].name, "range");
  EXPECT_EQ(out[0].status, CheckStatus::kPass);  // only the rows the change wrote
  EXPECT_EQ(out[1].name, "unique");
  EXPECT_EQ(out[1].status, CheckStatus::kFail);  // the whole table
  EXPECT_EQ(out[2].status, CheckStatus::kPass);
}

TEST_F(ChecksTest, UniqueIgnoresKeysWithANullPart) {
  // As a SQL UNIQUE constraint: NULL equals nothing, so repeated NULLs pass.
  CheckSpec check = Check("unique", {"a", "b"});
  std::string rel = Table(
      "nulls", "SELECT * FROM (VALUES (1, NULL), (1, NULL), (NULL, NULL), (NULL, NULL)) t(a, b)");
  EXPECT_EQ(RunOne(check, rel).status, CheckStatus::kPass);
  std::string dup = Table("nulls_dup", "SELECT * FROM (VALUES (1, NULL), (2, 3), (2, 3)) t(a, b)");
  EXPECT_EQ(RunOne(check, dup).failing_rows, 1);
}

TEST_F(ChecksTest, RowCountBounds) {
  std::string rel = Table("t", "SELECT * FROM range(4) t(id)");
  EXPECT_EQ(RunOne(Check("row_count", {{"min", 4}}), rel).status, CheckStatus::kPass);
  EXPECT_EQ(RunOne(Check("row_count", {{"max", 4}}), rel).status, CheckStatus::kPass);
  CheckOutcome too_many = RunOne(Check("row_count", {{"max", 3}}), rel);
  EXPECT_EQ(too_many.status, CheckStatus::kFail);
  EXPECT_EQ(too_many.sample[0]["row_count"], "4");
  // No bounds: at least one row.
  EXPECT_EQ(RunOne(Check("row_count", nlohmann::json::object()), rel).status, CheckStatus::kPass);
  std::string empty = Table("empty", "SELECT * FROM range(0) t(id)");
  EXPECT_EQ(RunOne(Check("row_count", nlohmann::json::object()), empty).status, CheckStatus::kFail);
}

TEST_F(ChecksTest, RangeOnDatesAndValuesOfOtherTypes) {
  std::string rel = Table("t",
                          "SELECT * FROM (VALUES (DATE '2025-12-31', 1), (DATE '2026-06-01', 2), "
                          "(DATE '2027-01-01', 3)) t(day, n)");
  CheckOutcome o = RunOne(
      Check("range", {{"column", "day"}, {"min", "2026-01-01"}, {"max", "2026-12-31"}}), rel);
  EXPECT_EQ(o.failing_rows, 2);
  // accepted_values compares numbers as written.
  CheckOutcome values =
      RunOne(Check("accepted_values", {{"column", "n"}, {"values", {1, 2}}}), rel);
  EXPECT_EQ(values.failing_rows, 1);
  EXPECT_EQ(values.sample[0]["n"], "3");
}

TEST_F(ChecksTest, WarnDoesNotBlockButErrorDoes) {
  std::string rel = Table("t", "SELECT * FROM (VALUES (1), (NULL)) t(id)");
  CheckOutcome warn = RunOne(Check("not_null", {"id"}, Severity::kWarn), rel);
  EXPECT_EQ(warn.status, CheckStatus::kFail);
  EXPECT_EQ(warn.severity, Severity::kWarn);
  EXPECT_FALSE(warn.Blocks());
  CheckOutcome error = RunOne(Check("not_null", {"id"}, Severity::kError), rel);
  EXPECT_EQ(error.status, CheckStatus::kFail);
  EXPECT_TRUE(error.Blocks());

  // A check that cannot run blocks too, unless it is a warning.
  CheckOutcome broken = RunOne(Check("expression", "nope > 0", Severity::kError), rel);
  EXPECT_EQ(broken.status, CheckStatus::kError);
  EXPECT_TRUE(broken.Blocks());
  CheckOutcome broken_warn = RunOne(Check("expression", "nope > 0", Severity::kWarn), rel);
  EXPECT_EQ(broken_warn.status, CheckStatus::kError);
  EXPECT_FALSE(broken_warn.Blocks());
}

TEST_F(ChecksTest, ACheckWhoseSqlFailsIsAnErrorNamingItsLocation) {
  std::string rel = Table("t", "SELECT * FROM (VALUES (1)) t(id)");
  CheckSpec check = Check("expression", "no_such_column > 0", Severity::kError, 17);
  check.name = "positive";
  std::vector<CheckSpec> checks = {check, Check("not_null", {"id"})};
  std::vector<CheckOutcome> out = RunChecks(*session_, checks, rel);
  ASSERT_THAT(out, SizeIs(2));
  EXPECT_EQ(out[0].name, "positive");
  EXPECT_EQ(out[0].status, CheckStatus::kError);
  EXPECT_THAT(out[0].message, HasSubstr("sources/stops.yaml:17"));
  EXPECT_THAT(out[0].message, HasSubstr("positive"));
  EXPECT_THAT(out[0].message, HasSubstr("no_such_column"));
  // The next check still runs.
  EXPECT_EQ(out[1].status, CheckStatus::kPass);
}

TEST_F(ChecksTest, BadArgumentsAreErrorsNamingTheCheck) {
  std::string rel = Table("t", "SELECT 1 AS id");
  struct Bad {
    CheckSpec check;
    std::string says;
  };
  std::vector<Bad> bad = {
      {Check("not_nul", {"id"}), "did you mean not_null?"},
      {Check("not_null", nlohmann::json::array()), "needs a column name"},
      {Check("range", {{"column", "id"}}), "range needs min or max"},
      {Check("regex", {{"column", "id"}}), "regex needs pattern"},
      {Check("accepted_values", {{"column", "id"}}), "accepted_values needs values"},
      {Check("relationships", {{"column", "id"}, {"to", "parent"}}), "TABLE.COLUMN"},
      {Check("expression", ""), "expression needs SQL text"},
      {Check("sql", nlohmann::json::object()), "sql needs a query"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.check.type + " " + b.check.args.dump());
    auto sql = CompileCheck(b.check, rel);
    ASSERT_FALSE(sql.ok());
    EXPECT_THAT(sql.status().message(), HasSubstr("sources/stops.yaml:3"));
    EXPECT_THAT(sql.status().message(), HasSubstr(b.says));
    CheckOutcome o = RunOne(b.check, rel);
    EXPECT_EQ(o.status, CheckStatus::kError);
    EXPECT_THAT(o.message, HasSubstr(b.says));
    EXPECT_TRUE(o.Blocks());
  }
}

TEST_F(ChecksTest, RelationshipsToAnotherTable) {
  ASSERT_TRUE(session_
                  ->Execute("CREATE TABLE gtfs_stops AS SELECT * FROM (VALUES ('S1'), ('S2'), "
                            "(NULL)) t(stop_id)")
                  .ok());
  CheckSpec check = Check("relationships", {{"column", "stop_id"}, {"to", "gtfs_stops.stop_id"}});
  std::string ok = Table("times_ok", "SELECT * FROM (VALUES ('S1'), ('S1'), ('S2')) t(stop_id)");
  EXPECT_EQ(RunOne(check, ok).status, CheckStatus::kPass);
  std::string orphans =
      Table("times_bad", "SELECT * FROM (VALUES ('S1'), ('S9'), ('S9'), (NULL)) t(stop_id)");
  CheckOutcome o = RunOne(check, orphans);
  EXPECT_EQ(o.status, CheckStatus::kFail);
  EXPECT_EQ(o.failing_rows, 2);  // each orphan row; a NULL reference is not an orphan
  EXPECT_EQ(o.sample[0]["stop_id"], "S9");

  // A parent that does not exist is an error, not a pass.
  CheckOutcome missing =
      RunOne(Check("relationships", {{"column", "stop_id"}, {"to", "nowhere.stop_id"}}), ok);
  EXPECT_EQ(missing.status, CheckStatus::kError);
  EXPECT_THAT(missing.message, HasSubstr("nowhere"));
}

TEST_F(ChecksTest, SqlCheckSeesTheCheckedRelationAsThis) {
  std::string rel = Table("t", "SELECT * FROM range(6) t(n)");
  CheckOutcome o = RunOne(Check("sql", "SELECT n FROM {{this}} WHERE n % 2 = 1"), rel);
  EXPECT_EQ(o.failing_rows, 3);
  auto compiled = CompileCheck(Check("sql", "SELECT 1 FROM {{ this }}"), rel);
  ASSERT_TRUE(compiled.ok());
  EXPECT_THAT(*compiled, HasSubstr(rel));
  EXPECT_THAT(*compiled, ::testing::Not(HasSubstr("{{")));
}

TEST_F(ChecksTest, QuotedColumnNames) {
  std::string rel = Table("t", "SELECT * FROM (VALUES (1), (NULL)) t(\"Stop \"\"ID\"\"\")");
  CheckOutcome o = RunOne(Check("not_null", {"Stop \"ID\""}), rel);
  EXPECT_EQ(o.status, CheckStatus::kFail);
  EXPECT_EQ(o.failing_rows, 1);
}

}  // namespace
}  // namespace sluice
