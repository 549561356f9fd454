#include "metadata/sqlite_store.h"

#include <algorithm>
#include <utility>

#include "core/fs.h"
#include "core/redact.h"
#include "metadata/migrations.h"

namespace sluice {
namespace {

Result<nlohmann::json> ParseJson(const std::string& text, const char* what) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::DataError(std::string("metadata: stored ") + what + " is not valid JSON");
  }
  return parsed;
}

int64_t SqlLimit(int limit) { return limit > 0 ? limit : -1; }  // -1: no limit in SQLite

// Column order of every SELECT below matches these readers.
Result<RunRecord> ReadRun(const SqliteStatement& stmt) {
  RunRecord run;
  run.id = stmt.ColumnInt64(0);
  run.command = stmt.ColumnText(1);
  ASSIGN_OR_RETURN(run.args, ParseJson(stmt.ColumnText(2), "runs.args"));
  std::string status = stmt.ColumnText(3);
  std::optional<RunStatus> parsed = ParseRunStatus(status);
  if (!parsed)
    return Status::DataError("runs: unknown status '" + status + "' of run " +
                             std::to_string(run.id));
  run.status = *parsed;
  run.started_at = stmt.ColumnInt64(4);
  run.ended_at = stmt.ColumnInt64(5);
  run.exit_code = static_cast<int>(stmt.ColumnInt64(6));
  run.summary = stmt.ColumnText(7);
  return run;
}

// Every row of a SELECT of runs, in the column order ReadRun reads.
Result<std::vector<RunRecord>> ReadRuns(SqliteStatement& stmt) {
  std::vector<RunRecord> runs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(RunRecord run, ReadRun(stmt));
    runs.push_back(std::move(run));
  }
  return runs;
}

constexpr const char* kSelectRuns =
    "SELECT id, command, args, status, started_at, ended_at, exit_code, summary FROM runs ";

TaskRecord ReadTask(const SqliteStatement& stmt) {
  TaskRecord task;
  task.run_id = stmt.ColumnInt64(0);
  task.asset = stmt.ColumnText(1);
  task.partition = stmt.ColumnText(2);
  task.attempt = static_cast<int>(stmt.ColumnInt64(3));
  task.status = stmt.ColumnText(4);
  task.reason = stmt.ColumnText(5);
  task.version_id = stmt.ColumnText(6);
  task.rows = stmt.ColumnInt64(7);
  task.started_at = stmt.ColumnInt64(8);
  task.ended_at = stmt.ColumnInt64(9);
  task.error = stmt.ColumnText(10);
  return task;
}

Result<AssetVersionRecord> ReadVersion(const SqliteStatement& stmt) {
  AssetVersionRecord version;
  version.asset = stmt.ColumnText(0);
  version.partition = stmt.ColumnText(1);
  version.version_id = stmt.ColumnText(2);
  version.fingerprint = stmt.ColumnText(3);
  ASSIGN_OR_RETURN(version.inputs, ParseJson(stmt.ColumnText(4), "asset_versions.inputs"));
  ASSIGN_OR_RETURN(version.schema, ParseJson(stmt.ColumnText(5), "asset_versions.schema"));
  version.rows = stmt.ColumnInt64(6);
  version.build_ms = stmt.ColumnInt64(7);
  version.status = stmt.ColumnText(8);
  version.created_at = stmt.ColumnInt64(9);
  version.published_at = stmt.ColumnInt64(10);
  version.run_id = stmt.ColumnInt64(11);
  return version;
}

Result<FetchRecord> ReadFetch(const SqliteStatement& stmt) {
  FetchRecord fetch;
  fetch.id = stmt.ColumnInt64(0);
  fetch.source = stmt.ColumnText(1);
  fetch.partition = stmt.ColumnText(2);
  fetch.url = stmt.ColumnText(3);
  fetch.started_at = stmt.ColumnInt64(4);
  fetch.duration_ms = stmt.ColumnInt64(5);
  fetch.status = static_cast<int>(stmt.ColumnInt64(6));
  fetch.bytes = stmt.ColumnInt64(7);
  fetch.sha256 = stmt.ColumnText(8);
  fetch.object_path = stmt.ColumnText(9);
  fetch.error = stmt.ColumnText(10);
  ASSIGN_OR_RETURN(fetch.headers, ParseJson(stmt.ColumnText(11), "fetches.headers"));
  return fetch;
}

