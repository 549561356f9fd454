#include "transform/rollback.h"

#include <algorithm>
#include <set>

#include "core/strings.h"

namespace sluice {

Result<RollbackResult> RollbackAsset(WarehouseSession& session, const std::string& asset,
                                     const std::string& to, const Clock& clock,
                                     const std::string& request_id, const std::string& partition) {
  ASSIGN_OR_RETURN(std::vector<Publication> all, PublicationHistory(session, asset));
  const bool partitioned = std::any_of(all.begin(), all.end(),
                                       [](const Publication& p) { return !p.partition.empty(); });
  if (partitioned && partition.empty()) {
    std::string newest;
    for (const Publication& p : all) newest = std::max(newest, p.partition);
    return Status::Invalid("'" + asset +
                           "' is partitioned: name the partition to roll back, e.g. sluice "
                           "rollback " +
                           asset + " --partition " + newest);
  }
  if (!partitioned && !partition.empty()) {
    return Status::Invalid("'" + asset + "' is not partitioned; leave out --partition");
  }
  // The partition's publications (an unpartitioned asset's: all of them).
  std::vector<Publication> history;
  for (const Publication& p : all) {
    if (p.partition == partition) history.push_back(p);
  }
  if (partitioned && history.empty()) {
    return Status::Invalid("partition " + partition + " of '" + asset +
                           "' has never been published; nothing to roll back");
  }
  if (!request_id.empty()) {
    // Done already: the publication it made is the commit point.
    ASSIGN_OR_RETURN(std::optional<Publication> done, PublicationOfRequest(session, request_id));
    if (done) {
      for (size_t i = 0; i + 1 < history.size(); ++i) {
        if (history[i].seq == done->seq) return RollbackResult{history[i + 1], *done};
      }
      return RollbackResult{*done, *done};
    }
  }
  if (history.empty()) {
    return Status::Invalid("'" + asset + "' has never been published; nothing to roll back");
  }
  const Publication& current = history.front();
  // Versions that can be restored: published before, rows still kept.
  std::vector<const Publication*> candidates;
  std::set<std::string> seen = {current.version_id};
  if (partitioned) {
    // A partition's earlier versions are rows of the asset's history table.
    ASSIGN_OR_RETURN(std::set<std::string> kept, KeptPartitionVersions(session, asset, partition));
    const std::string table = StagedRelation(PartitionsTableName(asset));
    for (const Publication& p : history) {
      if (!seen.insert(p.version_id).second) continue;
      if (p.physical == table && (kept.count(p.version_id) || p.rows == 0)) {
        candidates.push_back(&p);
      }
    }
  } else {
    ASSIGN_OR_RETURN(QueryResult tables,
                     session.Query("SELECT table_name FROM information_schema.tables WHERE "
                                   "table_schema = '_sluice_v'"));
    std::set<std::string> kept;
    for (const auto& row : tables.rows) kept.insert(StagedRelation(row[0].value_or("")));
    for (const Publication& p : history) {
      if (!seen.insert(p.version_id).second) continue;
      // An incremental table changes in place: its older versions share the
      // current relation and cannot be restored.
      if (kept.count(p.physical) && p.physical != current.physical) candidates.push_back(&p);
    }
  }
  auto listing = [&] {
    std::vector<std::string> ids;
    for (const Publication* p : candidates) ids.push_back(p->version_id);
    return ids.empty() ? std::string("none is kept (defaults.keep_versions)")
                       : "restorable: " + Join(ids, ", ");
  };
  const Publication* target = nullptr;
  if (to.empty()) {
    if (candidates.empty()) {
      return Status::Invalid("'" + asset + "' has no earlier version to roll back to; " +
                             listing());
    }
    target = candidates.front();
  } else {
    if (to.size() < 6) {
      return Status::Invalid("--to: give at least 6 characters of a version id; " + listing());
    }
    for (const Publication* p : candidates) {
      if (p->version_id.compare(0, to.size(), to) == 0) {
        if (target) return Status::Invalid("--to '" + to + "' matches several versions");
        target = p;
      }
    }
    if (!target) {
      bool current_match = current.version_id.compare(0, to.size(), to) == 0;
      return Status::Invalid(current_match ? "version " + current.version_id + " is already public"
                                           : "no restorable version '" + to + "' of '" + asset +
                                                 "'; " + listing());
    }
  }
  Publication p = *target;
  p.request_id = request_id;
  RETURN_IF_ERROR(PublishVersion(session, p, clock));
  ASSIGN_OR_RETURN(std::vector<Publication> after, PublicationHistory(session, asset));
  for (const Publication& a : after) {
    if (a.partition == partition) return RollbackResult{current, a};
  }
  return Status::Internal("the rollback of " + asset + " published nothing");
}

}  // namespace sluice
