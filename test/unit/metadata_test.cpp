// Tests of the SQLite metadata store, its RAII wrappers and its migrations,
// against real SQLite files in a per-test temporary directory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/redact.h"
#include "metadata/migrations.h"
#include "metadata/sqlite.h"
#include "metadata/sqlite_store.h"
#include "orchestrate/task_records.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr Micros kT0 = 1767225600000000;  // 2026-01-01T00:00:00Z

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-meta-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<SqliteMetadataStore> MustOpen(const std::string& path, Clock* clock) {
  auto store = SqliteMetadataStore::Open(path, clock);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

int64_t MustBeginRun(MetadataStore& store, const std::string& command, Micros started_at) {
  RunRecord run;
  run.command = command;
  run.args = {{"select", {"gtfs+"}}, {"full_refresh", false}};
  run.started_at = started_at;
  auto id = store.BeginRun(run);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? *id : 0;
}

// Every byte of the database file and any WAL/journal beside it.
std::string ReadDatabaseBytes(const TempDir& dir) {
  std::string bytes;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    auto content = ReadFile(entry.path().string());
    EXPECT_TRUE(content.ok()) << content.status().ToString();
    if (content.ok()) bytes += *content;
  }
  return bytes;
}

// The polls of one partition: stored objects only (not failures, not
// refused bodies), oldest first, whatever order they were recorded in.
TEST(MetadataFetches, PartitionFetchesAreStoredPollsOldestFirst) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  auto add = [&](const std::string& partition, Micros at, const std::string& sha,
                 const std::string& error) {
    FetchRecord fetch;
    fetch.source = "vehicles";
    fetch.partition = partition;
    fetch.url = "https://example.org/rt.pb";
    fetch.started_at = at;
    fetch.status = 200;
    fetch.sha256 = sha;
    fetch.object_path = sha.empty() ? "" : "raw/vehicles/objects/" + sha + ".pb";
    fetch.error = error;
    ASSERT_TRUE(store->RecordFetch(fetch).ok());
  };
  add("2026-01-01T10", kT0 + 30, "b", "");
  add("2026-01-01T10", kT0 + 10, "a", "");
  add("2026-01-01T10", kT0 + 20, "", "HTTP 503: down");
  add("2026-01-01T10", kT0 + 25, "h", "refused: the server sent an HTML page");
  add("2026-01-01T11", kT0 + 40, "c", "");
  auto polls = store->ListPartitionFetches("vehicles", "2026-01-01T10");
  ASSERT_TRUE(polls.ok()) << polls.status().ToString();
  ASSERT_EQ(polls->size(), 2u);
  EXPECT_EQ((*polls)[0].sha256, "a");
  EXPECT_EQ((*polls)[1].sha256, "b");
  auto none = store->ListPartitionFetches("vehicles", "2026-01-01T12");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MetadataRuns, BeginListGetFinish) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  int64_t first = MustBeginRun(*store, "run", kT0 + 1);
  int64_t second = MustBeginRun(*store, "test", kT0 + 2);
  int64_t third = MustBeginRun(*store, "backfill", kT0 + 3);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);

  auto runs = store->ListRuns(10);
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[0].id, third);
  EXPECT_EQ((*runs)[1].id, second);
  EXPECT_EQ((*runs)[2].id, first);
  EXPECT_EQ((*runs)[2].command, "run");
  EXPECT_EQ((*runs)[2].status, RunStatus::kRunning);
  EXPECT_EQ((*runs)[2].started_at, kT0 + 1);
  EXPECT_EQ((*runs)[2].ended_at, 0);
  EXPECT_EQ((*runs)[2].exit_code, -1);
  EXPECT_EQ((*runs)[2].args["select"][0], "gtfs+");
  EXPECT_EQ((*runs)[2].args["full_refresh"], false);

  auto limited = store->ListRuns(2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0].id, third);

  ASSERT_TRUE(store->FinishRun(second, RunStatus::kFailed, 1, "2 tasks failed", kT0 + 50).ok());
  auto got = store->GetRun(second);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->status, RunStatus::kFailed);
  EXPECT_EQ((*got)->exit_code, 1);
  EXPECT_EQ((*got)->summary, "2 tasks failed");
  EXPECT_EQ((*got)->ended_at, kT0 + 50);
  EXPECT_EQ((*got)->command, "test");

  auto missing = store->GetRun(third + 100);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  Status finish_missing = store->FinishRun(third + 100, RunStatus::kSuccess, 0, "", kT0);
  EXPECT_EQ(finish_missing.code(), StatusCode::kNotFound);
}

TEST(MetadataRuns, EveryStatusIsStoredByNameAndReadBack) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  for (RunStatus s : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kSuccess,
                      RunStatus::kFailed, RunStatus::kCancelled, RunStatus::kInterrupted}) {
    ASSERT_EQ(ParseRunStatus(RunStatusName(s)), s) << RunStatusName(s);
    int64_t id = MustBeginRun(*store, "run", kT0 + 1);
    ASSERT_TRUE(store->FinishRun(id, s, 0, "", kT0 + 2).ok());
    auto listed = store->ListRunsWithStatus(s);
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    ASSERT_EQ(listed->size(), 1u) << RunStatusName(s);
    EXPECT_EQ((*listed)[0].id, id);
    EXPECT_EQ((*listed)[0].status, s);
  }
  EXPECT_FALSE(ParseRunStatus("succes").has_value());
}

