#include "warehouse/duckdb.h"

#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"

namespace sluice {
namespace {

constexpr const char* kExpectedDuckDbVersion = "v1.4.4";

Status ResultError(duckdb_result* result, const std::string& sql) {
  const char* err = duckdb_result_error(result);
  std::string msg = err ? err : "unknown DuckDB error";
  // DuckDB 1.4's C API repeats the "LINE n:" context block; keep one.
  const std::string marker = "\n\nLINE ";
  size_t first = msg.find(marker);
  if (first != std::string::npos) {
    size_t second = msg.find(marker, first + marker.size());
    if (second != std::string::npos &&
        msg.compare(first, second - first, msg, second, std::string::npos) == 0) {
      msg.resize(second);
    }
    // The context already shows the SQL.
    return Status::Invalid(Redact(msg));
  }
  std::string head = Redact(sql);  // before the cut, so no secret's prefix survives it
  if (head.size() > 200) head = head.substr(0, 200) + "...";
  return Status::Invalid(Redact(msg) + "\n  in SQL: " + head);
}

const char* TypeName(duckdb_type type) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_ENUM:
      return "ENUM";
    case DUCKDB_TYPE_LIST:
      return "LIST";
    case DUCKDB_TYPE_STRUCT:
      return "STRUCT";
    case DUCKDB_TYPE_MAP:
      return "MAP";
    case DUCKDB_TYPE_ARRAY:
      return "ARRAY";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_UNION:
      return "UNION";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_SQLNULL:
      return "NULL";
    default:
      return "OTHER";
  }
}

