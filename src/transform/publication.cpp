#include "transform/publication.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "core/strings.h"
#include "core/test_hooks.h"
#include "transform/phases.h"

namespace sluice {
namespace {

std::mutex& PublishMutex() {
  static std::mutex mu;
  return mu;
}

std::string Str(const std::optional<std::string>& v) { return v.value_or(""); }

nlohmann::json ParseJson(const std::optional<std::string>& v, nlohmann::json fallback) {
  if (!v) return fallback;
  auto parsed = nlohmann::json::parse(*v, nullptr, false);
  return parsed.is_discarded() ? fallback : parsed;
}

constexpr const char* kPublicationColumns =
    "asset, partition_key, version_id, physical, fingerprint, checks_hash, inputs, schema_json, "
    "rows, run_id, epoch_us(published_at), seq";

Publication RowToPublication(const std::vector<std::optional<std::string>>& row) {
  Publication p;
  p.asset = Str(row[0]);
  p.partition = Str(row[1]);
  p.version_id = Str(row[2]);
  p.physical = Str(row[3]);
  p.fingerprint = Str(row[4]);
  p.checks_hash = Str(row[5]);
  p.inputs = ParseJson(row[6], nlohmann::json::array());
  p.schema = ParseJson(row[7], nlohmann::json::array());
  p.rows = row[8] ? std::stoll(*row[8]) : 0;
  p.run_id = row[9] ? std::stoll(*row[9]) : 0;
  p.published_at = row[10] ? std::stoll(*row[10]) : 0;
  p.seq = row[11] ? std::stoll(*row[11]) : 0;
  return p;
}

// "<asset>__<16 hex>" or "<asset>__<16 hex>_r<digits>".
bool IsStagedNameOf(const std::string& asset, const std::string& name) {
  std::string prefix = asset + "__";
  if (name.size() < prefix.size() + 16 || name.compare(0, prefix.size(), prefix) != 0) return false;
  std::string_view rest(name);
  rest.remove_prefix(prefix.size());
  for (size_t i = 0; i < 16; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(rest[i])) || std::isupper(rest[i])) return false;
  }
  rest.remove_prefix(16);
  if (rest.empty()) return true;
  if (rest.size() < 3 || rest.substr(0, 2) != "_r") return false;
  rest.remove_prefix(2);
  return std::all_of(rest.begin(), rest.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// The physical relation of each partition's current publication of asset.
Result<std::map<std::string, std::string>> CurrentPhysicals(WarehouseSession& session,
                                                            const std::string& asset) {
  ASSIGN_OR_RETURN(QueryResult current,
                   session.Query("SELECT partition_key, physical FROM _sluice.publications "
                                 "WHERE asset = " +
                                 QuoteLiteral(asset) +
                                 " QUALIFY row_number() OVER (PARTITION BY partition_key "
                                 "ORDER BY seq DESC) = 1"));
  std::map<std::string, std::string> physicals;
  for (const auto& row : current.rows) physicals[Str(row[0])] = Str(row[1]);
  return physicals;
}

// The public view of an asset over its partitions' physical relations (one,
// "", when unpartitioned), and the record of it in _sluice.public_views. A
// partitioned asset's view is the union of every partition's current
// version; BY NAME lets a column appear in some partitions only and widens
// types that differ between them.
std::string CreatePublicViewSql(const std::string& asset,
                                const std::map<std::string, std::string>& physicals) {
  std::vector<std::string> parts;
  for (const auto& [key, physical] : physicals) parts.push_back("SELECT * FROM " + physical);
  return "CREATE OR REPLACE VIEW main." + QuoteIdent(asset) + " AS " +
         Join(parts, " UNION ALL BY NAME ") +
         ";\nINSERT OR REPLACE INTO _sluice.public_views SELECT view_name, sql FROM "
         "duckdb_views() WHERE schema_name = 'main' AND view_name = " +
         QuoteLiteral(asset);
}

}  // namespace

std::string PhysicalTableName(const std::string& asset, const std::string& version_id) {
  return asset + "__" + version_id;
}

std::string StagedRelation(const std::string& table_name) {
  return "_sluice_v." + QuoteIdent(table_name);
}

Result<std::string> FreshPhysicalTableName(WarehouseSession& session, const std::string& asset,
                                           const std::string& version_id) {
  std::string base = PhysicalTableName(asset, version_id);
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query("SELECT table_name FROM information_schema.tables WHERE "
                                 "table_schema = '_sluice_v' AND (table_name = " +
                                 QuoteLiteral(base) + " OR starts_with(table_name, " +
                                 QuoteLiteral(base + "_r") + "))"));
  std::set<std::string> taken;
  for (const auto& row : r.rows) taken.insert(Str(row[0]));
  if (!taken.count(base)) return base;
  for (int n = 1;; ++n) {
    std::string name = base + "_r" + std::to_string(n);
    if (!taken.count(name)) return name;
  }
}

