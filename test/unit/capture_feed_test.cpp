// Tests of CaptureFeeds (orchestrate/capture_feed.h), serve's resident
// change readers, with a scripted stream in place of a database's (the real
// one is case database_cdc_stream, against PostgreSQL) and a real lake and
// SQLite metadata in a temporary folder: batches stored and logged, runs
// asked for, what a run takes, confirmation, halting and a stream's error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/hash.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "orchestrate/capture_feed.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

// One scripted batch: the positions, and each table's rows (0: no change).
struct Script {
  uint64_t start, end;
  std::vector<int> rows;
  bool fail = false;  // instead of the batch, the stream breaks
};

// What the fake streams saw, shared with the test.
struct Seen {
  std::mutex mu;
  uint64_t confirmed = 0;
  bool caught_up = false;
  int opened = 0;
  int closed = 0;
  std::vector<uint64_t> opened_from;
  int linger_ms = 0;  // the last Next's
};

class ScriptedStream : public CdcStream {
 public:
  ScriptedStream(std::deque<Script>* script, std::mutex* script_mu, Seen* seen,
                 CdcStreamOptions options, size_t tables)
      : script_(script),
        script_mu_(script_mu),
        seen_(seen),
        opt_(std::move(options)),
        tables_(tables) {}
  ~ScriptedStream() override {
    // Closing takes a moment, as a connection's does: Halt must wait for it.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard lock(seen_->mu);
    ++seen_->closed;
  }

  Result<std::optional<CdcRead>> Next(int wait_ms, int linger_ms) override {
    {
      std::lock_guard lock(seen_->mu);
      seen_->linger_ms = linger_ms;
    }
    Script s;
    {
      std::lock_guard lock(*script_mu_);
      if (script_->empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait_ms, 20)));
        return std::optional<CdcRead>();
      }
      s = script_->front();
      script_->pop_front();
    }
    if (s.fail) return Status::IOError("the connection broke");
    CdcRead read;
    read.start = s.start;
    read.end = s.end;
    read.transactions = 1;
    read.tables.resize(tables_);
    for (size_t i = 0; i < tables_; ++i) {
      if (i >= s.rows.size() || s.rows[i] == 0) continue;
      std::string path = opt_.new_path();
      std::string body = "_lsn,_seq,_op,_unchanged,id,_extracted_at\n";
      for (int r = 0; r < s.rows[i]; ++r) {
        body += std::to_string(s.start) + "," + std::to_string(r) + ",insert,," +
                std::to_string(s.start * 100 + r) + "," + opt_.extracted_at() + "\n";
      }
      std::ofstream(path, std::ios::binary) << body;
      CdcTableRead& t = read.tables[i];
      t.path = path;
      t.first_lsn = s.start;
      t.inserts = s.rows[i];
      t.extract.rows = s.rows[i];
      t.extract.bytes = body.size();
      t.extract.sha256 = Sha256Hex(body);
      t.extract.columns = {DbColumn{"id", "int8", "BIGINT"}};
    }
    return std::optional<CdcRead>(std::move(read));
  }

  void Confirm(uint64_t lsn, bool caught_up) override {
    std::lock_guard lock(seen_->mu);
    seen_->confirmed = std::max(seen_->confirmed, lsn);
    seen_->caught_up = caught_up;
  }

 private:
  std::deque<Script>* script_;
  std::mutex* script_mu_;
  Seen* seen_;
  CdcStreamOptions opt_;
  size_t tables_;
};

class CaptureFeedsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-feed-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = OpenLocalObjectStore((dir_ / "lake").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto md = OpenSqliteMetadata((dir_ / "metadata.sqlite").string(), &clock_);
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    metadata_ = std::move(md).value();
    archive_ = std::make_unique<RawArchive>(store_.get(), metadata_.get(), &clock_);
    feeds_ = std::make_unique<CaptureFeeds>(
        [this](const std::string& source) {
          std::lock_guard lock(asks_mu_);
          ++asks_[source];
        },
        [this](const CdcRequest& req,
               CdcStreamOptions options) -> Result<std::unique_ptr<CdcStream>> {
          {
            std::lock_guard lock(seen_.mu);
            ++seen_.opened;
            uint64_t least = UINT64_MAX;
            for (const CdcTable& t : req.tables) least = std::min(least, t.after);
            seen_.opened_from.push_back(least);
          }
          return std::unique_ptr<CdcStream>(std::make_unique<ScriptedStream>(
              &script_, &script_mu_, &seen_, std::move(options), req.tables.size()));
        });
  }
  void TearDown() override {
    feeds_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  FeedStart StartAt(uint64_t a, uint64_t b) {
    FeedStart s;
    s.seen_epoch = feeds_->Epoch("shop");
    s.request.db.url = "postgresql://u@127.0.0.1/db";
    s.request.slot = "shop_slot";
    s.request.tables = {CdcTable{"public.a", {"id"}, a, ""}, CdcTable{"public.b", {"id"}, b, ""}};
    s.assets = {"a", "b"};
    s.generation = "0/100";
    s.archive = archive_.get();
    s.clock = &clock_;
    return s;
  }
  void Push(Script s) {
    std::lock_guard lock(script_mu_);
    script_.push_back(std::move(s));
  }
  int Asks(const std::string& source) {
    std::lock_guard lock(asks_mu_);
    return asks_[source];
  }
  // Waits (up to 5 s) for cond().
  template <typename F>
  bool Eventually(F cond) {
    for (int i = 0; i < 500; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return cond();
  }
  size_t PartsOf(const std::string& asset, uint64_t after) {
    Result<FeedTake> t = feeds_->Take("shop", asset, after);
    return t.ok() ? t->parts.size() : 0;
  }

  std::filesystem::path dir_;
  FakeClock clock_{1767225600000000};
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<RawArchive> archive_;
  std::unique_ptr<CaptureFeeds> feeds_;
  std::mutex script_mu_;
  std::deque<Script> script_;
  Seen seen_;
  std::mutex asks_mu_;
  std::map<std::string, int> asks_;
};

TEST_F(CaptureFeedsTest, StoresBatchesAsksForRunsAndHandsThemToTheRun) {
  feeds_->Keep({{"shop", 0}});
  // Kept but not started: it asks for a run (which reads the slot and starts it).
  ASSERT_TRUE(Eventually([&] { return Asks("shop") >= 1; }));
  EXPECT_TRUE(feeds_->Kept("shop"));
  EXPECT_FALSE(feeds_->Streaming("shop", "0/100"));
  Result<FeedTake> none = feeds_->Take("shop", "a", 0x100);
  EXPECT_FALSE(none.ok());

  feeds_->Start("shop", StartAt(0x100, 0x180));
  EXPECT_TRUE(feeds_->Streaming("shop", "0/100"));
  EXPECT_FALSE(feeds_->Streaming("shop", "0/999"));  // another generation: the run reads the slot
  const int before = Asks("shop");
  Push({0x200, 0x240, {2, 0}});
  Push({0x300, 0x340, {1, 3}});
  Push({0x400, 0x440, {0, 0}});  // none of its tables: nothing stored
  ASSERT_TRUE(Eventually([&] {
    Result<FeedTake> t = feeds_->Take("shop", "a", 0x100);
    return t.ok() && t->end == 0x440;  // the empty batch too
  }));
  EXPECT_EQ(PartsOf("a", 0x100), 2u);
  EXPECT_EQ(PartsOf("b", 0x180), 1u);
  EXPECT_TRUE(Eventually([&] { return Asks("shop") > before; }));
  {
    std::lock_guard lock(seen_.mu);
    EXPECT_EQ(seen_.opened_from, std::vector<uint64_t>{0x100});  // the least cursor
  }

  Result<FeedTake> a = feeds_->Take("shop", "a", 0x100);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->end, 0x440u);  // the batch after its last held no change of any table
  EXPECT_EQ(a->parts[0].counts.inserts + a->parts[1].counts.inserts, 3);
  // Each part is an object in the lake, logged as the stream's.
  for (const FeedPart& p : a->parts) {
    EXPECT_TRUE(std::filesystem::exists(p.object.local_path)) << p.object.local_path;
    EXPECT_THAT(p.object.key, HasSubstr("raw/shop/objects/"));
    EXPECT_EQ(p.columns[0]["name"], "id");
  }
  Result<std::vector<FetchRecord>> logged = metadata_->ListFetches("shop", 100);
  ASSERT_TRUE(logged.ok()) << logged.status().ToString();
  ASSERT_EQ(logged->size(), 3u);
  EXPECT_THAT(logged->front().url, HasSubstr("stream of slot shop_slot"));
  EXPECT_EQ(logged->front().headers["read"], "stream");

  // A table already past a batch takes only what follows; one in the middle
  // of a batch of its changes (a run applied some of them) is refused.
  EXPECT_EQ(PartsOf("a", 0x240), 1u);
  Result<FeedTake> straddled = feeds_->Take("shop", "a", 0x320);
  ASSERT_FALSE(straddled.ok());
  EXPECT_THAT(straddled.status().message(), HasSubstr("from before its cursor 0/320"));
  Result<FeedTake> quiet = feeds_->Take("shop", "b", 0x340);
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->parts.empty());
  EXPECT_EQ(quiet->end, 0x440u);

  // Confirmation: sent to the server, and batches every table holds go;
  // one of another generation (a run that read before a snapshot) is not.
  feeds_->Confirm("shop", "0/999", 0x340);
  EXPECT_EQ(PartsOf("a", 0), 2u);
  feeds_->Confirm("shop", "0/100", 0x240);
  EXPECT_EQ(PartsOf("a", 0), 1u);
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.confirmed == 0x240 && !seen_.caught_up;
  }));
  feeds_->Confirm("shop", "0/100", 0x340);
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.confirmed == 0x340 && seen_.caught_up;
  }));
  nlohmann::json health = feeds_->Health();
  EXPECT_TRUE(health["shop"]["streaming"].get<bool>()) << health.dump();
  EXPECT_EQ(health["shop"]["stored_batches"], 2);
}

