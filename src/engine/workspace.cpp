#include "engine/workspace.h"

#include "config/loader.h"
#include "config/template.h"
#include "core/fs.h"
#include "core/strings.h"
#include "graph/parse_cache.h"
#include "graph/sql_refs.h"

namespace sluice {

std::string Workspace::ErrorText() const {
  std::string out;
  for (const ConfigError& e : errors) out += e.ToString() + "\n";
  return out;
}

Workspace LoadWorkspace(const std::string& root, const std::string& env) {
  Workspace ws;
  ws.env_name = env;
  LoadedProject loaded = LoadProject(root);
  ws.project = std::move(loaded.project);
  ws.errors = std::move(loaded.errors);
  if (!ws.ok()) return ws;
  if (!ws.project.environments.count(env)) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : ws.project.environments) names.push_back(name);
    ws.errors.push_back({SourceLoc{"sluice.yaml", 0},
                         "unknown environment '" + env + "'" + DidYouMeanHint(env, names) +
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
  for (ConfigError& e : build.errors) ws.errors.push_back(std::move(e));
  // The cache is an optimisation: failing to save it is not an error.
  if (MakeDirs(cache_dir).ok()) (void)cache.Save();
  return ws;
}

}  // namespace sluice
