// The planner (DESIGN §5 "Skip what has not changed"): what a task does and
// why, decided from the asset's recipe (its fingerprint), the versions of its
// inputs and its last publication. No DuckDB and no I/O: the runner gathers
// the facts (a source's body is fetched to learn its hash), asks Decide, and
// carries the decision out with the build step. Tested on its own
// (test/unit/planner_test.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/project.h"
#include "graph/asset_graph.h"
#include "transform/publication.h"

namespace sluice {

// What a task does (or, in `plan`, would do). Stored and shown by name.
enum class TaskAction {
  kBuild,   // stage a new version, audit it, publish it
  kSkip,    // unchanged: the published version stays
  kAudit,   // same data, other checks (or an asset they read published): run them
  kCheck,   // plan: decided at run time (an upstream's download decides)
  kFetch,   // plan: an HTTP source, whose response decides
  kExport,  // an export written after the graph
};
const char* TaskActionName(TaskAction action);
std::optional<TaskAction> ParseTaskAction(std::string_view name);

// Bumped when the SQL the phase compiler generates changes meaning.
inline constexpr const char* kPhasesVersion = "phases-3";
// Bumped when loading a source changes meaning (loader-2: the engine sniffs
// the header; values that do not fit widen their column; bad rows fail).
inline constexpr const char* kLoaderVersion = "loader-2";

// An asset's fingerprint plus, for seeds and models, what builds its staged
// relation (a source is loaded by LoadSourceTable instead).
struct Recipe {
  std::string fingerprint;
  std::string create_sql;  // "AS SELECT ..." after CREATE TABLE|VIEW <physical>; "" for a source
  bool is_view = false;
};
Recipe SourceRecipe(const SourceSpec& source, const TableSpec& table, const std::string& format,
                    const std::map<std::string, FieldSpec>& fields, const std::string& engine);
Recipe SeedRecipe(const SeedSpec& seed, const std::string& engine);
// `rendered_sql`: the model's SQL with its templates rendered (AssetNode::sql).
Recipe ModelRecipe(const ModelSpec& model, const std::string& rendered_sql,
                   const std::string& engine);

// What the planner knows of one task.
struct PlanFacts {
  AssetKind kind = AssetKind::kModel;
  bool nondeterministic = false;
  std::vector<std::string> check_inputs;  // assets its checks read (AssetNode::check_inputs)
  bool full_refresh = false;
  std::string fingerprint;
  // Sources: the input objects' hashes; models: [upstream, version] pairs.
  nlohmann::json inputs = nlohmann::json::array();
  std::string version;                    // VersionId(fingerprint, inputs)
  std::string checks_hash;                // of its checks and the versions of what they read
  const Publication* previous = nullptr;  // its (partition's) last publication, if any
};

struct Decision {
  TaskAction action = TaskAction::kBuild;
  std::string reason;            // for the user: "never built", "upstream changed: a, b"
  std::string previous_version;  // "" when never built
};

Decision Decide(const PlanFacts& facts);

// In `plan`, a task downstream of assets whose change is known only at run
// time (`pending`: a download decides) is not "unchanged": a skip becomes a
// check, naming them.
void DeferToRun(Decision& decision, const std::vector<std::string>& pending);

// The columns added, removed and retyped between two schemas ([{name,
// type}]): {added, removed, changed}, or null when nothing changed or there
// was no schema before.
nlohmann::json SchemaDrift(const nlohmann::json& before, const nlohmann::json& after);

}  // namespace sluice
