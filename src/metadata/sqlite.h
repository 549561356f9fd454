// Move-only RAII wrappers over SQLite's C API: a database handle, a prepared
// statement and a write transaction. Every SQLite error becomes a Status whose
// message starts with the context given at Open ("metadata /x/meta.sqlite:
// database is locked"). Values are always bound as parameters; SQL text is
// never built from values. Not thread-safe: a SqliteDb and its statements are
// used by one thread at a time (callers hold their own lock).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice {

class SqliteStatement;
struct SqliteStatementCache;

class SqliteDb {
 public:
  SqliteDb() = default;
  SqliteDb(SqliteDb&&) noexcept = default;
  SqliteDb& operator=(SqliteDb&&) noexcept = default;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Opens (creating if needed) path read-write; ":memory:" opens a private
  // in-memory database. context prefixes every error message.
  static Result<SqliteDb> Open(const std::string& path, std::string context);

  // Compiles one statement; trailing text after it is an error. A
  // statement of the same text that is done with (destroyed) is reused,
  // reset and without bindings, instead of compiled again (the metadata
  // store runs the same few statements for every task of a run).
  Result<SqliteStatement> Prepare(std::string_view sql);
  // Runs a script of parameterless statements (DDL, pragmas), one at a time.
  Status Exec(std::string_view script);

  int64_t LastInsertRowid() const;
  int Changes() const;  // rows changed by the last INSERT/UPDATE/DELETE
  bool InTransaction() const;
  const std::string& context() const { return context_; }
  sqlite3* handle() const { return db_.get(); }

  // The Status for SQLite result code rc, with the handle's message.
  Status Error(int rc) const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::string context_;
  // Destroyed first (declared last): idle statements are finalized before
  // the handle closes.
  std::shared_ptr<SqliteStatementCache> cache_;
};

class SqliteStatement {
 public:
  SqliteStatement() = default;
  SqliteStatement(SqliteStatement&&) noexcept = default;
  SqliteStatement& operator=(SqliteStatement&&) noexcept = default;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based, as in SQLite. Text is copied by SQLite.
  Status BindInt64(int idx, int64_t value);
  Status BindDouble(int idx, double value);
  Status BindText(int idx, std::string_view value);
  Status BindNull(int idx);

  // Binds every argument in order, starting at parameter 1.
  template <typename... Args>
  Status BindAll(const Args&... args) {
    int idx = 0;
    Status st;
    ((st.ok() ? (void)(st = BindOne(++idx, args)) : (void)0), ...);
    return st;
  }

  // Advances one row: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, ignoring any rows (INSERT/UPDATE/DDL).
  Status Run();
  // Makes the statement runnable again; bindings are kept.
  void Reset();

  int64_t ColumnInt64(int col) const;     // 0-based; NULL reads as 0
  std::string ColumnText(int col) const;  // NULL reads as ""
  bool ColumnIsNull(int col) const;

 private:
  friend class SqliteDb;
  // Gives the statement back to its database's cache while that lives,
  // else finalizes it.
  struct Finalizer {
    std::weak_ptr<SqliteStatementCache> cache;
    std::string sql;
    void operator()(sqlite3_stmt* stmt) const;
  };
  SqliteStatement(sqlite3* db, std::string context, sqlite3_stmt* stmt,
                  std::weak_ptr<SqliteStatementCache> cache = {}, std::string sql = {})
      : db_(db),
        context_(std::move(context)),
        stmt_(stmt, Finalizer{std::move(cache), std::move(sql)}) {}
  Status Error(int rc) const;

  Status BindOne(int idx, int64_t value) { return BindInt64(idx, value); }
  Status BindOne(int idx, int value) { return BindInt64(idx, value); }
  Status BindOne(int idx, std::string_view value) { return BindText(idx, value); }
  Status BindOne(int idx, const std::string& value) { return BindText(idx, value); }
  Status BindOne(int idx, const char* value) { return BindText(idx, value); }

  sqlite3* db_ = nullptr;  // not owned: for error messages; close_v2 outlives us
  std::string context_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// BEGIN IMMEDIATE on construction (takes the write lock, waiting up to the
// busy timeout); ROLLBACK on destruction unless Commit() succeeded.
class SqliteTransaction {
 public:
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  ~SqliteTransaction();

  static Result<SqliteTransaction> Begin(SqliteDb& db);
  Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_ = nullptr;  // null once committed or rolled back
};

}  // namespace sluice
