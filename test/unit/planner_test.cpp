// Tests of the planner (orchestrate/planner.h), without DuckDB: what a task
// does and why, from its recipe, its input versions and its last
// publication; and what goes into a recipe's fingerprint.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "orchestrate/planner.h"
#include "orchestrate/runner.h"
#include "orchestrate/version.h"

namespace sluice {
namespace {

Publication Published(const std::string& version, const std::string& fingerprint,
                      const std::string& checks_hash, nlohmann::json inputs) {
  Publication p;
  p.asset = "trips";
  p.version_id = version;
  p.fingerprint = fingerprint;
  p.checks_hash = checks_hash;
  p.inputs = std::move(inputs);
  return p;
}

// A model's inputs as the runner records them: [[upstream, version], ...].
nlohmann::json Ups(const std::vector<std::pair<std::string, std::string>>& ups) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [asset, version] : ups) out.push_back(nlohmann::json::array({asset, version}));
  return out;
}

// A model reading two upstreams, as the runner would describe it.
PlanFacts ModelFacts(const Publication* prev, nlohmann::json inputs) {
  PlanFacts f;
  f.kind = AssetKind::kModel;
  f.fingerprint = "fp1";
  f.inputs = std::move(inputs);
  f.version = VersionId(f.fingerprint, f.inputs);
  f.checks_hash = "checks1";
  f.previous = prev;
  return f;
}

TEST(Planner, ActionsHaveStableNames) {
  for (TaskAction a : {TaskAction::kBuild, TaskAction::kSkip, TaskAction::kAudit,
                       TaskAction::kCheck, TaskAction::kFetch, TaskAction::kExport}) {
    std::optional<TaskAction> back = ParseTaskAction(TaskActionName(a));
    ASSERT_TRUE(back.has_value()) << TaskActionName(a);
    EXPECT_EQ(*back, a);
  }
  EXPECT_STREQ(TaskActionName(TaskAction::kSkip), "skip");
  EXPECT_FALSE(ParseTaskAction("built").has_value());
}

TEST(Planner, NeverBuiltBuilds) {
  Decision d = Decide(ModelFacts(nullptr, nlohmann::json::array()));
  EXPECT_EQ(d.action, TaskAction::kBuild);
  EXPECT_EQ(d.reason, "never built");
  EXPECT_EQ(d.previous_version, "");
}

TEST(Planner, UnchangedSkipsAndNewChecksAudit) {
  nlohmann::json inputs = Ups({{"routes", "v1"}, {"stops", "v2"}});
  std::string version = VersionId("fp1", inputs);
  Publication same = Published(version, "fp1", "checks1", inputs);
  Decision d = Decide(ModelFacts(&same, inputs));
  EXPECT_EQ(d.action, TaskAction::kSkip);
  EXPECT_EQ(d.reason, "unchanged");
  EXPECT_EQ(d.previous_version, version);

  Publication other_checks = Published(version, "fp1", "checks0", inputs);
  d = Decide(ModelFacts(&other_checks, inputs));
  EXPECT_EQ(d.action, TaskAction::kAudit);
  EXPECT_EQ(d.reason, "checks changed");

  // A check that reads another asset runs again when that asset publishes.
  PlanFacts reads = ModelFacts(&other_checks, inputs);
  reads.check_inputs = {"routes"};
  d = Decide(reads);
  EXPECT_EQ(d.action, TaskAction::kAudit);
  EXPECT_EQ(d.reason, "checks changed, or an asset they read published (routes)");
}

TEST(Planner, FullRefreshAndNondeterminismAlwaysBuild) {
  nlohmann::json inputs = Ups({{"routes", "v1"}});
  Publication same = Published(VersionId("fp1", inputs), "fp1", "checks1", inputs);
  PlanFacts f = ModelFacts(&same, inputs);
  f.full_refresh = true;
  EXPECT_EQ(Decide(f).action, TaskAction::kBuild);
  EXPECT_EQ(Decide(f).reason, "full refresh");
  f.full_refresh = false;
  f.nondeterministic = true;
  EXPECT_EQ(Decide(f).action, TaskAction::kBuild);
  EXPECT_EQ(Decide(f).reason, "calls a nondeterministic function");
}

