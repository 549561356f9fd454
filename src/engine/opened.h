// What the engine holds while an environment is open (engine.h): shared by
// the engine's handlers, which live in more than one file. Internal to engine/.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/lookup.h"
#include "orchestrate/executor.h"
#include "orchestrate/holds.h"
#include "transform/publication.h"
#include "transform/rollback.h"

namespace sluice {

// Warehouse sessions for readers, kept between requests with the reads they
// keep prepared (Read's cache_tag), which a connection handed back to the
// warehouse's own pool forgets; a session goes back only after a read that
// ended (readers run one statement, never a transaction). Thread-safe.
class ReaderSessions {
 public:
  explicit ReaderSessions(Warehouse* warehouse) : warehouse_(warehouse) {}
  class Lease {
   public:
    Lease(ReaderSessions* pool, std::unique_ptr<WarehouseSession> session)
        : pool_(pool), session_(std::move(session)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (session_) pool_->Return(std::move(session_));
    }
    WarehouseSession& operator*() const { return *session_; }
    WarehouseSession* operator->() const { return session_.get(); }

   private:
    ReaderSessions* pool_;
    std::unique_ptr<WarehouseSession> session_;
  };
  Result<Lease> Take() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        std::unique_ptr<WarehouseSession> s = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(s));
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<WarehouseSession> s, warehouse_->Connect());
    return Lease(this, std::move(s));
  }

 private:
  static constexpr size_t kMaxIdle = 8;
  void Return(std::unique_ptr<WarehouseSession> session) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(session));
  }
  Warehouse* warehouse_;
  std::mutex mu_;
  std::vector<std::unique_ptr<WarehouseSession>> idle_;  // GUARDED_BY(mu_)
};

// What the project says about one asset, besides the graph (catalog.cpp).
struct AssetFacts {
  std::string description;
  std::string materialized;  // models: view | table | incremental | snapshot; else ""
  std::vector<std::string> key;
  std::vector<std::string> checks;  // check names, as configured
  std::string schedule;
  bool partitioned = false;
};
AssetFacts FactsOf(const Workspace& ws, const AssetNode& node);

// Column lineage of every asset (or only `only`): {asset: {"columns":
// [{"column", "sources": [{"asset", "column"}], "unknown"?}], "unknown"?}},
// from each model's parsed SQL and the published schemas (catalog.cpp).
Result<nlohmann::json> ColumnLineageOf(const Workspace& ws, const CurrentPublications::Map& current,
                                       const std::string& only);

// A check's result as the API shows it (the run's detail, an asset's page).
nlohmann::json CheckResultJson(const CheckResultRecord& result);

// The relations a table's answer depends on, with their newest
// publication: the table, and transitively the assets its publications
// were built from (a `view` model reads its upstreams at query time, so
// their publications change its answer). Empty `reason`: cacheable
// (data.cpp). Keys the dataset API's cache and says when an export is due.
struct DataVersion {
  std::string text;    // "stops@12/3,agency@9/1": asset@newest seq/partitions
  std::string reason;  // why it cannot be cached, or ""
};
DataVersion VersionOf(const std::string& table, const CurrentPublications::Map& current,
                      const Workspace* ws);

struct Engine::Opened {
  EnvironmentSpec env;
  std::unique_ptr<Warehouse> warehouse;
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<ObjectStore> lake;
  std::unique_ptr<RawArchive> archive;
  std::vector<std::string> external;  // the project's external: tables, readable by readers
  RepairReport startup_repairs;       // what opening repaired; the next run reports it
  CurrentPublications current;        // what is published, kept by the runs
  std::unique_ptr<SharedPublisher> publisher;  // every run's; keeps `current` at each commit
  AssetHolds holds;                            // what each run builds now
  // Readers' sessions; destroyed before the warehouse (declared after it).
  std::unique_ptr<ReaderSessions> readers;
  ConcurrencyLimits limits;  // tasks at once, every run together (the latest project's)
  LookupStore lookups;       // `server: {lookups:}` indexes, at the versions last read
};

}  // namespace sluice
