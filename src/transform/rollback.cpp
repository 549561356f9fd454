#include "transform/rollback.h"

#include <set>

#include "core/strings.h"

namespace sluice {

Result<RollbackResult> RollbackAsset(WarehouseSession& session, const std::string& asset,
                                     const std::string& to, const Clock& clock,
                                     const std::string& request_id) {
  ASSIGN_OR_RETURN(std::vector<Publication> history, PublicationHistory(session, asset));
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
  for (const Publication& p : history) {
    if (!p.partition.empty()) {
      return Status::Invalid("'" + asset +
                             "' is partitioned; rolling back one partition is not supported "
                             "yet (re-run the partition instead: sluice run " +
                             asset + " --partition " + p.partition + ")");
    }
  }
  ASSIGN_OR_RETURN(QueryResult tables,
                   session.Query("SELECT table_name FROM information_schema.tables WHERE "
                                 "table_schema = '_sluice_v'"));
  std::set<std::string> kept;
  for (const auto& row : tables.rows) kept.insert(StagedRelation(row[0].value_or("")));
  const Publication& current = history.front();
  // Versions that can be restored: published before, relation still kept.
  std::vector<const Publication*> candidates;
  std::set<std::string> seen = {current.version_id};
  for (const Publication& p : history) {
    if (!seen.insert(p.version_id).second) continue;
    // An incremental table changes in place: its older versions share the
    // current relation and cannot be restored.
    if (kept.count(p.physical) && p.physical != current.physical) candidates.push_back(&p);
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
  return RollbackResult{current, after.front()};
}

}  // namespace sluice
