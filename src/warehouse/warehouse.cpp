#include "warehouse/warehouse.h"

#include <atomic>
#include <cctype>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/strings.h"

namespace sluice {
namespace {

// Connections kept between sessions: a task's session takes an idle one, its
// settings made, instead of connecting and setting file_search_path again (a
// statement of 0.10-0.13 ms for every model built). A connection goes back only
// when nothing of its session can show in the next (DuckDbSession::Reusable).
class ConnectionPool {
 public:
  std::optional<DuckDbConnection> Take() {
    std::lock_guard lock(mu_);
    if (idle_.empty()) return std::nullopt;
    DuckDbConnection conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }
  void Give(DuckDbConnection conn) {
    conn.ForgetReads();  // a session starts with none, as on a new connection
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(conn));
  }

 private:
  static constexpr size_t kMaxIdle = 64;
  std::mutex mu_;
  std::vector<DuckDbConnection> idle_;
};

// Whether a statement may leave something on its connection that outlives
// it: a setting (SET, RESET, USE, PRAGMA), an attached database, a
// temporary table or macro, a named prepared statement, a transaction
// begun or ended in text of its own. Word by word, strings and identifiers
// included: a false alarm costs only a new connection for the next session.
// (END and START, which DuckDB also takes for COMMIT and BEGIN, are left
// out: CASE ... END is everywhere, and what users write reaches a session
// inside a statement of Sluice's — a model is one SELECT, sql_refs.h.)
bool MayChangeConnection(std::string_view sql) {
  static const std::set<std::string, std::less<>> kWords = {
      "ABORT",    "ATTACH",  "BEGIN", "COMMIT",    "DEALLOCATE", "DETACH",
      "EXECUTE",  "INSTALL", "LOAD",  "PRAGMA",    "PREPARE",    "RESET",
      "ROLLBACK", "SET",     "TEMP",  "TEMPORARY", "USE"};
  std::string word;
  for (size_t i = 0; i <= sql.size(); ++i) {
    const char c = i < sql.size() ? sql[i] : ' ';
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      if (word.size() <= 10) word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      continue;
    }
    if (!word.empty() && kWords.count(word)) return true;
    word.clear();
  }
  return false;
}

class DuckDbSession final : public WarehouseSession {
 public:
  DuckDbSession(DuckDbConnection conn, std::weak_ptr<ConnectionPool> pool)
      : conn_(std::move(conn)), pool_(std::move(pool)) {}
  ~DuckDbSession() override {
    if (!Reusable()) return;
    if (std::shared_ptr<ConnectionPool> pool = pool_.lock()) pool->Give(std::move(conn_));
  }
  Status Execute(const std::string& sql) override {
    Note(sql);
    return Noted(conn_.Execute(sql));
  }
  Result<QueryResult> Query(const std::string& sql) override {
    Note(sql);
    return Noted(conn_.Query(sql));
  }
  Result<QueryResult> QueryBound(const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params) override {
    Note(sql);
    return Noted([&]() -> Result<QueryResult> {
      ASSIGN_OR_RETURN(DuckDbPrepared st, conn_.Prepare(sql));
      for (size_t i = 0; i < params.size(); ++i) RETURN_IF_ERROR(st.Bind(i + 1, params[i]));
      return st.Execute();
    }());
  }
  Status Read(const std::string& select_sql, RenderFormat format, const RowVisitor& visitor,
              const std::vector<std::optional<std::string>>& params,
              const std::string& cache_tag) override {
    Note(select_sql);
    return Noted(conn_.ReadRendered(select_sql, format, visitor, params, cache_tag));
  }
  void Interrupt() override {
    interrupted_ = true;  // it may land after its statement ended: never reused
    conn_.Interrupt();
  }

 private:
  // Whether the next session may have this one's connection: no
  // transaction open, nothing failed or interrupted (a failed statement may
  // leave a transaction that takes no more), nothing changed on it.
  bool Reusable() const { return !changed_ && !in_transaction_ && !interrupted_; }
  void Note(const std::string& sql) {
    if (sql == "BEGIN TRANSACTION") {
      changed_ = changed_ || in_transaction_;
      in_transaction_ = true;
    } else if (sql == "COMMIT" || sql == "ROLLBACK") {
      in_transaction_ = false;
    } else if (!changed_ && MayChangeConnection(sql)) {
      changed_ = true;
    }
  }
  template <typename T>
  T Noted(T result) {
    if (!result.ok()) changed_ = true;
    return result;
  }

  DuckDbConnection conn_;
  std::weak_ptr<ConnectionPool> pool_;
  bool in_transaction_ = false;
  bool changed_ = false;
  std::atomic<bool> interrupted_ = false;
};

class DuckDbWarehouse final : public Warehouse {
 public:
  DuckDbWarehouse(DuckDbDatabase db, std::string file_search_path)
      : db_(std::move(db)), file_search_path_(std::move(file_search_path)) {}
  Result<std::unique_ptr<WarehouseSession>> Connect() override {
    std::optional<DuckDbConnection> idle = pool_->Take();
    if (!idle) {
      ASSIGN_OR_RETURN(DuckDbConnection conn, db_.Connect());
      if (!file_search_path_.empty()) {
        // A session setting in DuckDB (it cannot be set globally).
        RETURN_IF_ERROR(conn.Execute("SET file_search_path = " + QuoteLiteral(file_search_path_)));
      }
      idle = std::move(conn);
    }
    return std::unique_ptr<WarehouseSession>(
        std::make_unique<DuckDbSession>(std::move(*idle), pool_));
  }
  std::string EngineVersion() const override { return "duckdb " + DuckDbLibraryVersion(); }

 private:
  DuckDbDatabase db_;
  std::string file_search_path_;
  // After db_: its connections close before the database does.
  std::shared_ptr<ConnectionPool> pool_ = std::make_shared<ConnectionPool>();
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