// Every row a fetches query gives, in its order.
Result<std::vector<FetchRecord>> ReadFetches(SqliteStatement& stmt) {
  std::vector<FetchRecord> fetches;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(FetchRecord fetch, ReadFetch(stmt));
    fetches.push_back(std::move(fetch));
  }
  return fetches;
}

Result<CheckResultRecord> ReadCheckResult(const SqliteStatement& stmt) {
  CheckResultRecord result;
  result.run_id = stmt.ColumnInt64(0);
  result.asset = stmt.ColumnText(1);
  result.partition = stmt.ColumnText(2);
  result.version_id = stmt.ColumnText(3);
  result.check_name = stmt.ColumnText(4);
  result.severity = stmt.ColumnText(5);
  result.status = stmt.ColumnText(6);
  result.failing_rows = stmt.ColumnInt64(7);
  ASSIGN_OR_RETURN(result.sample, ParseJson(stmt.ColumnText(8), "check_results.sample"));
  result.message = stmt.ColumnText(9);
  result.checked_at = stmt.ColumnInt64(10);
  return result;
}

// Every row of a check_results query (its columns as ReadCheckResult reads them).
Result<std::vector<CheckResultRecord>> ReadCheckResults(SqliteStatement& stmt) {
  std::vector<CheckResultRecord> results;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(CheckResultRecord result, ReadCheckResult(stmt));
    results.push_back(std::move(result));
  }
  return results;
}

// Runs one parameterless pragma and returns its first value ("" when none).
Result<std::string> PragmaValue(SqliteDb& db, const char* sql) {
  ASSIGN_OR_RETURN(SqliteStatement stmt, db.Prepare(sql));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnText(0) : std::string();
}

// While alive, commits on db are synced (synchronous=FULL); the connection's
// default is NORMAL (see the header). In WAL mode a synced commit also makes
// every earlier one durable.
class DurableCommits {
 public:
  explicit DurableCommits(SqliteDb& db) : db_(db) {
    ok_ = db_.Exec("PRAGMA synchronous = FULL").ok();
  }
  ~DurableCommits() { (void)db_.Exec("PRAGMA synchronous = NORMAL"); }
  DurableCommits(const DurableCommits&) = delete;
  DurableCommits& operator=(const DurableCommits&) = delete;
  Status status() const {
    return ok_ ? Status::Ok() : Status::IOError(db_.context() + ": cannot set synchronous = FULL");
  }

 private:
  SqliteDb& db_;
  bool ok_ = false;
};

SystemClock& DefaultClock() {
  static SystemClock clock;
  return clock;
}

}  // namespace

Result<std::unique_ptr<SqliteMetadataStore>> SqliteMetadataStore::Open(const std::string& path,
                                                                       Clock* clock) {
  if (clock == nullptr) clock = &DefaultClock();
  const std::string context = "metadata " + path;
  const bool in_memory = path == ":memory:" || path.empty();
  if (!in_memory) RETURN_IF_ERROR(MakeDirs(Dirname(path)).WithContext("metadata"));

  ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(in_memory ? ":memory:" : path, context));
  // The busy timeout first, so switching to WAL waits for other openers.
  RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout = 5000"));
  ASSIGN_OR_RETURN(std::string journal, PragmaValue(db, "PRAGMA journal_mode = WAL"));
  if (!in_memory && journal != "wal") {
    return Status::IOError(context + ": cannot use WAL journal mode (got '" + journal +
                           "'); is the file on a network filesystem?");
  }
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"));
  RETURN_IF_ERROR(ApplyMigrations(db, clock->Now()));
  return std::make_unique<SqliteMetadataStore>(PassKey(), std::move(db), clock);
}

