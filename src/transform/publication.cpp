#include "transform/publication.h"

#include <algorithm>
#include <cctype>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "core/log.h"
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
    "rows, run_id, epoch_us(published_at), seq, cursor_state";

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
  p.cursor = ParseJson(row[12], nlohmann::json());
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

struct CurrentVersion {
  std::string physical;
  std::string version_id;
  int64_t seq = 0;
};

// The physical relation and version of each partition's current publication of asset.
Result<std::map<std::string, CurrentVersion>> CurrentPhysicals(WarehouseSession& session,
                                                               const std::string& asset) {
  ASSIGN_OR_RETURN(QueryResult current,
                   session.Query("SELECT partition_key, physical, version_id, seq FROM "
                                 "_sluice.publications WHERE asset = " +
                                 QuoteLiteral(asset) +
                                 " QUALIFY row_number() OVER (PARTITION BY partition_key "
                                 "ORDER BY seq DESC) = 1"));
  std::map<std::string, CurrentVersion> physicals;
  for (const auto& row : current.rows) {
    physicals[Str(row[0])] = {Str(row[1]), Str(row[2]), row[3] ? std::stoll(*row[3]) : 0};
  }
  return physicals;
}

// The public view of an asset over the physical relations its current
// publications name: one for an unpartitioned asset and for a partitioned
// one (its partitions table, hidden columns left out). A partitioned asset
// published before that table existed had a table per partition, and its
// view is their union until its next publication moves them in. DuckDB's
// text of the view is recorded in _sluice.public_views afterwards
// (RecordPublicViews), with the seq of the publication it shows.
std::string CreatePublicViewSql(const std::string& asset,
                                const std::map<std::string, CurrentVersion>& current) {
  std::set<std::string> physicals;
  for (const auto& [key, c] : current) physicals.insert(c.physical);
  // A partitioned asset's view shows its partitions only: a publication
  // from before it was partitioned ("") is left out once one exists.
  const std::string table = StagedRelation(PartitionsTableName(asset));
  if (physicals.count(table)) physicals = {table};
  std::vector<std::string> parts;
  for (const std::string& physical : physicals) {
    parts.push_back(physical == table ? std::string("SELECT * EXCLUDE (") + kPartitionColumn +
                                            ", " + kPartitionVersionColumn + ") FROM " + physical
                                      : "SELECT * FROM " + physical);
  }
  return "CREATE OR REPLACE VIEW main." + QuoteIdent(asset) + " AS " +
         Join(parts, " UNION ALL BY NAME ");
}

std::string InsertPublicationSql(const Publication& p) {
  return "INSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, "
         "fingerprint, checks_hash, inputs, schema_json, rows, run_id, published_at, request_id, "
         "cursor_state) "
         "VALUES (" +
         std::to_string(p.seq) + ", " + QuoteLiteral(p.asset) + ", " + QuoteLiteral(p.partition) +
         ", " + QuoteLiteral(p.version_id) + ", " + QuoteLiteral(p.physical) + ", " +
         QuoteLiteral(p.fingerprint) + ", " + QuoteLiteral(p.checks_hash) + ", " +
         QuoteLiteral(p.inputs.dump()) + ", " + QuoteLiteral(p.schema.dump()) + ", " +
         std::to_string(p.rows) + ", " + std::to_string(p.run_id) + ", make_timestamp(" +
         std::to_string(p.published_at) + "), " +
         (p.request_id.empty() ? std::string("NULL") : QuoteLiteral(p.request_id)) + ", " +
         (p.cursor.is_null() ? std::string("NULL") : QuoteLiteral(p.cursor.dump())) + ")";
}

// The table name inside a physical relation "_sluice_v.\"name\"" ("" when not one).
std::string StagedTableName(const std::string& physical) {
  const std::string prefix = "_sluice_v.";
  if (physical.compare(0, prefix.size(), prefix) != 0) return "";
  std::string quoted = physical.substr(prefix.size());
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') return "";
  std::string name;
  for (size_t i = 1; i + 1 < quoted.size(); ++i) {
    name += quoted[i];
    if (quoted[i] == '"') ++i;
  }
  return name;
}

// The asset a relation in _sluice_v holds a build of, from its name
// ("<asset>__<16 hex>" or "<asset>__<16 hex>_r<digits>"); "" when it is not one.
std::string AssetOfStagedName(const std::string& name) {
  size_t end = name.size();
  size_t r = name.rfind("_r");
  if (r != std::string::npos && r + 2 < name.size() &&
      std::all_of(name.begin() + static_cast<std::ptrdiff_t>(r) + 2, name.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    end = r;
  }
  if (end < 18 || name.compare(end - 18, 2, "__") != 0) return "";
  std::string asset = name.substr(0, end - 18);
  return !asset.empty() && IsStagedNameOf(asset, name) ? asset : "";
}

// The seq of a new publication: strictly increasing even if the clock steps
// back, also across restarts: it continues from the highest seq recorded
// (read inside the transaction, under the process's publish mutex).
int64_t NextSeqOf(WarehouseSession& session, Micros now) {
  Result<QueryResult> max_seq =
      session.Query("SELECT coalesce(max(seq), 0) FROM _sluice.publications");
  return std::max(max_seq.ok() ? max_seq->ScalarInt() + 1 : 1, now);
}

// Whether a partitioned asset's table and its history exist, from the
// catalog (the publisher knows from its picture of _sluice_v).
Result<PartitionTables> FindPartitionTables(WarehouseSession& session, const std::string& asset) {
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query("SELECT table_name FROM duckdb_tables() WHERE schema_name = "
                                 "'_sluice_v' AND table_name IN (" +
                                 QuoteLiteral(PartitionsTableName(asset)) + ", " +
                                 QuoteLiteral(PartitionHistoryTableName(asset)) + ")"));
  PartitionTables have;
  for (const auto& row : r.rows) {
    (Str(row[0]) == PartitionsTableName(asset) ? have.table : have.history) = true;
  }
  return have;
}

