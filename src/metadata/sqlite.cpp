#include "metadata/sqlite.h"

#include <sqlite3.h>

#include <cctype>
#include <climits>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sluice {
namespace {

StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {  // the primary code of an extended result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kBusy;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StatusCode::kDataError;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
      return StatusCode::kIOError;
    default:
      return StatusCode::kInternal;
  }
}

Status ErrorFor(sqlite3* db, int rc, const std::string& context) {
  const char* msg = db ? sqlite3_errmsg(db) : nullptr;
  if (msg == nullptr || *msg == '\0') msg = sqlite3_errstr(rc);
  return Status(CodeFor(rc), context + ": " + msg);
}

bool IsBlank(std::string_view text) {
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

// Idle statements by SQL text, a few per text and a bounded number of texts
// (statements built with varying text are finalized, not kept).
struct SqliteStatementCache {
  static constexpr size_t kPerText = 4;
  static constexpr size_t kTexts = 256;
  std::mutex mu;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle;  // GUARDED_BY(mu)

  ~SqliteStatementCache() {
    for (auto& [sql, stmts] : idle) {
      for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
    }
  }
  sqlite3_stmt* Take(const std::string& sql) {
    std::lock_guard lock(mu);
    auto it = idle.find(sql);
    if (it == idle.end() || it->second.empty()) return nullptr;
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    return stmt;
  }
  void Put(const std::string& sql, sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    {
      std::lock_guard lock(mu);
      auto it = idle.find(sql);
      if (it == idle.end() && idle.size() < kTexts) it = idle.emplace(sql, 0).first;
      if (it != idle.end() && it->second.size() < kPerText) {
        it->second.push_back(stmt);
        return;
      }
    }
    sqlite3_finalize(stmt);
  }
};

void SqliteDb::Closer::operator()(sqlite3* db) const {
  // close_v2 defers the close until every statement is finalized.
  sqlite3_close_v2(db);
}

Result<SqliteDb> SqliteDb::Open(const std::string& path, std::string context) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  SqliteDb db;
  db.db_.reset(raw);  // owned even on failure: SQLite allocates a handle to report the error
  db.context_ = std::move(context);
  db.cache_ = std::make_shared<SqliteStatementCache>();
  if (rc != SQLITE_OK) return db.Error(rc);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status SqliteDb::Error(int rc) const { return ErrorFor(db_.get(), rc, context_); }

Status SqliteStatement::Error(int rc) const { return ErrorFor(db_, rc, context_); }

Result<SqliteStatement> SqliteDb::Prepare(std::string_view sql) {
  if (sql.size() > static_cast<size_t>(INT_MAX)) {
    return Status::Internal(context_ + ": statement too long");
  }
  std::string text(sql);
  if (cache_) {
    if (sqlite3_stmt* kept = cache_->Take(text)) {
      return SqliteStatement(db_.get(), context_, kept, cache_, std::move(text));
    }
  }
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  {
    // Freed on every way out but success; only a good statement is kept.
    SqliteStatement unkept(db_.get(), context_, raw);
    if (rc != SQLITE_OK) return Error(rc);
    if (raw == nullptr) return Status::Internal(context_ + ": empty statement");
    if (!IsBlank(std::string_view(tail, sql.data() + sql.size() - tail))) {
      return Status::Internal(context_ + ": more than one statement in Prepare()");
    }
    (void)unkept.stmt_.release();
  }
  return SqliteStatement(db_.get(), context_, raw, cache_, std::move(text));
}

Status SqliteDb::Exec(std::string_view script) {
  const char* pos = script.data();
  const char* end = script.data() + script.size();
  while (pos < end) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), pos, static_cast<int>(end - pos), &raw, &tail);
    SqliteStatement stmt(db_.get(), context_, raw);
    if (rc != SQLITE_OK) return Error(rc);
    pos = tail;
    if (raw == nullptr) continue;  // whitespace or a comment
    RETURN_IF_ERROR(stmt.Run());
  }
  return Status::Ok();
}

int64_t SqliteDb::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_.get()); }

int SqliteDb::Changes() const { return sqlite3_changes(db_.get()); }

bool SqliteDb::InTransaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

void SqliteStatement::Finalizer::operator()(sqlite3_stmt* stmt) const {
  if (std::shared_ptr<SqliteStatementCache> kept = cache.lock()) {
    kept->Put(sql, stmt);
  } else {
    sqlite3_finalize(stmt);
  }
}

Status SqliteStatement::BindInt64(int idx, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), idx, value);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc);
}

Status SqliteStatement::BindDouble(int idx, double value) {
  int rc = sqlite3_bind_double(stmt_.get(), idx, value);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc);
}

Status SqliteStatement::BindText(int idx, std::string_view value) {
  // SQLite takes the length as int (or uint64 with bind_text64); a NUL-free
  // empty view still needs a non-null pointer so the value is '' not NULL.
  int rc =
      sqlite3_bind_text64(stmt_.get(), idx, value.empty() ? "" : value.data(),
                          static_cast<sqlite3_uint64>(value.size()), SQLITE_TRANSIENT, SQLITE_UTF8);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc);
}

Status SqliteStatement::BindNull(int idx) {
  int rc = sqlite3_bind_null(stmt_.get(), idx);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc);
}

Result<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = Error(rc);
  sqlite3_reset(stmt_.get());
  return st;
}

Status SqliteStatement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void SqliteStatement::Reset() { sqlite3_reset(stmt_.get()); }

int64_t SqliteStatement::ColumnInt64(int col) const {
  return sqlite3_column_int64(stmt_.get(), col);
}

std::string SqliteStatement::ColumnText(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), col);
  if (text == nullptr) return std::string();
  int size = sqlite3_column_bytes(stmt_.get(), col);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

bool SqliteStatement::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}

Result<SqliteTransaction> SqliteTransaction::Begin(SqliteDb& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return SqliteTransaction(&db);
}

Status SqliteTransaction::Commit() {
  if (db_ == nullptr) return Status::Internal("transaction already finished");
  Status st = db_->Exec("COMMIT");
  if (st.ok()) db_ = nullptr;  // on failure the destructor rolls back
  return st;
}

SqliteTransaction::~SqliteTransaction() {
  // A failed statement may already have rolled the transaction back.
  if (db_ != nullptr && db_->InTransaction()) (void)db_->Exec("ROLLBACK");
}

}  // namespace sluice