Result<int64_t> SqliteMetadataStore::BeginRun(const RunRecord& run) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("INSERT INTO runs (command, args, status, started_at, ended_at, "
                               "exit_code, summary) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(stmt.BindAll(run.command, DumpRedacted(run.args), RunStatusName(run.status),
                               NowIfZero(run.started_at), run.ended_at, run.exit_code,
                               Redact(run.summary)));
  RETURN_IF_ERROR(stmt.Run());
  return db_.LastInsertRowid();
}

Status SqliteMetadataStore::StartRun(int64_t run_id, Micros started_at) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("UPDATE runs SET status = 'running', started_at = ? "
                               "WHERE id = ? AND status = 'queued'"));
  RETURN_IF_ERROR(stmt.BindAll(NowIfZero(started_at), run_id));
  RETURN_IF_ERROR(stmt.Run());
  if (db_.Changes() == 0) {
    return Status::NotFound(db_.context() + ": no queued run " + std::to_string(run_id));
  }
  return Status::Ok();
}

Result<int64_t> SqliteMetadataStore::PruneRuns(int keep) {
  if (keep <= 0) return int64_t{0};
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  // The runs to forget: older than the newest `keep`, and finished.
  const std::string old_runs =
      "SELECT id FROM runs WHERE status NOT IN ('queued', 'running') AND id < "
      "(SELECT min(id) FROM (SELECT id FROM runs ORDER BY id DESC LIMIT ?))";
  ASSIGN_OR_RETURN(SqliteStatement checks,
                   db_.Prepare("DELETE FROM check_results WHERE run_id IN (" + old_runs + ")"));
  RETURN_IF_ERROR(checks.BindAll(keep));
  RETURN_IF_ERROR(checks.Run());
  // Tasks go with their run (ON DELETE CASCADE).
  ASSIGN_OR_RETURN(SqliteStatement runs,
                   db_.Prepare("DELETE FROM runs WHERE id IN (" + old_runs + ")"));
  RETURN_IF_ERROR(runs.BindAll(keep));
  RETURN_IF_ERROR(runs.Run());
  int64_t removed = db_.Changes();
  RETURN_IF_ERROR(txn.Commit());
  return removed;
}

Result<std::vector<RunRecord>> SqliteMetadataStore::ListRunsWithStatus(RunStatus status) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare(std::string(kSelectRuns) + "WHERE status = ? ORDER BY id"));
  RETURN_IF_ERROR(stmt.BindAll(RunStatusName(status)));
  return ReadRuns(stmt);
}

Status SqliteMetadataStore::FinishRun(int64_t run_id, RunStatus status, int exit_code,
                                      const std::string& summary, Micros ended_at) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("UPDATE runs SET status = ?, exit_code = ?, summary = ?, "
                               "ended_at = ? WHERE id = ?"));
  RETURN_IF_ERROR(
      stmt.BindAll(RunStatusName(status), exit_code, Redact(summary), NowIfZero(ended_at), run_id));
  RETURN_IF_ERROR(stmt.Run());
  if (db_.Changes() == 0) {
    return Status::NotFound(db_.context() + ": no run " + std::to_string(run_id));
  }
  return Status::Ok();
}

Result<std::vector<RunRecord>> SqliteMetadataStore::ListRuns(int limit) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare(std::string(kSelectRuns) + "ORDER BY id DESC LIMIT ?"));
  RETURN_IF_ERROR(stmt.BindAll(SqlLimit(limit)));
  return ReadRuns(stmt);
}

Result<std::optional<RunRecord>> SqliteMetadataStore::GetRun(int64_t run_id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt, db_.Prepare(std::string(kSelectRuns) + "WHERE id = ?"));
  RETURN_IF_ERROR(stmt.BindAll(run_id));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<RunRecord>();
  ASSIGN_OR_RETURN(RunRecord run, ReadRun(stmt));
  return std::optional<RunRecord>(std::move(run));
}

