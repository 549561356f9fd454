// A loaded project plus its asset graph for one environment: what every
// command starts from. Loading reports every config and graph error at once.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/project.h"
#include "graph/asset_graph.h"

namespace sluice {

struct Workspace {
  Project project;
  AssetGraph graph;
  std::string env_name;
  std::vector<ConfigError> errors;  // non-empty: the project cannot be used
  bool ok() const { return errors.empty(); }
  const EnvironmentSpec& env() const { return project.environments.at(env_name); }
  // "file:line: message" lines, one per error.
  std::string ErrorText() const;
};

// What a project's errors break. An error in an asset's own file (a source's
// YAML, a model's SQL, a seed) breaks that asset and what reads it; any other
// (sluice.yaml, fields.yaml) breaks the whole project.
struct Breakage {
  std::set<std::string> assets;      // broken by an error in their own file
  std::set<std::string> downstream;  // reading a broken asset, directly or not
  std::vector<ConfigError> global;   // errors outside every asset's file
  std::map<std::string, std::vector<ConfigError>> by_asset;
};
Breakage BrokenAssets(const Workspace& ws);

// The errors that stop building `names`: the global ones, and those of each
// broken asset among them or upstream of them. Empty: they can run.
std::vector<ConfigError> ErrorsBlocking(const Workspace& ws, const std::vector<std::string>& names);

// Loads the project at root for env (an unknown env is an error with a
// did-you-mean) and builds the graph, caching SQL parses under the env's
// state folder. `vars` (an object) overrides the project's vars for this load:
// a trigger's variables, seen by every template.
// `secret_files` false leaves out the check of the secrets files' modes
// (SecretFileErrors), for a caller that keeps the workspace and checks them
// each time it uses it.
Workspace LoadWorkspace(const std::string& root, const std::string& env,
                        const nlohmann::json& vars = nlohmann::json::object(),
                        bool secret_files = true);
// The same from a project LoadProject(root) returned (a caller that read it
// already for another reason need not read every file again).
Workspace LoadWorkspace(LoadedProject loaded, const std::string& env,
                        const nlohmann::json& vars = nlohmann::json::object(),
                        bool secret_files = true);
// A secrets file others can read is a project error, found before any run.
std::vector<ConfigError> SecretFileErrors(const Project& project);

}  // namespace sluice
