// The build step (DESIGN §5, write-audit-publish), shared by every run in
// the owner — `run`, serve's scheduled and triggered runs, backfills — and
// by the audit of unchanged data under new checks and `sluice test`. Two
// shapes:
//  - a replacement (StagedBuild): the new version is built into a staged
//    relation, inspected, audited by the asset's checks, then published in
//    one warehouse transaction, or kept as _sluice_failed.<asset> while the
//    last good version stays public;
//  - in place (ApplyInPlace: incremental and snapshot models, cursor reads,
//    change batches): a batch is audited (a key twice or null in it fails),
//    applied, re-checked and published in one transaction, or leaves the
//    table exactly as it was.
// It knows nothing of fetching, SQL recipes or change decisions (the
// runner's and the planner's): it is handed relations and what they are of,
// and answers with what became public. Every outcome is recorded: check
// results, and the version (published or failed_audit) in metadata.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "metadata/metadata_store.h"
#include "orchestrate/executor.h"
#include "quality/checks.h"
#include "transform/publication.h"
#include "warehouse/warehouse.h"

namespace sluice {

// What every build of one run shares.
struct BuildEnv {
  Publisher* publisher = nullptr;
  MetadataStore* metadata = nullptr;
  const Clock* clock = nullptr;
  int64_t run_id = 0;
  int keep_versions = 3;
  // True once the run is cancelled: nothing is published after that (null: never).
  std::function<bool()> cancelled;
  // Stores an audit's outcomes (metadata and the warehouse's check_results).
  std::function<void(const std::string& asset, const std::string& version,
                     const std::vector<CheckOutcome>& checks)>
      record_checks;
};

// What one build is of.
struct BuildTarget {
  std::string asset;
  std::string partition;  // "" when unpartitioned
  std::string version;
  std::string fingerprint;
  std::string checks_hash;
  nlohmann::json inputs = nlohmann::json::array();
  const std::vector<CheckSpec>* checks = nullptr;  // null: none
};

// How an audit went.
struct Audit {
  std::vector<CheckOutcome> checks;
  bool blocked = false;  // an error-severity check failed: nothing may be published
  // The blocking checks' messages (or names), joined.
  std::string Failures() const;
};

// Runs the target's checks on relation and records them.
Audit AuditRelation(const BuildEnv& env, WarehouseSession& session, const BuildTarget& target,
                    const std::string& relation);

// A replacement build of one asset (or partition). Not thread-safe; one task's.
class StagedBuild {
 public:
  // Reserves the asset's next relation in _sluice_v: until published or
  // kept as the failed build it is this object's, and destroying it drops
  // the relation (or, when that fails, leaves it to the asset's next
  // publication to prune).
  StagedBuild(const BuildEnv& env, WarehouseSession& session, BuildTarget target, bool is_view);
  ~StagedBuild();
  StagedBuild(const StagedBuild&) = delete;
  StagedBuild& operator=(const StagedBuild&) = delete;

  // Where to build: "_sluice_v"."<asset>__<version>".
  const std::string& relation() const { return physical_; }
  // Drops the staged relation now (its build failed); in a transaction,
  // rolls it back.
  void Drop();

  // Opens a transaction on the session that the build, its inspection, its
  // audit and its publication (or its keeping as the failed build) share:
  // one commit where there were two, and a build that fails, is cancelled or
  // is killed leaves nothing behind. Unpartitioned assets only: a
  // partition's publication writes its asset's one table, so partitions
  // publish in the publisher's groups.
  Status BeginTransaction();
  // A statement failed in the transaction, which DuckDB then refuses to go
  // on with: rolls it back and opens another (a retry of the build).
  Status RestartTransaction();
  bool in_transaction() const { return in_transaction_; }

  // Counts its rows (unless rows >= 0 already says how many) and reads its schema.
  Status Inspect(int64_t rows);
  int64_t rows() const { return rows_; }
  const nlohmann::json& schema() const { return schema_; }

  // Runs the target's checks on it and records them. In a transaction, a
  // check whose query failed at run time aborts it: then nothing is
  // recorded and aborted() is true (Drop, and build again without one).
  Audit RunAudit();
  bool aborted() const { return aborted_; }

  // After a blocking audit: moves the build to _sluice_failed.<asset>,
  // records the version as failed_audit, and answers the task's error.
  Result<std::string> KeepFailed(const Audit& audit, bool had_previous);

  // Publishes the build with `cursor` (null for most sources), then records
  // the version as published. A cancelled run publishes nothing (Cancelled).
  // timed(phase) marks the end of "publish" and of "metadata".
  Result<Publication> Publish(nlohmann::json cursor,
                              const std::function<void(const char* phase)>& timed);

 private:
  AssetVersionRecord VersionRecord() const;

  const BuildEnv& env_;
  WarehouseSession& session_;
  BuildTarget target_;
  bool is_view_;
  std::string table_name_;
  std::string physical_;
  bool owned_ = true;  // the staged relation is still this object's to drop
  bool in_transaction_ = false;
  bool aborted_ = false;
  int64_t start_ms_;  // monotonic, when the build began
  int64_t rows_ = -1;
  nlohmann::json schema_ = nlohmann::json::array();
};

// A batch to apply in place to an asset's live table.
struct InPlaceBatch {
  std::string strategy;  // append | merge | replace_partition | snapshot | a change batch's
  std::vector<std::string> key;
  std::vector<std::string> partition_by;
  std::string relation;  // the batch's rows
  // The statements that apply it; none: ApplyBatchSql's for `strategy`.
  std::optional<std::vector<std::string>> statements;
  // A change batch's rows as written (checks that judge rows one by one
  // look at these, the others at the whole table); "": the whole table.
  std::string changed_rows;
  // The publication's cursor, computed from the batch (null: the previous one's).
  std::function<Result<nlohmann::json>(WarehouseSession&, const std::string& batch)> next_cursor;
  std::string now_literal;  // a snapshot's valid_from / valid_to
  std::string where;        // "file:line" of the asset, for errors
};

struct InPlaceOutcome {
  TaskStatus status = TaskStatus::kSuccess;  // or kCheckFailed: the table is unchanged
  std::string error;
  std::vector<CheckOutcome> checks;
  std::optional<Publication> published;
  nlohmann::json drift;  // null, or how the table's columns changed
};

// Audits the batch, applies it, re-checks and publishes in one transaction
// (or rolls back); records the checks and the version. start_ms: when the
// task's build began (monotonic), for the version's build time.
Result<InPlaceOutcome> ApplyInPlace(const BuildEnv& env, WarehouseSession& session,
                                    const BuildTarget& target, const Publication& prev,
                                    const InPlaceBatch& batch, int64_t start_ms);

}  // namespace sluice