TEST(MetadataRuns, StartedAtDefaultsToClock) {
  FakeClock clock(kT0 + 777);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  RunRecord run;
  run.command = "run";
  auto id = store->BeginRun(run);
  ASSERT_TRUE(id.ok());
  auto got = store->GetRun(*id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->started_at, kT0 + 777);
  EXPECT_TRUE((*got)->args.is_object());
}

TEST(MetadataRuns, QueuedRunsStartOnceAndOutliveADeadOwner) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  RunRecord queued;
  queued.command = "run";
  queued.status = RunStatus::kQueued;
  queued.args = {{"select", {"a"}}};
  auto first = store->BeginRun(queued);
  auto second = store->BeginRun(queued);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(store->StartRun(*first, kT0 + 5).ok());
  // A run starts once: a second start, or of a run never queued, is NotFound.
  EXPECT_EQ(store->StartRun(*first, kT0 + 6).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->StartRun(9999, kT0 + 6).code(), StatusCode::kNotFound);
  auto got = store->GetRun(*first);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->status, RunStatus::kRunning);
  EXPECT_EQ((*got)->started_at, kT0 + 5);
  // The owner dies: the started run is interrupted, the queued one waits for the next owner.
  ASSERT_TRUE(store->MarkInterruptedRuns(kT0 + 9).ok());
  auto waiting = store->ListRunsWithStatus(RunStatus::kQueued);
  ASSERT_TRUE(waiting.ok());
  ASSERT_EQ(waiting->size(), 1u);
  EXPECT_EQ((*waiting)[0].id, *second);
  EXPECT_EQ((*waiting)[0].args["select"][0], "a");
  auto interrupted = store->ListRunsWithStatus(RunStatus::kInterrupted);
  ASSERT_TRUE(interrupted.ok());
  ASSERT_EQ(interrupted->size(), 1u);
  EXPECT_EQ((*interrupted)[0].id, *first);
}

TEST(MetadataRuns, PruneKeepsTheNewestAndWhatIsStillGoing) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  std::vector<int64_t> ids;
  for (int i = 0; i < 6; ++i) {
    int64_t id = MustBeginRun(*store, "run", kT0 + i);
    ids.push_back(id);
    TaskRecord task;
    task.run_id = id;
    task.asset = "a";
    task.status = "success";
    ASSERT_TRUE(store->RecordTask(task).ok());
    CheckResultRecord check;
    check.run_id = id;
    check.asset = "a";
    check.check_name = "not_null(x)";
    check.status = "pass";
    ASSERT_TRUE(store->RecordCheckResult(check).ok());
    // The second run is still going (another owner's, say): never pruned.
    if (i != 1) {
      ASSERT_TRUE(store->FinishRun(id, RunStatus::kSuccess, 0, "", kT0 + 10).ok());
    }
  }
  auto removed = store->PruneRuns(3);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 2);  // the first and third; the second still runs
  auto runs = store->ListRuns(0);
  ASSERT_TRUE(runs.ok());
  std::vector<int64_t> kept;
  for (const RunRecord& r : *runs) kept.push_back(r.id);
  EXPECT_EQ(kept, (std::vector<int64_t>{ids[5], ids[4], ids[3], ids[1]}));
  auto tasks = store->ListTasks(ids[0]);
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty());
  auto checks = store->ListCheckResults(ids[2]);
  ASSERT_TRUE(checks.ok());
  EXPECT_TRUE(checks->empty());
  auto kept_checks = store->ListCheckResults(ids[3]);
  ASSERT_TRUE(kept_checks.ok());
  EXPECT_EQ(kept_checks->size(), 1u);
}

TEST(MetadataRuns, MarkInterruptedOnlyTouchesRunningRuns) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  int64_t done = MustBeginRun(*store, "run", kT0);
  int64_t dead = MustBeginRun(*store, "run", kT0 + 1);
  ASSERT_TRUE(store->FinishRun(done, RunStatus::kSuccess, 0, "ok", kT0 + 10).ok());
  TaskRecord task;
  task.run_id = dead;
  task.asset = "gtfs_stops";
  task.status = "running";
  task.started_at = kT0 + 2;
  ASSERT_TRUE(store->RecordTask(task).ok());
  task.asset = "gtfs_trips";
  task.status = "success";
  task.ended_at = kT0 + 3;
  ASSERT_TRUE(store->RecordTask(task).ok());

  ASSERT_TRUE(store->MarkInterruptedRuns(kT0 + 99).ok());
  auto dead_run = store->GetRun(dead);
  ASSERT_TRUE(dead_run.ok() && dead_run->has_value());
  EXPECT_EQ((*dead_run)->status, RunStatus::kInterrupted);
  EXPECT_EQ((*dead_run)->ended_at, kT0 + 99);
  auto done_run = store->GetRun(done);
  ASSERT_TRUE(done_run.ok() && done_run->has_value());
  EXPECT_EQ((*done_run)->status, RunStatus::kSuccess);
  EXPECT_EQ((*done_run)->ended_at, kT0 + 10);

  auto tasks = store->ListTasks(dead);
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 2u);
  EXPECT_EQ((*tasks)[0].status, "interrupted");
  EXPECT_EQ((*tasks)[0].ended_at, kT0 + 99);
  EXPECT_EQ((*tasks)[1].status, "success");
  EXPECT_EQ((*tasks)[1].ended_at, kT0 + 3);
}