Status EnsureInternalSchema(WarehouseSession& session) {
  return session.Execute(
      "CREATE SCHEMA IF NOT EXISTS _sluice;"
      "CREATE SCHEMA IF NOT EXISTS _sluice_v;"
      "CREATE SCHEMA IF NOT EXISTS _sluice_failed;"
      "CREATE TABLE IF NOT EXISTS _sluice.publications ("
      "  seq BIGINT NOT NULL, asset VARCHAR NOT NULL, partition_key VARCHAR NOT NULL,"
      "  version_id VARCHAR NOT NULL, physical VARCHAR NOT NULL, fingerprint VARCHAR,"
      "  checks_hash VARCHAR, inputs VARCHAR, schema_json VARCHAR, rows BIGINT,"
      "  cursor_state VARCHAR, run_id BIGINT, published_at TIMESTAMP NOT NULL);"
      "ALTER TABLE _sluice.publications ADD COLUMN IF NOT EXISTS request_id VARCHAR;"
      // Every check result of every run (sluice test included), for readers.
      "CREATE TABLE IF NOT EXISTS _sluice.check_results ("
      "  run_id BIGINT, asset VARCHAR, partition_key VARCHAR, version_id VARCHAR,"
      "  check_name VARCHAR, severity VARCHAR, status VARCHAR, failing_rows BIGINT,"
      "  sample VARCHAR, checked_at TIMESTAMP);"
      "ALTER TABLE _sluice.check_results ADD COLUMN IF NOT EXISTS message VARCHAR;" +
      IssueTableDdl() +
      ";"
      // The issues of what is published now, for people: _sluice.issues keeps
      // those of every version built.
      // Each public view as the publish step left it (DuckDB's own text of
      // it), so that a view dropped or altered by hand is found and restored.
      "CREATE TABLE IF NOT EXISTS _sluice.public_views (asset VARCHAR PRIMARY KEY, "
      "view_sql VARCHAR NOT NULL);"
      "CREATE OR REPLACE VIEW _sluice.current_issues AS SELECT * FROM _sluice.issues "
      "WHERE (asset, version_id) IN (SELECT asset, version_id FROM _sluice.publications "
      "QUALIFY row_number() OVER (PARTITION BY asset, partition_key ORDER BY seq DESC) = 1);");
}

Status PublishVersion(WarehouseSession& session, Publication p, const Clock& clock) {
  Result<bool> done = PublishInPlace(session, std::move(p), clock,
                                     [](Publication*) -> Result<bool> { return true; });
  return done.ok() ? Status::Ok() : done.status();
}

Result<bool> PublishInPlace(WarehouseSession& session, Publication p, const Clock& clock,
                            const std::function<Result<bool>(Publication*)>& change) {
  std::lock_guard lock(PublishMutex());
  // seq orders publications; strictly increasing even if the clock steps back,
  // also across restarts: it continues from the highest seq already recorded
  // (read inside the transaction, under the process's publish mutex).
  p.published_at = clock.Now();
  bool published = false;
  Status st = session.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(bool go_on, change(&p));
    if (!go_on) return Status(StatusCode::kCheckFailed, "the change was not published");
    if (InjectIoFailure("publish")) {
      return Status::IOError("publishing " + p.asset + " failed: injected failure (test build)");
    }
    ASSIGN_OR_RETURN(QueryResult max_seq,
                     session.Query("SELECT coalesce(max(seq), 0) FROM _sluice.publications"));
    p.seq = std::max(max_seq.ScalarInt() + 1, p.published_at);
    std::map<std::string, std::string> physicals;
    if (!p.partition.empty()) {
      ASSIGN_OR_RETURN(physicals, CurrentPhysicals(session, p.asset));
    }
    physicals[p.partition] = p.physical;
    published = true;
    return session.Execute(
        CreatePublicViewSql(p.asset, physicals) +
        ";\nINSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, "
        "fingerprint, checks_hash, inputs, schema_json, rows, run_id, published_at, request_id) "
        "VALUES (" +
        std::to_string(p.seq) + ", " + QuoteLiteral(p.asset) + ", " + QuoteLiteral(p.partition) +
        ", " + QuoteLiteral(p.version_id) + ", " + QuoteLiteral(p.physical) + ", " +
        QuoteLiteral(p.fingerprint) + ", " + QuoteLiteral(p.checks_hash) + ", " +
        QuoteLiteral(p.inputs.dump()) + ", " + QuoteLiteral(p.schema.dump()) + ", " +
        std::to_string(p.rows) + ", " + std::to_string(p.run_id) + ", make_timestamp(" +
        std::to_string(p.published_at) + "), " +
        (p.request_id.empty() ? std::string("NULL") : QuoteLiteral(p.request_id)) + ");");
  });
  if (st.code() == StatusCode::kCheckFailed && !published) return false;
  if (!st.ok()) return st;
  return true;
}

