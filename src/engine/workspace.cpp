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

namespace sluice {

std::string Workspace::ErrorText() const {
  std::string out;
  for (const ConfigError& e : errors) out += e.ToString() + "\n";
  return out;
}

namespace {

// A secrets file others can read is a project error, found before any run.
void CheckSecretFiles(const Project& project, std::vector<ConfigError>& errors) {
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
}

}  // namespace

Workspace LoadWorkspace(const std::string& root, const std::string& env,
                        const nlohmann::json& vars) {
  Workspace ws;
  ws.env_name = env;
  LoadedProject loaded = LoadProject(root);
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
  CheckSecretFiles(ws.project, ws.errors);
  // The cache is an optimisation: failing to save it is not an error.
  if (MakeDirs(cache_dir).ok()) (void)cache.Save();
  return ws;
}

}  // namespace sluice