TEST(MetadataTasks, UpsertByRunAssetPartitionAttempt) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  int64_t run_id = MustBeginRun(*store, "run", kT0);
  TaskRecord task;
  task.run_id = run_id;
  task.asset = "gtfs_stops";
  task.partition = "2026-01-01";
  task.attempt = 1;
  task.status = "running";
  task.reason = "new data";
  task.started_at = kT0 + 1;
  ASSERT_TRUE(store->RecordTask(task).ok());

  task.status = "failed";
  task.error = "HTTP 503";
  task.ended_at = kT0 + 2;
  task.rows = 0;
  ASSERT_TRUE(store->RecordTask(task).ok());  // same key: updates

  TaskRecord retry = task;
  retry.attempt = 2;
  retry.status = "success";
  retry.error = "";
  retry.version_id = "v123";
  retry.rows = 42;
  ASSERT_TRUE(store->RecordTask(retry).ok());

  TaskRecord other_partition = retry;
  other_partition.partition = "2026-01-02";
  other_partition.attempt = 1;
  ASSERT_TRUE(store->RecordTask(other_partition).ok());

  auto tasks = store->ListTasks(run_id);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 3u);
  const TaskRecord& first = (*tasks)[0];
  EXPECT_EQ(first.asset, "gtfs_stops");
  EXPECT_EQ(first.partition, "2026-01-01");
  EXPECT_EQ(first.attempt, 1);
  EXPECT_EQ(first.status, "failed");
  EXPECT_EQ(first.reason, "new data");
  EXPECT_EQ(first.error, "HTTP 503");
  EXPECT_EQ(first.rows, 0);
  EXPECT_EQ(first.started_at, kT0 + 1);
  EXPECT_EQ(first.ended_at, kT0 + 2);
  EXPECT_EQ((*tasks)[1].attempt, 2);
  EXPECT_EQ((*tasks)[1].status, "success");
  EXPECT_EQ((*tasks)[1].version_id, "v123");
  EXPECT_EQ((*tasks)[1].rows, 42);
  EXPECT_EQ((*tasks)[2].partition, "2026-01-02");

  auto none = store->ListTasks(run_id + 1);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MetadataTasks, ForeignKeyRejectsUnknownRun) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  TaskRecord task;
  task.run_id = 12345;
  task.asset = "a";
  task.status = "running";
  Status st = store->RecordTask(task);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("FOREIGN KEY"));
}

AssetVersionRecord Version(const std::string& id, Micros created_at) {
  AssetVersionRecord version;
  version.asset = "mart_stop_departures";
  version.partition = "";
  version.version_id = id;
  version.fingerprint = "fp-" + id;
  version.inputs = {"in-" + id, "obj-" + id};
  version.schema = {{{"name", "stop_id"}, {"type", "VARCHAR"}}};
  version.rows = 10;
  version.build_ms = 5;
  version.status = "built";
  version.created_at = created_at;
  version.run_id = 7;
  return version;
}

TEST(MetadataVersions, UpsertListNewestFirstAndPublish) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->RecordVersion(Version("v1", kT0 + 1)).ok());
  ASSERT_TRUE(store->RecordVersion(Version("v3", kT0 + 3)).ok());
  ASSERT_TRUE(store->RecordVersion(Version("v2", kT0 + 2)).ok());
  AssetVersionRecord other = Version("v9", kT0 + 9);
  other.partition = "2026-01-01";
  ASSERT_TRUE(store->RecordVersion(other).ok());

  AssetVersionRecord updated = Version("v2", kT0 + 2);
  updated.status = "failed_audit";
  updated.rows = 99;
  updated.schema.push_back({{"name", "departures"}, {"type", "BIGINT"}});
  ASSERT_TRUE(store->RecordVersion(updated).ok());

  auto versions = store->ListVersions("mart_stop_departures", "");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].version_id, "v3");
  EXPECT_EQ((*versions)[1].version_id, "v2");
  EXPECT_EQ((*versions)[2].version_id, "v1");
  const AssetVersionRecord& v2 = (*versions)[1];
  EXPECT_EQ(v2.status, "failed_audit");
  EXPECT_EQ(v2.rows, 99);
  EXPECT_EQ(v2.schema.size(), 2u);
  EXPECT_EQ(v2.schema[1]["type"], "BIGINT");
  EXPECT_EQ(v2.inputs, nlohmann::json({"in-v2", "obj-v2"}));
  EXPECT_EQ(v2.fingerprint, "fp-v2");
  EXPECT_EQ(v2.build_ms, 5);
  EXPECT_EQ(v2.run_id, 7);
  EXPECT_EQ(v2.created_at, kT0 + 2);
  EXPECT_EQ(v2.published_at, 0);

  auto partitioned = store->ListVersions("mart_stop_departures", "2026-01-01");
  ASSERT_TRUE(partitioned.ok());
  ASSERT_EQ(partitioned->size(), 1u);
  EXPECT_EQ((*partitioned)[0].version_id, "v9");

  auto unpublished = store->GetPublished("mart_stop_departures", "");
  ASSERT_TRUE(unpublished.ok());
  EXPECT_FALSE(unpublished->has_value());

  ASSERT_TRUE(store->SetPublished("mart_stop_departures", "", "v1", kT0 + 100).ok());
  ASSERT_TRUE(store->SetPublished("mart_stop_departures", "", "v3", kT0 + 200).ok());
  auto published = store->GetPublished("mart_stop_departures", "");
  ASSERT_TRUE(published.ok() && published->has_value());
  EXPECT_EQ(**published, "v3");
  auto other_published = store->GetPublished("mart_stop_departures", "2026-01-01");
  ASSERT_TRUE(other_published.ok());
  EXPECT_FALSE(other_published->has_value());

  versions = store->ListVersions("mart_stop_departures", "");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ((*versions)[0].published_at, kT0 + 200);  // v3
  EXPECT_EQ((*versions)[2].published_at, kT0 + 100);  // v1, published before
}

