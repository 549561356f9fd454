#include "metadata/migrations.h"

#include <string>

namespace sluice {
namespace {

// Timestamps are microseconds since the epoch (UTC); 0 means "not yet".
// JSON fields are TEXT. Every asset-level table is keyed by (asset, partition),
// partition '' when unpartitioned. No CHECK constraints on status vocabularies:
// SQLite can only change them by rebuilding the table.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  command     TEXT    NOT NULL,
  args        TEXT    NOT NULL DEFAULT '{}',
  status      TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER NOT NULL DEFAULT 0,
  exit_code   INTEGER NOT NULL DEFAULT -1,
  summary     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE tasks (
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  asset       TEXT    NOT NULL,
  partition   TEXT    NOT NULL DEFAULT '',
  attempt     INTEGER NOT NULL,
  status      TEXT    NOT NULL,
  reason      TEXT    NOT NULL DEFAULT '',
  version_id  TEXT    NOT NULL DEFAULT '',
  rows        INTEGER NOT NULL DEFAULT -1,
  started_at  INTEGER NOT NULL DEFAULT 0,
  ended_at    INTEGER NOT NULL DEFAULT 0,
  error       TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, asset, partition, attempt)
);
CREATE INDEX tasks_by_asset ON tasks (asset, partition);

CREATE TABLE asset_versions (
  asset        TEXT    NOT NULL,
  partition    TEXT    NOT NULL DEFAULT '',
  version_id   TEXT    NOT NULL,
  fingerprint  TEXT    NOT NULL DEFAULT '',
  inputs       TEXT    NOT NULL DEFAULT '[]',
  schema       TEXT    NOT NULL DEFAULT '[]',
  rows         INTEGER NOT NULL DEFAULT 0,
  build_ms     INTEGER NOT NULL DEFAULT 0,
  status       TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  published_at INTEGER NOT NULL DEFAULT 0,
  run_id       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (asset, partition, version_id)
);
CREATE INDEX asset_versions_by_created ON asset_versions (asset, partition, created_at);

CREATE TABLE published (
  asset        TEXT    NOT NULL,
  partition    TEXT    NOT NULL DEFAULT '',
  version_id   TEXT    NOT NULL,
  published_at INTEGER NOT NULL,
  PRIMARY KEY (asset, partition)
);

CREATE TABLE fetches (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  source       TEXT    NOT NULL,
  partition    TEXT    NOT NULL DEFAULT '',
  url          TEXT    NOT NULL DEFAULT '',
  started_at   INTEGER NOT NULL,
  duration_ms  INTEGER NOT NULL DEFAULT 0,
  status       INTEGER NOT NULL DEFAULT 0,
  bytes        INTEGER NOT NULL DEFAULT 0,
  sha256       TEXT    NOT NULL DEFAULT '',
  object_path  TEXT    NOT NULL DEFAULT '',
  error        TEXT    NOT NULL DEFAULT '',
  headers      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX fetches_by_source ON fetches (source, started_at);
CREATE INDEX fetches_by_time ON fetches (started_at);

CREATE TABLE file_stats (
  path      TEXT    PRIMARY KEY,
  size      INTEGER NOT NULL,
  mtime_ns  INTEGER NOT NULL,
  inode     INTEGER NOT NULL,
  sha256    TEXT    NOT NULL
);

CREATE TABLE check_results (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id        INTEGER NOT NULL,
  asset         TEXT    NOT NULL,
  partition     TEXT    NOT NULL DEFAULT '',
  version_id    TEXT    NOT NULL DEFAULT '',
  check_name    TEXT    NOT NULL,
  severity      TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  failing_rows  INTEGER NOT NULL DEFAULT 0,
  sample        TEXT    NOT NULL DEFAULT '[]',
  message       TEXT    NOT NULL DEFAULT '',
  checked_at    INTEGER NOT NULL
);
CREATE INDEX check_results_by_run ON check_results (run_id);
CREATE INDEX check_results_by_asset ON check_results (asset, partition, checked_at);
)sql"},
    // Schedule ticks (orchestrate/scheduler.h): one row per tick, keyed by what
    // triggered it, so a tick is recorded, and so run, once.
    {2, R"sql(
CREATE TABLE schedule_ticks (
  asset       TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  at          INTEGER NOT NULL,
  trigger     TEXT    NOT NULL DEFAULT '',
  file        TEXT    NOT NULL DEFAULT '',
  status      TEXT    NOT NULL,
  run_id      INTEGER NOT NULL DEFAULT 0,
  note        TEXT    NOT NULL DEFAULT '',
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (asset, key)
);
CREATE INDEX schedule_ticks_by_status ON schedule_ticks (status);
CREATE INDEX schedule_ticks_by_time ON schedule_ticks (asset, at);

CREATE TABLE schedule_state (
  asset       TEXT    NOT NULL PRIMARY KEY,
  schedule    TEXT    NOT NULL,
  since       INTEGER NOT NULL,
  last_tick   INTEGER NOT NULL DEFAULT 0
);
)sql"},
    // Paused schedules (`sluice pause ASSET`), apart from schedule_state,
    // which a changed schedule resets.
    {3, R"sql(
CREATE TABLE schedule_pauses (
  asset      TEXT    NOT NULL PRIMARY KEY,
  paused_at  INTEGER NOT NULL
);
)sql"},
    // The polls of one partition (partition: {accumulate: true}) are read at
    // every run of an accumulating source: an index, not a scan of the
    // source's whole fetch log.
    {4, R"sql(
CREATE INDEX fetches_by_partition ON fetches (source, partition, started_at);
)sql"},
    // Next: {5, "ALTER TABLE ...;"},
};

