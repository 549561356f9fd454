#include "engine/workspace.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <tuple>

#include "config/loader.h"
#include "config/template.h"
#include "core/fs.h"
#include "core/strings.h"
#include "graph/parse_cache.h"
#include "graph/sql_refs.h"
#include "ingest/fetcher.h"
#include "orchestrate/catalog.h"

namespace sluice {

std::string Workspace::ErrorText() const {
  std::string out;
  for (const ConfigError& e : errors) out += e.ToString() + "\n";
  return out;
}

std::vector<ConfigError> SecretFileErrors(const Project& project) {
  std::vector<ConfigError> errors;
  for (const SecretProvider& p : project.secret_providers) {
    if (p.kind != SecretProvider::Kind::kFile) continue;
    struct stat st {};
    if (::stat(p.path.c_str(), &st) != 0) continue;
    if ((st.st_mode & 077) != 0) {
      errors.push_back({SourceLoc{"sluice.yaml", 0},
                        fmt::format("secrets file {} is readable by others (mode {:o}); run: chmod "
                                    "600 {}",
                                    p.path, st.st_mode & 0777, p.path)});
    }
  }
  return errors;
}

Workspace LoadWorkspace(const std::string& root, const std::string& env, const nlohmann::json& vars,
                        bool secret_files) {
  return LoadWorkspace(LoadProject(root), env, vars, secret_files);
}

Workspace LoadWorkspace(LoadedProject loaded, const std::string& env, const nlohmann::json& vars,
                        bool secret_files) {
  Workspace ws;
  ws.env_name = env;
  ws.project = std::move(loaded.project);
  if (vars.is_object()) {
    for (const auto& [key, value] : vars.items()) ws.project.vars[key] = value;
  }
  ws.errors = std::move(loaded.errors);
  // The graph is built even when config has errors, so that one `validate`
  // reports every problem; only a missing environment stops here.
  if (!ws.project.environments.count(env)) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : ws.project.environments) names.push_back(name);
    ws.errors.push_back({SourceLoc{"sluice.yaml", 0}, "unknown environment '" + env + "'" +
                                                          DidYouMeanHint(env, names) +
                                                          "; environments: " + Join(names, ", ")});
    return ws;
  }
  // A schema source's tables, as its last listing found them.
  ExpandSchemaSources(&ws.project, env);
  Result<SqlParser> parser = SqlParser::Create();
  if (!parser.ok()) {
    ws.errors.push_back({SourceLoc{}, parser.status().message()});
    return ws;
  }
  std::string cache_dir = JoinPath(ws.env().state_dir, "cache");
  std::string cache_path = JoinPath(cache_dir, "parse-cache");
  ParseCache cache = ParseCache::Load(cache_path);
  const Project& project = ws.project;
  std::string env_name = env;
  RenderFn render = [&project, env_name](const ModelSpec& model) -> Result<std::string> {
    TemplateContext ctx;
    ctx.vars = project.vars;
    ctx.env = env_name;
    ctx.this_name = model.name;
    return RenderTemplate(model.sql, ctx, model.sql_first_line);
  };
  GraphBuild build = BuildAssetGraph(ws.project, render, *parser, &cache);
  ws.graph = std::move(build.graph);
  for (ConfigError& e : build.errors) {
    bool duplicate = std::any_of(ws.errors.begin(), ws.errors.end(), [&](const ConfigError& seen) {
      return seen.loc.file == e.loc.file && seen.loc.line == e.loc.line;
    });
    if (!duplicate) ws.errors.push_back(std::move(e));
  }
  // A schedule's after: names assets of this project.
  {
    std::vector<std::string> names;
    for (const AssetNode& n : ws.graph.nodes) names.push_back(n.name);
    for (const SourceSpec& src : ws.project.sources) names.push_back(src.name);
    auto check_after = [&](const ScheduleSpec& spec) {
      for (const std::string& up : spec.after) {
        if (std::find(names.begin(), names.end(), up) == names.end()) {
          ws.errors.push_back(
              {spec.loc, "schedule: after: no asset '" + up + "'" + DidYouMeanHint(up, names)});
        }
      }
    };
    for (const SourceSpec& src : ws.project.sources) check_after(src.schedule);
    for (const ModelSpec& model : ws.project.models) check_after(model.schedule);
  }
  std::stable_sort(ws.errors.begin(), ws.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::tie(a.loc.file, a.loc.line) < std::tie(b.loc.file, b.loc.line);
                   });
  // Fetch settings the loader leaves to the fetcher (durations, rates, paging).
  for (const SourceSpec& src : ws.project.sources) {
    Result<FetchSettings> fetch = ParseFetchSettings(src);
    if (!fetch.ok()) {
      ws.errors.push_back(
          {FetchSettingsErrorLoc(src, fetch.status().message()), fetch.status().message()});
    }
  }
  if (secret_files) {
    for (ConfigError& e : SecretFileErrors(ws.project)) ws.errors.push_back(std::move(e));
  }
  // The cache is an optimisation: failing to save it is not an error.
  if (MakeDirs(cache_dir).ok()) (void)cache.Save();
  return ws;
}

}  // namespace sluice