Status SqliteMetadataStore::MarkInterruptedRuns(Micros now) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  ASSIGN_OR_RETURN(SqliteStatement tasks,
                   db_.Prepare("UPDATE tasks SET status = 'interrupted', ended_at = ? "
                               "WHERE status = 'running' AND run_id IN "
                               "(SELECT id FROM runs WHERE status = 'running')"));
  RETURN_IF_ERROR(tasks.BindAll(now));
  RETURN_IF_ERROR(tasks.Run());
  ASSIGN_OR_RETURN(SqliteStatement runs,
                   db_.Prepare("UPDATE runs SET status = 'interrupted', ended_at = ? "
                               "WHERE status = 'running'"));
  RETURN_IF_ERROR(runs.BindAll(now));
  RETURN_IF_ERROR(runs.Run());
  return txn.Commit();
}

Result<std::map<std::string, std::string>> SqliteMetadataStore::PreviousTaskStatuses(
    int64_t run_id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("SELECT asset, status FROM (SELECT asset, status, row_number() OVER "
                  "(PARTITION BY asset ORDER BY run_id DESC, attempt DESC) AS n FROM tasks "
                  "WHERE run_id < ? AND partition = '' AND run_id IN "
                  "(SELECT id FROM runs WHERE command = 'run')) WHERE n = 1"));
  RETURN_IF_ERROR(stmt.BindAll(run_id));
  std::map<std::string, std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out[stmt.ColumnText(0)] = stmt.ColumnText(1);
  }
  return out;
}

Status SqliteMetadataStore::RecordTask(const TaskRecord& task) {
  std::lock_guard lock(mu_);
  return RecordTaskLocked(task);
}

Status SqliteMetadataStore::RecordTasks(const std::vector<TaskRecord>& tasks) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  for (const TaskRecord& task : tasks) RETURN_IF_ERROR(RecordTaskLocked(task));
  return txn.Commit();
}

Status SqliteMetadataStore::RecordTaskLocked(const TaskRecord& task) {
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("INSERT INTO tasks (run_id, asset, partition, attempt, status, reason, "
                  "version_id, rows, started_at, ended_at, error) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (run_id, asset, partition, attempt) DO UPDATE SET "
                  "status = excluded.status, reason = excluded.reason, "
                  "version_id = excluded.version_id, rows = excluded.rows, "
                  "started_at = excluded.started_at, ended_at = excluded.ended_at, "
                  "error = excluded.error"));
  RETURN_IF_ERROR(stmt.BindAll(task.run_id, task.asset, task.partition, task.attempt, task.status,
                               Redact(task.reason), task.version_id, task.rows, task.started_at,
                               task.ended_at, Redact(task.error)));
  return stmt.Run();
}

Result<std::vector<TaskRecord>> SqliteMetadataStore::ListTasks(int64_t run_id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT run_id, asset, partition, attempt, status, reason, "
                               "version_id, rows, started_at, ended_at, error FROM tasks "
                               "WHERE run_id = ? ORDER BY rowid"));
  RETURN_IF_ERROR(stmt.BindAll(run_id));
  std::vector<TaskRecord> tasks;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    tasks.push_back(ReadTask(stmt));
  }
  return tasks;
}

Status SqliteMetadataStore::RecordVersion(const AssetVersionRecord& version) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("INSERT INTO asset_versions (asset, partition, version_id, fingerprint, "
                  "inputs, schema, rows, build_ms, status, created_at, published_at, run_id) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (asset, partition, version_id) DO UPDATE SET "
                  "fingerprint = excluded.fingerprint, inputs = excluded.inputs, "
                  "schema = excluded.schema, rows = excluded.rows, "
                  "build_ms = excluded.build_ms, status = excluded.status, "
                  "created_at = excluded.created_at, published_at = excluded.published_at, "
                  "run_id = excluded.run_id"));
  RETURN_IF_ERROR(stmt.BindAll(
      version.asset, version.partition, version.version_id, version.fingerprint,
      DumpRedacted(version.inputs), DumpRedacted(version.schema), version.rows, version.build_ms,
      version.status, NowIfZero(version.created_at), version.published_at, version.run_id));
  return stmt.Run();
}

