#include "graph/selector.h"

#include <algorithm>
#include <set>

#include "core/strings.h"

namespace sluice {
namespace {

std::vector<std::string> SplitItems(const std::string& selector) {
  std::vector<std::string> items;
  std::string item;
  for (char c : selector) {
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!item.empty()) items.push_back(std::move(item));
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty()) items.push_back(std::move(item));
  return items;
}

Status NoMatch(const std::string& item, const std::string& word,
               const std::vector<std::string>& candidates, const std::string& prefix) {
  std::string best = DidYouMean(word, candidates);
  std::string hint = best.empty() ? "" : " (did you mean " + prefix + best + "?)";
  return Status::Invalid("no asset matches '" + item + "'" + hint);
}

// Adds to `out` every node reachable from `start` along `edges` (upstream or downstream).
void Closure(const AssetGraph& graph, size_t start, std::vector<std::string> AssetNode::*edges,
             std::vector<bool>& out) {
  std::vector<size_t> todo{start};
  std::vector<bool> seen(graph.nodes.size(), false);
  seen[start] = true;
  while (!todo.empty()) {
    size_t idx = todo.back();
    todo.pop_back();
    out[idx] = true;
    for (const std::string& name : graph.nodes[idx].*edges) {
      auto it = graph.index.find(name);
      if (it != graph.index.end() && !seen[it->second]) {
        seen[it->second] = true;
        todo.push_back(it->second);
      }
    }
  }
}

// The nodes `base` (an item without its + marks) names; an error when none.
Result<std::vector<size_t>> Resolve(const AssetGraph& graph, const std::string& item,
                                    const std::string& base) {
  std::vector<size_t> matched;
  size_t colon = base.find(':');
  if (colon == std::string::npos) {
    auto it = graph.index.find(ToLower(base));
    if (it == graph.index.end()) {
      // A source whose tables have other names is selected as source:NAME.
      for (const AssetNode& n : graph.nodes) {
        if (n.source == ToLower(base)) {
          return Status::Invalid("no asset matches '" + item + "' (did you mean source:" +
                                 n.source + "? its tables have their own names)");
        }
      }
      std::vector<std::string> names;
      for (const auto& [name, idx] : graph.index) names.push_back(name);
      return NoMatch(item, ToLower(base), names, "");
    }
    matched.push_back(it->second);
    return matched;
  }

  std::string method = ToLower(base.substr(0, colon));
  std::string value = ToLower(base.substr(colon + 1));
  std::set<std::string> known;  // the values that would have matched, for hints
  auto kind_of = [](const std::string& m, AssetKind* kind) {
    if (m == "source")
      *kind = AssetKind::kSource;
    else if (m == "seed")
      *kind = AssetKind::kSeed;
    else if (m == "model")
      *kind = AssetKind::kModel;
    else
      return false;
    return true;
  };
  AssetKind kind;
  if (method == "tag") {
    for (size_t idx = 0; idx < graph.nodes.size(); ++idx) {
      for (const std::string& tag : graph.nodes[idx].tags) {
        known.insert(ToLower(tag));
        if (ToLower(tag) == value) matched.push_back(idx);
      }
    }
  } else if (kind_of(method, &kind)) {
    for (size_t idx = 0; idx < graph.nodes.size(); ++idx) {
      const AssetNode& node = graph.nodes[idx];
      if (node.kind != kind) continue;
      // source:NAME names the SourceSpec; seed:NAME and model:NAME the asset.
      std::string key = kind == AssetKind::kSource ? ToLower(node.source) : node.name;
      known.insert(key);
      if (value == "*" || key == value) matched.push_back(idx);
    }
    if (value == "*") return matched;  // a wildcard may match nothing
  } else {
    return Status::Invalid("unknown selector method '" + method + "' in '" + item +
                           "' (use name, +name, name+, tag:, source:, seed: or model:)");
  }
  if (matched.empty()) {
    return NoMatch(item, value, std::vector<std::string>(known.begin(), known.end()), method + ":");
  }
  return matched;
}

}  // namespace

Result<std::vector<std::string>> SelectAssets(const AssetGraph& graph,
                                              const std::vector<std::string>& selectors) {
  std::vector<bool> selected(graph.nodes.size(), false);
  bool any_item = false;
  for (const std::string& selector : selectors) {
    for (const std::string& item : SplitItems(selector)) {
      any_item = true;
      std::string base = item;
      bool with_upstream = StartsWith(base, "+");
      if (with_upstream) base.erase(0, 1);
      bool with_downstream = EndsWith(base, "+");
      if (with_downstream) base.pop_back();
      if (base.empty()) return Status::Invalid("empty selector '" + item + "'");
      ASSIGN_OR_RETURN(std::vector<size_t> matched, Resolve(graph, item, base));
      for (size_t idx : matched) {
        selected[idx] = true;
        if (with_upstream) Closure(graph, idx, &AssetNode::upstream, selected);
        if (with_downstream) Closure(graph, idx, &AssetNode::downstream, selected);
      }
    }
  }
  std::vector<std::string> names;
  for (size_t idx = 0; idx < graph.nodes.size(); ++idx) {
    if (!any_item || selected[idx]) names.push_back(graph.nodes[idx].name);
  }
  return names;
}

}  // namespace sluice