namespace sluice {

Breakage BrokenAssets(const Workspace& ws) {
  Breakage b;
  // An asset's files: the one it is defined in, and its companions of the
  // same name in the same folder (seeds/x.yaml beside seeds/x.csv).
  auto stem = [](const std::string& file) {
    size_t slash = file.rfind('/');
    size_t dot = file.rfind('.');
    return dot != std::string::npos && (slash == std::string::npos || dot > slash)
               ? file.substr(0, dot)
               : file;
  };
  std::map<std::string, std::vector<std::string>> assets_of_file;
  for (const AssetNode& n : ws.graph.nodes) assets_of_file[stem(n.loc.file)].push_back(n.name);
  for (const ConfigError& e : ws.errors) {
    auto it = assets_of_file.find(stem(e.loc.file));
    if (it != assets_of_file.end()) {
      for (const std::string& name : it->second) {
        b.assets.insert(name);
        b.by_asset[name].push_back(e);
      }
    } else if (StartsWith(e.loc.file, "sources/") || StartsWith(e.loc.file, "models/") ||
               StartsWith(e.loc.file, "seeds/")) {
      // An asset file too broken to become an asset: nothing can read it (a
      // model naming it has an error of its own).
      b.by_asset[e.loc.file].push_back(e);
    } else {
      b.global.push_back(e);
    }
  }
  std::vector<std::string> queue(b.assets.begin(), b.assets.end());
  while (!queue.empty()) {
    const AssetNode* n = ws.graph.Find(queue.back());
    queue.pop_back();
    if (!n) continue;
    for (const std::string& d : n->downstream) {
      if (!b.assets.count(d) && b.downstream.insert(d).second) queue.push_back(d);
    }
  }
  return b;
}

std::vector<ConfigError> ErrorsBlocking(const Workspace& ws,
                                        const std::vector<std::string>& names) {
  Breakage b = BrokenAssets(ws);
  std::vector<ConfigError> out = b.global;
  std::set<std::string> seen;
  std::vector<std::string> queue(names.begin(), names.end());
  while (!queue.empty()) {
    std::string name = queue.back();
    queue.pop_back();
    if (!seen.insert(name).second) continue;
    auto broken = b.by_asset.find(name);
    if (broken != b.by_asset.end()) {
      out.insert(out.end(), broken->second.begin(), broken->second.end());
    }
    if (const AssetNode* n = ws.graph.Find(name)) {
      for (const std::string& up : n->upstream) queue.push_back(up);
    }
  }
  // One error may name several tables of a source: once each.
  std::vector<ConfigError> unique;
  for (const ConfigError& e : out) {
    bool dup = std::any_of(unique.begin(), unique.end(), [&](const ConfigError& u) {
      return u.loc.file == e.loc.file && u.loc.line == e.loc.line && u.message == e.message;
    });
    if (!dup) unique.push_back(e);
  }
  return unique;
}

}  // namespace sluice