Result<std::vector<AssetVersionRecord>> SqliteMetadataStore::ListVersions(
    const std::string& asset, const std::string& partition) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT asset, partition, version_id, fingerprint, inputs, "
                               "schema, rows, build_ms, status, created_at, published_at, "
                               "run_id FROM asset_versions WHERE asset = ? AND partition = ? "
                               "ORDER BY created_at DESC, rowid DESC"));
  RETURN_IF_ERROR(stmt.BindAll(asset, partition));
  std::vector<AssetVersionRecord> versions;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(AssetVersionRecord version, ReadVersion(stmt));
    versions.push_back(std::move(version));
  }
  return versions;
}

Status SqliteMetadataStore::SetPublished(const std::string& asset, const std::string& partition,
                                         const std::string& version_id, Micros published_at) {
  std::lock_guard lock(mu_);
  published_at = NowIfZero(published_at);
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  ASSIGN_OR_RETURN(SqliteStatement upsert,
                   db_.Prepare("INSERT INTO published (asset, partition, version_id, "
                               "published_at) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (asset, partition) DO UPDATE SET "
                               "version_id = excluded.version_id, "
                               "published_at = excluded.published_at"));
  RETURN_IF_ERROR(upsert.BindAll(asset, partition, version_id, published_at));
  RETURN_IF_ERROR(upsert.Run());
  ASSIGN_OR_RETURN(SqliteStatement stamp,
                   db_.Prepare("UPDATE asset_versions SET published_at = ? "
                               "WHERE asset = ? AND partition = ? AND version_id = ?"));
  RETURN_IF_ERROR(stamp.BindAll(published_at, asset, partition, version_id));
  RETURN_IF_ERROR(stamp.Run());
  return txn.Commit();
}

Result<std::optional<std::string>> SqliteMetadataStore::GetPublished(const std::string& asset,
                                                                     const std::string& partition) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt, db_.Prepare("SELECT version_id FROM published "
                                                     "WHERE asset = ? AND partition = ?"));
  RETURN_IF_ERROR(stmt.BindAll(asset, partition));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.ColumnText(0));
}

Result<std::map<std::pair<std::string, std::string>, std::string>>
SqliteMetadataStore::ListPublished() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT asset, partition, version_id FROM published"));
  std::map<std::pair<std::string, std::string>, std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out[{stmt.ColumnText(0), stmt.ColumnText(1)}] = stmt.ColumnText(2);
  }
  return out;
}

Status SqliteMetadataStore::InsertFetchLocked(const FetchRecord& fetch) {
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("INSERT INTO fetches (source, partition, url, started_at, duration_ms, status, "
                  "bytes, sha256, object_path, error, headers) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(stmt.BindAll(fetch.source, fetch.partition, Redact(fetch.url),
                               NowIfZero(fetch.started_at), fetch.duration_ms, fetch.status,
                               fetch.bytes, fetch.sha256, fetch.object_path, Redact(fetch.error),
                               DumpRedacted(fetch.headers)));
  return stmt.Run();
}

Result<int64_t> SqliteMetadataStore::RecordFetch(const FetchRecord& fetch) {
  std::lock_guard lock(mu_);
  DurableCommits durable(db_);
  RETURN_IF_ERROR(durable.status());
  RETURN_IF_ERROR(InsertFetchLocked(fetch));
  return db_.LastInsertRowid();
}

Status SqliteMetadataStore::RecordFetches(const std::vector<FetchRecord>& fetches) {
  std::lock_guard lock(mu_);
  DurableCommits durable(db_);
  RETURN_IF_ERROR(durable.status());
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  for (const FetchRecord& fetch : fetches) RETURN_IF_ERROR(InsertFetchLocked(fetch));
  return txn.Commit();
}

