// Versions and publication (DESIGN §5, write-audit-publish). A build goes
// into a physical relation _sluice_v."<asset>__<version>"; the public name is
// a view on the published one. Publishing is one warehouse transaction that
// repoints the view and appends to _sluice.publications, so the warehouse is
// the commit point: metadata is reconciled from it after a crash.
// A partitioned asset has one table instead, _sluice_v."<asset>__partitions",
// holding every partition's current rows with two hidden columns
// (_sluice_partition, _sluice_version); publishing a partition replaces its
// rows there (delete + insert) in the publishing transaction, and the rows it
// replaced move to _sluice_v."<asset>__history", which keeps the newest
// keep_versions - 1 earlier versions of each partition for rollback. Ten
// thousand partitions cost two tables, and a publish costs the rows of one
// partition, not a view over all of them.
// Functions take the caller's session; PublishVersion serialises publications
// within the process (DuckDB would otherwise report write-write conflicts).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "warehouse/warehouse.h"

namespace sluice {

struct Publication {
  std::string asset;
  std::string partition;
  std::string version_id;
  std::string physical;  // schema-qualified, quoted
  std::string fingerprint;
  std::string checks_hash;
  nlohmann::json inputs = nlohmann::json::array();
  nlohmann::json schema = nlohmann::json::array();
  int64_t rows = 0;
  int64_t run_id = 0;
  Micros published_at = 0;
  int64_t seq = 0;
  // The request that made this publication (a rollback), so that a request
  // sent again after a broken connection is answered, not done twice.
  std::string request_id;
  // An incrementally read source's cursor ({column, type, value}): it moves
  // only with the publication that holds the rows it covers. Null otherwise.
  nlohmann::json cursor;
};

// "stops__0123abcd..."
std::string PhysicalTableName(const std::string& asset, const std::string& version_id);

// A name in _sluice_v for a new build of (asset, version) that no existing
// relation has: "<asset>__<version>", or with "_r<n>" when that version is
// being rebuilt (full refresh) while its earlier build is still public, so a
// published relation is never dropped or overwritten in place.
Result<std::string> FreshPhysicalTableName(WarehouseSession& session, const std::string& asset,
                                           const std::string& version_id);
// "_sluice_v"."<table_name>"
std::string StagedRelation(const std::string& table_name);
// The one table of a partitioned asset, and where replaced partitions go.
std::string PartitionsTableName(const std::string& asset);
std::string PartitionHistoryTableName(const std::string& asset);
// The rows of one partition as a relation (a parenthesised SELECT), without
// the hidden columns: what a partition's checks read.
std::string PartitionRows(const std::string& asset, const std::string& partition);
// The hidden columns of a partitioned asset's table; a source's own column
// may not have these names.
inline constexpr const char* kPartitionColumn = "_sluice_partition";
inline constexpr const char* kPartitionVersionColumn = "_sluice_version";

// Creates the internal schemas and tables when missing.
Status EnsureInternalSchema(WarehouseSession& session);
// Repoints the public view and records the publication, atomically.
// DuckDB's text of the new view goes to _sluice.public_views next
// (RecordPublicViews) unless the caller defers it to record many at once
// (`record_view` false: a run records its publications' views when it ends).
// A partition's publication (publication.partition set) names either a
// staged build, whose rows replace the partition's, or the asset's
// partitions table: the version there already (a re-audit) or one kept in
// its history (a rollback), restored. `keep` is defaults.keep_versions for
// the history of a partition; -1 keeps every version replaced.
Status PublishVersion(WarehouseSession& session, Publication publication, const Clock& clock,
                      bool record_view = true, int keep = -1);
// The same, with `change` run first inside the publishing transaction (an
// incremental table changed in place, then re-checked): when it returns
// false, or fails, everything it did is rolled back and nothing is published.
// Returns whether it published. `change` may fill in the publication's rows
// and schema.
Result<bool> PublishInPlace(WarehouseSession& session, Publication publication, const Clock& clock,
                            const std::function<Result<bool>(Publication*)>& change,
                            bool record_view = true);
// Records DuckDB's text of these assets' public views in
// _sluice.public_views (one scan of the catalog for all of them), which
// RepairPublicViews compares with. An asset published and not yet recorded
// has its view re-created from its publications by the repair, silently.
Status RecordPublicViews(WarehouseSession& session, const std::vector<std::string>& assets);

// Whether a partitioned asset's one table and its history exist.
struct PartitionTables {
  bool table = false;
  bool history = false;
};

// A run's publications (only the owner publishes, and one run at a time:
// the engine serialises runs and rollbacks). It keeps the run's picture of
// _sluice_v — which relations exist and the newest publication of each —
// read once when the run starts and kept current by the run's own writes,
// so that naming a build, pruning old ones and numbering publications cost
// the same in a warehouse of ten assets or ten thousand (no catalog query).
// Publications of tasks that finish together are grouped into one
// transaction (one commit, one fsync); each stays atomic, its view and its
// record committing together. The first task to arrive leads and publishes
// everything queued; the others wait for their own result. A failed group
// is retried one publication at a time, so one bad publication fails only
// itself. Partitions of one asset share its table, so a transaction holds at
// most one of them (DuckDB refuses to alter a table a transaction has
// deleted from); the rest follow in the next. Thread-safe.
class Publisher {
 public:
  // `own`: a session for publishing groups on, which no run's cancel
  // interrupts (the leader publishes other tasks' work too); null: the
  // leading task's.
  static Result<std::unique_ptr<Publisher>> Load(WarehouseSession& session, const Clock& clock,
                                                 std::unique_ptr<WarehouseSession> own = nullptr);
  // A name for a new build of (asset, version) that no relation has (see
  // FreshPhysicalTableName), reserved until published or Dropped.
  std::string Reserve(const std::string& asset, const std::string& version_id, bool is_view);
  void Dropped(const std::string& table_name);
  // A reserved name whose relation may still exist (its drop failed): no
  // longer reserved, so the next publication of its asset prunes it.
  void Release(const std::string& table_name);
  // Publishes pub (view repointed, publication recorded) and, in the same
  // transaction, drops its asset's relations beyond the newest `keep` of
  // the partition, and those never published. Sets pub's seq and
  // published_at.
  Status Publish(WarehouseSession& session, Publication& pub, int keep);
  // The same in the transaction `session` has open (the build and its
  // audit ran in it), which it then commits: the build and its publication
  // in one commit, and one fsync. An unpartitioned asset's only. On failure
  // the transaction is rolled back, the build with it. Not under the
  // publish mutex: tasks' transactions publish and commit side by side.
  Status PublishWithin(WarehouseSession& session, Publication& pub, int keep);
  // PublishInPlace numbered by this publisher (the in-place builds).
  Result<bool> PublishInPlace(WarehouseSession& session, Publication pub,
                              const std::function<Result<bool>(Publication*)>& change);
  // The assets whose public view this run repointed (for RecordPublicViews).
  std::vector<std::string> Repointed() const;
  // The same, forgetting them (a publisher shared by runs: each run records
  // what was repointed since the last one did).
  std::vector<std::string> TakeRepointed();
  // Called with each publication once committed (the owner's current
  // publications follow every commit). Set before the first publication.
  void OnCommit(std::function<void(const Publication&)> hook) { on_commit_ = std::move(hook); }
  // Publications committed, and the transactions that committed them.
  std::pair<int64_t, int64_t> Commits() const;