constexpr const char* kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  applied_at INTEGER NOT NULL
))sql";

Status ValidateList(std::span<const Migration> migrations) {
  for (size_t idx = 0; idx < migrations.size(); ++idx) {
    if (migrations[idx].version != static_cast<int>(idx) + 1) {
      return Status::Internal("metadata migration list is out of order at entry " +
                              std::to_string(idx) + " (version " +
                              std::to_string(migrations[idx].version) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

std::span<const Migration> MetadataMigrations() { return kMigrations; }

int LatestMetadataSchemaVersion() { return std::size(kMigrations); }

Result<int> ReadSchemaVersion(SqliteDb& db) {
  ASSIGN_OR_RETURN(SqliteStatement exists,
                   db.Prepare("SELECT count(*) FROM sqlite_schema "
                              "WHERE type = 'table' AND name = 'schema_migrations'"));
  ASSIGN_OR_RETURN(bool row, exists.Step());
  if (!row || exists.ColumnInt64(0) == 0) return 0;
  ASSIGN_OR_RETURN(SqliteStatement max,
                   db.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  ASSIGN_OR_RETURN(row, max.Step());
  return row ? static_cast<int>(max.ColumnInt64(0)) : 0;
}

Status ApplyMigrations(SqliteDb& db, Micros now, std::span<const Migration> migrations) {
  RETURN_IF_ERROR(ValidateList(migrations));
  const int known = static_cast<int>(migrations.size());
  auto refuse_newer = [&](int found) {
    return Status::Invalid(db.context() + ": metadata schema version " + std::to_string(found) +
                           " is newer than this sluice (" + std::to_string(known) +
                           "); upgrade sluice");
  };

  // Read-only check first, so a newer database is refused without writing to it.
  ASSIGN_OR_RETURN(int current, ReadSchemaVersion(db));
  if (current > known) return refuse_newer(current);
  if (current == known) return Status::Ok();

  for (const Migration& step : migrations) {
    if (step.version <= current) continue;
    ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db));
    RETURN_IF_ERROR(db.Exec(kCreateMigrationsTable));
    // Another process may have migrated while we waited for the write lock.
    ASSIGN_OR_RETURN(current, ReadSchemaVersion(db));
    if (current > known) return refuse_newer(current);
    if (current >= step.version) continue;
    if (current != step.version - 1) {
      return Status::Internal(db.context() + ": metadata schema at version " +
                              std::to_string(current) + " cannot take migration " +
                              std::to_string(step.version));
    }
    Status applied = db.Exec(step.sql);
    if (!applied.ok()) {
      return applied.WithContext("migration " + std::to_string(step.version));
    }
    ASSIGN_OR_RETURN(SqliteStatement mark,
                     db.Prepare("INSERT INTO schema_migrations (version, applied_at) "
                                "VALUES (?, ?)"));
    RETURN_IF_ERROR(mark.BindAll(step.version, now));
    RETURN_IF_ERROR(mark.Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

}  // namespace sluice