TEST(Planner, SaysWhatChanged) {
  nlohmann::json before = Ups({{"routes", "v1"}, {"stops", "v2"}});
  Publication prev = Published(VersionId("fp1", before), "fp1", "checks1", before);
  // One upstream published a new version, and one is new to the model.
  Decision d = Decide(ModelFacts(&prev, Ups({{"routes", "v1"}, {"stops", "v3"}, {"trips", "v9"}})));
  EXPECT_EQ(d.action, TaskAction::kBuild);
  EXPECT_EQ(d.reason, "upstream changed: stops, trips");
  EXPECT_EQ(d.previous_version, prev.version_id);

  // An upstream dropped: the inputs differ, no upstream is new or changed.
  d = Decide(ModelFacts(&prev, Ups({{"routes", "v1"}})));
  EXPECT_EQ(d.reason, "inputs changed");

  // Its SQL changed.
  Publication old_sql = Published("v0", "fp0", "checks1", before);
  d = Decide(ModelFacts(&old_sql, before));
  EXPECT_EQ(d.reason, "SQL or config changed");

  // A source: its config, or its data.
  PlanFacts source;
  source.kind = AssetKind::kSource;
  source.fingerprint = "fp1";
  source.inputs = {"sha-new"};
  source.version = VersionId(source.fingerprint, source.inputs);
  source.checks_hash = "checks1";
  Publication old_data = Published("v0", "fp1", "checks1", {"sha-old"});
  source.previous = &old_data;
  EXPECT_EQ(Decide(source).reason, "new data");
  Publication old_config = Published("v0", "fp0", "checks1", {"sha-old"});
  source.previous = &old_config;
  EXPECT_EQ(Decide(source).reason, "config changed");
}

TEST(Planner, MalformedRecordedInputsAreChangesNotCrashes) {
  Publication prev = Published("v0", "fp1", "checks1",
                               nlohmann::json::array({42, nlohmann::json::array({"routes"}),
                                                      nlohmann::json::array({"stops", 7})}));
  Decision d = Decide(ModelFacts(&prev, Ups({{"routes", "v1"}})));
  EXPECT_EQ(d.action, TaskAction::kBuild);
  EXPECT_EQ(d.reason, "upstream changed: routes");
}

TEST(Planner, PlanDefersSkipsBehindDownloads) {
  Decision skip{TaskAction::kSkip, "unchanged", "v1"};
  DeferToRun(skip, {});
  EXPECT_EQ(skip.action, TaskAction::kSkip);
  DeferToRun(skip, {"feed", "stops"});
  EXPECT_EQ(skip.action, TaskAction::kCheck);
  EXPECT_EQ(skip.reason, "rebuilt if feed, stops changes at run time");
  Decision build{TaskAction::kBuild, "never built", ""};
  DeferToRun(build, {"feed"});
  EXPECT_EQ(build.action, TaskAction::kBuild);
  EXPECT_EQ(build.reason, "never built");
}

TEST(Planner, RecipesFingerprintContentOnly) {
  ModelSpec model;
  model.name = "trips";
  model.header = {{"materialized", "table"}, {"description", "all trips"}};
  Recipe a = ModelRecipe(model, "select 1 as x;", "duckdb-1");
  EXPECT_EQ(a.create_sql, "AS select 1 as x");
  EXPECT_FALSE(a.is_view);
  model.header["description"] = "every trip";  // documentation only
  EXPECT_EQ(ModelRecipe(model, "select 1 as x", "duckdb-1").fingerprint, a.fingerprint);
  EXPECT_NE(ModelRecipe(model, "select 2 as x", "duckdb-1").fingerprint, a.fingerprint);
  EXPECT_NE(ModelRecipe(model, "select 1 as x", "duckdb-2").fingerprint, a.fingerprint);
  model.materialized = "view";
  EXPECT_TRUE(ModelRecipe(model, "select 1 as x", "duckdb-1").is_view);

  SeedSpec seed;
  seed.name = "zones";
  seed.path = "/p/seeds/zones.csv";
  Recipe s = SeedRecipe(seed, "duckdb-1");
  EXPECT_EQ(s.create_sql, "AS SELECT * FROM read_csv('/p/seeds/zones.csv', header=true)");
  seed.column_types = {{"zone", "VARCHAR"}};
  Recipe typed = SeedRecipe(seed, "duckdb-1");
  EXPECT_NE(typed.fingerprint, s.fingerprint);
  EXPECT_EQ(typed.create_sql,
            "AS SELECT * FROM read_csv('/p/seeds/zones.csv', header=true, types={'zone': "
            "'VARCHAR'})");

  // A source's fingerprint holds the fields.yaml entries its columns use.
  SourceSpec src;
  src.name = "stops";
  src.config = {{"fetch", {{"url", "stops.csv"}}}, {"description", "stops"}};
  TableSpec table;
  table.name = "stops";
  ColumnSpec col;
  col.input = "stop_lat";
  col.field = "lat";
  table.columns.push_back(col);
  std::map<std::string, FieldSpec> fields;
  fields["lat"] = FieldSpec{"lat", "latitude", "", "", nlohmann::json::array(), {}};
  Recipe r1 = SourceRecipe(src, table, "csv", fields, "duckdb-1");
  fields["lat"].type = "decimal";
  Recipe r2 = SourceRecipe(src, table, "csv", fields, "duckdb-1");
  EXPECT_NE(r1.fingerprint, r2.fingerprint);
  fields["unused"] = FieldSpec{"unused", "text", "", "", nlohmann::json::array(), {}};
  EXPECT_EQ(SourceRecipe(src, table, "csv", fields, "duckdb-1").fingerprint, r2.fingerprint);
  EXPECT_NE(SourceRecipe(src, table, "tsv", fields, "duckdb-1").fingerprint, r2.fingerprint);
  EXPECT_TRUE(r1.create_sql.empty());
}