  struct Relation {
    std::string name;
    bool is_view = false;
  };
  // The relations of asset beyond the newest `keep` published ones of each
  // partition, and those never published (failed or interrupted builds),
  // except names reserved and not yet published.
  std::vector<Relation> Prunable(const std::string& asset, int keep);

  explicit Publisher(const Clock& clock) : clock_(clock) {}

 private:
  struct Entry {
    std::string partition;
    int64_t seq = 0;  // 0: never published
    bool reserved = false;
    bool is_view = false;
  };
  struct Request;
  void PublishGroup(WarehouseSession& session, const std::vector<Request*>& group);
  void PublishRound(WarehouseSession& session, const std::vector<Request*>& round);
  Status PublishOne(WarehouseSession& session, Request& request);
  // The statements of one publication in a group, numbering it.
  Result<std::string> StatementsOf(WarehouseSession& session, Request& request);
  void Committed(const Request& request);
  void UpdatePicture(const Request& request);
  std::vector<Relation> PrunableLocked(const std::string& asset, int keep,
                                       const std::string& next_name,
                                       const std::string& next_partition);
  int64_t NextSeq(Micros now);

  const Clock& clock_;
  std::unique_ptr<WarehouseSession> own_session_;  // used by the leader only
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Entry>> by_asset_;  // asset -> table name -> entry
  std::map<std::string, PartitionTables> partition_tables_;       // by partitioned asset
  int64_t max_seq_ = 0;  // the highest publication seq in the warehouse
  std::set<std::string> repointed_;
  int64_t published_ = 0, transactions_ = 0;  // GUARDED_BY(mu_)
  std::function<void(const Publication&)> on_commit_;
  std::mutex queue_mu_;
  std::vector<Request*> queue_;  // GUARDED_BY(queue_mu_)
  bool leading_ = false;         // GUARDED_BY(queue_mu_)
};
// The latest publication per (asset, partition).
Result<std::map<std::pair<std::string, std::string>, Publication>> LatestPublications(
    WarehouseSession& session);
// The latest publication per (asset, partition) as the owner keeps it in
// memory between runs: loaded when the environment opens (Reconcile), handed
// to each run, replaced by a run as it ends and dropped by anything else that
// publishes (a rollback), so that a run reads no publication history.
// Thread-safe.
class CurrentPublications {
 public:
  using Map = std::map<std::pair<std::string, std::string>, Publication>;
  // The map as it is now (read from the warehouse first when not known), shared and never changed:
  // a later change copies the map first while a snapshot of it is held (a plan of 10,000 assets
  // copies nothing; a run's first commit copies it once).
  Result<std::shared_ptr<const Map>> Snapshot(WarehouseSession& session);
  void Set(Map map);
  void Invalidate();
  // A publication committed: it is current now (nothing when not loaded).
  void Update(const Publication& publication);
  // The current publications of one asset (each partition's); null when
  // not loaded.
  std::optional<std::vector<Publication>> Of(const std::string& asset);
  // Calls fn with the map, under the lock and without a copy (a reader's
  // look-up); false, without calling it, when not loaded. fn must not call
  // back into this object.
  bool Visit(const std::function<void(const Map&)>& fn);
  // Changes whenever the map does (counted after the change, under the
  // lock): what a reader computed from the map while this read N holds
  // for as long as this still reads N.
  uint64_t generation() const { return generation_.load(); }

