#include "warehouse/warehouse.h"

#include <functional>

#include "core/log.h"
#include "core/strings.h"

namespace sluice {
namespace {

class DuckDbSession final : public WarehouseSession {
 public:
  explicit DuckDbSession(DuckDbConnection conn) : conn_(std::move(conn)) {}
  Status Execute(const std::string& sql) override { return conn_.Execute(sql); }
  Result<QueryResult> Query(const std::string& sql) override { return conn_.Query(sql); }
  Result<QueryResult> QueryBound(const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params) override {
    ASSIGN_OR_RETURN(DuckDbPrepared st, conn_.Prepare(sql));
    for (size_t i = 0; i < params.size(); ++i) RETURN_IF_ERROR(st.Bind(i + 1, params[i]));
    return st.Execute();
  }
  Status Read(const std::string& select_sql, RenderFormat format, const RowVisitor& visitor,
              const std::vector<std::optional<std::string>>& params,
              const std::string& cache_tag) override {
    return conn_.ReadRendered(select_sql, format, visitor, params, cache_tag);
  }
  void Interrupt() override { conn_.Interrupt(); }

 private:
  DuckDbConnection conn_;
};

class DuckDbWarehouse final : public Warehouse {
 public:
  DuckDbWarehouse(DuckDbDatabase db, std::string file_search_path)
      : db_(std::move(db)), file_search_path_(std::move(file_search_path)) {}
  Result<std::unique_ptr<WarehouseSession>> Connect() override {
    ASSIGN_OR_RETURN(DuckDbConnection conn, db_.Connect());
    if (!file_search_path_.empty()) {
      // A session setting in DuckDB (it cannot be set globally).
      RETURN_IF_ERROR(conn.Execute("SET file_search_path = " + QuoteLiteral(file_search_path_)));
    }
    return std::unique_ptr<WarehouseSession>(std::make_unique<DuckDbSession>(std::move(conn)));
  }
  std::string EngineVersion() const override { return "duckdb " + DuckDbLibraryVersion(); }

 private:
  DuckDbDatabase db_;
  std::string file_search_path_;
};

}  // namespace

Status WarehouseSession::InTransaction(const std::function<Status()>& fn) {
  RETURN_IF_ERROR(Execute("BEGIN TRANSACTION"));
  Status st = fn();
  if (st.ok()) st = Execute("COMMIT");
  if (!st.ok()) (void)Execute("ROLLBACK");
  return st;
}

bool IsTransientWarehouseError(const Status& status) {
  if (status.ok()) return false;
  const std::string& m = status.message();
  for (const char* transient : {"Could not set lock", "write-write conflict", "Conflict on tuple",
                                "Resource temporarily unavailable"}) {
    if (m.find(transient) != std::string::npos) return true;
  }
  return false;
}

Result<std::unique_ptr<Warehouse>> OpenDuckDbWarehouse(const std::string& path,
                                                       const DuckDbOptions& options) {
  ASSIGN_OR_RETURN(DuckDbDatabase db, DuckDbDatabase::Open(path, options));
  if (options.block_size > 0) {
    // A remark, never a reason to refuse the warehouse.
    Result<int64_t> made_with = db.BlockSize();
    if (!made_with.ok()) {
      LOG_WARN("warehouse", "cannot read the block size of {}: {}", path,
               made_with.status().message());
    } else if (*made_with != options.block_size) {
      LOG_WARN("warehouse",
               "{} keeps the block size it was made with, {} KiB: defaults.block_size ({} KiB) "
               "applies only when Sluice creates a warehouse file, as for a new environment",
               path, *made_with / 1024, options.block_size / 1024);
    }
  }
  return std::unique_ptr<Warehouse>(
      std::make_unique<DuckDbWarehouse>(std::move(db), options.file_search_path));
}

}  // namespace sluice