TEST(Planner, SchemaDrift) {
  nlohmann::json before = {{{"name", "id"}, {"type", "BIGINT"}},
                           {{"name", "name"}, {"type", "VARCHAR"}}};
  EXPECT_TRUE(SchemaDrift(before, before).is_null());
  EXPECT_TRUE(SchemaDrift(nlohmann::json::array(), before).is_null());  // nothing before
  nlohmann::json after = {{{"name", "id"}, {"type", "VARCHAR"}},
                          {{"name", "lat"}, {"type", "DOUBLE"}}};
  nlohmann::json drift = SchemaDrift(before, after);
  EXPECT_EQ(drift["added"], nlohmann::json({"lat"}));
  EXPECT_EQ(drift["removed"], nlohmann::json({"name"}));
  EXPECT_EQ(drift["changed"],
            nlohmann::json({{{"column", "id"}, {"from", "BIGINT"}, {"to", "VARCHAR"}}}));
}

// The report leaves a task's fields out at their defaults (a plan of
// 10,000 unchanged assets); FillTaskDefaults gives back the whole task,
// field for field, as it was before fields were left out.
TEST(RunReportJson, DefaultsLeftOutAndFilledBack) {
  RunReport report;
  report.run_id = 7;
  report.mode = "run";
  TaskOutcome quiet;
  quiet.asset = "stops";
  quiet.kind = "model";
  quiet.action = TaskAction::kSkip;
  quiet.status = TaskStatus::kSkipped;
  quiet.reason = "unchanged";
  quiet.version_id = "v1";
  TaskOutcome busy = quiet;
  busy.asset = "trips";
  busy.previous_version = "v0";
  busy.rows = 0;  // zero rows is not "not counted"
  busy.ms = 12;
  busy.attempts = 2;
  busy.bad_rows = 3;
  busy.error = "boom";
  CheckOutcome check;
  check.name = "not_null(id)";
  busy.checks.push_back(check);
  busy.drift = {{"added", {"x"}}};
  busy.partitions = nlohmann::json::array();
  busy.notes = {"a note"};
  busy.timings = {{"load", 5}};
  report.tasks = {quiet, busy};

  nlohmann::json compact = report.ToJson();
  const nlohmann::json& q = compact["tasks"][0];
  for (const char* key : {"previous_version", "rows", "ms", "attempts", "bad_rows", "error",
                          "checks", "drift", "partitions", "notes", "timings"}) {
    EXPECT_FALSE(q.contains(key)) << key;
  }
  for (const char* key : {"asset", "kind", "action", "status", "reason", "version"}) {
    EXPECT_TRUE(q.contains(key)) << key;
  }
  EXPECT_EQ(compact["tasks"][1].size(), 17u);  // nothing at its default: nothing left out

  nlohmann::json full = compact;
  RunReport::FillTaskDefaults(full);
  const nlohmann::json& fq = full["tasks"][0];
  EXPECT_EQ(fq.size(), 17u);
  EXPECT_EQ(fq["previous_version"], "");
  EXPECT_EQ(fq["rows"], -1);
  EXPECT_EQ(fq["ms"], 0);
  EXPECT_EQ(fq["attempts"], 0);
  EXPECT_EQ(fq["bad_rows"], 0);
  EXPECT_EQ(fq["error"], "");
  EXPECT_EQ(fq["checks"], nlohmann::json::array());
  EXPECT_TRUE(fq["drift"].is_null());
  EXPECT_TRUE(fq["partitions"].is_null());
  EXPECT_EQ(fq["notes"], nlohmann::json::array());
  EXPECT_EQ(fq["timings"], nlohmann::json::array());
  EXPECT_EQ(full["tasks"][1], compact["tasks"][1]);
  EXPECT_EQ(full["tasks"][1]["rows"], 0);
  EXPECT_EQ(full["tasks"][1]["partitions"], nlohmann::json::array());
}

}  // namespace
}  // namespace sluice