TEST_F(CaptureFeedsTest, HaltStopsTheStreamAndDropsItsBatches) {
  feeds_->Keep({{"shop", 0}});
  feeds_->Start("shop", StartAt(0x100, 0x100));
  Push({0x200, 0x240, {1, 1}});
  ASSERT_TRUE(Eventually([&] { return PartsOf("a", 0x100) == 1; }));
  const int asked = Asks("shop");
  feeds_->Halt("shop", "a snapshot");
  {
    // Returned only once the stream was closed (its connection let go).
    std::lock_guard lock(seen_.mu);
    EXPECT_EQ(seen_.closed, 1);
  }
  EXPECT_FALSE(feeds_->Streaming("shop", "0/100"));
  EXPECT_FALSE(feeds_->Take("shop", "a", 0x100).ok());
  // The run that halted it starts it again itself: no ask at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Asks("shop"), asked);
  // Started again (a new generation), from the new cursors.
  FeedStart again = StartAt(0x500, 0x500);
  again.generation = "0/500";
  feeds_->Start("shop", again);
  EXPECT_TRUE(feeds_->Streaming("shop", "0/500"));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.opened == 2 && seen_.opened_from.back() == 0x500;
  }));
}

TEST_F(CaptureFeedsTest, AStartFromARunThatReadBeforeAnotherHaltOrStartIsIgnored) {
  feeds_->Keep({{"shop", 0}});
  FeedStart late = StartAt(0x100, 0x100);  // noted the epoch, then read the slot
  feeds_->Halt("shop", "another run's snapshot");
  FeedStart fresh = StartAt(0x500, 0x500);
  fresh.generation = "0/500";
  feeds_->Start("shop", fresh);
  feeds_->Start("shop", late);  // its positions are of the slot before the snapshot
  EXPECT_TRUE(feeds_->Streaming("shop", "0/500"));
  EXPECT_FALSE(feeds_->Streaming("shop", "0/100"));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.opened == 1;
  }));
  std::lock_guard lock(seen_.mu);
  EXPECT_EQ(seen_.opened_from, std::vector<uint64_t>{0x500});
}

