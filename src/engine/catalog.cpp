// The engine's catalog requests, behind the HTTP API's /api/v1/assets,
// /lineage, /issues and /fetches (DESIGN §4), and its check of a partner's
// file (/api/v1/check): what the project defines (the
// latest run's workspace), what is published (the owner's current
// publications, in memory), and what metadata and the issue log recorded.
// Every value a user gave reaches SQL as a bound parameter.
#include <algorithm>
#include <climits>

#include "core/redact.h"
#include "core/strings.h"
#include "engine/engine.h"
#include "engine/opened.h"
#include "engine/reader.h"
#include "graph/asset_graph.h"
#include "graph/column_lineage.h"
#include "graph/sql_refs.h"
#include "orchestrate/capture.h"
#include "orchestrate/check_file.h"

namespace sluice {
namespace {

using nlohmann::json;

json OkCatalog(json result) {
  return {{"ok", true}, {"exit_code", 0}, {"result", std::move(result)}};
}

// The asset's current publication(s), summed over its partitions; null when
// it was never published.
json PublishedOf(const std::string& asset, const CurrentPublications::Map& current) {
  json out = nullptr;
  int64_t rows = 0, seq = 0, partitions = 0;
  Micros at = 0;
  std::string version;
  for (auto it = current.lower_bound({asset, ""}); it != current.end() && it->first.first == asset;
       ++it) {
    rows += it->second.rows;
    ++partitions;
    if (it->second.seq > seq) {
      seq = it->second.seq;
      at = it->second.published_at;
      version = it->second.version_id;
    }
  }
  if (partitions == 0) return out;
  return {{"version", version},
          {"seq", seq},
          {"rows", rows},
          {"partitions", partitions},
          {"published_at", FormatTimestamp(at)}};
}

}  // namespace

AssetFacts FactsOf(const Workspace& ws, const AssetNode& node) {
  AssetFacts f;
  auto names = [](const std::vector<CheckSpec>& checks) {
    std::vector<std::string> out;
    for (const CheckSpec& c : checks) out.push_back(c.name);
    return out;
  };
  if (node.kind == AssetKind::kSource) {
    for (const SourceSpec& s : ws.project.sources) {
      if (s.name != node.source) continue;
      f.schedule = s.schedule.ToString();
      f.partitioned = !s.partition.is_null();
      for (const TableSpec& t : s.tables) {
        if (t.name != node.name) continue;
        f.description = !t.description.empty() ? t.description : s.description;
        f.key = t.key;
        f.checks = names(t.checks);
      }
    }
  } else if (node.kind == AssetKind::kSeed) {
    for (const SeedSpec& s : ws.project.seeds) {
      if (s.name != node.name) continue;
      f.description = s.description;
      f.key = s.key;
      f.checks = names(s.checks);
    }
  } else {
    for (const ModelSpec& m : ws.project.models) {
      if (m.name != node.name) continue;
      f.description = m.description;
      f.materialized = m.materialized;
      f.key = m.key;
      f.checks = names(m.checks);
      f.schedule = m.schedule.ToString();
    }
  }
  return f;
}

json Engine::HandleCatalog(const json& request) {
  const std::string cmd = request.value("cmd", "");
  Result<Opened*> opened = OpenForRequest();
  if (!opened.ok()) return ErrorResponse(opened.status());
  Opened& env = **opened;

  if (cmd == "fetches") {
    std::string source = ToLower(request.value("source", ""));
    int limit = request.value("limit", 100);
    Result<std::vector<FetchRecord>> fetches = env.metadata->ListFetches(source, limit);
    if (!fetches.ok()) return ErrorResponse(fetches.status());
    json out = json::array();
    for (const FetchRecord& f : *fetches) {
      out.push_back({{"id", f.id},
                     {"source", f.source},
                     {"partition", f.partition},
                     {"url", Redact(f.url)},
                     {"time", FormatTimestamp(f.started_at)},
                     {"duration_ms", f.duration_ms},
                     {"status", f.status},
                     {"bytes", f.bytes},
                     {"sha256", f.sha256},
                     {"object", f.object_path},
                     {"error", Redact(f.error)}});
      // Each try of a download is its own record: which try, of which page.
      if (f.headers.is_object()) {
        auto attempt = f.headers.find("attempt");
        if (attempt != f.headers.end() && attempt->is_number_integer())
          out.back()["attempt"] = *attempt;
        auto page = f.headers.find("page");
        if (page != f.headers.end() && page->is_number_integer()) out.back()["page"] = *page;
      }
    }
    return OkCatalog(out);
  }

  std::shared_ptr<const Workspace> ws = LatestWorkspace();
  const bool columns = cmd == "lineage" && request.value("columns", false);
  if (cmd == "lineage" && !columns) return OkCatalog(LineageJson(ws->graph));

  Result<ReaderSessions::Lease> session = env.readers->Take();
  if (!session.ok()) return ErrorResponse(session.status());
  if (columns) {
    Result<std::shared_ptr<const CurrentPublications::Map>> current =
        env.current.Snapshot(**session);
    if (!current.ok()) return ErrorResponse(current.status());
    json out = LineageJson(ws->graph);
    Result<json> lineage = ColumnLineageOf(*ws, **current, ToLower(request.value("asset", "")));
    if (!lineage.ok()) return ErrorResponse(lineage.status());
    out["columns"] = std::move(*lineage);
    return OkCatalog(out);
  }

  if (cmd == "issues") {
    // The issue log (rows set aside, values that failed a column phase).
    std::string sql =
        "SELECT asset, version_id, object_sha256, record, field, issue_type, value, message, "
        "severity, logged_at FROM _sluice.issues";
    std::vector<std::optional<std::string>> params;
    std::vector<std::string> where;
    for (const char* key : {"asset", "severity", "issue_type"}) {
      std::string value = request.value(key, "");
      if (value.empty()) continue;
      params.emplace_back(key == std::string("asset") ? ToLower(value) : value);
      where.push_back(std::string(key) + " = $" + std::to_string(params.size()));
    }
    // ?source=: every table of the source (one asset each).
    if (std::string source = ToLower(request.value("source", "")); !source.empty()) {
      std::vector<std::string> list;
      for (const SourceSpec& s : ws->project.sources) {
        if (s.name != source) continue;
        for (const TableSpec& t : s.tables) {
          params.emplace_back(t.name);
          list.push_back("$" + std::to_string(params.size()));
        }
      }
      if (list.empty()) return ErrorResponse(Status::NotFound("no source '" + source + "'"));
      where.push_back("asset IN (" + Join(list, ", ") + ")");
    }
    if (!where.empty()) sql += " WHERE " + Join(where, " AND ");
    sql += " ORDER BY logged_at DESC, asset, record LIMIT " +
           std::to_string(std::clamp(request.value("limit", 100), 1, 10000));
    json rows = json::array();
    std::vector<std::string> names;
    std::vector<JsonKind> kinds;
    RowVisitor visitor;
    visitor.columns = [&](const std::vector<RenderedColumn>& cols) {
      for (const RenderedColumn& c : cols) {
        names.push_back(c.name);
        kinds.push_back(c.json);
      }
      return Status::Ok();
    };
    visitor.row = [&](const std::vector<std::optional<std::string_view>>& row) {
      json r = json::object();
      for (size_t i = 0; i < row.size(); ++i) {
        json v = RenderedJsonValue(row[i], kinds[i]);
        r[names[i]] = v.is_string() ? json(Redact(v.get<std::string>())) : std::move(v);
      }
      rows.push_back(std::move(r));
      return true;
    };
    ReadLimits limits;
    limits.max_rows = 0;
    limits.timeout_seconds = 30;
    Result<ReadSummary> read =
        RunBuiltRead(**session, sql, params, RenderFormat::kJson, limits, visitor);
    if (!read.ok()) return ErrorResponse(read.status());
    return OkCatalog(rows);
  }

  // assets, asset
  // The snapshot, not a copy: a catalog of 10,000 assets copies nothing.
  Result<std::shared_ptr<const CurrentPublications::Map>> snapshot =
      env.current.Snapshot(**session);
  if (!snapshot.ok()) return ErrorResponse(snapshot.status());
  const CurrentPublications::Map* current = snapshot->get();
  Result<std::map<std::string, std::string>> last =
      env.metadata->PreviousTaskStatuses(std::numeric_limits<int64_t>::max());
  std::map<std::string, std::string> last_status;
  if (last.ok()) last_status = std::move(*last);
  auto summary = [&](const AssetNode& node) {
    AssetFacts f = FactsOf(*ws, node);
    json a = {{"name", node.name},
              {"kind", AssetKindName(node.kind)},
              {"description", f.description},
              {"tags", node.tags},
              {"upstream", node.upstream},
              {"downstream", node.downstream},
              {"key", f.key},
              {"checks", f.checks},
              {"schedule", f.schedule},
              {"partitioned", f.partitioned},
              {"published", PublishedOf(node.name, *current)},
              {"url", "/api/v1/data/" + node.name}};
    if (!f.materialized.empty()) a["materialized"] = f.materialized;
    auto status = last_status.find(node.name);
    a["last_status"] = status == last_status.end() ? json(nullptr) : json(status->second);
    return a;
  };
  if (cmd == "assets") {
    json out = json::array();
    for (const AssetNode& node : ws->graph.nodes) out.push_back(summary(node));
    return OkCatalog(out);
  }
  std::string name = ToLower(request.value("name", ""));
  const AssetNode* node = ws->graph.Find(name);
  if (node == nullptr) {
    std::vector<std::string> names;
    for (const AssetNode& n : ws->graph.nodes) names.push_back(n.name);
    std::string hint = DidYouMeanHint(name, names);
    return ErrorResponse(Status::NotFound(
        "no asset '" + name + "'" + (hint.empty() ? " (GET /api/v1/assets lists them)" : hint)));
  }
  json a = summary(*node);
  // Its schema as published (each partition's columns, first seen first).
  json schema = json::array();
  std::set<std::string> seen;
  json partitions = json::array();
  for (auto it = current->lower_bound({node->name, ""});
       it != current->end() && it->first.first == node->name; ++it) {
    for (const json& c : it->second.schema) {
      if (seen.insert(c.value("name", "")).second) schema.push_back(c);
    }
    if (!it->first.second.empty()) {
      partitions.push_back({{"partition", it->first.second},
                            {"version", it->second.version_id},
                            {"rows", it->second.rows},
                            {"published_at", FormatTimestamp(it->second.published_at)}});
    }
  }
  a["schema"] = schema;
  if (!partitions.empty()) a["partitions"] = partitions;
  Result<std::vector<AssetVersionRecord>> versions = env.metadata->ListVersions(node->name, "");
  json vj = json::array();
  if (versions.ok()) {
    for (const AssetVersionRecord& v : *versions) {
      vj.push_back({{"version", v.version_id},
                    {"status", v.status},
                    {"rows", v.rows},
                    {"run_id", v.run_id},
                    {"created_at", FormatTimestamp(v.created_at)},
                    {"published_at", v.published_at ? FormatTimestamp(v.published_at) : ""}});
    }
  }
  a["versions"] = vj;
  // Each check's newest result (failing rows and their sample included).
  json results = json::array();
  if (Result<std::vector<CheckResultRecord>> latest = env.metadata->LatestCheckResults(node->name);
      latest.ok()) {
    for (const CheckResultRecord& c : *latest) results.push_back(CheckResultJson(c));
  }
  a["check_results"] = results;
  // A captured table: its slot as the server says now, and where it stands.
  for (const SourceSpec& src : ws->project.sources) {
    if (!src.database || !src.database->cdc) continue;
    for (const TableSpec& t : src.tables) {
      if (t.name != node->name) continue;
      auto pub = current->find({node->name, ""});
      a["capture"] = CaptureStatusJson(ws->project, ws->env_name, src,
                                       pub == current->end() ? json() : pub->second.cursor);
    }
  }
  return OkCatalog(a);
}

Result<json> ColumnLineageOf(const Workspace& ws, const CurrentPublications::Map& current,
                             const std::string& only) {
  // A relation's columns: its publication's schema (every partition's).
  auto published_columns =
      [&](const std::string& asset) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (auto it = current.lower_bound({asset, ""});
         it != current.end() && it->first.first == asset; ++it) {
      for (const json& c : it->second.schema) {
        std::string name = c.value("name", "");
        if (seen.insert(ToLower(name)).second) names.push_back(name);
      }
    }
    if (names.empty()) return std::nullopt;
    return names;
  };
  if (!only.empty() && ws.graph.Find(only) == nullptr) {
    std::vector<std::string> names;
    for (const AssetNode& n : ws.graph.nodes) names.push_back(n.name);
    return Status::NotFound("no asset '" + only + "'" + DidYouMeanHint(only, names));
  }
  Result<SqlParser> parser = SqlParser::Create();
  if (!parser.ok()) return parser.status();
  json out = json::object();
  for (const AssetNode& node : ws.graph.nodes) {
    if (!only.empty() && node.name != only) continue;
    std::optional<std::vector<std::string>> own = published_columns(node.name);
    json entry;
    const SourceSpec* source = nullptr;
    for (const SourceSpec& s : ws.project.sources) {
      if (node.kind == AssetKind::kSource && s.name == node.source) source = &s;
    }
    if (node.kind != AssetKind::kModel || node.sql.empty()) {
      // A source or seed starts the lineage (its columns come from its data),
      // a command asset's program is not SQL: no sources to show.
      json cols = json::array();
      for (const std::string& c : own.value_or(std::vector<std::string>{})) {
        cols.push_back({{"column", c}, {"sources", json::array()}});
      }
      entry = {{"columns", cols}};
      // Its columns come from its data (a file, an API, a program), not from other assets.
      if (node.kind != AssetKind::kModel) entry["root"] = true;
      if (source != nullptr && source->command && !source->command->inputs.empty()) {
        entry["unknown"] = "a command asset: its program reads " +
                           Join(source->command->inputs, ", ") +
                           " in ways Sluice cannot follow to columns";
      } else if (node.kind == AssetKind::kModel) {
        entry["unknown"] = "no SQL to follow for this model";
      } else if (!own) {
        entry["unknown"] = "not published yet: its columns are not known";
      }
    } else {
      Result<std::string> tree = parser->SerializeToJson(node.sql);
      Result<QueryColumnLineage> lineage =
          tree.ok() ? ColumnLineageFromJson(*tree, published_columns,
                                            own.value_or(std::vector<std::string>{}))
                    : Result<QueryColumnLineage>(tree.status());
      if (!lineage.ok()) {
        entry = {{"columns", json::array()}, {"unknown", lineage.status().message()}};
      } else {
        entry = {{"columns", ColumnLineageJson(*lineage)}};
        if (!lineage->unknown.empty()) entry["unknown"] = lineage->unknown;
      }
    }
    out[node.name] = std::move(entry);
  }
  return out;
}