TEST(MetadataFetches, RecordAndListNewestFirst) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  std::vector<int64_t> ids;
  for (int idx = 0; idx < 4; ++idx) {
    FetchRecord fetch;
    fetch.source = idx % 2 == 0 ? "gtfs" : "census";
    fetch.partition = "2026-01-0" + std::to_string(idx + 1);
    fetch.url = "https://example.org/feed/" + std::to_string(idx);
    fetch.started_at = kT0 + idx;
    fetch.duration_ms = 100 + idx;
    fetch.status = 200;
    fetch.bytes = 1000 + idx;
    fetch.sha256 = "hash" + std::to_string(idx);
    fetch.object_path = "raw/gtfs/objects/hash" + std::to_string(idx) + ".zip";
    fetch.headers = {{"etag", "\"e" + std::to_string(idx) + "\""}};
    if (idx == 2) {
      fetch.status = 503;
      fetch.error = "service unavailable";
      fetch.sha256 = "";
    }
    auto id = store->RecordFetch(fetch);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  EXPECT_LT(ids[0], ids[1]);

  auto gtfs = store->ListFetches("gtfs", 10);
  ASSERT_TRUE(gtfs.ok()) << gtfs.status().ToString();
  ASSERT_EQ(gtfs->size(), 2u);
  const FetchRecord& newest = (*gtfs)[0];
  EXPECT_EQ(newest.id, ids[2]);
  EXPECT_EQ(newest.source, "gtfs");
  EXPECT_EQ(newest.partition, "2026-01-03");
  EXPECT_EQ(newest.url, "https://example.org/feed/2");
  EXPECT_EQ(newest.started_at, kT0 + 2);
  EXPECT_EQ(newest.duration_ms, 102);
  EXPECT_EQ(newest.status, 503);
  EXPECT_EQ(newest.bytes, 1002);
  EXPECT_EQ(newest.sha256, "");
  EXPECT_EQ(newest.error, "service unavailable");
  EXPECT_EQ(newest.headers["etag"], "\"e2\"");
  EXPECT_EQ((*gtfs)[1].id, ids[0]);
  EXPECT_EQ((*gtfs)[1].object_path, "raw/gtfs/objects/hash0.zip");

  auto one = store->ListFetches("gtfs", 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].id, ids[2]);

  auto all = store->ListFetches("", 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].id, ids[3]);
  EXPECT_EQ((*all)[3].id, ids[0]);

  auto none = store->ListFetches("nope", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MetadataFileStats, PutGetUpsert) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  auto missing = store->GetFileStat("/data/a.csv");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  FileStatRecord stat;
  stat.path = "/data/a.csv";
  stat.size = (uint64_t{1} << 63) + 5;  // beyond int64: must round-trip bit for bit
  stat.mtime_ns = 1767225600123456789;
  stat.inode = ~uint64_t{0};
  stat.sha256 = "abc";
  ASSERT_TRUE(store->PutFileStat(stat).ok());
  auto got = store->GetFileStat("/data/a.csv");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->path, "/data/a.csv");
  EXPECT_EQ((*got)->size, stat.size);
  EXPECT_EQ((*got)->mtime_ns, stat.mtime_ns);
  EXPECT_EQ((*got)->inode, stat.inode);
  EXPECT_EQ((*got)->sha256, "abc");

  stat.size = 10;
  stat.sha256 = "def";
  ASSERT_TRUE(store->PutFileStat(stat).ok());
  got = store->GetFileStat("/data/a.csv");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->size, 10u);
  EXPECT_EQ((*got)->sha256, "def");
}

