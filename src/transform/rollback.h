// Rollback (DESIGN §5): a new publication of an older version of an asset,
// so the public name shows it again and downstream assets, whose inputs name
// the version, see a change and rebuild on their next run. Only versions
// whose relation is still kept (defaults.keep_versions) can be restored.
#pragma once

#include <string>

#include "core/clock.h"
#include "transform/publication.h"
#include "warehouse/warehouse.h"

namespace sluice {

struct RollbackResult {
  Publication from;  // what was public
  Publication to;    // what is public now (the older version, published anew)
};

// `to`: a version id (or a unique prefix of at least 6 characters); "" = the
// newest published version other than the current one.
// `request_id` (may be ""): when a publication with it exists, the rollback
// was done already (the request was sent again) and its result is returned.
// `partition`: the one to roll back, required for a partitioned asset (its
// earlier versions are kept in the asset's history table).
Result<RollbackResult> RollbackAsset(WarehouseSession& session, const std::string& asset,
                                     const std::string& to, const Clock& clock,
                                     const std::string& request_id = "",
                                     const std::string& partition = "");

}  // namespace sluice
