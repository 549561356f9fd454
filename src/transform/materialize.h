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

// A change batch (ingest/cdc.h: _lsn, _seq, _op, _unchanged, the table's
// `columns` in order, _extracted_at) reduced to one row a key: the key's
// last change, after the batch's last truncate when `after_seq` >= 0. A
// column the change did not carry (an unchanged TOASTed value, _unchanged
// '1') takes the key's latest value earlier in the batch, else the live
// table's (`live`; "" when the batch truncates it). The result has the
// live table's columns: `columns`, _op and _extracted_at. `added`: columns
// the live table does not have yet (nothing to fall back on: null).
std::string ChangeBatchSql(const std::string& batch, const std::string& live,
                           const std::vector<std::string>& key,
                           const std::vector<std::string>& columns, int64_t after_seq,
                           bool unchanged, const std::vector<std::string>& added = {});

// The statements applying a reduced change batch: the live table emptied
// when `truncate`, rows of its keys deleted, its non-delete rows inserted.
std::vector<std::string> ApplyChangesSql(const std::string& target, const std::string& changes,
                                         const std::vector<std::string>& key, bool truncate);

}  // namespace sluice