Result<std::map<std::pair<std::string, std::string>, Publication>> LatestPublications(
    WarehouseSession& session) {
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query(std::string("SELECT ") + kPublicationColumns +
                                 " FROM _sluice.publications QUALIFY row_number() OVER "
                                 "(PARTITION BY asset, partition_key ORDER BY seq DESC) = 1"));
  std::map<std::pair<std::string, std::string>, Publication> out;
  for (const auto& row : r.rows) {
    Publication p = RowToPublication(row);
    out[{p.asset, p.partition}] = std::move(p);
  }
  return out;
}

Result<std::optional<Publication>> PublicationOfRequest(WarehouseSession& session,
                                                        const std::string& request_id) {
  ASSIGN_OR_RETURN(QueryResult r, session.Query(std::string("SELECT ") + kPublicationColumns +
                                                " FROM _sluice.publications WHERE request_id = " +
                                                QuoteLiteral(request_id) + " LIMIT 1"));
  if (r.rows.empty()) return std::optional<Publication>();
  return std::optional<Publication>(RowToPublication(r.rows[0]));
}

Result<std::vector<Publication>> PublicationHistory(WarehouseSession& session,
                                                    const std::string& asset) {
  ASSIGN_OR_RETURN(QueryResult r, session.Query(std::string("SELECT ") + kPublicationColumns +
                                                " FROM _sluice.publications WHERE asset = " +
                                                QuoteLiteral(asset) + " ORDER BY seq DESC"));
  std::vector<Publication> out;
  for (const auto& row : r.rows) out.push_back(RowToPublication(row));
  return out;
}

Status DropStaged(WarehouseSession& session, const std::string& table_name) {
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query("SELECT table_type FROM information_schema.tables WHERE "
                                 "table_schema = '_sluice_v' AND table_name = " +
                                 QuoteLiteral(table_name)));
  if (r.rows.empty()) return Status::Ok();
  bool is_view = Str(r.rows[0][0]) == "VIEW";
  return session.Execute(std::string(is_view ? "DROP VIEW IF EXISTS " : "DROP TABLE IF EXISTS ") +
                         "_sluice_v." + QuoteIdent(table_name));
}

Status KeepFailedBuild(WarehouseSession& session, const std::string& asset,
                       const std::string& table_name) {
  std::string failed = "_sluice_failed." + QuoteIdent(asset);
  RETURN_IF_ERROR(session.Execute("DROP TABLE IF EXISTS " + failed));
  RETURN_IF_ERROR(session.Execute("CREATE TABLE " + failed + " AS SELECT * FROM " +
                                  StagedRelation(table_name)));
  return DropStaged(session, table_name);
}

Status PruneVersions(WarehouseSession& session, const std::string& asset, int keep) {
  ASSIGN_OR_RETURN(std::vector<Publication> history, PublicationHistory(session, asset));
  // The newest `keep` of each partition (an unpartitioned asset has one, "").
  std::set<std::string> kept;
  std::map<std::string, int> per_partition;
  for (const Publication& p : history) {
    if (per_partition[p.partition] >= std::max(keep, 1)) continue;
    if (kept.insert(p.physical).second) ++per_partition[p.partition];
  }
  ASSIGN_OR_RETURN(QueryResult r, session.Query("SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = '_sluice_v'"));
  for (const auto& row : r.rows) {
    std::string name = Str(row[0]);
    if (!IsStagedNameOf(asset, name) || kept.count(StagedRelation(name))) continue;
    RETURN_IF_ERROR(DropStaged(session, name));
  }
  return Status::Ok();
}