QueryResult Materialize(duckdb_result* result) {
  QueryResult out;
  idx_t ncols = duckdb_column_count(result);
  for (idx_t c = 0; c < ncols; ++c) {
    out.columns.emplace_back(duckdb_column_name(result, c));
    out.types.emplace_back(TypeName(duckdb_column_type(result, c)));
  }
  idx_t nrows = duckdb_row_count(result);
  out.rows.reserve(nrows);
  for (idx_t r = 0; r < nrows; ++r) {
    std::vector<std::optional<std::string>> row(ncols);
    for (idx_t c = 0; c < ncols; ++c) {
      if (duckdb_value_is_null(result, c, r)) continue;
      char* v = duckdb_value_varchar(result, c, r);
      if (v) {
        row[c] = std::string(v);
        duckdb_free(v);
      }
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace

size_t QueryResult::ColumnIndex(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return i;
  }
  return std::string::npos;
}

int64_t QueryResult::ScalarInt() const {
  auto v = Scalar();
  return v ? std::stoll(*v) : 0;
}

std::optional<std::string> QueryResult::Scalar() const {
  if (rows.empty() || rows[0].empty()) return std::nullopt;
  return rows[0][0];
}

DuckDbDatabase::~DuckDbDatabase() {
  if (db_) duckdb_close(&db_);
}

DuckDbDatabase& DuckDbDatabase::operator=(DuckDbDatabase&& other) noexcept {
  if (this != &other) {
    if (db_) duckdb_close(&db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Result<DuckDbDatabase> DuckDbDatabase::Open(const std::string& path, const DuckDbOptions& options) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) != DuckDBSuccess) {
    return Status::Internal("DuckDB: cannot create config");
  }
  std::string bad_setting;
  auto set = [&](const char* key, const std::string& value) {
    if (duckdb_set_config(config, key, value.c_str()) == DuckDBSuccess) return true;
    if (bad_setting.empty()) bad_setting = std::string(key) + "='" + value + "'";
    return false;
  };
  bool ok = set("memory_limit", options.memory_limit);
  if (!options.temp_directory.empty()) ok = ok && set("temp_directory", options.temp_directory);
  if (options.threads > 0) ok = ok && set("threads", std::to_string(options.threads));
  if (options.read_only) ok = ok && set("access_mode", "READ_ONLY");
  // Only a file DuckDB creates takes it; an existing one keeps its own.
  if (options.block_size > 0)
    ok = ok && set("default_block_size", std::to_string(options.block_size));
  // The default, stated: column phases number records by the rowids of a
  // build that keeps its input's order (transform/phases.cpp).
  ok = ok && set("preserve_insertion_order", "true");
  // Sluice does its own HTTP; never let DuckDB download extensions.
  ok = ok && set("autoinstall_known_extensions", "false");
  ok = ok && set("autoload_known_extensions", "false");
  if (!ok) {
    duckdb_destroy_config(&config);
    return Status::Invalid("DuckDB refused the setting " + bad_setting);
  }
  DuckDbDatabase db;
  char* error = nullptr;
  const char* p = path.empty() ? nullptr : path.c_str();
  duckdb_state state = duckdb_open_ext(p, &db.db_, config, &error);
  duckdb_destroy_config(&config);
  if (state != DuckDBSuccess) {
    std::string msg = error ? error : "unknown error";
    if (error) duckdb_free(error);
    return Status::IOError("cannot open warehouse " + path + ": " + msg);
  }
  // Times with a zone read the same on every machine (ICU's setting, so not
  // one duckdb_set_config knows).
  ASSIGN_OR_RETURN(DuckDbConnection conn, db.Connect());
  RETURN_IF_ERROR(conn.Execute("SET GLOBAL TimeZone = 'UTC'"));
  return db;
}

Result<int64_t> DuckDbDatabase::BlockSize() {
  ASSIGN_OR_RETURN(DuckDbConnection conn, Connect());
  ASSIGN_OR_RETURN(QueryResult r, conn.Query("SELECT block_size FROM pragma_database_size() "
                                             "WHERE database_name = current_database()"));
  std::optional<std::string> size = r.Scalar();
  if (!size) return Status::Internal("DuckDB: no block size for the open database");
  return std::stoll(*size);
}

Result<DuckDbConnection> DuckDbDatabase::Connect() {
  duckdb_connection conn = nullptr;
  if (duckdb_connect(db_, &conn) != DuckDBSuccess) {
    return Status::IOError("DuckDB: cannot connect");
  }
  return DuckDbConnection(conn);
}

struct DuckDbConnection::ReadCache {
  struct Entry {
    DuckDbPrepared outer;
    std::vector<RenderedColumn> columns;
  };
  static constexpr size_t kMaxEntries = 64;
  std::unordered_map<std::string, Entry> entries;
};

DuckDbConnection::~DuckDbConnection() {
  read_cache_.reset();  // its statements before their connection
  if (conn_) duckdb_disconnect(&conn_);
}

DuckDbConnection& DuckDbConnection::operator=(DuckDbConnection&& other) noexcept {
  if (this != &other) {
    read_cache_.reset();
    if (conn_) duckdb_disconnect(&conn_);
    conn_ = std::exchange(other.conn_, nullptr);
    read_cache_ = std::move(other.read_cache_);
  }
  return *this;
}

namespace {

// `sluice -vv`: each statement with its time (where a run's time goes).
class StatementTrace {
 public:
  explicit StatementTrace(const std::string& sql)
      : sql_(LogEnabled(LogLevel::kDebug) ? &sql : nullptr),
        start_(sql_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point()) {}
  ~StatementTrace() {
    if (!sql_) return;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    std::string text = sql_->substr(0, 160);
    for (char& c : text) {
      if (c == '\n') c = ' ';
    }
    LOG_DEBUG("sql", "{:.3f} ms: {}", us / 1000.0, Redact(text));
  }
  StatementTrace(const StatementTrace&) = delete;
  StatementTrace& operator=(const StatementTrace&) = delete;

 private:
  const std::string* sql_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

Status DuckDbConnection::Execute(const std::string& sql) {
  StatementTrace trace(sql);
  duckdb_result result;
  duckdb_state state = duckdb_query(conn_, sql.c_str(), &result);
  Status st = state == DuckDBSuccess ? Status::Ok() : ResultError(&result, sql);
  duckdb_destroy_result(&result);
  return st;
}

Result<QueryResult> DuckDbConnection::Query(const std::string& sql) {
  StatementTrace trace(sql);
  duckdb_result result;
  duckdb_state state = duckdb_query(conn_, sql.c_str(), &result);
  if (state != DuckDBSuccess) {
    Status st = ResultError(&result, sql);
    duckdb_destroy_result(&result);
    return st;
  }
  QueryResult out = Materialize(&result);
  duckdb_destroy_result(&result);
  return out;
}

Result<DuckDbPrepared> DuckDbConnection::Prepare(const std::string& sql) {
  duckdb_prepared_statement stmt = nullptr;
  if (duckdb_prepare(conn_, sql.c_str(), &stmt) != DuckDBSuccess) {
    const char* err = duckdb_prepare_error(stmt);
    std::string msg = err ? err : "unknown error";
    duckdb_destroy_prepare(&stmt);
    return Status::Invalid(Redact(msg + "\n  in SQL: " + sql));
  }
  return DuckDbPrepared(stmt);
}

Result<DuckDbAppender> DuckDbConnection::Appender(const std::string& schema,
                                                  const std::string& table) {
  duckdb_appender app = nullptr;
  if (duckdb_appender_create(conn_, schema.c_str(), table.c_str(), &app) != DuckDBSuccess) {
    const char* err = duckdb_appender_error(app);
    std::string msg = err ? err : "unknown error";
    duckdb_appender_destroy(&app);
    return Status::Invalid("cannot append to " + schema + "." + table + ": " + msg);
  }
  return DuckDbAppender(app);
}

void DuckDbConnection::Interrupt() {
  if (conn_) duckdb_interrupt(conn_);
}

Status DuckDbConnection::ReadRendered(const std::string& select_sql, RenderFormat format,
                                      const RowVisitor& visitor,
                                      const std::vector<std::optional<std::string>>& params,
                                      const std::string& cache_tag) {
  // A trailing ';' or comment must not swallow the wrapper's closing parenthesis.
  std::string sql = select_sql;
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) {
    sql.pop_back();
  }
  std::string cache_key;
  if (!cache_tag.empty()) {
    cache_key = cache_tag + '\x1f' + std::to_string(static_cast<int>(format)) + '\x1f' + sql;
    if (read_cache_) {
      auto it = read_cache_->entries.find(cache_key);
      if (it != read_cache_->entries.end()) {
        if (visitor.columns) RETURN_IF_ERROR(visitor.columns(it->second.columns));
        duckdb_clear_bindings(it->second.outer.stmt_);
        return StreamPrepared(it->second.outer, it->second.columns.size(), params, sql, visitor);
      }
    }
  }
  ASSIGN_OR_RETURN(DuckDbPrepared inner, Prepare(sql));
  if (duckdb_prepared_statement_type(inner.stmt_) != DUCKDB_STATEMENT_TYPE_SELECT) {
    return Status::Invalid("only a SELECT statement can be read");
  }
  idx_t ncols = duckdb_prepared_statement_column_count(inner.stmt_);
  std::vector<RenderedColumn> columns;
  std::vector<std::string> exprs;
  for (idx_t c = 0; c < ncols; ++c) {
    const char* raw_name = duckdb_prepared_statement_column_name(inner.stmt_, c);
    std::string name = raw_name ? raw_name : "";
    if (raw_name) duckdb_free(const_cast<char*>(raw_name));
    duckdb_logical_type type = duckdb_prepared_statement_column_logical_type(inner.stmt_, c);
    columns.push_back(RenderColumn(c + 1, name, type, format));
    duckdb_destroy_logical_type(&type);
    exprs.push_back(columns.back().sql);
  }
  inner = DuckDbPrepared();
  if (visitor.columns) RETURN_IF_ERROR(visitor.columns(columns));
  ASSIGN_OR_RETURN(DuckDbPrepared outer, Prepare("SELECT " + Join(exprs, ", ") + " FROM (\n" + sql +
                                                 "\n) AS sluice_read"));
  if (cache_key.empty()) return StreamPrepared(outer, ncols, params, sql, visitor);
  if (!read_cache_) read_cache_ = std::make_shared<ReadCache>();
  if (read_cache_->entries.size() >= ReadCache::kMaxEntries) read_cache_->entries.clear();
  ReadCache::Entry& entry = read_cache_->entries[cache_key];
  entry.outer = std::move(outer);
  entry.columns = std::move(columns);
  return StreamPrepared(entry.outer, ncols, params, sql, visitor);
}

Status DuckDbConnection::StreamPrepared(DuckDbPrepared& outer, size_t ncols,
                                        const std::vector<std::optional<std::string>>& params,
                                        const std::string& sql, const RowVisitor& visitor) {
  for (size_t i = 0; i < params.size(); ++i) RETURN_IF_ERROR(outer.Bind(i + 1, params[i]));
  duckdb_pending_result pending = nullptr;
  if (duckdb_pending_prepared_streaming(outer.stmt_, &pending) != DuckDBSuccess) {
    const char* err = pending ? duckdb_pending_error(pending) : nullptr;
    std::string msg = err ? err : "cannot start the query";
    duckdb_destroy_pending(&pending);
    return Status::Invalid(Redact(msg));
  }
  duckdb_result result;
  duckdb_state state = duckdb_execute_pending(pending, &result);
  duckdb_destroy_pending(&pending);
  if (state != DuckDBSuccess) {
    Status st = ResultError(&result, sql);
    duckdb_destroy_result(&result);
    return st;
  }
  // Freed whatever happens, a visitor that throws too (a streaming
  // client gone): a result left alive keeps its read transaction open.
  struct ResultGuard {
    duckdb_result* result;
    duckdb_data_chunk chunk = nullptr;
    ~ResultGuard() {
      if (chunk) duckdb_destroy_data_chunk(&chunk);
      duckdb_destroy_result(result);
    }
  } guard{&result};
  Status st;
  std::vector<std::optional<std::string_view>> row(ncols);
  std::vector<duckdb_string_t*> data(ncols);
  std::vector<uint64_t*> validity(ncols);
  for (bool more = true; more;) {
    duckdb_data_chunk& chunk = guard.chunk;
    chunk = duckdb_fetch_chunk(result);
    if (!chunk) {
      const char* err = duckdb_result_error(&result);
      if (err && *err) st = ResultError(&result, sql);
      break;
    }
    idx_t size = duckdb_data_chunk_get_size(chunk);
    for (idx_t c = 0; c < ncols; ++c) {
      duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
      data[c] = static_cast<duckdb_string_t*>(duckdb_vector_get_data(vec));
      validity[c] = duckdb_vector_get_validity(vec);
    }
    for (idx_t r = 0; r < size && more; ++r) {
      for (idx_t c = 0; c < ncols; ++c) {
        if (validity[c] && !duckdb_validity_row_is_valid(validity[c], r)) {
          row[c].reset();
        } else {
          row[c] = std::string_view(duckdb_string_t_data(&data[c][r]),
                                    duckdb_string_t_length(data[c][r]));
        }
      }
      more = visitor.row(row);
    }
    duckdb_destroy_data_chunk(&chunk);  // nulls it
    if (size == 0) break;
  }
  return st;
}

DuckDbPrepared::~DuckDbPrepared() {
  if (stmt_) duckdb_destroy_prepare(&stmt_);
}

DuckDbPrepared& DuckDbPrepared::operator=(DuckDbPrepared&& other) noexcept {
  if (this != &other) {
    if (stmt_) duckdb_destroy_prepare(&stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Status DuckDbPrepared::Bind(size_t index, const std::optional<std::string>& value) {
  duckdb_state st = value ? duckdb_bind_varchar_length(stmt_, index, value->data(), value->size())
                          : duckdb_bind_null(stmt_, index);
  if (st != DuckDBSuccess) return Status::Invalid("cannot bind parameter " + std::to_string(index));
  return Status::Ok();
}

Status DuckDbPrepared::BindInt(size_t index, int64_t value) {
  if (duckdb_bind_int64(stmt_, index, value) != DuckDBSuccess) {
    return Status::Invalid("cannot bind parameter " + std::to_string(index));
  }
  return Status::Ok();
}

Result<QueryResult> DuckDbPrepared::Execute() {
  duckdb_result result;
  if (duckdb_execute_prepared(stmt_, &result) != DuckDBSuccess) {
    Status st = ResultError(&result, "(prepared statement)");
    duckdb_destroy_result(&result);
    return st;
  }
  QueryResult out = Materialize(&result);
  duckdb_destroy_result(&result);
  return out;
}

DuckDbAppender::~DuckDbAppender() {
  if (app_) duckdb_appender_destroy(&app_);
}

DuckDbAppender& DuckDbAppender::operator=(DuckDbAppender&& other) noexcept {
  if (this != &other) {
    if (app_) duckdb_appender_destroy(&app_);
    app_ = std::exchange(other.app_, nullptr);
  }
  return *this;
}

Status DuckDbAppender::AppendRow(const std::vector<std::optional<std::string>>& values) {
  for (const auto& v : values) {
    duckdb_state st =
        v ? duckdb_append_varchar_length(app_, v->data(), v->size()) : duckdb_append_null(app_);
    if (st != DuckDBSuccess) {
      const char* err = duckdb_appender_error(app_);
      return Status::DataError(std::string("append failed: ") + (err ? err : "unknown"));
    }
  }
  if (duckdb_appender_end_row(app_) != DuckDBSuccess) {
    const char* err = duckdb_appender_error(app_);
    return Status::DataError(std::string("append failed: ") + (err ? err : "unknown"));
  }
  return Status::Ok();
}

Status DuckDbAppender::Close() {
  if (duckdb_appender_close(app_) != DuckDBSuccess) {
    const char* err = duckdb_appender_error(app_);
    return Status::DataError(std::string("append failed: ") + (err ? err : "unknown"));
  }
  return Status::Ok();
}

std::string DuckDbLibraryVersion() { return duckdb_library_version(); }

Status CheckDuckDbVersion() {
  std::string v = DuckDbLibraryVersion();
  if (v != kExpectedDuckDbVersion) {
    return Status::Internal("libduckdb is " + v + " but Sluice was built for " +
                            kExpectedDuckDbVersion +
                            "; run scripts/bootstrap.sh or point DUCKDB_PREFIX at the right one");
  }
  return Status::Ok();
}

}  // namespace sluice
