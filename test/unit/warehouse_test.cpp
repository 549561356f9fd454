// Tests of the DuckDB warehouse's file settings: a new file takes the block
// size asked for; an existing file keeps the one it was made with, and
// opening it with another says so instead of pretending.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

}  // namespace
}  // namespace sluice