// The asset whose partitions table (or history) `name` is; "" when neither.
std::string AssetOfPartitionTable(const std::string& name, bool* history) {
  for (bool h : {false, true}) {
    const std::string suffix = h ? "__history" : "__partitions";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      *history = h;
      return name.substr(0, name.size() - suffix.size());
    }
  }
  return "";
}

// [(name, type)] of a relation, in order: DescribeRelation's, as pairs.
Result<std::vector<std::pair<std::string, std::string>>> ColumnsOf(WarehouseSession& session,
                                                                   const std::string& relation) {
  ASSIGN_OR_RETURN(nlohmann::json described, DescribeRelation(session, relation));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& c : described) out.emplace_back(c.value("name", ""), c.value("type", ""));
  return out;
}

// Publishing one partition of a partitioned asset, inside the publishing
// transaction (see the header). Runs the schema changes itself — DuckDB
// refuses an ALTER of a table this transaction already deleted from, so
// they come first — and returns the statements that move the rows, to run
// before the view and the publication record. Sets p.physical to the
// partitions table and `have` to what exists after it.
Result<std::string> PartitionPublishSql(WarehouseSession& session, Publication& p, int keep,
                                        PartitionTables& have) {
  const std::string table = StagedRelation(PartitionsTableName(p.asset));
  const std::string history = StagedRelation(PartitionHistoryTableName(p.asset));
  const std::string source_name = StagedTableName(p.physical);
  const bool from_build = !source_name.empty() && AssetOfStagedName(source_name) == p.asset;
  const std::string part = QuoteLiteral(p.partition);
  const std::string version = QuoteLiteral(p.version_id);
  const std::string tagged = std::string("SELECT ") + part + " AS " + kPartitionColumn + ", " +
                             version + " AS " + kPartitionVersionColumn + ", * FROM ";
  if (!from_build && p.physical != table) {
    return Status::Invalid("version " + p.version_id + " of partition " + p.partition + " of " +
                           p.asset + " is stored in the layout of an older Sluice (" + p.physical +
                           ") and cannot be restored; re-run the partition instead: sluice run " +
                           p.asset + " --partition " + p.partition);
  }
  if (!from_build && !have.table) {
    return Status::Invalid(p.asset + ": its partitions table " + table +
                           " is missing; re-run its partitions to rebuild it");
  }
  std::vector<std::pair<std::string, std::string>> columns;
  if (from_build) {
    ASSIGN_OR_RETURN(columns, ColumnsOf(session, p.physical));
    for (const auto& [name, type] : columns) {
      if (name == kPartitionColumn || name == kPartitionVersionColumn) {
        return Status::Invalid(p.asset + ": a column may not be named " + name +
                               " in a partitioned asset (Sluice keeps the partition there); "
                               "rename it with columns: or a model");
      }
    }
  }
  std::string sql;
  p.physical = table;
  if (!have.table) {
    // The asset's first publication in this layout. Partitions an older
    // Sluice published (a table each) move in when the owner opens the
    // warehouse (MovePartitionsToOneTable); until they have, publishing here
    // would hide them.
    ASSIGN_OR_RETURN(auto current, CurrentPhysicals(session, p.asset));
    for (const auto& [key, c] : current) {
      if (!key.empty() && key != p.partition && c.physical != table) {
        return Status::Invalid(
            p.asset +
            ": its partitions are still in the layout of an older Sluice (a table "
            "each, e.g. partition " +
            key +
            "); the owner moves them into one table when it "
            "opens the warehouse and could not (see its log); stop every sluice command of "
            "this environment and run again");
      }
    }
    sql += "CREATE TABLE " + table + " AS " + tagged + StagedRelation(source_name) + ";\n";
    sql += "DROP TABLE " + StagedRelation(source_name) + ";\n";
    have.table = true;
    return sql;
  }
  std::string ddl;
  if (from_build) {
    // Columns the table lacks are added; a type that differs widens to the
    // one DuckDB's UNION would give both (INTEGER and DOUBLE give DOUBLE).
    ASSIGN_OR_RETURN(auto existing, ColumnsOf(session, table));
    std::map<std::string, std::string> types(existing.begin(), existing.end());
    std::vector<std::pair<std::string, std::string>> added, differing;
    for (const auto& [name, type] : columns) {
      auto it = types.find(name);
      if (it == types.end()) {
        added.emplace_back(name, type);
      } else if (it->second != type) {
        differing.emplace_back(name, type);
      }
    }
    std::vector<std::string> altered;  // "ALTER COLUMN x TYPE t"
    if (!differing.empty()) {
      std::vector<std::string> left, right;
      for (size_t i = 0; i < differing.size(); ++i) {
        left.push_back("NULL::" + types[differing[i].first] + " AS c" + std::to_string(i));
        right.push_back("NULL::" + differing[i].second);
      }
      ASSIGN_OR_RETURN(auto widened,
                       ColumnsOf(session, "(SELECT " + Join(left, ", ") + " UNION ALL SELECT " +
                                              Join(right, ", ") + ")"));
      for (size_t i = 0; i < differing.size() && i < widened.size(); ++i) {
        if (widened[i].second == types[differing[i].first]) continue;
        altered.push_back("ALTER COLUMN " + QuoteIdent(differing[i].first) + " TYPE " +
                          widened[i].second);
      }
    }
    for (const std::string& t : {table, history}) {
      if (t == history && !have.history) continue;
      for (const auto& [name, type] : added) {
        ddl += "ALTER TABLE " + t + " ADD COLUMN " + QuoteIdent(name) + " " + type + ";\n";
      }
      for (const std::string& a : altered) ddl += "ALTER TABLE " + t + " " + a + ";\n";
    }
  }
  ASSIGN_OR_RETURN(QueryResult now,
                   session.Query("SELECT version_id FROM _sluice.publications WHERE asset = " +
                                 QuoteLiteral(p.asset) + " AND partition_key = " + part +
                                 " ORDER BY seq DESC LIMIT 1"));
  const std::string current = now.rows.empty() ? "" : Str(now.rows[0][0]);
  const bool keep_history = keep < 0 || keep > 1;
  const bool moves_current = keep_history && !current.empty() && current != p.version_id;
  if (moves_current && !have.history) {
    ddl += "CREATE TABLE " + history + " AS SELECT * FROM " + table + " LIMIT 0;\n";
    have.history = true;
  }
  if (!ddl.empty()) RETURN_IF_ERROR(session.Execute(ddl));
  if (!from_build && current == p.version_id) return sql;  // its rows are there: a re-audit
  const std::string where = std::string(" WHERE ") + kPartitionColumn + " = " + part;
  if (!from_build && p.rows > 0) {
    int64_t kept = 0;
    if (have.history) {
      ASSIGN_OR_RETURN(QueryResult n,
                       session.Query("SELECT count(*) FROM " + history + where + " AND " +
                                     kPartitionVersionColumn + " = " + version));
      kept = n.ScalarInt();
    }
    if (kept == 0) {
      return Status::Invalid("version " + p.version_id + " of partition " + p.partition + " of " +
                             p.asset + " is no longer kept (defaults.keep_versions)");
    }
  }
  if (moves_current)
    sql += "INSERT INTO " + history + " BY NAME SELECT * FROM " + table + where + ";\n";
  sql += "DELETE FROM " + table + where + ";\n";
  if (from_build) {
    sql += "INSERT INTO " + table + " BY NAME " + tagged + StagedRelation(source_name) + ";\n";
    sql += "DROP TABLE " + StagedRelation(source_name) + ";\n";
  } else if (have.history) {
    sql += "INSERT INTO " + table + " BY NAME SELECT * FROM " + history + where + " AND " +
           kPartitionVersionColumn + " = " + version + ";\n";
  }
  if (have.history) {
    // The newest keep - 1 versions replaced stay; the one now current leaves.
    sql += "DELETE FROM " + history + where + " AND (" + kPartitionVersionColumn + " = " + version;
    if (keep >= 0) {
      sql += std::string(" OR ") + kPartitionVersionColumn +
             " NOT IN (SELECT version_id FROM _sluice.publications WHERE asset = " +
             QuoteLiteral(p.asset) + " AND partition_key = " + part + " AND version_id <> " +
             version + " GROUP BY version_id ORDER BY max(seq) DESC LIMIT " +
             std::to_string(std::max(keep - 1, 0)) + ")";
    }
    sql += ");\n";
  }
  return sql;
}

}  // namespace