Result<std::vector<FetchRecord>> SqliteMetadataStore::ListFetches(const std::string& source,
                                                                  int limit) {
  std::lock_guard lock(mu_);
  // Two fixed statements rather than SQL assembled at run time.
  const char* sql = source.empty()
                        ? "SELECT id, source, partition, url, started_at, duration_ms, status, "
                          "bytes, sha256, object_path, error, headers FROM fetches "
                          "ORDER BY started_at DESC, id DESC LIMIT ?"
                        : "SELECT id, source, partition, url, started_at, duration_ms, status, "
                          "bytes, sha256, object_path, error, headers FROM fetches "
                          "WHERE source = ? ORDER BY started_at DESC, id DESC LIMIT ?";
  ASSIGN_OR_RETURN(SqliteStatement stmt, db_.Prepare(sql));
  if (source.empty()) {
    RETURN_IF_ERROR(stmt.BindAll(SqlLimit(limit)));
  } else {
    RETURN_IF_ERROR(stmt.BindAll(source, SqlLimit(limit)));
  }
  return ReadFetches(stmt);
}

Result<std::vector<FetchRecord>> SqliteMetadataStore::ListPartitionFetches(
    const std::string& source, const std::string& partition) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT id, source, partition, url, started_at, duration_ms, "
                               "status, bytes, sha256, object_path, error, headers FROM fetches "
                               "WHERE source = ? AND partition = ? AND sha256 <> '' AND error = '' "
                               "ORDER BY started_at, id"));
  RETURN_IF_ERROR(stmt.BindAll(source, partition));
  return ReadFetches(stmt);
}

Result<std::optional<FileStatRecord>> SqliteMetadataStore::GetFileStat(const std::string& path) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT path, size, mtime_ns, inode, sha256 FROM file_stats "
                               "WHERE path = ?"));
  RETURN_IF_ERROR(stmt.BindAll(path));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<FileStatRecord>();
  FileStatRecord stat;
  stat.path = stmt.ColumnText(0);
  // SQLite integers are signed 64-bit; unsigned values round-trip bit for bit.
  stat.size = static_cast<uint64_t>(stmt.ColumnInt64(1));
  stat.mtime_ns = stmt.ColumnInt64(2);
  stat.inode = static_cast<uint64_t>(stmt.ColumnInt64(3));
  stat.sha256 = stmt.ColumnText(4);
  return std::optional<FileStatRecord>(std::move(stat));
}

Status SqliteMetadataStore::PutFileStat(const FileStatRecord& stat) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("INSERT INTO file_stats (path, size, mtime_ns, inode, sha256) "
                               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                               "size = excluded.size, mtime_ns = excluded.mtime_ns, "
                               "inode = excluded.inode, sha256 = excluded.sha256"));
  RETURN_IF_ERROR(stmt.BindAll(stat.path, static_cast<int64_t>(stat.size), stat.mtime_ns,
                               static_cast<int64_t>(stat.inode), stat.sha256));
  return stmt.Run();
}

Status SqliteMetadataStore::RecordCheckResult(const CheckResultRecord& result) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("INSERT INTO check_results (run_id, asset, partition, version_id, check_name, "
                  "severity, status, failing_rows, sample, message, checked_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(stmt.BindAll(result.run_id, result.asset, result.partition, result.version_id,
                               result.check_name, result.severity, result.status,
                               result.failing_rows, DumpRedacted(result.sample),
                               Redact(result.message), NowIfZero(result.checked_at)));
  return stmt.Run();
}

Result<std::vector<CheckResultRecord>> SqliteMetadataStore::ListCheckResults(int64_t run_id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT run_id, asset, partition, version_id, check_name, "
                               "severity, status, failing_rows, sample, message, checked_at "
                               "FROM check_results WHERE run_id = ? ORDER BY id"));
  RETURN_IF_ERROR(stmt.BindAll(run_id));
  return ReadCheckResults(stmt);
}

