#include "orchestrate/planner.h"

#include "core/strings.h"
#include "orchestrate/version.h"

namespace sluice {

namespace {

struct ActionName {
  TaskAction action;
  const char* name;
};
constexpr ActionName kActionNames[] = {
    {TaskAction::kBuild, "build"}, {TaskAction::kSkip, "skip"},   {TaskAction::kAudit, "audit"},
    {TaskAction::kCheck, "check"}, {TaskAction::kFetch, "fetch"}, {TaskAction::kExport, "export"},
};

}  // namespace

const char* TaskActionName(TaskAction action) {
  for (const ActionName& a : kActionNames) {
    if (a.action == action) return a.name;
  }
  return "build";
}

std::optional<TaskAction> ParseTaskAction(std::string_view name) {
  for (const ActionName& a : kActionNames) {
    if (name == a.name) return a.action;
  }
  return std::nullopt;
}

Recipe SourceRecipe(const SourceSpec& source, const TableSpec& table, const std::string& format,
                    const std::map<std::string, FieldSpec>& fields, const std::string& engine) {
  nlohmann::json config = ContentConfig(source.config);
  config["__table"] = table.name;
  config["__loader"] = kLoaderVersion;
  if (!table.columns.empty()) {
    // The fields.yaml entries the phases use, and the phase compiler's version.
    config["__phases"] = kPhasesVersion;
    for (const ColumnSpec& col : table.columns) {
      auto spec = fields.find(col.field);
      if (spec != fields.end()) {
        config["__fields"][col.field] = {{"type", spec->second.type},
                                         {"pattern", spec->second.pattern},
                                         {"values", spec->second.values}};
      }
    }
  }
  Recipe r;
  r.fingerprint = Fingerprint(config, format, engine);
  return r;
}

Recipe SeedRecipe(const SeedSpec& seed, const std::string& engine) {
  std::string read = "read_csv(" + QuoteLiteral(seed.path) + ", header=true";
  if (!seed.column_types.empty()) {
    std::vector<std::string> types;
    for (const auto& [col, type] : seed.column_types.items()) {
      types.push_back(QuoteLiteral(col) + ": " +
                      QuoteLiteral(type.is_string() ? type.get<std::string>() : type.dump()));
    }
    read += ", types={" + Join(types, ", ") + "}";
  }
  read += ")";
  nlohmann::json config = {{"column_types", seed.column_types}, {"key", seed.key}};
  Recipe r;
  r.fingerprint = Fingerprint(config, "seed", engine);
  r.create_sql = "AS SELECT * FROM " + read;
  return r;
}

Recipe ModelRecipe(const ModelSpec& model, const std::string& rendered_sql,
                   const std::string& engine) {
  std::string sql = StripStatementEnd(rendered_sql);
  Recipe r;
  r.is_view = model.materialized == "view";
  r.fingerprint = Fingerprint(ContentConfig(model.header), sql, engine);
  r.create_sql = "AS " + sql;
  return r;
}

Decision Decide(const PlanFacts& f) {
  Decision d;
  const Publication* prev = f.previous;
  if (prev) d.previous_version = prev->version_id;
  if (f.full_refresh) {
    d.reason = "full refresh";
  } else if (f.nondeterministic) {
    d.reason = "calls a nondeterministic function";
  } else if (!prev) {
    d.reason = "never built";
  } else if (prev->version_id == f.version) {
    if (prev->checks_hash != f.checks_hash) {
      d.action = TaskAction::kAudit;
      d.reason = f.check_inputs.empty() ? "checks changed"
                                        : "checks changed, or an asset they read published (" +
                                              Join(f.check_inputs, ", ") + ")";
    } else {
      d.action = TaskAction::kSkip;
      d.reason = "unchanged";
    }
  } else if (prev->fingerprint != f.fingerprint) {
    d.reason = f.kind == AssetKind::kModel ? "SQL or config changed" : "config changed";
  } else if (f.kind == AssetKind::kModel) {
    std::map<std::string, std::string> before;
    for (const auto& in : prev->inputs) {
      if (in.is_array() && in.size() == 2 && in[0].is_string() && in[1].is_string()) {
        before[in[0].get<std::string>()] = in[1].get<std::string>();
      }
    }
    std::vector<std::string> changed;
    for (const auto& in : f.inputs) {
      if (!in.is_array() || in.size() != 2 || !in[0].is_string() || !in[1].is_string()) continue;
      auto was = before.find(in[0].get<std::string>());
      if (was == before.end() || was->second != in[1].get<std::string>()) {
        changed.push_back(in[0].get<std::string>());
      }
    }
    d.reason = changed.empty() ? "inputs changed" : "upstream changed: " + Join(changed, ", ");
  } else {
    d.reason = "new data";
  }
  return d;
}

void DeferToRun(Decision& decision, const std::vector<std::string>& pending) {
  if (pending.empty() || decision.action != TaskAction::kSkip) return;
  decision.action = TaskAction::kCheck;
  decision.reason = "rebuilt if " + Join(pending, ", ") + " changes at run time";
}

nlohmann::json SchemaDrift(const nlohmann::json& before, const nlohmann::json& after) {
  if (!before.is_array() || before.empty()) return nullptr;
  std::map<std::string, std::string> old_cols, new_cols;
  for (const auto& c : before) old_cols[c.value("name", "")] = c.value("type", "");
  for (const auto& c : after) new_cols[c.value("name", "")] = c.value("type", "");
  nlohmann::json added = nlohmann::json::array(), removed = nlohmann::json::array(),
                 changed = nlohmann::json::array();
  for (const auto& [name, type] : new_cols) {
    auto it = old_cols.find(name);
    if (it == old_cols.end()) {
      added.push_back(name);
    } else if (it->second != type) {
      changed.push_back({{"column", name}, {"from", it->second}, {"to", type}});
    }
  }
  for (const auto& [name, type] : old_cols) {
    if (!new_cols.count(name)) removed.push_back(name);
  }
  if (added.empty() && removed.empty() && changed.empty()) return nullptr;
  return {{"added", added}, {"removed", removed}, {"changed", changed}};
}

}  // namespace sluice
