// Move-only RAII wrappers over DuckDB's C API (the only stable ABI of the
// prebuilt library). Each turns DuckDB's error into a Status with the SQL's
// context. A Database is shared by many Connections; a Connection is used by
// one thread at a time, but may be interrupted from any thread.
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "warehouse/render.h"

namespace sluice {

// A fully materialised query result, values as text (NULL as nullopt).
struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::string> types;  // DuckDB logical type names
  std::vector<std::vector<std::optional<std::string>>> rows;

  size_t ColumnIndex(const std::string& name) const;  // npos when absent
  // rows[0][0] as int64 (0 when empty or NULL).
  int64_t ScalarInt() const;
  std::optional<std::string> Scalar() const;
};

// Receives a rendered result: the columns once, then each row (values as
// text, nullopt for NULL). A row callback returning false ends the read early.
struct RowVisitor {
  std::function<Status(const std::vector<RenderedColumn>&)> columns;
  std::function<bool(const std::vector<std::optional<std::string_view>>&)> row;
};

struct DuckDbOptions {
  std::string memory_limit = "2GB";
  std::string temp_directory;    // empty: DuckDB's default next to the file
  int threads = 0;               // 0: DuckDB's default
  std::string file_search_path;  // where relative file paths in SQL resolve
  bool read_only = false;
  // A new database file's block size in bytes (a power of two, 16 KiB to
  // 256 KiB); 0: DuckDB's default, 256 KiB. A file keeps the size it was
  // made with (DuckDbDatabase::BlockSize).
  int64_t block_size = 0;
};

class DuckDbConnection;

class DuckDbDatabase {
 public:
  DuckDbDatabase() = default;
  ~DuckDbDatabase();
  DuckDbDatabase(DuckDbDatabase&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  DuckDbDatabase& operator=(DuckDbDatabase&& other) noexcept;
  DuckDbDatabase(const DuckDbDatabase&) = delete;
  DuckDbDatabase& operator=(const DuckDbDatabase&) = delete;

  // path "" or ":memory:" opens an in-memory database.
  static Result<DuckDbDatabase> Open(const std::string& path, const DuckDbOptions& options);
  Result<DuckDbConnection> Connect();
  // The block size the open file was made with, in bytes.
  Result<int64_t> BlockSize();
  duckdb_database handle() const { return db_; }

 private:
  duckdb_database db_ = nullptr;
};

class DuckDbPrepared;
class DuckDbAppender;

class DuckDbConnection {
 public:
  DuckDbConnection() = default;
  ~DuckDbConnection();
  DuckDbConnection(DuckDbConnection&& other) noexcept
      : conn_(std::exchange(other.conn_, nullptr)), read_cache_(std::move(other.read_cache_)) {}
  DuckDbConnection& operator=(DuckDbConnection&& other) noexcept;
  DuckDbConnection(const DuckDbConnection&) = delete;
  DuckDbConnection& operator=(const DuckDbConnection&) = delete;

  Status Execute(const std::string& sql);
  Result<QueryResult> Query(const std::string& sql);
  Result<DuckDbPrepared> Prepare(const std::string& sql);
  // Runs one SELECT and streams its rows chunk by chunk, every value rendered
  // by RenderColumn (so every DuckDB type reads correctly). The caller has
  // checked the statement: it is bound here.
  // params bind $1, $2, ... as text (nullopt: NULL), each cast by the
  // engine to the type its place in the statement asks for.
  // A non-empty cache_tag keeps the prepared statement and its rendering on
  // this connection under (tag, format, SQL), so the same statement read
  // again with other values is neither parsed nor planned: the tag must
  // change whenever the result's columns may (the dataset API passes the
  // publications the statement reads).
  Status ReadRendered(const std::string& select_sql, RenderFormat format, const RowVisitor& visitor,
                      const std::vector<std::optional<std::string>>& params = {},
                      const std::string& cache_tag = "");
  Result<DuckDbAppender> Appender(const std::string& schema, const std::string& table);
  // Cancels the statement running on this connection (from any thread).
  void Interrupt();
  // Drops the reads kept prepared (ReadRendered's cache_tag).
  void ForgetReads() { read_cache_.reset(); }
  duckdb_connection handle() const { return conn_; }

 private:
  friend class DuckDbDatabase;
  explicit DuckDbConnection(duckdb_connection conn) : conn_(conn) {}
  duckdb_connection conn_ = nullptr;
  struct ReadCache;                        // prepared reads by (tag, format, SQL); duckdb.cpp
  std::shared_ptr<ReadCache> read_cache_;  // shared_ptr: the type is complete only in duckdb.cpp
  // Binds params to a prepared read and streams its rendered rows.
  Status StreamPrepared(DuckDbPrepared& outer, size_t ncols,
                        const std::vector<std::optional<std::string>>& params,
                        const std::string& sql, const RowVisitor& visitor);
};

class DuckDbPrepared {
 public:
  DuckDbPrepared() = default;
  ~DuckDbPrepared();
  DuckDbPrepared(DuckDbPrepared&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  DuckDbPrepared& operator=(DuckDbPrepared&& other) noexcept;
  DuckDbPrepared(const DuckDbPrepared&) = delete;
  DuckDbPrepared& operator=(const DuckDbPrepared&) = delete;

  // Binds parameter index (1-based) to text, or NULL when value is nullopt.
  Status Bind(size_t index, const std::optional<std::string>& value);
  Status BindInt(size_t index, int64_t value);
  Result<QueryResult> Execute();
  bool valid() const { return stmt_ != nullptr; }

 private:
  friend class DuckDbConnection;
  explicit DuckDbPrepared(duckdb_prepared_statement stmt) : stmt_(stmt) {}
  duckdb_prepared_statement stmt_ = nullptr;
};

class DuckDbAppender {
 public:
  DuckDbAppender() = default;
  ~DuckDbAppender();
  DuckDbAppender(DuckDbAppender&& other) noexcept : app_(std::exchange(other.app_, nullptr)) {}
  DuckDbAppender& operator=(DuckDbAppender&& other) noexcept;
  DuckDbAppender(const DuckDbAppender&) = delete;
  DuckDbAppender& operator=(const DuckDbAppender&) = delete;

  Status AppendRow(const std::vector<std::optional<std::string>>& values);
  Status Close();

 private:
  friend class DuckDbConnection;
  explicit DuckDbAppender(duckdb_appender app) : app_(app) {}
  duckdb_appender app_ = nullptr;
};

// The library version the binary runs with, e.g. "v1.4.4".
std::string DuckDbLibraryVersion();
// Fails when the loaded library is not the version Sluice was built for.
Status CheckDuckDbVersion();

}  // namespace sluice