TEST(MetadataCheckResults, RecordAndListByRun) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  CheckResultRecord result;
  result.run_id = 1;
  result.asset = "gtfs_stops";
  result.partition = "2026-01-01";
  result.version_id = "v1";
  result.check_name = "not_null(stop_id)";
  result.severity = "error";
  result.status = "fail";
  result.failing_rows = 3;
  result.sample = {{{"stop_id", nullptr}, {"stop_name", "Main St"}}};
  result.message = "3 rows have null stop_id";
  result.checked_at = kT0 + 5;
  ASSERT_TRUE(store->RecordCheckResult(result).ok());
  CheckResultRecord warn = result;
  warn.check_name = "row_count";
  warn.severity = "warn";
  warn.status = "pass";
  warn.failing_rows = 0;
  warn.sample = nlohmann::json::array();
  warn.message = "";
  warn.checked_at = 0;  // stamped with the clock
  ASSERT_TRUE(store->RecordCheckResult(warn).ok());
  CheckResultRecord other_run = result;
  other_run.run_id = 2;
  ASSERT_TRUE(store->RecordCheckResult(other_run).ok());

  auto results = store->ListCheckResults(1);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 2u);
  const CheckResultRecord& first = (*results)[0];
  EXPECT_EQ(first.run_id, 1);
  EXPECT_EQ(first.asset, "gtfs_stops");
  EXPECT_EQ(first.partition, "2026-01-01");
  EXPECT_EQ(first.version_id, "v1");
  EXPECT_EQ(first.check_name, "not_null(stop_id)");
  EXPECT_EQ(first.severity, "error");
  EXPECT_EQ(first.status, "fail");
  EXPECT_EQ(first.failing_rows, 3);
  EXPECT_EQ(first.sample, result.sample);
  EXPECT_EQ(first.message, "3 rows have null stop_id");
  EXPECT_EQ(first.checked_at, kT0 + 5);
  EXPECT_EQ((*results)[1].check_name, "row_count");
  EXPECT_EQ((*results)[1].checked_at, kT0);

  auto second = store->ListCheckResults(2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->size(), 1u);

  // An asset's page shows each check's newest result: run 2's not_null,
  // run 1's row_count (run 2 did not run it); another asset's are not mixed in.
  CheckResultRecord elsewhere = result;
  elsewhere.asset = "gtfs_routes";
  ASSERT_TRUE(store->RecordCheckResult(elsewhere).ok());
  auto latest = store->LatestCheckResults("gtfs_stops");
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].check_name, "row_count");
  EXPECT_EQ((*latest)[0].run_id, 1);
  EXPECT_EQ((*latest)[1].check_name, "not_null(stop_id)");
  EXPECT_EQ((*latest)[1].run_id, 2);
  EXPECT_EQ((*latest)[1].failing_rows, 3);
  auto none = store->LatestCheckResults("nothing");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MetadataRedaction, SecretsNeverReachTheFile) {
  ClearSecretsForTest();
  const std::string secret = "s3cr3t-value";
  RegisterSecret(secret);
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  FakeClock clock(kT0);
  {
    auto store = MustOpen(path, &clock);
    ASSERT_NE(store, nullptr);
    RunRecord run;
    run.command = "run";
    run.args = {{"var", "token=" + secret}, {secret, 1}};
    run.summary = "failed with " + secret;
    auto run_id = store->BeginRun(run);
    ASSERT_TRUE(run_id.ok());
    ASSERT_TRUE(store->FinishRun(*run_id, RunStatus::kFailed, 1, "still " + secret, kT0 + 1).ok());

    FetchRecord fetch;
    fetch.source = "census";
    fetch.url = "https://api.example.org/data?key=" + secret + "&q=" + UrlEncode(secret);
    fetch.error = "401 for key " + secret;
    fetch.headers = {{"authorization", "Basic " + Base64Encode(secret)}, {"x-marker", "kept"}};
    auto fetch_id = store->RecordFetch(fetch);
    ASSERT_TRUE(fetch_id.ok());

    TaskRecord task;
    task.run_id = *run_id;
    task.asset = "census";
    task.status = "failed";
    task.error = "GET ...?key=" + secret + " failed";
    ASSERT_TRUE(store->RecordTask(task).ok());

    CheckResultRecord check;
    check.run_id = *run_id;
    check.asset = "census";
    check.check_name = "regex";
    check.severity = "error";
    check.status = "fail";
    check.sample = {{{"col", secret}}};
    check.message = "value " + secret + " does not match";
    ASSERT_TRUE(store->RecordCheckResult(check).ok());

    auto fetches = store->ListFetches("census", 10);
    ASSERT_TRUE(fetches.ok());
    ASSERT_EQ(fetches->size(), 1u);
    const FetchRecord& stored = (*fetches)[0];
    EXPECT_EQ(stored.url, "https://api.example.org/data?key=***&q=***");
    EXPECT_THAT(stored.error, HasSubstr("***"));
    EXPECT_THAT(stored.error, Not(HasSubstr(secret)));
    EXPECT_EQ(stored.headers["authorization"], "Basic ***");
    EXPECT_EQ(stored.headers["x-marker"], "kept");

    auto got = store->GetRun(*run_id);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->summary, "still ***");
    EXPECT_EQ((*got)->args["var"], "token=***");
    EXPECT_TRUE((*got)->args.contains("***"));
    auto tasks = store->ListTasks(*run_id);
    ASSERT_TRUE(tasks.ok() && tasks->size() == 1u);
    EXPECT_EQ((*tasks)[0].error, "GET ...?key=*** failed");
    auto checks = store->ListCheckResults(*run_id);
    ASSERT_TRUE(checks.ok() && checks->size() == 1u);
    EXPECT_EQ((*checks)[0].sample[0]["col"], "***");
    EXPECT_EQ((*checks)[0].message, "value *** does not match");
  }
  // The store is closed: every byte on disk, WAL included, is free of it.
  std::string bytes = ReadDatabaseBytes(dir);
  EXPECT_THAT(bytes, HasSubstr("api.example.org"));  // the scan sees the records
  EXPECT_THAT(bytes, HasSubstr("x-marker"));
  EXPECT_EQ(bytes.find(secret), std::string::npos);
  EXPECT_EQ(bytes.find(Base64Encode(secret)), std::string::npos);
  ClearSecretsForTest();
}

