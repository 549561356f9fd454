// dbt-style asset selection over an AssetGraph, as used by `sluice run/plan/test`.
//
// Forms (each argument may hold several space-separated items; the result is
// their union):
//   name          that asset                 +name    it and all its upstream
//   name+         it and all its downstream  +name+   both
//   tag:x         assets tagged x            source:NAME  all tables of source NAME
//   source:*      all source tables          seed:*, model:*  all seeds / models
//   seed:NAME, model:NAME  that asset, when it is of that kind
// The + prefix/suffix applies to every form. Names and tags match
// case-insensitively. Pure function; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "graph/asset_graph.h"

namespace sluice {

// Returns the selected asset names in graph (topological) order; no selectors
// = all assets. An item matching nothing is Status::Invalid, e.g.
// "no asset matches 'stpos' (did you mean stops?)".
Result<std::vector<std::string>> SelectAssets(const AssetGraph& graph,
                                              const std::vector<std::string>& selectors);

}  // namespace sluice
