// sluice lineage [ASSET]: the asset graph around one asset, or all edges.
#include <cstdio>
#include <functional>
#include <set>

#include "cli/commands.h"
#include "core/strings.h"
#include "engine/workspace.h"

namespace sluice {
namespace {

void PrintTree(const AssetGraph& graph, const std::string& name, bool up, int depth,
               std::set<std::string>& seen) {
  const AssetNode* node = graph.Find(name);
  if (!node) return;
  const auto& next = up ? node->upstream : node->downstream;
  for (const std::string& n : next) {
    std::printf("%s%s %s\n", std::string(2 * depth, ' ').c_str(), up ? "<-" : "->", n.c_str());
    if (seen.insert(n).second) PrintTree(graph, n, up, depth + 1, seen);
  }
}

}  // namespace

int CmdLineage(const GlobalOptions& global, const CommandArgs& args) {
  Result<std::string> root = ResolveProjectRoot(global);
  if (!root.ok()) return ReportError(global, root.status().message(), kExitUsage);
  Workspace ws = LoadWorkspace(*root, global.env);
  if (!ws.ok()) return ReportError(global, ws.ErrorText(), kExitUsage);
  const AssetGraph& graph = ws.graph;
  if (!args.asset.empty() && !graph.Find(args.asset)) {
    std::vector<std::string> names;
    for (const AssetNode& n : graph.nodes) names.push_back(n.name);
    return ReportError(global, "no asset '" + args.asset + "'" + DidYouMeanHint(args.asset, names),
                       kExitUsage);
  }
  if (global.json) {
    std::printf("%s\n", LineageJson(graph).dump(2).c_str());
    return kExitOk;
  }
  if (args.asset.empty()) {
    for (const AssetNode& n : graph.nodes) {
      std::printf("%s%s%s\n", n.name.c_str(), n.upstream.empty() ? "" : " <- ",
                  Join(n.upstream, ", ").c_str());
    }
    return kExitOk;
  }
  std::string name = graph.Find(args.asset)->name;
  std::printf("%s\n", name.c_str());
  std::set<std::string> seen;
  PrintTree(graph, name, true, 1, seen);
  seen.clear();
  PrintTree(graph, name, false, 1, seen);
  return kExitOk;
}

}  // namespace sluice
