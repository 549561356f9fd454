#include "transform/materialize.h"

#include <algorithm>

#include "core/strings.h"

namespace sluice {
namespace {

// "t.a IS NOT DISTINCT FROM b.a AND ..."
std::string Match(const std::vector<std::string>& cols, const std::string& left,
                  const std::string& right) {
  std::vector<std::string> parts;
  for (const std::string& c : cols) {
    parts.push_back(left + "." + QuoteIdent(c) + " IS NOT DISTINCT FROM " + right + "." +
                    QuoteIdent(c));
  }
  return parts.empty() ? "true" : Join(parts, " AND ");
}

}  // namespace

std::string SnapshotCreateSql(const std::string& physical, const std::string& select_sql,
                              const std::string& now_literal) {
  return "CREATE TABLE " + physical + " AS SELECT *, " + now_literal +
         " AS valid_from, CAST(NULL AS TIMESTAMP) AS valid_to, true AS is_current FROM (" +
         select_sql + ")";
}

std::string BatchKeyProblemsSql(const std::string& batch, const std::vector<std::string>& key) {
  std::vector<std::string> ids, nulls, text;
  for (const std::string& k : key) {
    ids.push_back(QuoteIdent(k));
    nulls.push_back(QuoteIdent(k) + " IS NULL");
    text.push_back(QuoteLiteral(k) + " || '=' || coalesce(CAST(" + QuoteIdent(k) +
                   " AS VARCHAR), 'null')");
  }
  std::string k = Join(ids, ", ");
  return "SELECT concat_ws(', ', " + Join(text, ", ") + ") AS key, count(*) AS rows, " +
         "bool_or(" + Join(nulls, " OR ") + ") AS null_key FROM " + batch + " GROUP BY " + k +
         " HAVING count(*) > 1 OR bool_or(" + Join(nulls, " OR ") + ") ORDER BY rows DESC LIMIT 5";
}

Result<std::vector<std::string>> ApplyBatchSql(const std::string& strategy,
                                               const std::string& target, const std::string& batch,
                                               const std::vector<std::string>& key,
                                               const std::vector<std::string>& partition_by,
                                               const std::vector<std::string>& batch_columns,
                                               const std::string& now_literal) {
  std::string insert = "INSERT INTO " + target + " BY NAME SELECT * FROM " + batch;
  if (strategy == "append") return std::vector<std::string>{insert};
  if (strategy == "merge") {
    if (key.empty()) return Status::Invalid("strategy merge needs key: [...]");
    return std::vector<std::string>{"DELETE FROM " + target + " t WHERE EXISTS (SELECT 1 FROM " +
                                        batch + " b WHERE " + Match(key, "t", "b") + ")",
                                    insert};
  }
  if (strategy == "replace_partition") {
    if (partition_by.empty())
      return Status::Invalid("strategy replace_partition needs partition_by");
    return std::vector<std::string>{"DELETE FROM " + target + " t WHERE EXISTS (SELECT 1 FROM " +
                                        batch + " b WHERE " + Match(partition_by, "t", "b") + ")",
                                    insert};
  }
  if (strategy == "snapshot") {
    if (key.empty()) return Status::Invalid("materialized: snapshot needs key: [...]");
    std::vector<std::string> all = batch_columns;
    all.erase(std::remove_if(all.begin(), all.end(),
                             [](const std::string& c) {
                               return c == "valid_from" || c == "valid_to" || c == "is_current";
                             }),
              all.end());
    std::string same = Match(all, "t", "b");
    return std::vector<std::string>{
        // Changed or deleted: close the current row.
        "UPDATE " + target + " t SET valid_to = " + now_literal +
            ", is_current = false WHERE t.is_current AND NOT EXISTS (SELECT 1 FROM " + batch +
            " b WHERE " + same + ")",
        // New or changed: a new current row.
        "INSERT INTO " + target + " BY NAME SELECT b.*, " + now_literal +
            " AS valid_from, CAST(NULL AS TIMESTAMP) AS valid_to, true AS is_current FROM " +
            batch + " b WHERE NOT EXISTS (SELECT 1 FROM " + target + " t WHERE t.is_current AND " +
            same + ")"};
  }
  return Status::Invalid("unknown strategy '" + strategy + "'");
}

}  // namespace sluice
