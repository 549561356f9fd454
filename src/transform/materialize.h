// Materializations that change a table in place rather than rebuild it:
// `incremental` (append, merge on key, replace_partition) and `snapshot`
// (SCD type 2). The runner stages the model's new rows as a batch, audits
// the batch (duplicate or null keys fail: DuckDB's MERGE and ON CONFLICT
// would silently pick one), then applies the statements below, re-checks
// and publishes in one transaction, so a failure or a kill -9 leaves the
// previous state. Pure SQL builders.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// Columns a snapshot adds to the model's own.
inline constexpr const char* kSnapshotColumns[] = {"valid_from", "valid_to", "is_current"};

// CREATE TABLE for a snapshot's first build: every row current since `now`.
std::string SnapshotCreateSql(const std::string& physical, const std::string& select_sql,
                              const std::string& now_literal);

// Rows of the batch whose key occurs more than once, or is null; at most 5.
std::string BatchKeyProblemsSql(const std::string& batch, const std::vector<std::string>& key);

// The statements applying a batch to the live table.
//  append             insert every batch row
//  merge              delete target rows whose key is in the batch, insert the batch
//  replace_partition  delete target rows of the batch's partitions, insert the batch
//  snapshot           close current rows that changed or disappeared (valid_to = now,
//                     is_current = false), insert new and changed rows as current
Result<std::vector<std::string>> ApplyBatchSql(const std::string& strategy,
                                               const std::string& target, const std::string& batch,
                                               const std::vector<std::string>& key,
                                               const std::vector<std::string>& partition_by,
                                               const std::vector<std::string>& batch_columns,
                                               const std::string& now_literal);

}  // namespace sluice
