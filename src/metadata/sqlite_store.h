// The SQLite MetadataStore. One connection in WAL mode with
// synchronous=NORMAL: a commit survives kill -9 (it is in the WAL, in the
// page cache) but the last ones may not survive power loss. Records that
// cannot be rebuilt commit with synchronous=FULL (the fetch log of the raw
// lake, schedule ticks and pauses: a tick run must not be forgotten).
// Versions and publications are rebuilt from the warehouse, the commit
// point, at start-up (DESIGN §5); runs and tasks are a log whose last
// entries a power loss may take (a run left 'running' is marked
// interrupted at start-up). None of those syncs one by one: a run of
// 10,000 models would otherwise spend seconds in fsync.
// busy_timeout 5000 ms and foreign keys on; the schema is brought up to date
// by migrations.h on open. Thread-safe: every method takes mu_, so calls are
// serialised on the one connection (metadata writes are small and rare next to
// the warehouse's work). Other processes may open the same file; SQLite's
// locks and the busy timeout arbitrate. Redaction: error, url, summary,
// message, reason and every string inside args, headers and sample pass
// through Redact() before they are written.
//
// Beyond the interface's contracts:
// - timestamps left 0 on insert (started_at, created_at, checked_at) are
//   stamped with the clock;
// - ListRuns orders by id (assigned in BeginRun order, immune to clock steps);
// - MarkInterruptedRuns also marks those runs' 'running' tasks 'interrupted';
// - SetPublished also stamps published_at on the matching asset_versions row;
// - ListFetches with source "" lists every source; limit <= 0 means no limit.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "metadata/metadata_store.h"
#include "metadata/sqlite.h"

namespace sluice {

class SqliteMetadataStore final : public MetadataStore {
 public:
  // Opens or creates path (":memory:" for tests), creating its directory,
  // and applies pending migrations. clock null means the system clock.
  static Result<std::unique_ptr<SqliteMetadataStore>> Open(const std::string& path, Clock* clock);

  Result<int64_t> BeginRun(const RunRecord& run) override;
  Status StartRun(int64_t run_id, Micros started_at) override;
  Result<int64_t> PruneRuns(int keep) override;
  Result<std::vector<RunRecord>> ListRunsWithStatus(RunStatus status) override;
  Status FinishRun(int64_t run_id, RunStatus status, int exit_code, const std::string& summary,
                   Micros ended_at) override;
  Result<std::vector<RunRecord>> ListRuns(int limit) override;
  Result<std::optional<RunRecord>> GetRun(int64_t run_id) override;
  Status MarkInterruptedRuns(Micros now) override;

  Status RecordTask(const TaskRecord& task) override;
  Status RecordTasks(const std::vector<TaskRecord>& tasks) override;
  Result<std::vector<TaskRecord>> ListTasks(int64_t run_id) override;
  Result<std::map<std::string, std::string>> PreviousTaskStatuses(int64_t run_id) override;

  Status RecordVersion(const AssetVersionRecord& version) override;
  Result<std::vector<AssetVersionRecord>> ListVersions(const std::string& asset,
                                                       const std::string& partition) override;
  Status SetPublished(const std::string& asset, const std::string& partition,
                      const std::string& version_id, Micros published_at) override;
  Result<std::optional<std::string>> GetPublished(const std::string& asset,
                                                  const std::string& partition) override;
  Result<std::map<std::pair<std::string, std::string>, std::string>> ListPublished() override;

  Result<int64_t> RecordFetch(const FetchRecord& fetch) override;
  Status RecordFetches(const std::vector<FetchRecord>& fetches) override;
  Result<std::vector<FetchRecord>> ListFetches(const std::string& source, int limit) override;
  Result<std::vector<FetchRecord>> ListPartitionFetches(const std::string& source,
                                                        const std::string& partition) override;

  Result<std::optional<FileStatRecord>> GetFileStat(const std::string& path) override;
  Status PutFileStat(const FileStatRecord& stat) override;

  Status RecordCheckResult(const CheckResultRecord& result) override;
  Result<std::vector<CheckResultRecord>> ListCheckResults(int64_t run_id) override;
  Result<std::vector<CheckResultRecord>> LatestCheckResults(const std::string& asset) override;

  Result<std::vector<bool>> CommitTicks(const std::vector<TickRecord>& ticks,
                                        const std::vector<ScheduleStateRecord>& states) override;
  Status UpdateTick(const TickRecord& tick) override;
  Result<std::vector<TickRecord>> ListTicks(const std::string& asset,
                                            const std::vector<TickStatus>& statuses,
                                            int limit) override;
  Result<std::vector<ScheduleStateRecord>> ListScheduleStates() override;
  Status SetPaused(const std::string& asset, bool paused) override;
  Result<std::map<std::string, Micros>> ListPaused() override;

  Result<int> SchemaVersion() override;

  // The value of a connection pragma such as "synchronous" (for tests);
  // name must be lowercase letters and '_'.
  Result<std::string> ReadPragma(const std::string& name);

 private:
  struct PassKey {  // only Open() constructs, after migrating
    explicit PassKey() = default;
  };

 public:
  SqliteMetadataStore(PassKey, SqliteDb db, Clock* clock) : db_(std::move(db)), clock_(clock) {}

 private:
  Micros NowIfZero(Micros t) const { return t != 0 ? t : clock_->Now(); }
  Status InsertFetchLocked(const FetchRecord& fetch);  // REQUIRES(mu_)
  Status RecordTaskLocked(const TaskRecord& task);     // REQUIRES(mu_)

  std::mutex mu_;
  SqliteDb db_;   // GUARDED_BY(mu_)
  Clock* clock_;  // not owned; thread-safe
};

}  // namespace sluice
