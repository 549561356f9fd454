// Versioned schema migrations for the SQLite metadata store. The schema's
// version is MAX(version) in schema_migrations; each step in the ordered list
// is applied in its own transaction together with its schema_migrations row,
// so a crash leaves the database at one version or the next, never between.
// Adding a migration is one new entry at the end of kMigrations in
// migrations.cpp; steps already released are never edited. A database newer
// than the binary is refused rather than guessed at. Not thread-safe: run it
// on a connection no other thread uses (OpenSqliteMetadata does, before it
// returns the store). Concurrent processes are safe: each step re-reads the
// version under SQLite's write lock.
#pragma once

#include <span>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/sqlite.h"

namespace sluice {

struct Migration {
  int version;      // 1, 2, 3, ... in order, no gaps
  const char* sql;  // a script of DDL statements, no parameters
};

// The migrations this binary knows, in order.
std::span<const Migration> MetadataMigrations();
// The schema version this binary writes: the last entry's version.
int LatestMetadataSchemaVersion();

// The version recorded in db (0 for a new database).
Result<int> ReadSchemaVersion(SqliteDb& db);
// Brings db up to the last of migrations (default: this binary's list).
// Applies nothing when already there; refuses a database whose version is
// newer than the list knows. applied_at is stamped with now.
Status ApplyMigrations(SqliteDb& db, Micros now,
                       std::span<const Migration> migrations = MetadataMigrations());

}  // namespace sluice
