// A loaded project plus its asset graph for one environment: what every
// command starts from. Loading reports every config and graph error at once.
#pragma once

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
// state folder.
Workspace LoadWorkspace(const std::string& root, const std::string& env);

}  // namespace sluice