 private:
  std::mutex mu_;
  std::shared_ptr<Map> map_;  // GUARDED_BY(mu_); null: not loaded
  std::atomic<uint64_t> generation_{0};
};
// The owner's one publisher, shared by the runs that overlap: publications
// are numbered, and _sluice_v pictured, in one place. Loaded at first use;
// each commit updates the owner's current publications. Reset (when no run
// is in flight) after something else wrote _sluice_v: a rollback.
class SharedPublisher {
 public:
  SharedPublisher(const Clock& clock, CurrentPublications* current, Warehouse* warehouse)
      : clock_(clock), current_(current), warehouse_(warehouse) {}
  Result<Publisher*> Get(WarehouseSession& session);
  void Reset();

 private:
  const Clock& clock_;
  CurrentPublications* current_;
  Warehouse* warehouse_;
  std::mutex mu_;
  std::unique_ptr<Publisher> publisher_;  // GUARDED_BY(mu_)
};
// The publication a request made, if any (request ids: see Publication).
Result<std::optional<Publication>> PublicationOfRequest(WarehouseSession& session,
                                                        const std::string& request_id);
// The versions of one partition of asset kept in its history table (the
// ones a rollback can restore, besides empty ones).
Result<std::set<std::string>> KeptPartitionVersions(WarehouseSession& session,
                                                    const std::string& asset,
                                                    const std::string& partition);
// Every publication of an asset, newest first.
Result<std::vector<Publication>> PublicationHistory(WarehouseSession& session,
                                                    const std::string& asset);
// Copies a failed build to _sluice_failed."<asset>" and drops the staged relation.
Status KeepFailedBuild(WarehouseSession& session, const std::string& asset,
                       const std::string& table_name);
// Drops a relation in _sluice_v whether it is a table or a view; no error when absent.
Status DropStaged(WarehouseSession& session, const std::string& table_name);
// The same when the caller knows which it is (no catalog query).
Status DropStaged(WarehouseSession& session, const std::string& table_name, bool is_view);
// Drops staged relations of asset beyond the newest `keep` published ones (the
// current one is always kept).
Status PruneVersions(WarehouseSession& session, const std::string& asset, int keep);
// Moves partitioned assets published by an older Sluice (a table per
// partition version, a view over their union) into the one-table layout,
// each in one transaction: current partitions into the asset's table, their
// publications repointed, the old tables dropped, the view re-created. The
// owner runs it when it opens the warehouse, before anything is read.
// Returns how many assets moved.
Result<int> MovePartitionsToOneTable(WarehouseSession& session);
// Drops relations in _sluice_v that no publication names: builds a crash interrupted.
Result<int> DropOrphans(WarehouseSession& session);
// What RepairPublicViews did: views restored, and assets whose published
// relation is gone (their next run rebuilds them), each with why.
struct RepairReport {
  std::vector<std::string> restored;
  std::vector<std::string> lost;
};
// Checks that every published asset's public view is the one the publish
// step made (recorded in _sluice.public_views) over relations that exist, and
// restores views that are missing or altered; a table put in a view's place
// is moved to _sluice_failed."<asset>__displaced", not dropped. Run when the
// owner opens the environment: no other process can open the warehouse
// while it holds it, so nothing alters a view behind its back meanwhile.
Result<RepairReport> RepairPublicViews(WarehouseSession& session);
// [{name, type}] of a relation.
Result<nlohmann::json> DescribeRelation(WarehouseSession& session, const std::string& relation);
// The same of a table in _sluice_v, read from the catalog (pragma_table_info)
// instead of binding a query over it (in a build's transaction 0.23-0.24 ms
// against DESCRIBE's 0.25-0.28, once for every model built). The same type
// names: DuckDB's own ToString either way.
Result<nlohmann::json> DescribeStagedTable(WarehouseSession& session,
                                           const std::string& table_name);

}  // namespace sluice