Result<int> DropOrphans(WarehouseSession& session) {
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query("SELECT t.table_name FROM information_schema.tables t "
                                 "WHERE t.table_schema = '_sluice_v' AND NOT EXISTS (SELECT 1 FROM "
                                 "_sluice.publications p WHERE p.physical = '_sluice_v.' || "
                                 "'\"' || replace(t.table_name, '\"', '\"\"') || '\"')"));
  int dropped = 0;
  for (const auto& row : r.rows) {
    RETURN_IF_ERROR(DropStaged(session, Str(row[0])));
    ++dropped;
  }
  return dropped;
}

Result<nlohmann::json> DescribeRelation(WarehouseSession& session, const std::string& relation) {
  ASSIGN_OR_RETURN(QueryResult r, session.Query("DESCRIBE SELECT * FROM " + relation));
  nlohmann::json out = nlohmann::json::array();
  size_t name_idx = r.ColumnIndex("column_name");
  size_t type_idx = r.ColumnIndex("column_type");
  for (const auto& row : r.rows) {
    out.push_back({{"name", Str(row[name_idx])}, {"type", Str(row[type_idx])}});
  }
  return out;
}

Result<RepairReport> RepairPublicViews(WarehouseSession& session) {
  std::lock_guard lock(PublishMutex());
  RepairReport report;
  // Assets whose view is not what the publish step left, or whose current
  // publication names a relation that is gone.
  ASSIGN_OR_RETURN(
      QueryResult found,
      session.Query(
          "WITH latest AS (SELECT asset, physical FROM _sluice.publications QUALIFY "
          "row_number() OVER (PARTITION BY asset, partition_key ORDER BY seq DESC) = 1), "
          "staged AS (SELECT '_sluice_v.\"' || replace(table_name, '\"', '\"\"') || '\"' AS "
          "physical FROM information_schema.tables WHERE table_schema = '_sluice_v'), "
          "missing AS (SELECT DISTINCT asset FROM latest WHERE physical NOT IN (SELECT physical "
          "FROM staged)), "
          "views AS (SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND "
          "NOT internal) "
          "SELECT a.asset, pv.view_sql IS NULL, v.sql IS NULL, a.asset IN (SELECT asset FROM "
          "missing), EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = "
          "'main' AND t.table_name = a.asset AND t.table_type <> 'VIEW') "
          "FROM (SELECT DISTINCT asset FROM latest) a LEFT JOIN _sluice.public_views pv USING "
          "(asset) LEFT JOIN views v ON v.view_name = a.asset "
          "WHERE v.sql IS DISTINCT FROM pv.view_sql OR a.asset IN (SELECT asset FROM missing) "
          "ORDER BY 1"));
  for (const auto& row : found.rows) {
    const std::string asset = Str(row[0]);
    const bool unrecorded = Str(row[1]) == "true";
    const bool view_missing = Str(row[2]) == "true";
    const bool physical_missing = Str(row[3]) == "true";
    const bool table_in_place = Str(row[4]) == "true";
    if (physical_missing) {
      report.lost.push_back(asset +
                            ": the table of its published version is gone; the next run "
                            "rebuilds it");
      continue;
    }
    Status st = session.InTransaction([&]() -> Status {
      if (table_in_place) {
        // A table someone put where the view belongs: kept aside, not dropped.
        std::string aside = "_sluice_failed." + QuoteIdent(asset + "__displaced");
        RETURN_IF_ERROR(session.Execute("DROP TABLE IF EXISTS " + aside + "; CREATE TABLE " +
                                        aside + " AS SELECT * FROM main." + QuoteIdent(asset) +
                                        "; DROP TABLE main." + QuoteIdent(asset)));
      }
      ASSIGN_OR_RETURN(auto physicals, CurrentPhysicals(session, asset));
      return session.Execute(CreatePublicViewSql(asset, physicals));
    });
    if (!st.ok()) {
      report.lost.push_back(asset + ": its public view could not be restored: " + st.message());
    } else if (table_in_place) {
      report.restored.push_back(asset +
                                ": a table stood in place of its public view; it was "
                                "moved to _sluice_failed." +
                                asset + "__displaced and the view restored");
    } else if (view_missing) {
      report.restored.push_back(asset + ": its public view was missing; restored");
    } else if (!unrecorded) {
      report.restored.push_back(asset + ": its public view had been altered; restored");
    }
  }
  return report;
}

}  // namespace sluice
