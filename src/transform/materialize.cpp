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

std::string ChangeBatchSql(const std::string& batch, const std::string& live,
                           const std::vector<std::string>& key,
                           const std::vector<std::string>& columns, int64_t after_seq,
                           bool unchanged, const std::vector<std::string>& added) {
  std::vector<std::string> keys;
  for (const std::string& k : key) keys.push_back(QuoteIdent(k));
  const std::string partition = "PARTITION BY " + Join(keys, ", ");
  std::string changes = "SELECT * FROM " + batch + " WHERE _op <> 'truncate'";
  if (after_seq >= 0) changes += " AND _seq > " + std::to_string(after_seq);
  std::vector<std::string> windows = {"row_number() OVER (" + partition +
                                      " ORDER BY _seq DESC) AS _sluice_last"};
  std::vector<std::string> out;
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string id = QuoteIdent(columns[i]);
    bool is_key = std::find(key.begin(), key.end(), columns[i]) != key.end();
    if (!unchanged || is_key) {
      out.push_back("w." + id);
      continue;
    }
    // The latest value carried for the key so far (a struct, so that a
    // NULL carried is told from none).
    std::string carried = "_sluice_v" + std::to_string(i);
    windows.push_back("last_value(CASE WHEN _op <> 'delete' AND substr(coalesce(_unchanged, ''), " +
                      std::to_string(i + 1) + ", 1) <> '1' THEN {'v': " + id +
                      "} END IGNORE NULLS) OVER (" + partition +
                      " ORDER BY _seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS " +
                      carried);
    bool is_new = std::find(added.begin(), added.end(), columns[i]) != added.end();
    std::string fallback = live.empty() || is_new ? "NULL" : "l." + id;
    out.push_back("CASE WHEN w." + carried + " IS NOT NULL THEN w." + carried + ".v ELSE " +
                  fallback + " END AS " + id);
  }
  out.push_back("w._op");
  out.push_back("w._extracted_at");
  std::string from = "w";
  if (unchanged && !live.empty()) from += " LEFT JOIN " + live + " l ON " + Match(key, "l", "w");
  return "WITH w AS (SELECT *, " + Join(windows, ", ") + " FROM (" + changes + ")) SELECT " +
         Join(out, ", ") + " FROM " + from + " WHERE w._sluice_last = 1";
}

std::vector<std::string> ApplyChangesSql(const std::string& target, const std::string& changes,
                                         const std::vector<std::string>& key, bool truncate) {
  std::vector<std::string> statements;
  if (truncate) statements.push_back("DELETE FROM " + target);
  statements.push_back("DELETE FROM " + target + " t WHERE EXISTS (SELECT 1 FROM " + changes +
                       " b WHERE " + Match(key, "t", "b") + ")");
  statements.push_back("INSERT INTO " + target + " BY NAME SELECT * FROM " + changes +
                       " WHERE _op <> 'delete'");
  return statements;
}

}  // namespace sluice
