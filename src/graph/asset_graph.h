// The asset graph: every source table, seed and model of a Project, with the
// edges inferred from each model's SQL (see sql_refs.h). Building it reports
// every problem at once (unknown tables with a did-you-mean hint, self
// references, cycles, parse errors) as file:line ConfigErrors.
//
// Thread-safety: an AssetGraph is immutable plain data once built and may be
// read from any thread. BuildAssetGraph uses the given SqlParser, so calls
// sharing a parser must not run concurrently.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/status.h"
#include "graph/parse_cache.h"
#include "graph/sql_refs.h"

namespace sluice {

enum class AssetKind { kSource, kSeed, kModel };

const char* AssetKindName(AssetKind kind);  // "source" | "seed" | "model"

struct AssetNode {
  std::string name;  // lower-case public name (a source TABLE name, seed or model name)
  AssetKind kind = AssetKind::kModel;
  std::string source;                   // for kSource: the SourceSpec name; else ""
  std::vector<std::string> tags;        // sorted unique (a source table has its source's tags too)
  std::vector<std::string> upstream;    // asset names, sorted
  std::vector<std::string> downstream;  // asset names, sorted
  std::vector<std::string> files;       // files a model reads
  std::vector<std::string> external;    // external tables a model reads, as listed in `external:`
  std::vector<std::string> check_inputs;  // other assets its checks read (also upstream), sorted
  bool nondeterministic = false;
  std::string sql;  // a model's SQL with its templates rendered (what was parsed); else ""
  SourceLoc loc;
};

// An export (config ExportSpec): the assets it reads and the SELECT that
// gives its rows.
struct ExportNode {
  std::string name;
  std::vector<std::string> upstream;  // asset names, sorted
  std::string sql;
  SourceLoc loc;
};

struct AssetGraph {
  // In a topological order (upstream first), ties broken by name. When the
  // build found cycles, the nodes on or behind a cycle come last, by name.
  std::vector<AssetNode> nodes;
  std::map<std::string, size_t> index;  // lower-case name -> position in nodes
  std::vector<ExportNode> exports;      // as the project lists them (by name)
  // The node named name (case-insensitive), or nullptr.
  const AssetNode* Find(const std::string& name) const;
};

// The graph as JSON: {nodes: [{name, kind, upstream, downstream, files,
// external}], edges: [[from, to]]} (`sluice lineage --json`, /api/v1/lineage).
nlohmann::json LineageJson(const AssetGraph& graph);

// Renders a model's SQL (templates); returns the SQL to parse.
using RenderFn = std::function<Result<std::string>(const ModelSpec&)>;

struct GraphBuild {
  AssetGraph graph;
  std::vector<ConfigError> errors;  // empty when the project's graph is valid
};

// Builds the graph. Every problem is returned (not just the first), at file:line:
//  - render and parse errors of a model (DuckDB's "LINE n" maps to sql_first_line + n - 1);
//  - a referenced name that is no asset and not in project.external:
//    "unknown table 'stpos' (did you mean stops?)" at the line where the name
//    appears in the model file (sql_first_line when it cannot be found);
//    "main.x" resolves like "x"; other schemas must be listed as external;
//  - duplicate asset names; a model reading itself;
//  - an export's table that is no asset; its query's parse errors, and
//    names in it that are no asset (an export reads only what Sluice builds);
//  - cycles: "dependency cycle: a -> b -> c -> a" (arrows point downstream:
//    b reads a) at a's file, a being the cycle's first name alphabetically.
// Names match case-insensitively. cache may be null; new parses are Put into it.
GraphBuild BuildAssetGraph(const Project& project, const RenderFn& render, SqlParser& parser,
                           ParseCache* cache);

}  // namespace sluice
