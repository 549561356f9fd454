#include "graph/asset_graph.h"

#include "config/template.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <queue>
#include <set>
#include <tuple>
#include <utility>

#include "core/strings.h"

namespace sluice {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentChar(char c) { return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// The 0-based line (within sql) of the first dotted identifier chain equal to
// name (e.g. "main.x"), or else the first whose last part is name's last part;
// comments and string literals are skipped. -1 when absent.
int FindNameLine(std::string_view sql, const std::string& name) {
  const std::vector<std::string> target = Split(name, '.');
  int exact_line = -1;
  int suffix_line = -1;
  int line = 0;
  size_t i = 0;
  auto read_ident = [&](std::string& out) {
    out.clear();
    if (sql[i] == '"') {
      for (++i; i < sql.size(); ++i) {
        if (sql[i] == '"') {
          if (i + 1 < sql.size() && sql[i + 1] == '"') {
            out += '"';
            ++i;
            continue;
          }
          ++i;
          break;
        }
        if (sql[i] == '\n') ++line;
        out += sql[i];
      }
    } else {
      while (i < sql.size() && IsIdentChar(sql[i])) out += sql[i++];
    }
    out = ToLower(out);
  };
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      end = end == std::string_view::npos ? sql.size() : end + 2;
      line += static_cast<int>(std::count(sql.begin() + i, sql.begin() + end, '\n'));
      i = end;
    } else if (c == '\'') {
      for (++i; i < sql.size(); ++i) {
        if (sql[i] == '\n') ++line;
        if (sql[i] == '\'') {
          if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            ++i;
            continue;
          }
          ++i;
          break;
        }
      }
    } else if (IsIdentStart(c) || c == '"') {
      int start_line = line;
      std::vector<std::string> chain;
      std::string part;
      read_ident(part);
      chain.push_back(part);
      while (i + 1 < sql.size() && sql[i] == '.' &&
             (IsIdentStart(sql[i + 1]) || sql[i + 1] == '"')) {
        ++i;
        read_ident(part);
        chain.push_back(part);
      }
      if (chain == target) {
        exact_line = start_line;
        break;
      }
      if (suffix_line < 0 && !target.empty() && chain.back() == target.back()) {
        suffix_line = start_line;
      }
    } else {
      ++i;
    }
  }
  return exact_line >= 0 ? exact_line : suffix_line;
}

// The n of DuckDB's "LINE n:" in a parse error, or 0.
int ParseErrorLine(const std::string& message) {
  size_t pos = message.find("LINE ");
  if (pos == std::string::npos) return 0;
  int n = 0;
  for (pos += 5; pos < message.size() && std::isdigit(static_cast<unsigned char>(message[pos]));
       ++pos) {
    n = n * 10 + (message[pos] - '0');
    if (n > 10'000'000) return 0;
  }
  return pos < message.size() && message[pos] == ':' ? n : 0;
}

std::vector<std::string> SortedUnique(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return items;
}

SourceLoc AtLine(const SourceLoc& loc, int line) { return SourceLoc{loc.file, line}; }

// Where `name` is read in a model's file.
SourceLoc NameLoc(const ModelSpec& model, const std::string& name) {
  int line = FindNameLine(model.sql, name);
  return AtLine(model.loc, model.sql_first_line + std::max(line, 0));
}

class GraphBuilder {
 public:
  GraphBuilder(const Project& project, const RenderFn& render, SqlParser& parser, ParseCache* cache)
      : project_(project), render_(render), parser_(parser), cache_(cache) {}