json CheckResultJson(const CheckResultRecord& c) {
  return {{"check", c.check_name},
          {"asset", c.asset},
          {"partition", c.partition},
          {"version", c.version_id},
          {"severity", c.severity},
          {"status", c.status},
          {"failing_rows", c.failing_rows},
          // Samples hold the data's own values: redacted like every other output.
          {"sample", RedactJson(c.sample)},
          {"message", Redact(c.message)},
          {"run_id", c.run_id},
          {"checked_at", FormatTimestamp(c.checked_at)}};
}

json Engine::HandleCheck(const json& request) {
  std::shared_ptr<const Workspace> ws = LatestWorkspace();
  CheckFileRequest check;
  check.source = ToLower(request.value("source", ""));
  check.target = request.value("url", "");
  check.upload = request.value("upload", "");
  check.upload_name = request.value("filename", "upload");
  check.timeout_seconds = request.value("timeout", int64_t{60});
  check.memory_limit = request.value("memory_limit", "");
  bool known = false;
  std::vector<std::string> names;
  for (const SourceSpec& s : ws->project.sources) {
    names.push_back(s.name);
    known = known || s.name == check.source ||
            std::any_of(s.tables.begin(), s.tables.end(),
                        [&](const TableSpec& t) { return t.name == check.source; });
  }
  if (!known) {
    std::string hint = DidYouMeanHint(check.source, names);
    return ErrorResponse(
        Status::NotFound("no source '" + check.source + "'" +
                         (hint.empty() ? "; sources: " + Join(names, ", ") : hint)));
  }
  Result<json> report = CheckFile(ws->project, env_name_, check);
  if (!report.ok()) return ErrorResponse(report.status());
  return OkCatalog(*report);
}

}  // namespace sluice
