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
// "", when unpartitioned). A partitioned asset's view is the union of every
// partition's current version; BY NAME lets a column appear in some
// partitions only and widens types that differ between them. DuckDB's text
// of the view is recorded in _sluice.public_views afterwards
// (RecordPublicViews), with the seq of the publication it shows.
std::string CreatePublicViewSql(const std::string& asset,
                                const std::map<std::string, std::string>& physicals) {
  std::vector<std::string> parts;
  for (const auto& [key, physical] : physicals) parts.push_back("SELECT * FROM " + physical);
  return "CREATE OR REPLACE VIEW main." + QuoteIdent(asset) + " AS " +
         Join(parts, " UNION ALL BY NAME ");
}

std::string InsertPublicationSql(const Publication& p) {
  return "INSERT INTO _sluice.publications (seq, asset, partition_key, version_id, physical, "
         "fingerprint, checks_hash, inputs, schema_json, rows, run_id, published_at, request_id) "
         "VALUES (" +
         std::to_string(p.seq) + ", " + QuoteLiteral(p.asset) + ", " + QuoteLiteral(p.partition) +
         ", " + QuoteLiteral(p.version_id) + ", " + QuoteLiteral(p.physical) + ", " +
         QuoteLiteral(p.fingerprint) + ", " + QuoteLiteral(p.checks_hash) + ", " +
         QuoteLiteral(p.inputs.dump()) + ", " + QuoteLiteral(p.schema.dump()) + ", " +
         std::to_string(p.rows) + ", " + std::to_string(p.run_id) + ", make_timestamp(" +
         std::to_string(p.published_at) + "), " +
         (p.request_id.empty() ? std::string("NULL") : QuoteLiteral(p.request_id)) + ")";
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

Status PublishVersion(WarehouseSession& session, Publication p, const Clock& clock,
                      bool record_view) {
  Result<bool> done = PublishInPlace(
      session, std::move(p), clock, [](Publication*) -> Result<bool> { return true; }, record_view);
  return done.ok() ? Status::Ok() : done.status();
}

namespace {

// PublishInPlace, numbering the publication with next_seq (called inside the
// transaction, under the publish mutex) and telling `committed` about it.
Result<bool> PublishNumbered(WarehouseSession& session, Publication p, const Clock& clock,
                             const std::function<Result<bool>(Publication*)>& change,
                             bool record_view, const std::function<int64_t(Micros)>& next_seq,
                             const std::function<void(const Publication&)>& committed) {
  std::lock_guard lock(PublishMutex());
  p.published_at = clock.Now();
  bool published = false;
  Status st = session.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(bool go_on, change(&p));
    if (!go_on) return Status(StatusCode::kCheckFailed, "the change was not published");
    if (InjectIoFailure("publish")) {
      return Status::IOError("publishing " + p.asset + " failed: injected failure (test build)");
    }
    std::map<std::string, std::string> physicals;
    if (!p.partition.empty()) {
      ASSIGN_OR_RETURN(physicals, CurrentPhysicals(session, p.asset));
    }
    physicals[p.partition] = p.physical;
    p.seq = next_seq(p.published_at);
    published = true;
    return session.Execute(CreatePublicViewSql(p.asset, physicals) + ";\n" +
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
  // seq orders publications; strictly increasing even if the clock steps back,
  // also across restarts: it continues from the highest seq already recorded
  // (read inside the transaction, under the process's publish mutex).
  return PublishNumbered(
      session, std::move(p), clock, change, record_view,
      [&](Micros now) -> int64_t {
        Result<QueryResult> max_seq =
            session.Query("SELECT coalesce(max(seq), 0) FROM _sluice.publications");
        return std::max(max_seq.ok() ? max_seq->ScalarInt() + 1 : 1, now);
      },
      nullptr);
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

Result<std::unique_ptr<Publisher>> Publisher::Load(WarehouseSession& session, const Clock& clock) {
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
  publisher->max_seq_ = max_seq.ScalarInt();
  for (const auto& row : r.rows) {
    std::string name = Str(row[0]);
    std::string asset = AssetOfStagedName(name);
    if (asset.empty()) continue;  // not a build's name: never reserved, never pruned
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
  int keep = 1;
  std::vector<Relation> drop;  // decided when its group is published
  std::promise<Status> done;
};

void Publisher::Committed(const Request& r) {
  std::string name = StagedTableName(r.pub.physical);
  std::lock_guard lock(mu_);
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
  Publication& p = r.pub;
  if (InjectIoFailure("publish")) {
    return Status::IOError("publishing " + p.asset + " failed: injected failure (test build)");
  }
  p.published_at = clock_.Now();
  p.seq = NextSeq(p.published_at);
  std::map<std::string, std::string> physicals;
  if (!p.partition.empty()) {
    ASSIGN_OR_RETURN(physicals, CurrentPhysicals(session, p.asset));
  }
  physicals[p.partition] = p.physical;
  {
    std::lock_guard lock(mu_);
    r.drop = PrunableLocked(p.asset, r.keep, StagedTableName(p.physical), p.partition);
  }
  std::string sql;
  for (const Relation& d : r.drop) {
    sql += std::string(d.is_view ? "DROP VIEW IF EXISTS " : "DROP TABLE IF EXISTS ") +
           "_sluice_v." + QuoteIdent(d.name) + ";\n";
  }
  return sql + CreatePublicViewSql(p.asset, physicals) + ";\n" + InsertPublicationSql(p);
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
        PublishGroup(session, group);
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
  }
  return st;
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

Result<CurrentPublications::Map> CurrentPublications::Get(WarehouseSession& session) {
  std::lock_guard lock(mu_);
  if (!map_) {
    ASSIGN_OR_RETURN(Map loaded, LatestPublications(session));
    map_ = std::move(loaded);
  }
  return *map_;
}

void CurrentPublications::Set(Map map) {
  std::lock_guard lock(mu_);
  map_ = std::move(map);
}

void CurrentPublications::Invalidate() {
  std::lock_guard lock(mu_);
  map_.reset();
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
  return DropStaged(session, table_name, Str(r.rows[0][0]) == "VIEW");
}

Status DropStaged(WarehouseSession& session, const std::string& table_name, bool is_view) {
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
