#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "graph/parse_cache.h"

namespace sluice {
namespace {

class GraphParseCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "graph_parse_cache_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    path_ = dir_ + "/state/parse_cache.txt";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

SqlRefs Sample() {
  SqlRefs refs;
  refs.tables = {"legacy.customers", "stops"};
  // Separators and escapes must survive the one-line-per-entry format.
  refs.files = {"a\tb.csv", "back\\slash.csv", "new\nline.csv", "unit\x1fsep.csv"};
  refs.functions = {"count_star", "now"};
  refs.nondeterministic = true;
  return refs;
}

TEST_F(GraphParseCache, RoundTrip) {
  ParseCache cache = ParseCache::Load(path_);  // missing file: empty, no error
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.Get("select 1").has_value());
  // Nothing changed: Save writes nothing.
  ASSERT_TRUE(cache.Save().ok());
  EXPECT_FALSE(FileExists(path_));

  cache.Put("select * from stops", Sample());
  cache.Put("select 1", SqlRefs{});
  ASSERT_TRUE(cache.Save().ok());
  ASSERT_TRUE(FileExists(path_));

  ParseCache loaded = ParseCache::Load(path_);
  EXPECT_EQ(loaded.size(), 2u);
  ASSERT_TRUE(loaded.Get("select * from stops").has_value());
  EXPECT_EQ(*loaded.Get("select * from stops"), Sample());
  EXPECT_EQ(*loaded.Get("select 1"), SqlRefs{});
  // The key is the exact text.
  EXPECT_FALSE(loaded.Get("select * from stops ").has_value());
  EXPECT_FALSE(loaded.Get("SELECT * FROM stops").has_value());

  // Unchanged after load, and re-putting an equal value is no change: no rewrite.
  loaded.Put("select 1", SqlRefs{});
  std::filesystem::remove(path_);
  ASSERT_TRUE(loaded.Save().ok());
  EXPECT_FALSE(FileExists(path_));

  // A changed value is saved.
  SqlRefs changed = Sample();
  changed.nondeterministic = false;
  loaded.Put("select * from stops", changed);
  ASSERT_TRUE(loaded.Save().ok());
  EXPECT_EQ(*ParseCache::Load(path_).Get("select * from stops"), changed);
}

TEST_F(GraphParseCache, CorruptFilesAreEmptyCaches) {
  ASSERT_TRUE(MakeDirs(dir_ + "/state").ok());
  const std::vector<std::string> corrupt = {
      "",
      "garbage\n",
      std::string("\x00\x01\x02 binary", 10),
      "sluice-parse-cache 1\nnot an entry\n",
      "sluice-parse-cache 1\n" + std::string(64, 'a') + "\t2\tt\t\t\n",  // bad flag
      "sluice-parse-cache 1\n" + std::string(64, 'a') + "\t0\tt\t\t\n" + std::string(64, 'b') +
          "\t0\tt",  // torn last line
      "sluice-parse-cache 1\n" + std::string(64, 'a') + "\t0\tbad\\escape\t\t\n",
      "sluice-parse-cache 999\n",
  };
  for (const std::string& content : corrupt) {
    SCOPED_TRACE(content);
    ASSERT_TRUE(WriteFileAtomic(path_, content).ok());
    ParseCache cache = ParseCache::Load(path_);
    EXPECT_EQ(cache.size(), 0u);
  }
  // A corrupt file is replaced by a good one on the next save.
  ParseCache cache = ParseCache::Load(path_);
  cache.Put("select 2", Sample());
  ASSERT_TRUE(cache.Save().ok());
  EXPECT_EQ(ParseCache::Load(path_).size(), 1u);

  // A good file with a well-formed line is read (the format itself is accepted).
  std::string line = "sluice-parse-cache 1\n" + std::string(64, 'c') + "\t1\ta\x1f" + "b\tf\tnow\n";
  ASSERT_TRUE(WriteFileAtomic(path_, line).ok());
  EXPECT_EQ(ParseCache::Load(path_).size(), 1u);
}

TEST_F(GraphParseCache, ConcurrentUse) {
  ParseCache cache = ParseCache::Load(path_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 200; ++i) {
        std::string sql = "select " + std::to_string(t * 1000 + i);
        SqlRefs refs;
        refs.tables = {"t" + std::to_string(i)};
        cache.Put(sql, refs);
        EXPECT_EQ(cache.Get(sql)->tables, refs.tables);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(cache.size(), 800u);
  ASSERT_TRUE(cache.Save().ok());
  EXPECT_EQ(ParseCache::Load(path_).size(), 800u);
}

}  // namespace
}  // namespace sluice