std::string PartitionsTableName(const std::string& asset) { return asset + "__partitions"; }

std::string PartitionHistoryTableName(const std::string& asset) { return asset + "__history"; }

std::string PartitionRows(const std::string& asset, const std::string& partition) {
  return std::string("(SELECT * EXCLUDE (") + kPartitionColumn + ", " + kPartitionVersionColumn +
         ") FROM " + StagedRelation(PartitionsTableName(asset)) + " WHERE " + kPartitionColumn +
         " = " + QuoteLiteral(partition) + ")";
}

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

// Bumped with every change to the statements below: a warehouse already at
// this version is left alone (any DDL, even CREATE OR REPLACE of the same
// view, writes the WAL, and the close then checkpoints the whole catalog —
// seconds for a warehouse of 10,000 assets, at every command).
constexpr int64_t kInternalSchemaVersion = 2;

static Status CreateInternalSchema(WarehouseSession& session);

Status EnsureInternalSchema(WarehouseSession& session) {
  Result<QueryResult> at =
      session.Query("SELECT coalesce(max(version), 0) FROM _sluice.internal_schema");
  if (at.ok() && at->ScalarInt() == kInternalSchemaVersion) return Status::Ok();
  return session.InTransaction([&] { return CreateInternalSchema(session); });
}

static Status CreateInternalSchema(WarehouseSession& session) {
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
      // The publication the recorded text shows: a later one not yet
      // recorded (a run records its views when it ends) is no tampering.
      "ALTER TABLE _sluice.public_views ADD COLUMN IF NOT EXISTS seq BIGINT;"
      "CREATE OR REPLACE VIEW _sluice.current_issues AS SELECT * FROM _sluice.issues "
      "WHERE (asset, version_id) IN (SELECT asset, version_id FROM _sluice.publications "
      "QUALIFY row_number() OVER (PARTITION BY asset, partition_key ORDER BY seq DESC) = 1);"
      "CREATE TABLE IF NOT EXISTS _sluice.internal_schema (version BIGINT NOT NULL);"
      "DELETE FROM _sluice.internal_schema;"
      "INSERT INTO _sluice.internal_schema VALUES (" +
      std::to_string(kInternalSchemaVersion) + ");");
}

