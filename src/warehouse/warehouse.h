// The warehouse: where tables are built and published. DuckDB through its C
// API is the one implementation today; PostgreSQL plugs in behind the same
// interface later. A Warehouse is shared by all tasks; each task opens its
// own Session, so a watchdog can interrupt one task's statement without
// touching the others. Warehouse is thread-safe; a Session is used by one
// thread at a time, except Interrupt(), which any thread may call.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "warehouse/duckdb.h"

namespace sluice {

class WarehouseSession {
 public:
  virtual ~WarehouseSession() = default;
  virtual Status Execute(const std::string& sql) = 0;
  virtual Result<QueryResult> Query(const std::string& sql) = 0;
  // One statement with $1, $2, ... bound to params (text cast by the engine
  // to what each place asks for; nullopt: NULL).
  virtual Result<QueryResult> QueryBound(const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params) = 0;
  // Streams one SELECT's rows, every value rendered for readers (render.h).
  // params bind $1, $2, ...; a cache_tag keeps the statement prepared on
  // this session (DuckDbConnection::ReadRendered).
  virtual Status Read(const std::string& select_sql, RenderFormat format, const RowVisitor& visitor,
                      const std::vector<std::optional<std::string>>& params = {},
                      const std::string& cache_tag = "") = 0;
  // Cancels the running statement, if any.
  virtual void Interrupt() = 0;
  // Runs fn inside BEGIN/COMMIT, rolling back when it fails.
  Status InTransaction(const std::function<Status()>& fn);
};

class Warehouse {
 public:
  virtual ~Warehouse() = default;
  virtual Result<std::unique_ptr<WarehouseSession>> Connect() = 0;
  // e.g. "duckdb v1.4.4": part of every version fingerprint.
  virtual std::string EngineVersion() const = 0;
};

// Whether a failed statement may succeed when run again unchanged: a lock
// held by another process, a write-write conflict. Binder, parser and
// conversion errors never do.
bool IsTransientWarehouseError(const Status& status);

// Opens (creating) a DuckDB database file with an explicit memory limit and
// temp directory.
Result<std::unique_ptr<Warehouse>> OpenDuckDbWarehouse(const std::string& path,
                                                       const DuckDbOptions& options);

}  // namespace sluice
