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
  std::lock_guard lock(export_mu_);
  PublishFolder folder(env->env.publish_dir);
  json previous = folder.CurrentPackage();
  if (ws.project.exports.empty()) {
    // None left: nothing stays published (a package of none is no package).
    if (!previous.is_null()) {
      Status st = folder.Unpublish();
      if (!st.ok()) LOG_WARN("export", "the project has no exports left: {}", st.message());
    }
    return outcomes;
  }
  std::map<std::string, json> before;  // the current version's resources by name
  if (previous.is_object()) {
    for (const json& r : previous["resources"]) before[r["name"].get<std::string>()] = r;
  }
  auto failed = [&](const std::string& name, std::string error) {
    TaskOutcome o;
    o.asset = "export:" + name;
    o.kind = "export";
    o.action = TaskAction::kExport;
    o.status = TaskStatus::kFailed;
    o.error = Redact(error);
    outcomes.push_back(std::move(o));
  };
  Result<std::unique_ptr<WarehouseSession>> session = env->warehouse->Connect();
  if (!session.ok()) {
    failed("*", "cannot read the warehouse: " + session.status().message());
    return outcomes;
  }
  Result<std::shared_ptr<const CurrentPublications::Map>> snapshot =
      env->current.Snapshot(**session);
  if (!snapshot.ok()) {
    failed("*", "cannot read the publications: " + snapshot.status().message());
    return outcomes;
  }
  const CurrentPublications::Map& current = **snapshot;

  std::optional<std::string> staging;
  std::vector<std::string> written_paths;
  std::vector<json> carried;  // the current version's resources kept as they are
  json resources = json::array();
  bool changed = false;
  for (const ExportNode& x : ws.graph.exports) {
    const ExportSpec* spec = nullptr;
    for (const ExportSpec& s : ws.project.exports) {
      if (s.name == x.name) spec = &s;
    }
    if (spec == nullptr) continue;
    auto kept = before.find(x.name);
    const std::string kept_path =
        kept == before.end() ? "" : kept->second["path"].get<std::string>();
    const bool kept_file =
        kept != before.end() && FileExists(JoinPath(folder.CurrentDir(), kept_path));
    // Its current file stays (when there is one to keep).
    auto keep = [&] {
      if (kept_file) carried.push_back(kept->second);
    };
    bool asked = force && (only.empty() || only.count(x.name));
    std::vector<std::string> missing, parts;
    bool reads_ran = false;
    for (const std::string& up : x.upstream) {
      reads_ran = reads_ran || ran.count(up);
      auto it = current.lower_bound({up, ""});
      if (it == current.end() || it->first.first != up) {
        missing.push_back(up);
      } else {
        parts.push_back(VersionOf(up, current, &ws).text);
      }
    }
    if (!missing.empty()) {
      keep();
      if (asked || reads_ran) {
        failed(x.name, Join(missing, ", ") + (missing.size() == 1 ? " is" : " are") +
                           " not published yet: run `sluice run " + Join(missing, " ") + "` first");
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
    const json recorded = kept == before.end() ? json::object() : kept->second["sluice"];
    std::string reason;
    if (asked) {
      reason = "asked for";
    } else if (kept == before.end()) {
      reason = "not exported yet";
    } else if (!recorded.contains("spec") || recorded["spec"] != spec_hash) {
      reason = "its definition changed";
    } else if (!recorded.contains("version") || recorded["version"] != version) {
      reason = "new publications of " + Join(x.upstream, ", ");
    } else if (!kept_file) {
      reason = "its file was missing";
    }
    if (reason.empty() || (!only.empty() && !only.count(x.name))) {
      keep();
      if (kept != before.end() && !kept_file) changed = true;  // a lost file leaves the package
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
      // A folder made for it alone goes (rmdir fails when it is not empty).
      if (Dirname(file) != *staging) ::rmdir(Dirname(file).c_str());
      LOG_WARN("export", "{}: {}", x.name, written.status().message());
      failed(x.name, "writing " + spec->path + ": " + written.status().message() +
                         (kept_file ? " (the previous file stays published)" : ""));
      keep();
      continue;
    }
    written_paths.push_back(spec->path);
    // The key, as the written columns spell it, when every one of them is
    // written; a partitioned asset's key is unique within a partition only.
    std::vector<std::string> key;
    if (!spec->table.empty()) {
      const AssetNode* node = ws.graph.Find(spec->table);
      bool partitioned = false;
      for (auto it = current.lower_bound({spec->table, ""});
           it != current.end() && it->first.first == spec->table; ++it) {
        partitioned = partitioned || !it->first.second.empty();
      }
      if (node != nullptr && !partitioned) {
        for (const std::string& k : FactsOf(ws, *node).key) {
          auto col = std::find_if(written->columns.begin(), written->columns.end(),
                                  [&](const auto& c) { return ToLower(c.first) == ToLower(k); });
          if (col == written->columns.end()) {
            key.clear();
            break;
          }
          key.push_back(col->first);
        }
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
    o.action = TaskAction::kExport;
    o.status = TaskStatus::kSuccess;
    o.reason = reason;
    o.rows = written->rows;
    o.ms = MonotonicMillis() - t0;
    o.notes.push_back("wrote " + spec->path + " (" + std::to_string(written->bytes) + " bytes)");
    outcomes.push_back(std::move(o));
  }
  // A kept resource whose path another export has just written (their
  // paths were swapped) would describe that file: it leaves instead.
  std::vector<std::string> carry;
  for (const json& r : carried) {
    std::string path = r["path"].get<std::string>();
    if (std::find(written_paths.begin(), written_paths.end(), path) != written_paths.end()) {
      changed = true;
      continue;
    }
    carry.push_back(path);
    resources.push_back(r);
  }
  // An export no longer in the project leaves the next version.
  for (const auto& entry : before) {
    const std::string& name = entry.first;
    bool listed = std::any_of(ws.project.exports.begin(), ws.project.exports.end(),
                              [&](const ExportSpec& s) { return s.name == name; });
    if (!listed) changed = true;
  }
  if (!changed) {
    if (staging) folder.Abort(*staging);
    return outcomes;
  }
  if (resources.empty()) {
    if (staging) folder.Abort(*staging);
    Status st = folder.Unpublish();
    if (!st.ok()) failed("*", st.message());
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
  std::sort(resources.begin(), resources.end(),
            [](const json& a, const json& b) { return a.value("name", "") < b.value("name", ""); });
  json package = {{"profile", "data-package"},
                  {"name", PackageName(ws.project.name)},
                  {"title", ws.project.name},
                  {"created", FormatTimestamp(clock_.Now())},
                  {"resources", resources}};
  Result<bool> committed = folder.Commit(*staging, carry, package);
  if (!committed.ok()) {
    folder.Abort(*staging);
    std::string error = "publishing the new version of " + folder.root() +
                        " failed: " + committed.status().message() +
                        " (the previous version stays current)";
    for (TaskOutcome& o : outcomes) {
      if (o.status != TaskStatus::kSuccess) continue;
      o.status = TaskStatus::kFailed;
      o.error = Redact(error);
    }
    failed("*", error);
  }
  return outcomes;
}

json Engine::HandleExport(const json& request) {
  Workspace ws = LoadWorkspace(project_root_, env_name_);
  if (!ws.ok()) {
    std::vector<std::string> lines;
    for (const ConfigError& e : ws.errors) lines.push_back(e.ToString());
    return ErrorResponse(
        Status::Invalid("the project has errors (see sluice validate):\n" + Join(lines, "\n")));
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