namespace {

Result<bool> PublishNumbered(WarehouseSession& session, Publication p, const Clock& clock,
                             const std::function<Result<bool>(Publication*)>& change,
                             bool record_view, const std::function<int64_t(Micros)>& next_seq,
                             const std::function<void(const Publication&)>& committed,
                             int keep = -1);

}  // namespace

Status PublishVersion(WarehouseSession& session, Publication p, const Clock& clock,
                      bool record_view, int keep) {
  Result<bool> done = PublishNumbered(
      session, std::move(p), clock, [](Publication*) -> Result<bool> { return true; }, record_view,
      [&](Micros now) { return NextSeqOf(session, now); }, nullptr, keep);
  return done.ok() ? Status::Ok() : done.status();
}

namespace {

// PublishInPlace, numbering the publication with next_seq (called inside the
// transaction, under the publish mutex) and telling `committed` about it.
Result<bool> PublishNumbered(WarehouseSession& session, Publication p, const Clock& clock,
                             const std::function<Result<bool>(Publication*)>& change,
                             bool record_view, const std::function<int64_t(Micros)>& next_seq,
                             const std::function<void(const Publication&)>& committed, int keep) {
  std::lock_guard lock(PublishMutex());
  p.published_at = clock.Now();
  bool published = false;
  Status st = session.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(bool go_on, change(&p));
    if (!go_on) return Status(StatusCode::kCheckFailed, "the change was not published");
    if (InjectIoFailure("publish")) {
      return Status::IOError("publishing " + p.asset + " failed: injected failure (test build)");
    }
    std::string rows;
    std::map<std::string, CurrentVersion> current;
    if (!p.partition.empty()) {
      ASSIGN_OR_RETURN(PartitionTables have, FindPartitionTables(session, p.asset));
      ASSIGN_OR_RETURN(rows, PartitionPublishSql(session, p, keep, have));
    }
    current[p.partition] = {p.physical, p.version_id};
    p.seq = next_seq(p.published_at);
    published = true;
    return session.Execute(rows + CreatePublicViewSql(p.asset, current) + ";\n" +
                           InsertPublicationSql(p));
  });
  if (st.code() == StatusCode::kCheckFailed && !published) return false;
  if (!st.ok()) return st;
  if (committed) committed(p);
  if (record_view) {
    // Published already: a failure here only leaves the view unrecorded.
    Status recorded = RecordPublicViews(session, {p.asset});
    if (!recorded.ok()) return recorded.WithContext("recording the public view of " + p.asset);
  }
  return true;
}

}  // namespace

Result<bool> PublishInPlace(WarehouseSession& session, Publication p, const Clock& clock,
                            const std::function<Result<bool>(Publication*)>& change,
                            bool record_view) {
  return PublishNumbered(
      session, std::move(p), clock, change, record_view,
      [&](Micros now) { return NextSeqOf(session, now); }, nullptr);
}

Status RecordPublicViews(WarehouseSession& session, const std::vector<std::string>& assets) {
  if (assets.empty()) return Status::Ok();
  std::vector<std::string> names;
  names.reserve(assets.size());
  for (const std::string& a : assets) names.push_back(QuoteLiteral(a));
  std::string list = Join(names, ", ");
  return session.Execute(
      "INSERT OR REPLACE INTO _sluice.public_views (asset, view_sql, seq) SELECT v.view_name, "
      "v.sql, p.seq FROM duckdb_views() v JOIN (SELECT asset, max(seq) AS seq FROM "
      "_sluice.publications WHERE asset IN (" +
      list +
      ") GROUP BY asset) p ON p.asset = v.view_name WHERE v.schema_name = 'main' AND NOT "
      "v.internal");
}

Result<std::unique_ptr<Publisher>> Publisher::Load(WarehouseSession& session, const Clock& clock,
                                                   std::unique_ptr<WarehouseSession> own) {
  ASSIGN_OR_RETURN(
      QueryResult r,
      session.Query("SELECT t.table_name, p.partition_key, p.seq, t.table_type = 'VIEW' FROM "
                    "information_schema.tables t "
                    "LEFT JOIN (SELECT physical, arg_max(partition_key, seq) AS partition_key, "
                    "max(seq) AS seq FROM _sluice.publications GROUP BY physical) p ON p.physical "
                    "= '_sluice_v.\"' || replace(t.table_name, '\"', '\"\"') || '\"' WHERE "
                    "t.table_schema = '_sluice_v'"));
  ASSIGN_OR_RETURN(QueryResult max_seq,
                   session.Query("SELECT coalesce(max(seq), 0) FROM _sluice.publications"));
  auto publisher = std::make_unique<Publisher>(clock);
  publisher->own_session_ = std::move(own);
  publisher->max_seq_ = max_seq.ScalarInt();
  for (const auto& row : r.rows) {
    std::string name = Str(row[0]);
    std::string asset = AssetOfStagedName(name);
    if (asset.empty()) {
      bool history = false;
      std::string partitioned = AssetOfPartitionTable(name, &history);
      if (!partitioned.empty()) {
        PartitionTables& have = publisher->partition_tables_[partitioned];
        (history ? have.history : have.table) = true;
      }
      continue;  // not a build's name: never reserved, never pruned
    }
    Entry& e = publisher->by_asset_[asset][name];
    e.partition = Str(row[1]);
    e.seq = row[2] ? std::stoll(*row[2]) : 0;
    e.is_view = Str(row[3]) == "true";
  }
  return publisher;
}

