// The metadata store: runs, task attempts, asset versions, the fetch log,
// file-stat cache and check results, keyed by (asset, partition). SQLite
// first; PostgreSQL later behind the same interface. Every text field that
// could carry user data (errors, URLs) is passed through Redact() by the
// implementation before it is written. Thread-safe: the executor records
// tasks from several threads.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace sluice {

// Where a run is. Stored by name.
enum class RunStatus { kQueued, kRunning, kSuccess, kFailed, kCancelled, kInterrupted };
const char* RunStatusName(RunStatus status);
std::optional<RunStatus> ParseRunStatus(std::string_view name);

struct RunRecord {
  int64_t id = 0;
  std::string command;                             // "run", "test", "backfill"
  nlohmann::json args = nlohmann::json::object();  // selectors, flags
  RunStatus status = RunStatus::kRunning;
  Micros started_at = 0;  // when queued, then when it started
  Micros ended_at = 0;    // 0 while running
  int exit_code = -1;
  std::string summary;  // short human text
};

struct TaskRecord {
  int64_t run_id = 0;
  std::string asset;
  std::string partition;  // "" when unpartitioned
  int attempt = 1;
  std::string status;  // running | success | skipped | failed | upstream_failed | check_failed
  std::string reason;  // why it ran or was skipped
  std::string version_id;
  int64_t rows = -1;
  Micros started_at = 0;
  Micros ended_at = 0;
  std::string error;
};

struct AssetVersionRecord {
  std::string asset;
  std::string partition;
  std::string version_id;
  std::string fingerprint;
  nlohmann::json inputs = nlohmann::json::array();  // input version ids / object hashes
  nlohmann::json schema = nlohmann::json::array();  // [{name, type}]
  int64_t rows = 0;
  int64_t build_ms = 0;
  std::string status;  // built | published | failed_audit | rolled_back
  Micros created_at = 0;
  Micros published_at = 0;  // 0 when never published
  int64_t run_id = 0;
};

struct FetchRecord {
  int64_t id = 0;
  std::string source;
  std::string partition;
  std::string url;  // without secrets (redacted)
  Micros started_at = 0;
  int64_t duration_ms = 0;
  int status = 0;  // HTTP status; 0 for files
  int64_t bytes = 0;
  std::string sha256;       // "" when nothing was stored
  std::string object_path;  // relative to the lake root
  std::string error;
  nlohmann::json headers = nlohmann::json::object();  // the headers kept
};

struct FileStatRecord {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  std::string sha256;
};

struct CheckResultRecord {
  int64_t run_id = 0;
  std::string asset;
  std::string partition;
  std::string version_id;
  std::string check_name;
  std::string severity;  // error | warn
  std::string status;    // pass | fail | error
  int64_t failing_rows = 0;
  nlohmann::json sample = nlohmann::json::array();
  std::string message;
  Micros checked_at = 0;
};

// A schedule's tick (orchestrate/scheduler.h), keyed by (asset, key): the
// key names what triggered it (a scheduled time, an upstream's version, a
// file's identity), so the same trigger is never recorded twice.
enum class TickStatus { kPending, kRunning, kDone, kFailed, kSkipped, kInterrupted };
const char* TickStatusName(TickStatus status);
std::optional<TickStatus> ParseTickStatus(std::string_view name);

struct TickRecord {
  std::string asset;
  std::string key;
  Micros at = 0;        // the scheduled time, or when the event was seen
  std::string trigger;  // "every 20s", "0 * * * *", "after stops", "on_file inbox/a.csv"
  std::string file;     // on_file: the file the run is for
  TickStatus status = TickStatus::kPending;
  int64_t run_id = 0;
  std::string note;  // why it was skipped, what it missed
  Micros updated_at = 0;
};

// Where a time-based schedule stands: `since` it was first seen as written
// (a changed schedule starts again), and the latest tick it has recorded.
struct ScheduleStateRecord {
  std::string asset;
  std::string schedule;
  Micros since = 0;
  Micros last_tick = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Runs.
  virtual Result<int64_t> BeginRun(const RunRecord& run) = 0;  // returns the new id
  // A run submitted as 'queued' starts: status 'running', started_at set.
  // NotFound unless the run exists and is queued.
  virtual Status StartRun(int64_t run_id, Micros started_at) = 0;
  // The runs in one status, oldest first (e.g. 'queued' at an owner's start).
  virtual Result<std::vector<RunRecord>> ListRunsWithStatus(RunStatus status) = 0;
  virtual Status FinishRun(int64_t run_id, RunStatus status, int exit_code,
                           const std::string& summary, Micros ended_at) = 0;
  virtual Result<std::vector<RunRecord>> ListRuns(int limit) = 0;  // newest first
  virtual Result<std::optional<RunRecord>> GetRun(int64_t run_id) = 0;
  // Retention: forgets the runs older than the newest `keep` (their tasks and
  // check results with them), except runs still queued or running. Returns
  // how many runs went.
  virtual Result<int64_t> PruneRuns(int keep) = 0;
  // Marks runs still 'running' (their process died) as 'interrupted'.
  virtual Status MarkInterruptedRuns(Micros now) = 0;

