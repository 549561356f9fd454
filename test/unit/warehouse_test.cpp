// Tests of the DuckDB warehouse's file settings: a new file takes the block
// size asked for; an existing file keeps the one it was made with, and
// opening it with another says so instead of pretending.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "warehouse/duckdb.h"
#include "warehouse/warehouse.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class WarehouseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-warehouse-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The block size of the file at path, opened with DuckDB's defaults.
  int64_t BlockSizeOf(const std::string& path) {
    auto db = DuckDbDatabase::Open(path, DuckDbOptions());
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return -1;
    auto size = db->BlockSize();
    EXPECT_TRUE(size.ok()) << size.status().ToString();
    return size.ok() ? *size : -1;
  }

  // Opens path as the engine does, makes one small table, closes; returns
  // what the warehouse wrote to stderr.
  std::string BuildOneTable(const std::string& path, int64_t block_size, const std::string& table) {
    DuckDbOptions options;
    options.block_size = block_size;
    ::testing::internal::CaptureStderr();
    {
      auto wh = OpenDuckDbWarehouse(path, options);
      EXPECT_TRUE(wh.ok()) << wh.status().ToString();
      if (wh.ok()) {
        auto session = (*wh)->Connect();
        EXPECT_TRUE(session.ok());
        if (session.ok()) {
          Status st = (*session)->Execute("CREATE TABLE " + table + " AS SELECT 1 AS id");
          EXPECT_TRUE(st.ok()) << st.ToString();
        }
      }
    }
    return ::testing::internal::GetCapturedStderr();
  }

  std::filesystem::path dir_;
};

TEST_F(WarehouseFileTest, NewFileTakesTheBlockSizeAskedFor) {
  std::string small = (dir_ / "small.duckdb").string();
  EXPECT_THAT(BuildOneTable(small, 16 * 1024, "a"), IsEmpty());
  EXPECT_EQ(BlockSizeOf(small), 16 * 1024);

  std::string plain = (dir_ / "plain.duckdb").string();
  EXPECT_THAT(BuildOneTable(plain, 0, "a"), IsEmpty());
  EXPECT_EQ(BlockSizeOf(plain), 256 * 1024);
}

TEST_F(WarehouseFileTest, ExistingFileKeepsItsBlockSizeAndSaysSo) {
  std::string path = (dir_ / "w.duckdb").string();
  EXPECT_THAT(BuildOneTable(path, 0, "a"), IsEmpty());
  std::string said = BuildOneTable(path, 64 * 1024, "b");
  EXPECT_THAT(said, HasSubstr("keeps the block size it was made with, 256 KiB"));
  EXPECT_THAT(said, HasSubstr("defaults.block_size (64 KiB)"));
  EXPECT_EQ(BlockSizeOf(path), 256 * 1024);
  // Both tables are there: the setting changed nothing in the file.
  auto db = DuckDbDatabase::Open(path, DuckDbOptions());
  ASSERT_TRUE(db.ok());
  auto conn = db->Connect();
  ASSERT_TRUE(conn.ok());
  auto n = conn->Query("SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->ScalarInt(), 2);
  // Asked for the size it has: nothing to say.
  db = DuckDbDatabase();
  EXPECT_THAT(BuildOneTable(path, 256 * 1024, "c"), IsEmpty());
}

// Sessions take idle connections: a model's task sets nothing up again. A
// connection is handed on only when nothing of the session that had it can
// show in the next one.
class WarehouseSessionsTest : public WarehouseFileTest {
 protected:
  void SetUp() override {
    WarehouseFileTest::SetUp();
    std::filesystem::create_directories(dir_ / "files");
    DuckDbOptions options;
    options.file_search_path = (dir_ / "files").string();
    auto wh = OpenDuckDbWarehouse((dir_ / "w.duckdb").string(), options);
    ASSERT_TRUE(wh.ok()) << wh.status().ToString();
    wh_ = std::move(*wh);
  }
  void TearDown() override {
    wh_.reset();
    WarehouseFileTest::TearDown();
  }
  std::unique_ptr<WarehouseSession> Connect() {
    auto session = wh_->Connect();
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    return session.ok() ? std::move(*session) : nullptr;
  }
  static int64_t ConnectionOf(WarehouseSession& session) {
    auto id = session.Query("SELECT current_connection_id()");
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? id->ScalarInt() : -1;
  }
  // The connection a session had, and whether the next session has it.
  bool HandedOn(const std::function<void(WarehouseSession&)>& use) {
    int64_t first;
    {
      auto session = Connect();
      first = ConnectionOf(*session);
      use(*session);
    }
    auto next = Connect();
    return ConnectionOf(*next) == first;
  }

  std::unique_ptr<Warehouse> wh_;
};

TEST_F(WarehouseSessionsTest, AnIdleConnectionIsTakenWithItsSettings) {
  std::ofstream(dir_ / "files" / "x.csv") << "a\n1\n2\n";
  EXPECT_TRUE(HandedOn([](WarehouseSession& s) {
    EXPECT_TRUE(s.Execute("CREATE TABLE t AS SELECT 1 AS id").ok());
    EXPECT_TRUE(s.InTransaction([&] { return s.Execute("INSERT INTO t VALUES (2)"); }).ok());
  }));
  // The relative path resolves on a reused connection as on a new one.
  auto session = Connect();
  auto n = session->Query("SELECT count(*) FROM read_csv('x.csv')");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->ScalarInt(), 2);
  // Two sessions at once never share one.
  auto other = Connect();
  EXPECT_NE(ConnectionOf(*session), ConnectionOf(*other));
}