Result<std::vector<CheckResultRecord>> SqliteMetadataStore::LatestCheckResults(
    const std::string& asset) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      db_.Prepare("SELECT run_id, asset, partition, version_id, check_name, severity, status, "
                  "failing_rows, sample, message, checked_at FROM check_results WHERE id IN "
                  "(SELECT max(id) FROM check_results WHERE asset = ? GROUP BY check_name, "
                  "partition) ORDER BY id"));
  RETURN_IF_ERROR(stmt.BindAll(asset));
  return ReadCheckResults(stmt);
}

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kQueued:
      return "queued";
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSuccess:
      return "success";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kCancelled:
      return "cancelled";
    case RunStatus::kInterrupted:
      return "interrupted";
  }
  return "running";
}

std::optional<RunStatus> ParseRunStatus(std::string_view name) {
  for (RunStatus s : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kSuccess,
                      RunStatus::kFailed, RunStatus::kCancelled, RunStatus::kInterrupted}) {
    if (name == RunStatusName(s)) return s;
  }
  return std::nullopt;
}

const char* TickStatusName(TickStatus status) {
  switch (status) {
    case TickStatus::kPending:
      return "pending";
    case TickStatus::kRunning:
      return "running";
    case TickStatus::kDone:
      return "done";
    case TickStatus::kFailed:
      return "failed";
    case TickStatus::kSkipped:
      return "skipped";
    case TickStatus::kInterrupted:
      return "interrupted";
  }
  return "pending";
}

std::optional<TickStatus> ParseTickStatus(std::string_view name) {
  for (TickStatus s : {TickStatus::kPending, TickStatus::kRunning, TickStatus::kDone,
                       TickStatus::kFailed, TickStatus::kSkipped, TickStatus::kInterrupted}) {
    if (name == TickStatusName(s)) return s;
  }
  return std::nullopt;
}

Result<std::vector<bool>> SqliteMetadataStore::CommitTicks(
    const std::vector<TickRecord>& ticks, const std::vector<ScheduleStateRecord>& states) {
  std::lock_guard lock(mu_);
  DurableCommits durable(db_);
  RETURN_IF_ERROR(durable.status());
  std::vector<bool> inserted;
  ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_));
  if (!ticks.empty()) {
    ASSIGN_OR_RETURN(
        SqliteStatement insert,
        db_.Prepare("INSERT INTO schedule_ticks (asset, key, at, trigger, file, "
                    "status, run_id, note, updated_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (asset, key) DO NOTHING"));
    for (const TickRecord& t : ticks) {
      insert.Reset();
      RETURN_IF_ERROR(insert.BindAll(t.asset, t.key, t.at, t.trigger, t.file,
                                     TickStatusName(t.status), t.run_id, t.note,
                                     t.updated_at ? t.updated_at : clock_->Now()));
      RETURN_IF_ERROR(insert.Run());
      inserted.push_back(db_.Changes() > 0);
    }
  }
  if (!states.empty()) {
    ASSIGN_OR_RETURN(SqliteStatement put,
                     db_.Prepare("INSERT INTO schedule_state (asset, schedule, since, last_tick) "
                                 "VALUES (?, ?, ?, ?) ON CONFLICT (asset) DO UPDATE SET "
                                 "schedule = excluded.schedule, since = excluded.since, "
                                 "last_tick = excluded.last_tick"));
    for (const ScheduleStateRecord& st : states) {
      put.Reset();
      RETURN_IF_ERROR(put.BindAll(st.asset, st.schedule, st.since, st.last_tick));
      RETURN_IF_ERROR(put.Run());
    }
  }
  RETURN_IF_ERROR(txn.Commit());
  return inserted;
}

Status SqliteMetadataStore::UpdateTick(const TickRecord& tick) {
  std::lock_guard lock(mu_);
  DurableCommits durable(db_);
  RETURN_IF_ERROR(durable.status());
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("UPDATE schedule_ticks SET status = ?, run_id = ?, note = ?, "
                               "updated_at = ? WHERE asset = ? AND key = ?"));
  RETURN_IF_ERROR(stmt.BindAll(TickStatusName(tick.status), tick.run_id, tick.note, clock_->Now(),
                               tick.asset, tick.key));
  return stmt.Run();
}