  // Task attempts: Upsert by (run_id, asset, partition, attempt).
  virtual Status RecordTask(const TaskRecord& task) = 0;
  // Several at once, in one transaction.
  virtual Status RecordTasks(const std::vector<TaskRecord>& tasks) = 0;
  virtual Result<std::vector<TaskRecord>> ListTasks(int64_t run_id) = 0;
  // Each asset's status in the latest `run` (not `test`) before run_id.
  virtual Result<std::map<std::string, std::string>> PreviousTaskStatuses(int64_t run_id) = 0;

  // Asset versions: Upsert by (asset, partition, version_id).
  virtual Status RecordVersion(const AssetVersionRecord& version) = 0;
  virtual Result<std::vector<AssetVersionRecord>> ListVersions(const std::string& asset,
                                                               const std::string& partition) = 0;
  // The published version per (asset, partition): set by publication and by reconciliation.
  virtual Status SetPublished(const std::string& asset, const std::string& partition,
                              const std::string& version_id, Micros published_at) = 0;
  virtual Result<std::optional<std::string>> GetPublished(const std::string& asset,
                                                          const std::string& partition) = 0;
  // Every published version, by (asset, partition).
  virtual Result<std::map<std::pair<std::string, std::string>, std::string>> ListPublished() = 0;

  // Fetch log.
  virtual Result<int64_t> RecordFetch(const FetchRecord& fetch) = 0;
  // Several fetches in one transaction (a group commit).
  virtual Status RecordFetches(const std::vector<FetchRecord>& fetches) = 0;
  virtual Result<std::vector<FetchRecord>> ListFetches(const std::string& source, int limit) = 0;
  // The fetches of one partition of a source that stored an object and were
  // not refused, oldest first (a partition that accumulates its polls is
  // built from all of them).
  virtual Result<std::vector<FetchRecord>> ListPartitionFetches(const std::string& source,
                                                                const std::string& partition) = 0;

  // File-stat cache: a local file is re-hashed only when size, mtime or inode changed.
  virtual Result<std::optional<FileStatRecord>> GetFileStat(const std::string& path) = 0;
  virtual Status PutFileStat(const FileStatRecord& stat) = 0;

  // Check results.
  virtual Status RecordCheckResult(const CheckResultRecord& result) = 0;
  virtual Result<std::vector<CheckResultRecord>> ListCheckResults(int64_t run_id) = 0;
  // Each check's newest result on `asset` (one per check and partition),
  // oldest first.
  virtual Result<std::vector<CheckResultRecord>> LatestCheckResults(const std::string& asset) = 0;

  // Schedule ticks. CommitTicks inserts new ticks (an existing (asset, key)
  // is left as it is) and sets the schedules' states in one transaction;
  // it returns, for each tick, whether it was new.
  virtual Result<std::vector<bool>> CommitTicks(const std::vector<TickRecord>& ticks,
                                                const std::vector<ScheduleStateRecord>& states) = 0;
  // Sets status, run_id and note of an existing tick.
  virtual Status UpdateTick(const TickRecord& tick) = 0;
  // Ticks in any of `statuses` (all when empty), of `asset` ("" for all),
  // newest first.
  virtual Result<std::vector<TickRecord>> ListTicks(const std::string& asset,
                                                    const std::vector<TickStatus>& statuses,
                                                    int limit) = 0;
  virtual Result<std::vector<ScheduleStateRecord>> ListScheduleStates() = 0;
  // Paused schedules: asset -> when it was paused.
  virtual Status SetPaused(const std::string& asset, bool paused) = 0;
  virtual Result<std::map<std::string, Micros>> ListPaused() = 0;

  // Schema version after migrations (for tests and `sluice --version -v`).
  virtual Result<int> SchemaVersion() = 0;
};

// Opens (creating if needed) a SQLite metadata database and applies pending
// migrations. ":memory:" is accepted for tests.
Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadata(const std::string& path, Clock* clock);

}  // namespace sluice
