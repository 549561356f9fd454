// Tests of the column-phase SQL (transform/phases.h) run end to end in an
// in-memory DuckDB warehouse on two threads: record numbers in the issue log
// and the quarantine are file positions within each raw object, even when
// the first object is large enough to be read in parallel; de-duplication
// keeps the last object's row; filtered-out rows are neither kept nor logged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/strings.h"
#include "support/memory_warehouse.h"
#include "transform/phases.h"
#include "warehouse/warehouse.h"

namespace sluice {
namespace {

constexpr int kBigRows = 300000;  // several CSV buffers: a parallel scan

class PhasesTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-phases-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    OpenWarehouse(2, "1GB");
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(session_->Execute("CREATE SCHEMA _sluice").ok());
    ASSERT_TRUE(session_->Execute(IssueTableDdl()).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Object a: kBigRows rows "id,n,note" with ids 1.., n = "bad" on rows 7
  // and kBigRows - 1, note "drop" on row 11. Object b: 4 rows, its row 2 bad,
  // its row 3 repeating id 5 of object a.
  std::vector<PhaseInput> Inputs() {
    std::string a = (dir_ / "a.csv").string(), b = (dir_ / "b.csv").string();
    {
      std::ofstream out(a);
      out << "id,n,note\n";
      for (int r = 1; r <= kBigRows; ++r) {
        out << r << ',' << (r == 7 || r == kBigRows - 1 ? "bad" : std::to_string(r % 1000)) << ','
            << (r == 11 ? "drop" : "ok") << '\n';
      }
    }
    {
      std::ofstream out(b);
      out << "id,n,note\n900001,1,ok\n900002,x,ok\n5,2,ok\n900004,3,ok\n";
    }
    auto read = [](const std::string& path) {
      return "read_csv(" + QuoteLiteral(path) + ", header=true, all_varchar=true)";
    };
    return {{read(a), "aaaa"}, {read(b), "bbbb"}};
  }

  TableSpec Table() {
    TableSpec t;
    t.name = "sites";
    t.key = {"id"};
    t.filter = "note <> 'drop'";
    t.loc = SourceLoc{"sources/sites.yaml", 1};
    ColumnSpec id{"id", "id", "integer", nlohmann::json::object(), {"sources/sites.yaml", 3}};
    ColumnSpec n{"n", "n", "integer", nlohmann::json::object(), {"sources/sites.yaml", 4}};
    ColumnSpec note{"note", "note", "text", nlohmann::json::object(), {"sources/sites.yaml", 5}};
    t.columns = {id, n, note};
    return t;
  }

  static inline const PhaseTargets kTargets{"built", "failed", "sites", "v1"};

  void Build(const PhaseSql& sql) {
    for (const std::string* s :
         {&sql.build, &sql.dedup, &sql.quarantine, &sql.issues, &sql.finalize}) {
      if (s->empty()) continue;
      Status st = session_->Execute(*s);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }

  std::string Scalar(const std::string& sql) {
    auto r = session_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->Scalar().value_or("NULL") : "";
  }

  std::filesystem::path dir_;
};

TEST_F(PhasesTest, RecordNumbersAreFilePositionsWithinEachObject) {
  auto sql = CompilePhases(Table(), Inputs(), {"id", "n", "note"}, {}, kTargets);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  Build(*sql);
  EXPECT_EQ(Scalar("SELECT string_agg(object_sha256 || ':' || record || ':' || issue_type, '|' "
                   "ORDER BY object_sha256, record) FROM _sluice.issues"),
            "aaaa:5:duplicate|aaaa:7:invalid_integer|aaaa:" + std::to_string(kBigRows - 1) +
                ":invalid_integer|bbbb:2:invalid_integer");
  // The duplicate names its winner: record 3 of the later object.
  EXPECT_EQ(Scalar("SELECT message FROM _sluice.issues WHERE issue_type = 'duplicate'"),
            "duplicate key; dropped for the later row (record 3)");
  // Kept: every row but the filtered one and the dropped duplicate; no flag columns.
  EXPECT_EQ(Scalar("SELECT count(*) FROM built"), std::to_string(kBigRows + 4 - 2));
  EXPECT_EQ(Scalar("SELECT count(*) FROM built WHERE id IN (5, 11)"), "1");
  EXPECT_EQ(Scalar("SELECT n FROM built WHERE id = 5"), "2");
  EXPECT_EQ(Scalar("SELECT string_agg(column_name, ',' ORDER BY column_index) FROM "
                   "duckdb_columns() WHERE table_name = 'built'"),
            "id,n,note");
  EXPECT_EQ(Scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name = '__sluice_dups'"), "0");
}

TEST_F(PhasesTest, QuarantineKeepsRecordNumbers) {
  TableSpec t = Table();
  t.quarantine = true;
  t.key.clear();
  auto sql = CompilePhases(t, Inputs(), {"id", "n", "note"}, {}, kTargets);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  Build(*sql);
  EXPECT_EQ(Scalar("SELECT string_agg(object_sha256 || ':' || record || ':' || id, '|' ORDER BY "
                   "object_sha256, record) FROM failed"),
            "aaaa:7:7|aaaa:" + std::to_string(kBigRows - 1) + ":" + std::to_string(kBigRows - 1) +
                "|bbbb:2:900002");
  EXPECT_EQ(Scalar("SELECT count(*) FROM built"), std::to_string(kBigRows + 4 - 1 - 3));
}

TEST_F(PhasesTest, TrimsSpacesTabsLineBreaksAndUnicodeSpaces) {
  std::string path = (dir_ / "ws.csv").string();
  {
    std::ofstream out(path);
    out << "id,name\n"
        << "1,\"\tTab and newline\n\"\n"
        << "2,\"\xC2\xA0No-break \xE2\x80\x83"
           "em\xE2\x80\x83\"\n"
        << "3,\"\r\n \xE3\x80\x80mixed\t \xC2\xA0\"\n"
        << "4,  inner  spaces kept  \n"
        << "5,\" \t \"\n";
  }
  TableSpec t;
  t.name = "ws";
  t.loc = SourceLoc{"sources/ws.yaml", 1};
  t.columns = {{"id", "id", "integer", nlohmann::json::object(), {"sources/ws.yaml", 3}},
               {"name", "name", "text", nlohmann::json::object(), {"sources/ws.yaml", 4}}};
  auto sql = CompilePhases(
      t, {{"read_csv(" + QuoteLiteral(path) + ", header=true, all_varchar=true)", "cccc"}},
      {"id", "name"}, {}, kTargets);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  Build(*sql);
  EXPECT_EQ(Scalar("SELECT string_agg(coalesce(name, 'NULL'), '|' ORDER BY id) FROM built"),
            "Tab and newline|No-break \xE2\x80\x83"
            "em|mixed|inner  spaces kept|NULL");
}

}  // namespace
}  // namespace sluice
