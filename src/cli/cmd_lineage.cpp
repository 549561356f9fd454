// sluice lineage [ASSET]: the asset graph around one asset, or all edges.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
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

// lineage [ASSET] --columns: each column and the upstream columns feeding
// it; the schemas come from what is published, so the engine answers.
int PrintColumns(const GlobalOptions& global, const std::string& asset) {
  nlohmann::json request = {{"cmd", "lineage"}, {"columns", true}};
  if (!asset.empty()) request["asset"] = asset;
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, request, &code);
  if (!answer) return code;
  for (const auto& [name, entry] : (*answer)["columns"].items()) {
    std::printf("%s\n", name.c_str());
    if (entry.contains("unknown")) {
      std::printf("  (not fully known: %s)\n", entry["unknown"].get<std::string>().c_str());
    }
    size_t width = 0;
    for (const auto& c : entry["columns"]) width = std::max(width, c.value("column", "").size());
    for (const auto& c : entry["columns"]) {
      std::vector<std::string> sources;
      for (const auto& s : c["sources"]) {
        sources.push_back(s.value("asset", "") + "." + s.value("column", ""));
      }
      std::string line = "  " + c.value("column", "");
      line.resize(width + 2, ' ');
      if (!sources.empty()) {
        line += " <- " + Join(sources, ", ");
      } else if (entry.value("root", false)) {
        line += " <- (its data)";
      } else {
        line += " <- (no column: constants, count(*))";
      }
      if (c.contains("unknown")) line += "  (unknown: " + c.value("unknown", "") + ")";
      std::printf("%s\n", line.c_str());
    }
  }
  return code;
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
  if (args.columns) return PrintColumns(global, args.asset);
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