std::string Publisher::Reserve(const std::string& asset, const std::string& version_id,
                               bool is_view) {
  std::lock_guard lock(mu_);
  auto& tables = by_asset_[asset];
  std::string name = PhysicalTableName(asset, version_id);
  for (int n = 1; tables.count(name); ++n) {
    name = PhysicalTableName(asset, version_id) + "_r" + std::to_string(n);
  }
  tables[name].reserved = true;
  tables[name].is_view = is_view;
  return name;
}

void Publisher::Release(const std::string& table_name) {
  std::string asset = AssetOfStagedName(table_name);
  std::lock_guard lock(mu_);
  auto it = by_asset_.find(asset);
  if (it == by_asset_.end()) return;
  auto e = it->second.find(table_name);
  if (e != it->second.end()) e->second.reserved = false;
}

void Publisher::Dropped(const std::string& table_name) {
  std::string asset = AssetOfStagedName(table_name);
  std::lock_guard lock(mu_);
  auto it = by_asset_.find(asset);
  if (it == by_asset_.end()) return;
  it->second.erase(table_name);
  if (it->second.empty()) by_asset_.erase(it);
}

std::pair<int64_t, int64_t> Publisher::Commits() const {
  std::lock_guard lock(mu_);
  return {published_, transactions_};
}

std::vector<std::string> Publisher::Repointed() const {
  std::lock_guard lock(mu_);
  return {repointed_.begin(), repointed_.end()};
}

std::vector<std::string> Publisher::TakeRepointed() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out(repointed_.begin(), repointed_.end());
  repointed_.clear();
  return out;
}

int64_t Publisher::NextSeq(Micros now) {
  std::lock_guard lock(mu_);
  max_seq_ = std::max(max_seq_ + 1, now);
  return max_seq_;
}

std::vector<Publisher::Relation> Publisher::Prunable(const std::string& asset, int keep) {
  std::lock_guard lock(mu_);
  return PrunableLocked(asset, keep, "", "");
}

std::vector<Publisher::Relation> Publisher::PrunableLocked(const std::string& asset, int keep,
                                                           const std::string& next_name,
                                                           const std::string& next_partition) {
  std::vector<Relation> out;
  auto it = by_asset_.find(asset);
  if (it == by_asset_.end()) return out;
  // Newest first within each partition.
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> published;
  for (const auto& [name, e] : it->second) {
    if (name == next_name) {
      published[next_partition].emplace_back(std::numeric_limits<int64_t>::max(), name);
    } else if (e.seq > 0) {
      published[e.partition].emplace_back(e.seq, name);
    } else if (!e.reserved) {
      out.push_back({name, e.is_view});
    }
  }
  for (auto& [partition, list] : published) {
    std::sort(list.rbegin(), list.rend());
    for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < list.size(); ++i) {
      out.push_back({list[i].second, it->second.at(list[i].second).is_view});
    }
  }
  return out;
}

struct Publisher::Request {
  Publication pub;
  Publication original;  // as asked: each attempt (a group, then alone) starts from it
  int keep = 1;
  std::vector<Relation> drop;  // decided when its group is published
  // A partition's: the build its rows came from (dropped by the same
  // transaction), and its asset's tables after it.
  std::string consumed;
  PartitionTables have;
  std::promise<Status> done;
};

void Publisher::Committed(const Request& r) {
  UpdatePicture(r);
  if (on_commit_) on_commit_(r.pub);
}

void Publisher::UpdatePicture(const Request& r) {
  std::string name = r.pub.partition.empty() ? StagedTableName(r.pub.physical) : "";
  std::lock_guard lock(mu_);
  if (!r.pub.partition.empty()) {
    partition_tables_[r.pub.asset] = r.have;
    if (!r.consumed.empty()) by_asset_[r.pub.asset].erase(r.consumed);
  }
  if (!name.empty()) {
    Entry& e = by_asset_[r.pub.asset][name];
    e.partition = r.pub.partition;
    e.seq = r.pub.seq;
    e.reserved = false;
  }
  for (const Relation& d : r.drop) {
    auto it = by_asset_.find(r.pub.asset);
    if (it != by_asset_.end()) it->second.erase(d.name);
  }
  repointed_.insert(r.pub.asset);
  ++published_;
}