TEST(MetadataOpen, PragmasForCrashSafety) {
  TempDir dir;
  FakeClock clock(kT0);
  auto store = MustOpen(dir.File("meta.sqlite"), &clock);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->ReadPragma("journal_mode"), "wal");
  EXPECT_EQ(*store->ReadPragma("synchronous"), "1");  // NORMAL; durable records commit with FULL
  EXPECT_EQ(*store->ReadPragma("foreign_keys"), "1");
  EXPECT_EQ(*store->ReadPragma("busy_timeout"), "5000");
  EXPECT_FALSE(store->ReadPragma("synchronous = OFF").ok());
}

TEST(MetadataOpen, CreatesDirectoryAndNamesPathInErrors) {
  TempDir dir;
  FakeClock clock(kT0);
  auto nested = SqliteMetadataStore::Open(dir.File("env/dev/meta.sqlite"), &clock);
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();

  const std::string garbage = dir.File("garbage.sqlite");
  ASSERT_TRUE(WriteFileAtomic(garbage, std::string(4096, 'x')).ok());
  auto bad = OpenSqliteMetadata(garbage, &clock);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "metadata " + garbage + ": file is not a database");
  EXPECT_EQ(bad.status().code(), StatusCode::kDataError);

  auto dir_as_file = OpenSqliteMetadata(dir.path().string(), &clock);
  ASSERT_FALSE(dir_as_file.ok());
  EXPECT_THAT(dir_as_file.status().message(), HasSubstr("metadata " + dir.path().string() + ":"));
}

TEST(MetadataOpen, LockedDatabaseReportsBusyWithPath) {
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  FakeClock clock(kT0);
  auto store = MustOpen(path, &clock);
  ASSERT_NE(store, nullptr);
  auto other = SqliteDb::Open(path, "metadata " + path);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->Exec("BEGIN EXCLUSIVE").ok());
  // A plain connection has no busy timeout, so it fails at once; the store's
  // own waits are covered by MetadataConcurrency.TwoConnectionsOnOneFile.
  auto blocked = SqliteDb::Open(path, "metadata " + path);
  ASSERT_TRUE(blocked.ok());
  Status st = blocked->Exec("BEGIN IMMEDIATE");
  EXPECT_EQ(st.code(), StatusCode::kBusy);
  EXPECT_EQ(st.message(), "metadata " + path + ": database is locked");
  ASSERT_TRUE(other->Exec("COMMIT").ok());
}

TEST(MetadataMigrations, ReopenAppliesNothingAndKeepsData) {
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  FakeClock clock(kT0);
  int64_t run_id = 0;
  {
    auto store = MustOpen(path, &clock);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->SchemaVersion(), LatestMetadataSchemaVersion());
    run_id = MustBeginRun(*store, "run", kT0 + 1);
    ASSERT_TRUE(store->SetPublished("a", "", "v1", kT0 + 2).ok());
    FileStatRecord stat{"/x.csv", 3, 4, 5, "h"};
    ASSERT_TRUE(store->PutFileStat(stat).ok());
  }
  FakeClock later(kT0 + 1000000);
  {
    auto store = MustOpen(path, &later);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->SchemaVersion(), LatestMetadataSchemaVersion());
    auto run = store->GetRun(run_id);
    ASSERT_TRUE(run.ok() && run->has_value());
    EXPECT_EQ((*run)->started_at, kT0 + 1);
    EXPECT_EQ(**store->GetPublished("a", ""), "v1");
    EXPECT_EQ((*store->GetFileStat("/x.csv"))->sha256, "h");
  }
  // One row per migration, stamped at first open only.
  auto db = SqliteDb::Open(path, "test");
  ASSERT_TRUE(db.ok());
  auto rows = db->Prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version");
  ASSERT_TRUE(rows.ok());
  int count = 0;
  while (*rows->Step()) {
    ++count;
    EXPECT_EQ(rows->ColumnInt64(0), count);
    EXPECT_EQ(rows->ColumnInt64(1), kT0);
  }
  EXPECT_EQ(count, LatestMetadataSchemaVersion());
}

