// A loaded project plus its asset graph for one environment: what every
// command starts from. Loading reports every config and graph error at once.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

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

// Loads the project at root for env (an unknown env is an error with a
// did-you-mean) and builds the graph, caching SQL parses under the env's
// state folder. `vars` (an object) overrides the project's vars for this load:
// a trigger's variables, seen by every template.
Workspace LoadWorkspace(const std::string& root, const std::string& env,
                        const nlohmann::json& vars = nlohmann::json::object());

}  // namespace sluice