TEST_F(WarehouseSessionsTest, NothingOfASessionShowsInTheNext) {
  // A setting, a temporary table, a search path: the connection is closed.
  EXPECT_FALSE(
      HandedOn([](WarehouseSession& s) { EXPECT_TRUE(s.Execute("SET threads = 1").ok()); }));
  EXPECT_FALSE(HandedOn([](WarehouseSession& s) {
    EXPECT_TRUE(s.Execute("CREATE TEMP TABLE scratch AS SELECT 1 AS id").ok());
  }));
  EXPECT_FALSE(HandedOn([](WarehouseSession& s) {
    EXPECT_TRUE(s.Execute("CREATE SCHEMA IF NOT EXISTS other; SET schema = 'other'").ok());
  }));
  {
    auto s = Connect();
    EXPECT_FALSE(s->Query("SELECT * FROM scratch").ok());
    auto threads = s->Query("SELECT current_setting('threads') = 1, current_schema()");
    ASSERT_TRUE(threads.ok());
    EXPECT_EQ(threads->rows[0][1], std::optional<std::string>("main"));
  }
  // A transaction left open, or one a failed statement spoilt.
  EXPECT_FALSE(HandedOn([](WarehouseSession& s) {
    EXPECT_TRUE(s.Execute("BEGIN TRANSACTION").ok());
    EXPECT_TRUE(s.Execute("CREATE TABLE open_one (id INTEGER)").ok());
  }));
  EXPECT_FALSE(HandedOn([](WarehouseSession& s) {
    EXPECT_TRUE(s.Execute("BEGIN TRANSACTION").ok());
    EXPECT_FALSE(s.Execute("SELECT * FROM no_such_table").ok());
    EXPECT_TRUE(s.Execute("ROLLBACK").ok());
  }));
  // An interrupt, which may land after its statement ended.
  EXPECT_FALSE(HandedOn([](WarehouseSession& s) { s.Interrupt(); }));
  auto s = Connect();
  EXPECT_TRUE(s->Query("SELECT count(*) FROM range(1000)").ok());
  EXPECT_FALSE(s->Query("SELECT * FROM open_one").ok());  // rolled back with its connection
  EXPECT_TRUE(s->InTransaction([&] { return s->Execute("CREATE TABLE later (id INTEGER)"); }).ok());
}

TEST_F(WarehouseSessionsTest, ASessionOutlivingItsWarehouseClosesItsConnection) {
  auto session = Connect();
  EXPECT_TRUE(session->Execute("CREATE TABLE t AS SELECT 1 AS id").ok());
  wh_.reset();
  session.reset();  // no pool to go back to: closed
  DuckDbOptions options;
  auto reopened = OpenDuckDbWarehouse((dir_ / "w.duckdb").string(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto s = (*reopened)->Connect();
  ASSERT_TRUE(s.ok());
  auto n = (*s)->Query("SELECT count(*) FROM t");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->ScalarInt(), 1);
}

}  // namespace
}  // namespace sluice