TEST(MetadataMigrations, NewerSchemaIsRefusedUntouched) {
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  FakeClock clock(kT0);
  { ASSERT_NE(MustOpen(path, &clock), nullptr); }
  const int future = LatestMetadataSchemaVersion() + 4;
  {
    auto db = SqliteDb::Open(path, "test");
    ASSERT_TRUE(db.ok());
    auto insert = db->Prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)");
    ASSERT_TRUE(insert.ok());
    ASSERT_TRUE(insert->BindAll(future).ok());
    ASSERT_TRUE(insert->Run().ok());
  }
  auto refused = OpenSqliteMetadata(path, &clock);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("metadata schema version " + std::to_string(future) +
                        " is newer than this sluice (" +
                        std::to_string(LatestMetadataSchemaVersion()) + "); upgrade sluice"));
  EXPECT_THAT(refused.status().message(), HasSubstr(path));

  auto db = SqliteDb::Open(path, "test");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*ReadSchemaVersion(*db), future);
}

TEST(MetadataMigrations, NextStepIsOneEntryAndAppliedOnce) {
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  auto db = SqliteDb::Open(path, "metadata " + path);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*ReadSchemaVersion(*db), 0);
  ASSERT_TRUE(ApplyMigrations(*db, kT0).ok());
  const int base = LatestMetadataSchemaVersion();
  EXPECT_EQ(*ReadSchemaVersion(*db), base);

  std::vector<Migration> next(MetadataMigrations().begin(), MetadataMigrations().end());
  next.push_back({base + 1,
                  "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
                  "CREATE TABLE cursors (asset TEXT PRIMARY KEY, state TEXT);"});
  ASSERT_TRUE(ApplyMigrations(*db, kT0 + 1, next).ok());
  EXPECT_EQ(*ReadSchemaVersion(*db), base + 1);
  ASSERT_TRUE(db->Exec("INSERT INTO cursors VALUES ('a', '{}')").ok());
  // Applying again is a no-op (the ALTER would fail if it ran twice).
  ASSERT_TRUE(ApplyMigrations(*db, kT0 + 2, next).ok());
  EXPECT_EQ(*ReadSchemaVersion(*db), base + 1);
  // And the older list now refuses the database.
  Status older = ApplyMigrations(*db, kT0 + 3);
  EXPECT_THAT(older.message(), HasSubstr("is newer than this sluice"));
}

TEST(MetadataMigrations, FailedStepRollsBackWhole) {
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  auto db = SqliteDb::Open(path, "metadata " + path);
  ASSERT_TRUE(db.ok());
  const int base = LatestMetadataSchemaVersion();
  std::vector<Migration> broken(MetadataMigrations().begin(), MetadataMigrations().end());
  broken.push_back({base + 1, "CREATE TABLE half_done (x); CREATE TABLE runs (x);"});
  Status st = ApplyMigrations(*db, kT0, broken);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("already exists"));
  EXPECT_EQ(*ReadSchemaVersion(*db), base);  // the earlier steps committed
  auto probe = db->Prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'");
  ASSERT_TRUE(probe.ok());
  ASSERT_TRUE(*probe->Step());
  EXPECT_EQ(probe->ColumnInt64(0), 0);
  EXPECT_FALSE(db->InTransaction());
}

TEST(MetadataMigrations, ListWithGapIsRejected) {
  auto db = SqliteDb::Open(":memory:", "test");
  ASSERT_TRUE(db.ok());
  const Migration gap[] = {{1, "CREATE TABLE a (x);"}, {3, "CREATE TABLE b (x);"}};
  Status st = ApplyMigrations(*db, kT0, gap);
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(*ReadSchemaVersion(*db), 0);
}

// Prepare reuses a finished statement of the same text: reset, with no
// bindings left over, and not mid-read; a statement that failed to prepare
// is never kept; statements outliving their database still finalize.
TEST(SqliteStatements, AReusedStatementStartsAfresh) {
  auto db = SqliteDb::Open(":memory:", "test");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);").ok());
  const std::string count = "SELECT count(*), ? IS NULL FROM t WHERE x >= coalesce(?, 0)";
  {
    auto s = db->Prepare(count);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->BindAll("bound", 2).ok());
    ASSERT_TRUE(*s->Step());
    EXPECT_EQ(s->ColumnInt64(0), 2);
  }
  {
    auto all = db->Prepare("SELECT x FROM t ORDER BY x");
    ASSERT_TRUE(all.ok());
    ASSERT_TRUE(*all->Step());  // left mid-read
    EXPECT_EQ(all->ColumnInt64(0), 1);
  }
  auto again = db->Prepare(count);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(*again->Step());
  EXPECT_EQ(again->ColumnInt64(0), 3);  // no binding kept: NULL, so every row
  EXPECT_EQ(again->ColumnInt64(1), 1);
  auto all = db->Prepare("SELECT x FROM t ORDER BY x");
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(*all->Step());
  EXPECT_EQ(all->ColumnInt64(0), 1);  // from the start
  // Two at once of one text are two statements.
  auto second = db->Prepare("SELECT x FROM t ORDER BY x");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(*second->Step());
  ASSERT_TRUE(*all->Step());
  EXPECT_EQ(all->ColumnInt64(0), 2);
  EXPECT_EQ(second->ColumnInt64(0), 1);
  // A text of two statements is refused every time, never kept.
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(db->Prepare("SELECT 1; SELECT 2").ok());
  }
  // The schema changed under a kept statement: it compiles again.
  { auto s = db->Prepare("SELECT * FROM t"); }
  ASSERT_TRUE(db->Exec("ALTER TABLE t ADD COLUMN y DEFAULT 7").ok());
  auto star = db->Prepare("SELECT * FROM t");
  ASSERT_TRUE(star.ok());
  ASSERT_TRUE(*star->Step());
  EXPECT_EQ(star->ColumnInt64(1), 7);
  // A statement destroyed after its database finalizes itself (ASan sees leaks).
  auto late = db->Prepare("SELECT 1");
  ASSERT_TRUE(late.ok());
  *db = SqliteDb();
}