TEST_F(CaptureFeedsTest, BatchesWithoutChangesMoveEveryTablesPositionAndAskForARun) {
  feeds_->Keep({{"shop", 0}});
  ASSERT_TRUE(Eventually([&] { return Asks("shop") >= 1; }));
  feeds_->Start("shop", StartAt(0x100, 0x100));
  const int asked = Asks("shop");
  Push({0x200, 0x240, {0, 0}});  // another table's, or a new binlog file
  ASSERT_TRUE(Eventually([&] {
    Result<FeedTake> t = feeds_->Take("shop", "a", 0x100);
    return t.ok() && t->end == 0x240;
  }));
  EXPECT_TRUE(Eventually([&] { return Asks("shop") > asked; }));  // a run keeps the position
  Result<FeedTake> b = feeds_->Take("shop", "b", 0x100);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->parts.empty());
  EXPECT_EQ(b->end, 0x240u);
}

TEST_F(CaptureFeedsTest, ARunTakesAtMostAHundredBatchesAndTheNextTakesTheRest) {
  feeds_->Keep({{"shop", 0}});
  feeds_->Start("shop", StartAt(0x100, 0x100));
  for (uint64_t i = 0; i < 130; ++i) Push({0x1000 + i * 0x100, 0x1040 + i * 0x100, {1, 0}});
  ASSERT_TRUE(Eventually([&] {
    Result<FeedTake> t = feeds_->Take("shop", "b", 0x100);
    return t.ok() && t->end == 0x1040 + 129 * 0x100;
  }));
  Result<FeedTake> first = feeds_->Take("shop", "a", 0x100);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->parts.size(), 100u);
  EXPECT_EQ(first->end, 0x1040u + 99 * 0x100);  // the last batch it took
  Result<FeedTake> rest = feeds_->Take("shop", "a", first->end);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->parts.size(), 30u);
  // 130 batches wait: the stream's batches linger longer, so the next are fewer.
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.linger_ms == CaptureLingerMs(130);
  }));
  // Once a run confirms them, short batches again.
  feeds_->Confirm("shop", "0/100", 0x1040 + 129 * 0x100);
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.linger_ms == kLingerMs;
  }));
}

TEST(CaptureLinger, GrowsWithTheBatchesWaitingAndStopsAtASecond) {
  EXPECT_EQ(CaptureLingerMs(0), 20);
  EXPECT_EQ(CaptureLingerMs(7), 20);
  EXPECT_EQ(CaptureLingerMs(8), 40);
  EXPECT_EQ(CaptureLingerMs(80), 220);
  EXPECT_EQ(CaptureLingerMs(392), 1000);
  EXPECT_EQ(CaptureLingerMs(100000), 1000);
  for (size_t n = 1; n < 1000; ++n) EXPECT_GE(CaptureLingerMs(n), CaptureLingerMs(n - 1));
}

TEST_F(CaptureFeedsTest, AStreamErrorStopsItAndAsksForARunAtOnce) {
  feeds_->Keep({{"shop", 3600 * 1000}});
  feeds_->Start("shop", StartAt(0x100, 0x100));
  Push({0x200, 0x240, {1, 0}});
  ASSERT_TRUE(Eventually([&] { return PartsOf("a", 0x100) == 1; }));
  const int asked = Asks("shop");
  Push({0, 0, {}, /*fail=*/true});
  ASSERT_TRUE(Eventually([&] { return !feeds_->Streaming("shop", "0/100"); }));
  // Its batches are dropped (the slot keeps those changes for the run).
  EXPECT_FALSE(feeds_->Take("shop", "a", 0x100).ok());
  EXPECT_TRUE(Eventually([&] { return Asks("shop") > asked; }));
  nlohmann::json health = feeds_->Health();
  EXPECT_THAT(health["shop"].value("last_error", ""), HasSubstr("the connection broke"));
}

TEST_F(CaptureFeedsTest, SourcesNoLongerKeptStopAndUnsupportedOnesAreLeftToRuns) {
  feeds_->Keep({{"shop", 0}, {"other", 0}});
  feeds_->Start("shop", StartAt(0x100, 0x100));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(seen_.mu);
    return seen_.opened == 1;
  }));
  feeds_->Unsupported("other", "its database's changes are read by runs");
  EXPECT_FALSE(feeds_->Kept("other"));
  feeds_->Keep({{"other", 0}});
  EXPECT_FALSE(feeds_->Kept("shop"));
  EXPECT_FALSE(feeds_->Streaming("shop", "0/100"));
  feeds_->Stop();
  EXPECT_TRUE(feeds_->Health().empty());
}

}  // namespace
}  // namespace sluice