Result<std::string> Publisher::StatementsOf(WarehouseSession& session, Request& r) {
  r.pub = r.original;  // an attempt after a failed group starts afresh
  Publication& p = r.pub;
  if (InjectIoFailure("publish")) {
    return Status::IOError("publishing " + p.asset + " failed: injected failure (test build)");
  }
  p.published_at = clock_.Now();
  p.seq = NextSeq(p.published_at);
  auto drops = [&] {
    std::string sql;
    for (const Relation& d : r.drop) {
      sql += std::string(d.is_view ? "DROP VIEW IF EXISTS " : "DROP TABLE IF EXISTS ") +
             "_sluice_v." + QuoteIdent(d.name) + ";\n";
    }
    return sql;
  };
  if (!p.partition.empty()) {
    // Its rows go into the asset's table; the relations left of the asset
    // are builds never published and tables of an older layout, moved in.
    std::string source = StagedTableName(p.physical);
    r.consumed = AssetOfStagedName(source) == p.asset ? source : "";
    {
      std::lock_guard lock(mu_);
      auto it = partition_tables_.find(p.asset);
      r.have = it != partition_tables_.end() ? it->second : PartitionTables{};
    }
    ASSIGN_OR_RETURN(std::string rows, PartitionPublishSql(session, p, r.keep, r.have));
    {
      std::lock_guard lock(mu_);
      r.drop.clear();
      auto it = by_asset_.find(p.asset);
      if (it != by_asset_.end()) {
        for (const auto& [name, e] : it->second) {
          if (name == r.consumed || e.reserved || (e.seq > 0 && e.partition.empty())) continue;
          r.drop.push_back({name, e.is_view});
        }
      }
    }
    return rows + drops() + CreatePublicViewSql(p.asset, {{p.partition, {p.physical, ""}}}) +
           ";\n" + InsertPublicationSql(p);
  }
  std::map<std::string, CurrentVersion> current = {{p.partition, {p.physical, p.version_id}}};
  {
    std::lock_guard lock(mu_);
    r.drop = PrunableLocked(p.asset, r.keep, StagedTableName(p.physical), p.partition);
  }
  return drops() + CreatePublicViewSql(p.asset, current) + ";\n" + InsertPublicationSql(p);
}

Status Publisher::PublishOne(WarehouseSession& session, Request& r) {
  Status st = session.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(std::string sql, StatementsOf(session, r));
    return session.Execute(sql);
  });
  if (st.ok()) {
    Committed(r);
    std::lock_guard lock(mu_);
    ++transactions_;
  }
  return st;
}

void Publisher::PublishGroup(WarehouseSession& session, const std::vector<Request*>& group) {
  std::vector<Request*> rest = group;
  while (!rest.empty()) {
    std::vector<Request*> round, later;
    std::set<std::string> partitioned;
    for (Request* r : rest) {
      bool again = !r->pub.partition.empty() && !partitioned.insert(r->pub.asset).second;
      (again ? later : round).push_back(r);
    }
    PublishRound(session, round);
    rest.swap(later);
  }
}

void Publisher::PublishRound(WarehouseSession& session, const std::vector<Request*>& group) {
  std::lock_guard publish_lock(PublishMutex());
  if (group.size() > 1) {
    std::map<Request*, Status> failed;
    Status st = session.InTransaction([&]() -> Status {
      failed.clear();
      for (Request* r : group) {
        Result<std::string> sql = StatementsOf(session, *r);
        if (!sql.ok()) {
          failed[r] = sql.status();  // its own failure; the rest go on
          continue;
        }
        RETURN_IF_ERROR(session.Execute(*sql));
      }
      return Status::Ok();
    });
    if (st.ok()) {
      {
        std::lock_guard lock(mu_);
        ++transactions_;
      }
      for (Request* r : group) {
        auto f = failed.find(r);
        if (f != failed.end()) {
          r->done.set_value(f->second);
          continue;
        }
        Committed(*r);
        r->done.set_value(Status::Ok());
      }
      return;
    }
    LOG_DEBUG("publish", "a group of {} publications failed ({}); publishing one by one",
              group.size(), st.message());
  }
  for (Request* r : group) r->done.set_value(PublishOne(session, *r));
}

Status Publisher::Publish(WarehouseSession& session, Publication& pub, int keep) {
  Request request;
  request.pub = pub;
  request.original = pub;
  request.keep = keep;
  std::future<Status> result = request.done.get_future();
  std::unique_lock lock(queue_mu_);
  queue_.push_back(&request);
  if (!leading_) {
    // This task leads: it publishes what is queued until nothing is.
    leading_ = true;
    while (!queue_.empty()) {
      std::vector<Request*> group;
      group.swap(queue_);
      lock.unlock();
      try {  // the other tasks wait on their promises: never leave one unset
        // On the publisher's own session when it has one: a cancel of this
        // task's run (which interrupts its session) must not fail others'.
        PublishGroup(own_session_ ? *own_session_ : session, group);
      } catch (...) {
        for (Request* r : group) {
          try {
            r->done.set_exception(std::current_exception());
          } catch (const std::future_error&) {
            // already satisfied
          }
        }
      }
      lock.lock();
    }
    leading_ = false;
  }
  lock.unlock();
  Status st = result.get();
  if (st.ok()) {
    pub.seq = request.pub.seq;
    pub.published_at = request.pub.published_at;
    pub.physical = request.pub.physical;  // a partition's: its asset's table
  }
  return st;
}

Status Publisher::PublishWithin(WarehouseSession& session, Publication& pub, int keep) {
  Request request;
  request.pub = pub;
  request.original = pub;
  request.keep = keep;
  Status st;
  if (!pub.partition.empty()) {
    st = Status::Internal("a partition of " + pub.asset +
                          " cannot publish in its build's transaction");
  } else {
    // Side by side with other tasks' publications, not in turn under the
    // publish mutex: each transaction names only its own asset's relations
    // (one task holds an asset at a time, orchestrate/holds.h), DuckDB's
    // appends to _sluice.publications never conflict, and a seq (NextSeq,
    // under mu_) is unique however the commits interleave; readers take
    // the highest seq of each asset and partition. DuckDB orders the
    // commits themselves.
    Result<std::string> sql = StatementsOf(session, request);
    st = sql.ok() ? session.Execute(*sql) : sql.status();
    if (st.ok()) st = session.Execute("COMMIT");
    if (st.ok()) {
      Committed(request);
      std::lock_guard lock(mu_);
      ++transactions_;
    }
  }
  if (!st.ok()) {
    (void)session.Execute("ROLLBACK");
    return st;
  }
  pub.seq = request.pub.seq;
  pub.published_at = request.pub.published_at;
  return Status::Ok();
}