TEST(MetadataConcurrency, FourThreadsRecordTasks) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  int64_t run_id = MustBeginRun(*store, "run", kT0);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&, thread_idx] {
      for (int task_idx = 0; task_idx < kPerThread; ++task_idx) {
        TaskRecord task;
        task.run_id = run_id;
        task.asset = "asset_" + std::to_string(thread_idx);
        task.partition = std::to_string(task_idx);
        task.status = "running";
        if (!store->RecordTask(task).ok()) ++failures[thread_idx];
        task.status = "success";  // the upsert path, interleaved with other threads
        task.rows = task_idx;
        if (!store->RecordTask(task).ok()) ++failures[thread_idx];
        if (task_idx % 50 == 0 && !store->ListTasks(run_id).ok()) ++failures[thread_idx];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    EXPECT_EQ(failures[thread_idx], 0) << "thread " << thread_idx;
  }
  auto tasks = store->ListTasks(run_id);
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), size_t{kThreads * kPerThread});
  std::set<std::pair<std::string, std::string>> keys;
  for (const TaskRecord& task : *tasks) {
    EXPECT_EQ(task.status, "success");
    EXPECT_EQ(task.rows, std::stoi(task.partition));
    keys.insert({task.asset, task.partition});
  }
  EXPECT_EQ(keys.size(), size_t{kThreads * kPerThread});
}

TEST(MetadataConcurrency, TwoConnectionsOnOneFile) {
  // Two stores stand in for two processes: SQLite's locks and the busy
  // timeout must serialise them without a 'database is locked' error.
  TempDir dir;
  const std::string path = dir.File("meta.sqlite");
  FakeClock clock(kT0);
  auto first = MustOpen(path, &clock);
  auto second = MustOpen(path, &clock);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  int64_t run_id = MustBeginRun(*first, "run", kT0);
  constexpr int kPerThread = 25;
  std::vector<Status> errors(4);
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < 4; ++thread_idx) {
    threads.emplace_back([&, thread_idx] {
      MetadataStore& store = thread_idx % 2 == 0 ? *first : *second;
      for (int task_idx = 0; task_idx < kPerThread; ++task_idx) {
        TaskRecord task;
        task.run_id = run_id;
        task.asset = "t" + std::to_string(thread_idx);
        task.partition = std::to_string(task_idx);
        task.status = "success";
        Status st = store.RecordTask(task);
        if (!st.ok()) {
          errors[thread_idx] = st;
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const Status& st : errors) EXPECT_TRUE(st.ok()) << st.ToString();
  auto tasks = second->ListTasks(run_id);
  ASSERT_TRUE(tasks.ok());
  EXPECT_EQ(tasks->size(), size_t{4 * kPerThread});
}

// A run's task records go to metadata in batches: every record arrives,
// from several threads, whether the run ends (Close) or goes on (the
// writer's delay), and a batch is one transaction.
TEST(TaskRecordBatch, EveryRecordArrivesInBatches) {
  FakeClock clock(kT0);
  auto store = MustOpen(":memory:", &clock);
  ASSERT_NE(store, nullptr);
  const int64_t run = MustBeginRun(*store, "run", kT0);
  auto record = [run](const std::string& asset) {
    TaskRecord task;
    task.run_id = run;
    task.asset = asset;
    task.status = "skipped";
    task.reason = "unchanged";
    return task;
  };
  {
    TaskRecordBatch batch(store.get());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&batch, &record, t] {
        for (int i = 0; i < 300; ++i) batch.Add(record("m" + std::to_string(t * 1000 + i)));
      });
    }
    for (std::thread& t : threads) t.join();
    batch.Close();
    auto tasks = store->ListTasks(run);
    ASSERT_TRUE(tasks.ok());
    EXPECT_EQ(tasks->size(), 1200u);
    batch.Add(record("after-close"));  // written at once
    EXPECT_EQ(store->ListTasks(run)->size(), 1201u);
  }
  // Not closed: the writer writes them after its delay, while the run goes on.
  TaskRecordBatch batch(store.get());
  batch.Add(record("late"));
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = store->ListTasks(run)->size() == 1202u;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(seen) << "a record waited more than 5 s";
}

}  // namespace
}  // namespace sluice