Result<std::vector<TickRecord>> SqliteMetadataStore::ListTicks(
    const std::string& asset, const std::vector<TickStatus>& statuses, int limit) {
  std::lock_guard lock(mu_);
  std::string sql =
      "SELECT asset, key, at, trigger, file, status, run_id, note, updated_at "
      "FROM schedule_ticks WHERE (? = '' OR asset = ?)";
  if (!statuses.empty()) {
    sql += " AND status IN (";
    for (size_t i = 0; i < statuses.size(); ++i) sql += i ? ", ?" : "?";
    sql += ")";
  }
  sql += " ORDER BY at DESC, rowid DESC LIMIT ?";
  ASSIGN_OR_RETURN(SqliteStatement stmt, db_.Prepare(sql));
  int idx = 1;
  RETURN_IF_ERROR(stmt.BindText(idx++, asset));
  RETURN_IF_ERROR(stmt.BindText(idx++, asset));
  for (TickStatus s : statuses) RETURN_IF_ERROR(stmt.BindText(idx++, TickStatusName(s)));
  RETURN_IF_ERROR(stmt.BindInt64(idx++, limit));
  std::vector<TickRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    TickRecord t;
    t.asset = stmt.ColumnText(0);
    t.key = stmt.ColumnText(1);
    t.at = stmt.ColumnInt64(2);
    t.trigger = stmt.ColumnText(3);
    t.file = stmt.ColumnText(4);
    std::string status = stmt.ColumnText(5);
    std::optional<TickStatus> parsed = ParseTickStatus(status);
    if (!parsed) {
      return Status::DataError(db_.context() + ": schedule_ticks: unknown status '" + status + "'");
    }
    t.status = *parsed;
    t.run_id = stmt.ColumnInt64(6);
    t.note = stmt.ColumnText(7);
    t.updated_at = stmt.ColumnInt64(8);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::vector<ScheduleStateRecord>> SqliteMetadataStore::ListScheduleStates() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT asset, schedule, since, last_tick FROM schedule_state "
                               "ORDER BY asset"));
  std::vector<ScheduleStateRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(
        {stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnInt64(2), stmt.ColumnInt64(3)});
  }
  return out;
}

Status SqliteMetadataStore::SetPaused(const std::string& asset, bool paused) {
  std::lock_guard lock(mu_);
  DurableCommits durable(db_);
  RETURN_IF_ERROR(durable.status());
  if (!paused) {
    ASSIGN_OR_RETURN(SqliteStatement del,
                     db_.Prepare("DELETE FROM schedule_pauses WHERE asset = ?"));
    RETURN_IF_ERROR(del.BindAll(asset));
    return del.Run();
  }
  ASSIGN_OR_RETURN(SqliteStatement put,
                   db_.Prepare("INSERT INTO schedule_pauses (asset, paused_at) VALUES (?, ?) "
                               "ON CONFLICT (asset) DO NOTHING"));
  RETURN_IF_ERROR(put.BindAll(asset, clock_->Now()));
  return put.Run();
}

Result<std::map<std::string, Micros>> SqliteMetadataStore::ListPaused() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("SELECT asset, paused_at FROM schedule_pauses"));
  std::map<std::string, Micros> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out[stmt.ColumnText(0)] = stmt.ColumnInt64(1);
  }
  return out;
}

Result<int> SqliteMetadataStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  return ReadSchemaVersion(db_);
}

Result<std::string> SqliteMetadataStore::ReadPragma(const std::string& name) {
  // A pragma's name cannot be a bound parameter; it is checked instead.
  bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || c == '_';
  });
  if (!plain) return Status::Invalid("metadata: bad pragma name '" + name + "'");
  std::lock_guard lock(mu_);
  const std::string sql = "PRAGMA " + name;
  return PragmaValue(db_, sql.c_str());
}

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadata(const std::string& path, Clock* clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteMetadataStore> store,
                   SqliteMetadataStore::Open(path, clock));
  return std::unique_ptr<MetadataStore>(std::move(store));
}

}  // namespace sluice
