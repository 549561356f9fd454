// Versions and publication (DESIGN §5, write-audit-publish). A build goes
// into a physical relation _sluice_v."<asset>__<version>"; the public name is
// a view on the published one. Publishing is one warehouse transaction that
// repoints the view and appends to _sluice.publications, so the warehouse is
// the commit point: metadata is reconciled from it after a crash.
// Functions take the caller's session; PublishVersion serialises publications
// within the process (DuckDB would otherwise report write-write conflicts).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
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

// Creates the internal schemas and tables when missing.
Status EnsureInternalSchema(WarehouseSession& session);
// Repoints the public view and records the publication, atomically.
Status PublishVersion(WarehouseSession& session, Publication publication, const Clock& clock);
// The same, with `change` run first inside the publishing transaction (an
// incremental table changed in place, then re-checked): when it returns
// false, or fails, everything it did is rolled back and nothing is published.
// Returns whether it published. `change` may fill in the publication's rows
// and schema.
Result<bool> PublishInPlace(WarehouseSession& session, Publication publication, const Clock& clock,
                            const std::function<Result<bool>(Publication*)>& change);
// The latest publication per (asset, partition).
Result<std::map<std::pair<std::string, std::string>, Publication>> LatestPublications(
    WarehouseSession& session);
// The publication a request made, if any (request ids: see Publication).
Result<std::optional<Publication>> PublicationOfRequest(WarehouseSession& session,
                                                        const std::string& request_id);
// Every publication of an asset, newest first.
Result<std::vector<Publication>> PublicationHistory(WarehouseSession& session,
                                                    const std::string& asset);
// Copies a failed build to _sluice_failed."<asset>" and drops the staged relation.
Status KeepFailedBuild(WarehouseSession& session, const std::string& asset,
                       const std::string& table_name);
// Drops a relation in _sluice_v whether it is a table or a view; no error when absent.
Status DropStaged(WarehouseSession& session, const std::string& table_name);
// Drops staged relations of asset beyond the newest `keep` published ones (the
// current one is always kept).
Status PruneVersions(WarehouseSession& session, const std::string& asset, int keep);
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
// is moved to _sluice_failed."<asset>__displaced", not dropped. Run at
// start-up and before each run.
Result<RepairReport> RepairPublicViews(WarehouseSession& session);
// [{name, type}] of a relation.
Result<nlohmann::json> DescribeRelation(WarehouseSession& session, const std::string& relation);

}  // namespace sluice