Result<bool> Publisher::PublishInPlace(WarehouseSession& session, Publication pub,
                                       const std::function<Result<bool>(Publication*)>& change) {
  return PublishNumbered(
      session, std::move(pub), clock_, change, /*record_view=*/false,
      [this](Micros now) { return NextSeq(now); },
      [this](const Publication& p) {
        Request r;
        r.pub = p;
        Committed(r);
        std::lock_guard lock(mu_);
        ++transactions_;
      });
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

Result<std::shared_ptr<const CurrentPublications::Map>> CurrentPublications::Snapshot(
    WarehouseSession& session) {
  std::lock_guard lock(mu_);
  if (!map_) {
    ASSIGN_OR_RETURN(Map loaded, LatestPublications(session));
    map_ = std::make_shared<Map>(std::move(loaded));
    ++generation_;
  }
  return std::shared_ptr<const Map>(map_);
}

void CurrentPublications::Set(Map map) {
  std::lock_guard lock(mu_);
  map_ = std::make_shared<Map>(std::move(map));
  ++generation_;
}

void CurrentPublications::Invalidate() {
  std::lock_guard lock(mu_);
  map_.reset();
  ++generation_;
}

void CurrentPublications::Update(const Publication& p) {
  std::lock_guard lock(mu_);
  if (map_) {
    // Held by a snapshot too: changed in a copy (snapshots never change).
    // Only this object makes snapshots, under mu_, so a count of one stays one.
    if (map_.use_count() > 1) map_ = std::make_shared<Map>(*map_);
    (*map_)[{p.asset, p.partition}] = p;
  }
  ++generation_;
}

bool CurrentPublications::Visit(const std::function<void(const Map&)>& fn) {
  std::lock_guard lock(mu_);
  if (!map_) return false;
  fn(*map_);
  return true;
}

std::optional<std::vector<Publication>> CurrentPublications::Of(const std::string& asset) {
  std::lock_guard lock(mu_);
  if (!map_) return std::nullopt;
  std::vector<Publication> out;
  for (auto it = map_->lower_bound({asset, ""}); it != map_->end() && it->first.first == asset;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

Result<Publisher*> SharedPublisher::Get(WarehouseSession& session) {
  std::lock_guard lock(mu_);
  if (!publisher_) {
    ASSIGN_OR_RETURN(std::unique_ptr<WarehouseSession> own, warehouse_->Connect());
    ASSIGN_OR_RETURN(publisher_, Publisher::Load(session, clock_, std::move(own)));
    CurrentPublications* current = current_;
    if (current) publisher_->OnCommit([current](const Publication& p) { current->Update(p); });
  }
  return publisher_.get();
}

void SharedPublisher::Reset() {
  std::lock_guard lock(mu_);
  publisher_.reset();
}

Result<std::optional<Publication>> PublicationOfRequest(WarehouseSession& session,
                                                        const std::string& request_id) {
  ASSIGN_OR_RETURN(QueryResult r, session.Query(std::string("SELECT ") + kPublicationColumns +
                                                " FROM _sluice.publications WHERE request_id = " +
                                                QuoteLiteral(request_id) + " LIMIT 1"));
  if (r.rows.empty()) return std::optional<Publication>();
  return std::optional<Publication>(RowToPublication(r.rows[0]));
}

Result<std::set<std::string>> KeptPartitionVersions(WarehouseSession& session,
                                                    const std::string& asset,
                                                    const std::string& partition) {
  std::set<std::string> kept;
  ASSIGN_OR_RETURN(PartitionTables have, FindPartitionTables(session, asset));
  if (!have.history) return kept;
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query(std::string("SELECT DISTINCT ") + kPartitionVersionColumn +
                                 " FROM " + StagedRelation(PartitionHistoryTableName(asset)) +
                                 " WHERE " + kPartitionColumn + " = " + QuoteLiteral(partition)));
  for (const auto& row : r.rows) kept.insert(Str(row[0]));
  return kept;
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
  return DropStaged(session, table_name, Str(r.rows[0][0]) == "VIEW");
}

Status DropStaged(WarehouseSession& session, const std::string& table_name, bool is_view) {
  return session.Execute(std::string(is_view ? "DROP VIEW IF EXISTS " : "DROP TABLE IF EXISTS ") +
                         "_sluice_v." + QuoteIdent(table_name));
}

Status KeepFailedBuild(WarehouseSession& session, const std::string& asset,
                       const std::string& table_name) {
  // Partitions of one asset failing side by side replace the same table:
  // one at a time (DuckDB would fail one of two on a write-write conflict).
  static std::mutex mu;
  std::lock_guard lock(mu);
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

Result<int> MovePartitionsToOneTable(WarehouseSession& session) {
  std::lock_guard lock(PublishMutex());
  ASSIGN_OR_RETURN(
      QueryResult found,
      session.Query("SELECT DISTINCT asset FROM (SELECT asset, physical FROM _sluice.publications "
                    "WHERE partition_key <> '' QUALIFY row_number() OVER (PARTITION BY asset, "
                    "partition_key ORDER BY seq DESC) = 1) WHERE physical <> '_sluice_v.\"' || "
                    "replace(asset || '__partitions', '\"', '\"\"') || '\"' ORDER BY 1"));
  if (found.rows.empty()) return 0;
  ASSIGN_OR_RETURN(QueryResult staged, session.Query("SELECT table_name FROM duckdb_tables() "
                                                     "WHERE schema_name = '_sluice_v'"));
  std::set<std::string> exists;
  for (const auto& row : staged.rows) exists.insert(StagedRelation(Str(row[0])));
  int moved = 0;
  for (const auto& row : found.rows) {
    const std::string asset = Str(row[0]);
    const std::string table = StagedRelation(PartitionsTableName(asset));
    if (exists.count(table)) continue;  // a mix this code never makes: left to the repair
    Status st = session.InTransaction([&]() -> Status {
      ASSIGN_OR_RETURN(auto current, CurrentPhysicals(session, asset));
      // The current version of each partition moves in; a partition whose
      // table is gone stays as it is, for the repair to report and the next
      // run to rebuild. Earlier versions of the partitions moved are not
      // carried over: their tables go, and rollback offers them no more.
      std::vector<std::string> selects, moved_keys, current_rows;
      for (const auto& [key, c] : current) {
        if (key.empty() || !exists.count(c.physical)) continue;
        selects.push_back("SELECT " + QuoteLiteral(key) + " AS " + kPartitionColumn + ", " +
                          QuoteLiteral(c.version_id) + " AS " + kPartitionVersionColumn +
                          ", * FROM " + c.physical);
        moved_keys.push_back(QuoteLiteral(key));
        current_rows.push_back(std::to_string(c.seq));  // seq is unique across publications
      }
      if (selects.empty()) return Status::Ok();
      ASSIGN_OR_RETURN(QueryResult olds,
                       session.Query("SELECT DISTINCT physical FROM _sluice.publications WHERE "
                                     "asset = " +
                                     QuoteLiteral(asset) + " AND partition_key IN (" +
                                     Join(moved_keys, ", ") + ")"));
      std::string sql = "CREATE TABLE " + table + " AS " + Join(selects, " UNION ALL BY NAME ") +
                        ";\nUPDATE _sluice.publications SET physical = " + QuoteLiteral(table) +
                        " WHERE asset = " + QuoteLiteral(asset) + " AND seq IN (" +
                        Join(current_rows, ", ") + ");\n";
      for (const auto& old : olds.rows) {
        if (exists.count(Str(old[0])) && Str(old[0]) != table) {
          sql += "DROP TABLE " + Str(old[0]) + ";\n";
        }
      }
      sql += CreatePublicViewSql(asset, {{"", {table, ""}}}) + ";\n";
      return session.Execute(sql);
    });
    if (!st.ok()) return st.WithContext("moving the partitions of " + asset + " into one table");
    RETURN_IF_ERROR(RecordPublicViews(session, {asset}));
    ++moved;
    LOG_INFO("publish", "{}: its partitions moved into one table, {}", asset, table);
  }
  return moved;
}

Result<int> DropOrphans(WarehouseSession& session) {
  ASSIGN_OR_RETURN(QueryResult r,
                   session.Query("SELECT t.table_name FROM information_schema.tables t "
                                 "WHERE t.table_schema = '_sluice_v' AND NOT EXISTS (SELECT 1 FROM "
                                 "_sluice.publications p WHERE p.physical = '_sluice_v.' || "
                                 "'\"' || replace(regexp_replace(t.table_name, '__history$', "
                                 "'__partitions'), '\"', '\"\"') || '\"')"));
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

Result<nlohmann::json> DescribeStagedTable(WarehouseSession& session,
                                           const std::string& table_name) {
  // pragma_table_info parses its argument as a qualified name, and does not
  // undouble a quote in it; builds' names never have one (asset names are
  // identifiers), other names take the general way.
  if (table_name.find('"') != std::string::npos) {
    return DescribeRelation(session, StagedRelation(table_name));
  }
  ASSIGN_OR_RETURN(QueryResult r, session.Query("SELECT name, type FROM pragma_table_info(" +
                                                QuoteLiteral(StagedRelation(table_name)) + ")"));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : r.rows) out.push_back({{"name", Str(row[0])}, {"type", Str(row[1])}});
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
          "WITH latest AS (SELECT asset, physical, seq FROM _sluice.publications QUALIFY "
          "row_number() OVER (PARTITION BY asset, partition_key ORDER BY seq DESC) = 1), "
          "staged AS (SELECT '_sluice_v.\"' || replace(table_name, '\"', '\"\"') || '\"' AS "
          "physical FROM information_schema.tables WHERE table_schema = '_sluice_v'), "
          "missing AS (SELECT DISTINCT asset FROM latest WHERE physical NOT IN (SELECT physical "
          "FROM staged)), "
          "views AS (SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND "
          "NOT internal) "
          "SELECT a.asset, pv.view_sql IS NULL OR coalesce(pv.seq, a.seq) < a.seq, v.sql IS "
          "NULL, a.asset IN (SELECT asset FROM "
          "missing), EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = "
          "'main' AND t.table_name = a.asset AND t.table_type <> 'VIEW') "
          "FROM (SELECT asset, max(seq) AS seq FROM latest GROUP BY asset) a LEFT JOIN "
          "_sluice.public_views pv USING (asset) LEFT JOIN views v ON v.view_name = a.asset "
          "WHERE v.sql IS DISTINCT FROM pv.view_sql OR a.asset IN (SELECT asset FROM missing) "
          "ORDER BY 1"));
  std::vector<std::string> recreated;
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
    if (st.ok()) recreated.push_back(asset);
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
  RETURN_IF_ERROR(RecordPublicViews(session, recreated));
  return report;
}

}  // namespace sluice
