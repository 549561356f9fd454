// The engine's exports (publish/exports.h): after each run, the exports
// whose inputs have new publications are written from what is published —
// an export is the file form of the current publications, as the dataset
// API is their HTTP form — and `sluice export` writes them on demand. Each
// is reported as a task of the run ("export:NAME"); one that fails leaves
// its previous file in place and fails the run.
#include <unistd.h>

#include <algorithm>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/strings.h"
#include "engine/engine.h"
#include "engine/opened.h"
#include "publish/exports.h"

namespace sluice {
namespace {

using nlohmann::json;

// A Data Package name: lower-case letters, digits, -, _ and . only.
std::string PackageName(const std::string& project) {
  std::string out;
  for (char c : ToLower(project)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out += ok ? c : '-';
  }
  return out.empty() ? "sluice" : out;
}

}  // namespace

std::vector<TaskOutcome> Engine::WriteExports(Opened* env, const Workspace& ws,
                                              const std::set<std::string>& only, bool force,
                                              const std::set<std::string>& ran) {
  std::vector<TaskOutcome> outcomes;
  if (ws.graph.exports.empty() && ws.project.exports.empty()) return outcomes;
  std::lock_guard lock(export_mu_);
  PublishFolder folder(env->env.publish_dir);
  json previous = folder.CurrentPackage();
  std::map<std::string, json> before;  // the current version's resources by name
  if (previous.is_object()) {
    for (const json& r : previous["resources"]) {
      if (r.is_object() && r.contains("name") && r["name"].is_string()) {
        before[r["name"].get<std::string>()] = r;
      }
    }
  }
  auto failed = [&](const std::string& name, std::string error) {
    TaskOutcome o;
    o.asset = "export:" + name;
    o.kind = "export";
    o.action = "export";
    o.status = TaskStatus::kFailed;
    o.error = Redact(error);
    outcomes.push_back(std::move(o));
  };
  Result<std::unique_ptr<WarehouseSession>> session = env->warehouse->Connect();
  if (!session.ok()) {
    failed("*", "cannot read the warehouse: " + session.status().message());
    return outcomes;
  }
  CurrentPublications::Map current;
  if (!env->current.Visit([&](const CurrentPublications::Map& m) { current = m; })) {
    Result<CurrentPublications::Map> read = env->current.Get(**session);
    if (!read.ok()) {
      failed("*", "cannot read the publications: " + read.status().message());
      return outcomes;
    }
    current = std::move(*read);
  }

  std::optional<std::string> staging;
  std::vector<std::string> carry;
  json resources = json::array();
  bool changed = false;
  for (const ExportNode& x : ws.graph.exports) {
    const ExportSpec* spec = nullptr;
    for (const ExportSpec& s : ws.project.exports) {
      if (s.name == x.name) spec = &s;
    }
    if (spec == nullptr) continue;
    auto kept = before.find(x.name);
    auto keep = [&] {
      if (kept == before.end()) return;
      carry.push_back(kept->second.value("path", ""));
      resources.push_back(kept->second);
    };
    bool asked = force && (only.empty() || only.count(x.name));
    std::vector<std::string> missing, parts;
    bool reads_ran = false;
    for (const std::string& up : x.upstream) {
      reads_ran = reads_ran || ran.count(up);
      if (current.lower_bound({up, ""}) == current.end() ||
          current.lower_bound({up, ""})->first.first != up) {
        missing.push_back(up);
      } else {
        parts.push_back(VersionOf(up, current, &ws).text);
      }
    }
    if (!missing.empty()) {
      keep();
      if (asked || reads_ran) {
        failed(x.name, Join(missing, ", ") + (missing.size() == 1 ? " is" : " are") +
                           " not published yet: run `sluice run " + Join(missing, " ") +
                           "` first");
      }
      continue;
    }
    std::string version = Join(parts, ";");
    std::string spec_hash = Sha256Hex(json({{"format", ExportFormatName(spec->format)},
                                            {"path", spec->path},
                                            {"sql", x.sql},
                                            {"lon", spec->lon},
                                            {"lat", spec->lat},
                                            {"description", spec->description}})
                                          .dump());
    std::string reason;
    if (asked) {
      reason = "asked for";
    } else if (kept == before.end()) {
      reason = "not exported yet";
    } else if (kept->second.value("sluice", json::object()).value("spec", "") != spec_hash) {
      reason = "its definition changed";
    } else if (kept->second.value("sluice", json::object()).value("version", "") != version) {
      reason = "new publications of " + Join(x.upstream, ", ");
    } else if (!FileExists(JoinPath(folder.CurrentDir(), kept->second.value("path", "")))) {
      reason = "its file was missing";
    }
    if (reason.empty() || (!only.empty() && !only.count(x.name))) {
      keep();
      continue;
    }
    int64_t t0 = MonotonicMillis();
    if (!staging) {
      Result<std::string> begun = folder.Begin();
      if (!begun.ok()) {
        failed(x.name, begun.status().message());
        keep();
        continue;
      }
      staging = *begun;
    }
    std::string file = JoinPath(*staging, spec->path);
    Status dirs = MakeDirs(Dirname(file));
    Result<ExportFile> written =
        dirs.ok() ? WriteExportFile(**session, *spec, x.sql, file) : Result<ExportFile>(dirs);
    if (!written.ok()) {
      ::rmdir(Dirname(file).c_str());  // a folder made for it alone (fails when not empty)
      LOG_WARN("export", "{}: {}", x.name, written.status().message());
      failed(x.name, "writing " + spec->path + ": " + written.status().message() +
                         (kept == before.end() ? "" : " (the previous file stays published)"));
      keep();
      continue;
    }
    std::vector<std::string> key;
    if (!spec->table.empty()) {
      const AssetNode* node = ws.graph.Find(spec->table);
      bool partitioned = false;
      for (auto it = current.lower_bound({spec->table, ""});
           it != current.end() && it->first.first == spec->table; ++it) {
        partitioned = partitioned || !it->first.second.empty();
      }
      // A key names a row only when every key column is written, and a
      // partitioned asset's key is unique within a partition only.
      if (node != nullptr && !partitioned) key = FactsOf(ws, *node).key;
      for (const std::string& k : key) {
        bool present = std::any_of(written->columns.begin(), written->columns.end(),
                                   [&](const auto& c) { return ToLower(c.first) == ToLower(k); });
        if (!present) key.clear();
      }
    }
    resources.push_back(DataResource(*written, *spec, key,
                                     {{"version", version},
                                      {"spec", spec_hash},
                                      {"exported_at", FormatTimestamp(clock_.Now())}}));
    changed = true;
    TaskOutcome o;
    o.asset = "export:" + x.name;
    o.kind = "export";
    o.action = "export";
    o.status = TaskStatus::kSuccess;
    o.reason = reason;
    o.rows = written->rows;
    o.ms = MonotonicMillis() - t0;
    o.notes.push_back("wrote " + spec->path + " (" + std::to_string(written->bytes) + " bytes)");
    outcomes.push_back(std::move(o));
  }
  // An export no longer in the project leaves the next version.
  for (const auto& [name, r] : before) {
    bool listed = std::any_of(ws.project.exports.begin(), ws.project.exports.end(),
                              [&](const ExportSpec& s) { return s.name == name; });
    if (!listed) changed = true;
  }
  if (!changed) {
    if (staging) folder.Abort(*staging);
    return outcomes;
  }
  if (!staging) {
    Result<std::string> begun = folder.Begin();
    if (!begun.ok()) {
      failed("*", begun.status().message());
      return outcomes;
    }
    staging = *begun;
  }
  std::sort(resources.begin(), resources.end(), [](const json& a, const json& b) {
    return a.value("name", "") < b.value("name", "");
  });
  json package = {{"profile", "data-package"},
                  {"name", PackageName(ws.project.name)},
                  {"title", ws.project.name},
                  {"created", FormatTimestamp(clock_.Now())},
                  {"resources", resources}};
  Status committed = folder.Commit(*staging, carry, package);
  if (!committed.ok()) {
    folder.Abort(*staging);
    for (TaskOutcome& o : outcomes) {
      if (o.status != TaskStatus::kSuccess) continue;
      o.status = TaskStatus::kFailed;
      o.error = "publishing the new version of " + folder.root() +
                " failed: " + committed.message() + " (the previous version stays current)";
    }
    if (outcomes.empty()) failed("*", committed.message());
  }
  return outcomes;
}

json Engine::HandleExport(const json& request) {
  Workspace ws = LoadWorkspace(project_root_, env_name_);
  if (!ws.ok()) {
    std::vector<std::string> lines;
    for (const ConfigError& e : ws.errors) lines.push_back(e.ToString());
    return ErrorResponse(Status::Invalid("the project has errors (see sluice validate):\n" +
                                         Join(lines, "\n")));
  }
  std::set<std::string> only;
  std::vector<std::string> names;
  for (const ExportSpec& s : ws.project.exports) names.push_back(s.name);
  if (request.contains("names") && request["names"].is_array()) {
    for (const json& n : request["names"]) {
      std::string name = ToLower(n.is_string() ? n.get<std::string>() : n.dump());
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        return ErrorResponse(Status::NotFound(
            "no export '" + name + "'" +
            (names.empty() ? " (sluice.yaml defines no exports:)" : DidYouMeanHint(name, names))));
      }
      only.insert(name);
    }
  }
  if (names.empty()) {
    return ErrorResponse(Status::NotFound(
        "sluice.yaml defines no exports: (see README, Exports: exports: {NAME: {table: T, "
        "format: csv}})"));
  }
  Result<Opened*> opened = Open(ws.project);
  if (!opened.ok()) return ErrorResponse(opened.status());
  std::vector<TaskOutcome> outcomes = WriteExports(*opened, ws, only, true, {});
  json tasks = json::array();
  int failures = 0;
  for (const TaskOutcome& o : outcomes) {
    failures += EndedBadly(o.status);
    tasks.push_back({{"export", o.asset.substr(o.asset.find(':') + 1)},
                     {"status", TaskStatusName(o.status)},
                     {"rows", o.rows},
                     {"ms", o.ms},
                     {"error", o.error},
                     {"notes", o.notes}});
  }
  json result = {{"folder", PublishFolder((*opened)->env.publish_dir).CurrentDir()},
                 {"exports", tasks}};
  return {{"ok", true}, {"exit_code", failures ? 1 : 0}, {"result", result}};
}

}  // namespace sluice
