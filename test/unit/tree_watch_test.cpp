// core/tree_watch.h on a real folder: what counts as a change of the
// project (its files, at any depth, folders made later, renames) and what
// does not (the state folder, other files beside sluice.yaml).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/tree_watch.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class TreeWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("sluice-watch-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "models" / "a");
    Write("sluice.yaml", "name: w\n");
    Write("models/a/one.sql", "select 1\n");
    watcher_ = TreeWatcher::Start(root_.string(), {"sluice.yaml", "fields.yaml", "models", "seeds"},
                                  {"models", "seeds"});
    ASSERT_NE(watcher_, nullptr);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  // Whether anything changed since the last call.
  bool Changed() {
    uint64_t now = watcher_->Changes();
    bool changed = now != last_;
    last_ = now;
    return changed;
  }

  fs::path root_;
  std::unique_ptr<TreeWatcher> watcher_;
  uint64_t last_ = 0;
};

TEST_F(TreeWatchTest, EveryChangeOfTheProjectCountsAndNothingElse) {
  Changed();
  EXPECT_FALSE(Changed());  // nothing happened
  Write("models/a/one.sql", "select 2\n");
  EXPECT_TRUE(Changed());
  EXPECT_FALSE(Changed());
  Write("sluice.yaml", "name: w2\n");
  EXPECT_TRUE(Changed());
  // Beside the project's files: the state folder, exports, other files.
  fs::create_directories(root_ / ".sluice" / "dev");
  Write(".sluice/dev/metadata.sqlite", "x");
  Write("notes.txt", "x");
  fs::create_directories(root_ / "publish");
  Write("publish/out.csv", "x");
  EXPECT_FALSE(Changed());
  // Replaced by a rename, as editors and git do.
  Write("models/a/.one.sql.tmp", "select 3\n");
  Changed();
  fs::rename(root_ / "models/a/.one.sql.tmp", root_ / "models/a/one.sql");
  EXPECT_TRUE(Changed());
  fs::remove(root_ / "models/a/one.sql");
  EXPECT_TRUE(Changed());
}

TEST_F(TreeWatchTest, FoldersMadeLaterAreWatchedToo) {
  Changed();
  // A new folder, deep, then a file in it.
  fs::create_directories(root_ / "models" / "b" / "c");
  EXPECT_TRUE(Changed());
  Write("models/b/c/two.sql", "select 2\n");
  EXPECT_TRUE(Changed());
  Write("models/b/c/two.sql", "select 22\n");
  EXPECT_TRUE(Changed());
  // A watched folder that did not exist when the watch started.
  fs::create_directories(root_ / "seeds");
  EXPECT_TRUE(Changed());
  Write("seeds/s.csv", "a\n1\n");
  EXPECT_TRUE(Changed());
  // A folder moved in with files already in it.
  fs::create_directories(root_ / "elsewhere" / "d");
  Write("elsewhere/d/three.sql", "select 3\n");
  EXPECT_FALSE(Changed());
  fs::rename(root_ / "elsewhere" / "d", root_ / "models" / "d");
  EXPECT_TRUE(Changed());
  Write("models/d/three.sql", "select 33\n");
  EXPECT_TRUE(Changed());
  // A watched folder removed altogether.
  fs::remove_all(root_ / "models");
  EXPECT_TRUE(Changed());
}

// The project's folder moved away and another put at its path (a fresh
// clone in its place): the watches follow the old folder, so from then on
// nothing is ever said unchanged.
TEST_F(TreeWatchTest, ARootMovedAwayIsNeverUnchangedAgain) {
  Changed();
  fs::path moved = root_.string() + ".old";
  fs::remove_all(moved);
  fs::rename(root_, moved);
  fs::create_directories(root_ / "models");
  EXPECT_TRUE(Changed());
  EXPECT_TRUE(Changed());
  EXPECT_TRUE(Changed());
  fs::remove_all(moved);
}

}  // namespace
}  // namespace sluice