  GraphBuild Build() && {
    AddAssets();
    ResolveModels();
    ResolveCommands();
    ResolveCheckTargets();
    Order();
    ResolveExports();
    ResolveLookups();
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.loc.file, a.loc.line) < std::tie(b.loc.file, b.loc.line);
                     });
    return GraphBuild{std::move(graph_), std::move(errors_)};
  }

 private:
  void AddNode(AssetNode node, const ModelSpec* model) {
    auto [it, inserted] = by_name_.try_emplace(node.name, nodes_.size());
    if (!inserted) {
      errors_.push_back({node.loc, "duplicate asset name '" + node.name + "' (also defined at " +
                                       nodes_[it->second].loc.ToString() + ")"});
      return;
    }
    node.tags = SortedUnique(std::move(node.tags));
    nodes_.push_back(std::move(node));
    models_.push_back(model);
  }

  void AddAssets() {
    for (const SourceSpec& source : project_.sources) {
      for (const TableSpec& table : source.tables) {
        AssetNode node;
        node.name = ToLower(table.name);
        node.kind = AssetKind::kSource;
        node.source = source.name;
        node.tags = source.tags;
        node.tags.insert(node.tags.end(), table.tags.begin(), table.tags.end());
        node.loc = table.loc.file.empty() ? source.loc : table.loc;
        AddNode(std::move(node), nullptr);
      }
    }
    for (const SeedSpec& seed : project_.seeds) {
      AssetNode node;
      node.name = ToLower(seed.name);
      node.kind = AssetKind::kSeed;
      node.tags = seed.tags;
      node.loc = seed.loc;
      AddNode(std::move(node), nullptr);
    }
    for (const ModelSpec& model : project_.models) {
      AssetNode node;
      node.name = ToLower(model.name);
      node.kind = AssetKind::kModel;
      node.tags = model.tags;
      node.loc = model.loc;
      AddNode(std::move(node), &model);
    }
    for (const auto& [name, idx] : by_name_) candidates_.push_back(name);
    for (const std::string& ext : project_.external) {
      external_.insert(ToLower(ext));
      candidates_.push_back(ToLower(ext));
    }
    candidates_ = SortedUnique(std::move(candidates_));
  }

  // Renders and parses a model; the rendered SQL goes to *rendered.
  std::optional<SqlRefs> ParseModel(const ModelSpec& model, std::string* rendered) {
    SourceLoc first_line = AtLine(model.loc, model.sql_first_line);
    Result<std::string> sql = render_(model);
    if (!sql.ok()) {
      errors_.push_back({first_line, "cannot render model: " + sql.status().message()});
      return std::nullopt;
    }
    *rendered = *sql;
    if (cache_ != nullptr) {
      if (std::optional<SqlRefs> cached = cache_->Get(*sql)) return cached;
    }
    Result<SqlRefs> refs = parser_.Parse(*sql);
    if (!refs.ok()) {
      int line = ParseErrorLine(refs.status().message());
      SourceLoc loc = line > 0 ? AtLine(model.loc, model.sql_first_line + line - 1) : first_line;
      errors_.push_back({loc, refs.status().message()});
      return std::nullopt;
    }
    if (cache_ != nullptr) cache_->Put(*sql, *refs);
    return std::move(refs).value();
  }

  void ResolveModels() {
    upstream_.resize(nodes_.size());
    for (size_t idx = 0; idx < nodes_.size(); ++idx) {
      const ModelSpec* model = models_[idx];
      if (model == nullptr) continue;
      AssetNode& node = nodes_[idx];
      std::optional<SqlRefs> refs = ParseModel(*model, &node.sql);
      if (!refs) continue;
      node.files = refs->files;
      node.nondeterministic = refs->nondeterministic;
      for (const std::string& table : refs->tables) {
        std::string local = StartsWith(table, "main.") ? table.substr(5) : table;
        auto it = local.find('.') == std::string::npos ? by_name_.find(local) : by_name_.end();
        if (it != by_name_.end()) {
          if (it->second == idx) {
            errors_.push_back({NameLoc(*model, table), "model '" + node.name + "' reads itself"});
          } else {
            upstream_[idx].insert(it->second);
          }
        } else if (external_.count(table) > 0 || external_.count(local) > 0) {
          node.external.push_back(table);
        } else {
          errors_.push_back({NameLoc(*model, table),
                             "unknown table '" + table + "'" + DidYouMeanHint(local, candidates_)});
        }
      }
      node.external = SortedUnique(std::move(node.external));
    }
  }

  // What each export reads: its table, or the assets its query names.
  void ResolveExports() {
    for (const ExportSpec& spec : project_.exports) {
      ExportNode x;
      x.name = spec.name;
      x.loc = spec.loc;
      if (!spec.table.empty()) {
        if (!by_name_.count(spec.table)) {
          errors_.push_back({spec.loc, "export '" + spec.name + "': unknown table '" + spec.table +
                                           "'" + DidYouMeanHint(spec.table, candidates_)});
          continue;
        }
        x.upstream = {spec.table};
        std::vector<std::string> cols;
        for (const std::string& c : spec.columns) cols.push_back(QuoteIdent(c));
        x.sql = "SELECT " + (cols.empty() ? std::string("*") : Join(cols, ", ")) + " FROM " +
                QuoteIdent(spec.table);
        graph_.exports.push_back(std::move(x));
        continue;
      }
      Result<SqlRefs> refs = parser_.Parse(spec.query);
      if (!refs.ok()) {
        errors_.push_back({spec.loc, "export '" + spec.name + "': " + refs.status().message()});
        continue;
      }
      bool ok = true;
      for (const std::string& table : refs->tables) {
        std::string local = StartsWith(table, "main.") ? table.substr(5) : table;
        if (local.find('.') == std::string::npos && by_name_.count(local)) {
          x.upstream.push_back(local);
          continue;
        }
        ok = false;
        errors_.push_back({spec.loc, "export '" + spec.name + "': query: '" + table +
                                         "' is no asset of the project (an export reads only "
                                         "what Sluice builds)" +
                                         DidYouMeanHint(local, candidates_)});
      }
      if (!refs->files.empty()) {
        ok = false;
        errors_.push_back({spec.loc, "export '" + spec.name + "': query: reads files (" +
                                         Join(refs->files, ", ") +
                                         "); an export reads only the project's assets"});
      }
      if (!ok) continue;
      x.upstream = SortedUnique(std::move(x.upstream));
      x.sql = spec.query;
      graph_.exports.push_back(std::move(x));
    }
  }

  // server: {lookups: {TABLE: [...]}} names assets (each environment's
  // server: too). The columns are known once the table is published.
  void ResolveLookups() {
    std::set<std::pair<std::string, int>> seen;
    auto check = [&](const ServerSpec& server) {
      for (const auto& [table, columns] : server.lookups) {
        if (by_name_.count(table) || !seen.insert({table, server.loc.line}).second) continue;
        errors_.push_back({server.loc, "server: lookups: '" + table +
                                           "' is no asset of the project (a lookup serves a "
                                           "published table)" +
                                           DidYouMeanHint(table, candidates_)});
      }
    };
    check(project_.server);
    for (const auto& [name, env] : project_.environments) {
      if (env.own_server) check(env.server);
    }
  }

  // A command source's `inputs:` are upstream of each of its tables.
  void ResolveCommands() {
    for (const SourceSpec& source : project_.sources) {
      if (!source.command) continue;
      for (const std::string& input : source.command->inputs) {
        auto it = by_name_.find(input);
        if (it == by_name_.end()) {
          errors_.push_back({source.command->loc, "command: inputs: unknown asset '" + input + "'" +
                                                      DidYouMeanHint(input, candidates_)});
          continue;
        }
        if (nodes_[it->second].source == source.name) {
          errors_.push_back({source.command->loc, "command: inputs: '" + input +
                                                      "' is one of this command's own tables"});
          continue;
        }
        for (const TableSpec& table : source.tables) {
          auto self = by_name_.find(ToLower(table.name));
          if (self != by_name_.end()) upstream_[self->second].insert(it->second);
        }
      }
    }
  }

  // A check that reads another asset (relationships, a sql or expression
  // check with a query in it) makes that asset an upstream, built and
  // published first, and one of the node's check_inputs: when it publishes,
  // the checks run again.
  void ResolveCheckTargets() {
    std::map<std::string, const std::vector<CheckSpec>*> checks;
    for (const SourceSpec& source : project_.sources) {
      for (const TableSpec& table : source.tables) checks[ToLower(table.name)] = &table.checks;
    }
    for (const SeedSpec& seed : project_.seeds) checks[ToLower(seed.name)] = &seed.checks;
    for (const ModelSpec& model : project_.models) checks[ToLower(model.name)] = &model.checks;
    for (const auto& [name, list] : checks) {
      auto self = by_name_.find(name);
      if (self == by_name_.end()) continue;
      std::set<std::string> inputs;
      auto read = [&](const std::string& table, const CheckSpec& check, bool is_relationships) {
        std::string local = StartsWith(table, "main.") ? table.substr(5) : table;
        auto it = local.find('.') == std::string::npos ? by_name_.find(local) : by_name_.end();
        if (it != by_name_.end()) {
          if (it->second == self->second) return;
          upstream_[self->second].insert(it->second);
          inputs.insert(nodes_[it->second].name);
        } else if (!external_.count(local) && !external_.count(table)) {
          errors_.push_back(
              {check.loc, std::string(is_relationships ? "relationships" : check.type) +
                              ": unknown table '" + table + "'" +
                              DidYouMeanHint(local, candidates_)});
        }
      };
      for (const CheckSpec& check : *list) {
        if (check.type == "relationships" && check.args.is_object()) {
          auto to = check.args.find("to");
          if (to == check.args.end() || !to->is_string()) continue;
          std::string target = to->get<std::string>();
          read(ToLower(target.substr(0, target.rfind('.'))), check, true);
        } else if (check.type == "sql" || check.type == "expression") {
          // The query (or the expression, in a SELECT over the asset itself)
          // parsed like a model; {{ this }} is the asset.
          std::string text;
          if (check.args.is_string()) text = check.args.get<std::string>();
          if (check.args.is_object()) {
            text = check.args.value(check.type == "sql" ? "query" : "expression", "");
          }
          if (text.empty()) continue;
          TemplateContext ctx;
          ctx.vars = project_.vars;
          ctx.this_name = QuoteIdent(name);
          Result<std::string> rendered = RenderTemplate(text, ctx, check.loc.line);
          if (!rendered.ok()) {
            errors_.push_back(
                {check.loc, "check " + check.name + ": " + rendered.status().message()});
            continue;
          }
          text = *rendered;
          std::string sql = check.type == "sql"
                                ? text
                                : "SELECT * FROM " + QuoteIdent(name) + " WHERE (" + text + ")";
          std::optional<SqlRefs> refs = cache_ ? cache_->Get(sql) : std::nullopt;
          if (!refs) {
            Result<SqlRefs> parsed = parser_.Parse(sql);
            if (!parsed.ok()) {
              errors_.push_back(
                  {check.loc, "check " + check.name + ": " + parsed.status().message()});
              continue;
            }
            refs = *parsed;
            if (cache_) cache_->Put(sql, *refs);
          }
          for (const std::string& table : refs->tables) read(table, check, false);
        }
      }
      nodes_[self->second].check_inputs.assign(inputs.begin(), inputs.end());
    }
  }

  // Kahn's algorithm, smallest ready name first; what remains is on or behind a cycle.
  void Order() {
    const size_t n = nodes_.size();
    std::vector<std::set<size_t>> downstream(n);
    std::vector<size_t> pending(n, 0);
    for (size_t idx = 0; idx < n; ++idx) {
      pending[idx] = upstream_[idx].size();
      for (size_t up : upstream_[idx]) downstream[up].insert(idx);
      for (size_t up : upstream_[idx]) nodes_[idx].upstream.push_back(nodes_[up].name);
      nodes_[idx].upstream = SortedUnique(std::move(nodes_[idx].upstream));
    }
    for (size_t idx = 0; idx < n; ++idx) {
      for (size_t down : downstream[idx]) nodes_[idx].downstream.push_back(nodes_[down].name);
      nodes_[idx].downstream = SortedUnique(std::move(nodes_[idx].downstream));
    }

    using Ready = std::pair<std::string, size_t>;
    std::priority_queue<Ready, std::vector<Ready>, std::greater<Ready>> ready;
    for (size_t idx = 0; idx < n; ++idx) {
      if (pending[idx] == 0) ready.emplace(nodes_[idx].name, idx);
    }
    std::vector<size_t> order;
    order.reserve(n);
    std::vector<bool> placed(n, false);
    while (!ready.empty()) {
      size_t idx = ready.top().second;
      ready.pop();
      order.push_back(idx);
      placed[idx] = true;
      for (size_t down : downstream[idx]) {
        if (--pending[down] == 0) ready.emplace(nodes_[down].name, down);
      }
    }
    if (order.size() < n) {
      ReportCycles(placed, downstream);
      std::vector<size_t> rest;
      for (size_t idx = 0; idx < n; ++idx) {
        if (!placed[idx]) rest.push_back(idx);
      }
      std::sort(rest.begin(), rest.end(),
                [&](size_t a, size_t b) { return nodes_[a].name < nodes_[b].name; });
      order.insert(order.end(), rest.begin(), rest.end());
    }

    graph_.nodes.reserve(n);
    for (size_t idx : order) {
      graph_.index.emplace(nodes_[idx].name, graph_.nodes.size());
      graph_.nodes.push_back(std::move(nodes_[idx]));
    }
  }

  // One error per strongly connected component of the unplaced nodes (Tarjan,
  // iterative), naming its shortest cycle through its alphabetically first node.
  void ReportCycles(const std::vector<bool>& placed,
                    const std::vector<std::set<size_t>>& downstream) {
    const size_t n = nodes_.size();
    constexpr size_t kUnvisited = static_cast<size_t>(-1);
    std::vector<size_t> index(n, kUnvisited), low(n, 0), component(n, kUnvisited);
    std::vector<bool> on_stack(n, false);
    std::vector<size_t> stack;
    size_t counter = 0;
    size_t components = 0;
    std::vector<std::vector<size_t>> members;
    for (size_t root = 0; root < n; ++root) {
      if (placed[root] || index[root] != kUnvisited) continue;
      // Frames of (node, iterator position into its downstream set).
      std::vector<std::pair<size_t, std::set<size_t>::const_iterator>> frames;
      auto enter = [&](size_t v) {
        index[v] = low[v] = counter++;
        stack.push_back(v);
        on_stack[v] = true;
        frames.emplace_back(v, downstream[v].begin());
      };
      enter(root);
      while (!frames.empty()) {
        auto& [v, it] = frames.back();
        if (it != downstream[v].end()) {
          size_t w = *it++;
          if (placed[w]) continue;
          if (index[w] == kUnvisited) {
            enter(w);
          } else if (on_stack[w]) {
            low[v] = std::min(low[v], index[w]);
          }
          continue;
        }
        size_t done = v;
        frames.pop_back();
        if (!frames.empty()) {
          size_t parent = frames.back().first;
          low[parent] = std::min(low[parent], low[done]);
        }
        if (low[done] == index[done]) {
          members.emplace_back();
          size_t w;
          do {
            w = stack.back();
            stack.pop_back();
            on_stack[w] = false;
            component[w] = components;
            members.back().push_back(w);
          } while (w != done);
          ++components;
        }
      }
    }
    for (size_t c = 0; c < members.size(); ++c) {
      if (members[c].size() < 2) continue;  // behind a cycle, not on one
      size_t first =
          *std::min_element(members[c].begin(), members[c].end(),
                            [&](size_t a, size_t b) { return nodes_[a].name < nodes_[b].name; });
      std::vector<size_t> cycle = ShortestCycle(first, c, component, downstream);
      std::vector<std::string> names;
      for (size_t idx : cycle) names.push_back(nodes_[idx].name);
      names.push_back(nodes_[first].name);
      // Report at the line of `first`'s file that reads its predecessor.
      const std::string& closing = nodes_[cycle.back()].name;
      SourceLoc loc =
          models_[first] != nullptr ? NameLoc(*models_[first], closing) : nodes_[first].loc;
      errors_.push_back({loc, "dependency cycle: " + Join(names, " -> ")});
    }
  }

  // BFS along downstream edges inside one component, from start back to start.
  std::vector<size_t> ShortestCycle(size_t start, size_t comp, const std::vector<size_t>& component,
                                    const std::vector<std::set<size_t>>& downstream) {
    std::map<size_t, size_t> parent;
    std::queue<size_t> queue;
    queue.push(start);
    size_t last = start;
    while (!queue.empty()) {
      size_t v = queue.front();
      queue.pop();
      if (v != start && downstream[v].count(start) > 0) {
        last = v;
        break;
      }
      // Visit neighbours in name order so the reported cycle is deterministic.
      std::vector<size_t> next(downstream[v].begin(), downstream[v].end());
      std::sort(next.begin(), next.end(),
                [&](size_t a, size_t b) { return nodes_[a].name < nodes_[b].name; });
      for (size_t w : next) {
        if (component[w] != comp || w == start || parent.count(w) > 0) continue;
        parent[w] = v;
        queue.push(w);
      }
    }
    std::vector<size_t> path;
    for (size_t v = last; v != start; v = parent[v]) path.push_back(v);
    path.push_back(start);
    std::reverse(path.begin(), path.end());
    return path;
  }

  const Project& project_;
  const RenderFn& render_;
  SqlParser& parser_;
  ParseCache* cache_;

  std::vector<AssetNode> nodes_;            // in declaration order
  std::vector<const ModelSpec*> models_;    // parallel to nodes_; null for non-models
  std::map<std::string, size_t> by_name_;   // lower-case name -> nodes_ position
  std::vector<std::set<size_t>> upstream_;  // parallel to nodes_
  std::set<std::string> external_;
  std::vector<std::string> candidates_;  // for did-you-mean hints
  AssetGraph graph_;
  std::vector<ConfigError> errors_;
};

}  // namespace

const char* AssetKindName(AssetKind kind) {
  switch (kind) {
    case AssetKind::kSource:
      return "source";
    case AssetKind::kSeed:
      return "seed";
    case AssetKind::kModel:
      return "model";
  }
  return "model";
}

const AssetNode* AssetGraph::Find(const std::string& name) const {
  auto it = index.find(ToLower(name));
  return it == index.end() ? nullptr : &nodes[it->second];
}

GraphBuild BuildAssetGraph(const Project& project, const RenderFn& render, SqlParser& parser,
                           ParseCache* cache) {
  return GraphBuilder(project, render, parser, cache).Build();
}

nlohmann::json LineageJson(const AssetGraph& graph) {
  nlohmann::json nodes = nlohmann::json::array(), edges = nlohmann::json::array();
  for (const AssetNode& n : graph.nodes) {
    nodes.push_back({{"name", n.name},
                     {"kind", AssetKindName(n.kind)},
                     {"upstream", n.upstream},
                     {"downstream", n.downstream},
                     {"files", n.files},
                     {"external", n.external}});
    for (const std::string& up : n.upstream) edges.push_back({up, n.name});
  }
  return {{"nodes", nodes}, {"edges", edges}};
}

}  // namespace sluice
