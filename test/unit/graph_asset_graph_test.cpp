#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "graph/asset_graph.h"
#include "graph/parse_cache.h"
#include "graph/selector.h"
#include "graph/sql_refs.h"

namespace sluice {
namespace {

using Names = std::vector<std::string>;

ModelSpec Model(const std::string& name, const std::string& sql, int first_line = 1,
                Names tags = {}) {
  ModelSpec model;
  model.name = name;
  model.loc = SourceLoc{"models/" + name + ".sql", 1};
  model.sql = sql;
  model.sql_first_line = first_line;
  model.tags = std::move(tags);
  return model;
}

TableSpec Table(const std::string& name, const std::string& file, int line, Names tags = {}) {
  TableSpec table;
  table.name = name;
  table.loc = SourceLoc{file, line};
  table.tags = std::move(tags);
  return table;
}

// A small transit project: two sources, a seed, three models.
Project TransitProject() {
  Project project;
  project.root = "/tmp/transit";
  project.name = "transit";
  project.external = {"legacy.customers"};

  SourceSpec gtfs;
  gtfs.name = "gtfs";
  gtfs.loc = SourceLoc{"sources/gtfs.yaml", 1};
  gtfs.tags = {"transit"};
  gtfs.tables = {Table("gtfs_stops", "sources/gtfs.yaml", 9, {"geo"}),
                 Table("gtfs_trips", "sources/gtfs.yaml", 18),
                 Table("GTFS_Stop_Times", "sources/gtfs.yaml", 19)};
  SourceSpec weather;
  weather.name = "weather";
  weather.loc = SourceLoc{"sources/weather.yaml", 1};
  weather.tables = {Table("weather", "", 0)};
  project.sources = {gtfs, weather};

  SeedSpec agency;
  agency.name = "agency";
  agency.loc = SourceLoc{"seeds/agency.csv", 1};
  project.seeds = {agency};

  project.models = {
      Model("stops", "select * from gtfs_stops"),
      Model("mart_departures",
            "select st.stop_id, count(*) as departures\n"
            "from gtfs_stop_times st join GTFS_TRIPS t using (trip_id)\n"
            "join main.stops s using (stop_id)\n"
            "group by all",
            5),
      Model("with_external",
            "select * from Legacy.Customers c\n"
            "join agency a using (id)\n"
            "join 'extra.parquet' using (id)\n"
            "where c.seen < now()",
            1, {"Finance"}),
  };
  return project;
}

Result<std::string> AsIs(const ModelSpec& model) { return model.sql; }

class GraphAssetGraph : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto parser = SqlParser::Create();
    ASSERT_TRUE(parser.ok()) << parser.status().ToString();
    parser_.emplace(std::move(parser).value());
  }
  static void TearDownTestSuite() { parser_.reset(); }

  static GraphBuild Build(const Project& project, ParseCache* cache = nullptr) {
    return BuildAssetGraph(project, AsIs, *parser_, cache);
  }
  static Names Errors(const GraphBuild& build) {
    Names out;
    for (const ConfigError& e : build.errors) out.push_back(e.ToString());
    return out;
  }
  static Names Order(const AssetGraph& graph) {
    Names out;
    for (const AssetNode& node : graph.nodes) out.push_back(node.name);
    return out;
  }

  static std::optional<SqlParser> parser_;
};

std::optional<SqlParser> GraphAssetGraph::parser_;

TEST_F(GraphAssetGraph, OrderAndEdges) {
  GraphBuild build = Build(TransitProject());
  ASSERT_TRUE(build.errors.empty()) << Errors(build)[0];
  const AssetGraph& graph = build.graph;
  EXPECT_EQ(Order(graph), (Names{"agency", "gtfs_stop_times", "gtfs_stops", "gtfs_trips", "stops",
                                 "mart_departures", "weather", "with_external"}));
  for (size_t idx = 0; idx < graph.nodes.size(); ++idx) {
    EXPECT_EQ(graph.index.at(graph.nodes[idx].name), idx);
  }

  const AssetNode* mart = graph.Find("Mart_Departures");
  ASSERT_NE(mart, nullptr);
  EXPECT_EQ(mart->kind, AssetKind::kModel);
  EXPECT_EQ(mart->upstream, (Names{"gtfs_stop_times", "gtfs_trips", "stops"}));
  EXPECT_TRUE(mart->downstream.empty());
  EXPECT_FALSE(mart->nondeterministic);

  const AssetNode* stops = graph.Find("gtfs_stops");
  ASSERT_NE(stops, nullptr);
  EXPECT_EQ(stops->kind, AssetKind::kSource);
  EXPECT_EQ(stops->source, "gtfs");
  EXPECT_EQ(stops->tags, (Names{"geo", "transit"}));
  EXPECT_EQ(stops->downstream, (Names{"stops"}));
  EXPECT_EQ(stops->loc.ToString(), "sources/gtfs.yaml:9");
  EXPECT_EQ(graph.Find("weather")->loc.ToString(), "sources/weather.yaml:1");
  EXPECT_EQ(graph.Find("stops")->downstream, (Names{"mart_departures"}));
  EXPECT_EQ(graph.Find("agency")->kind, AssetKind::kSeed);

  const AssetNode* ext = graph.Find("with_external");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->upstream, (Names{"agency"}));
  EXPECT_EQ(ext->external, (Names{"legacy.customers"}));
  EXPECT_EQ(ext->files, (Names{"extra.parquet"}));
  EXPECT_TRUE(ext->nondeterministic);
  EXPECT_EQ(graph.Find("nope"), nullptr);
}

TEST_F(GraphAssetGraph, UnknownTablesWithHintAndLine) {
  Project project = TransitProject();
  project.models.push_back(Model("bad",
                                 "select *\n"
                                 "from stops -- not stpos here\n"
                                 "  join stpos using (id)\n"
                                 "  join legacy.custmers using (id)\n"
                                 "  join main.wether using (id)",
                                 5));
  GraphBuild build = Build(project);
  EXPECT_EQ(Errors(build),
            (Names{"models/bad.sql:7: unknown table 'stpos' (did you mean stops?)",
                   "models/bad.sql:8: unknown table 'legacy.custmers' (did you mean "
                   "legacy.customers?)",
                   "models/bad.sql:9: unknown table 'main.wether' (did you mean weather?)"}));
  // The rest of the graph is still built.
  ASSERT_NE(build.graph.Find("bad"), nullptr);
  EXPECT_EQ(build.graph.Find("bad")->upstream, (Names{"stops"}));
  EXPECT_EQ(build.graph.nodes.size(), 9u);
}

TEST_F(GraphAssetGraph, OtherSchemasMustBeExternal) {
  Project project = TransitProject();
  project.models.push_back(Model("m", "select * from staging.stops"));
  GraphBuild build = Build(project);
  ASSERT_EQ(build.errors.size(), 1u);
  EXPECT_EQ(build.errors[0].ToString(), "models/m.sql:1: unknown table 'staging.stops'");
}

TEST_F(GraphAssetGraph, CyclesAndSelfReference) {
  Project project;
  project.models = {
      Model("a", "select *\nfrom c", 3),
      Model("b", "select * from a"),
      Model("c", "select * from b"),
      Model("d", "select * from a"),  // behind the cycle, not on it
      Model("e", "select *\nfrom e", 2),
      Model("x", "select * from y"),
      Model("y", "select * from x"),
      Model("ok", "select 1"),
  };
  GraphBuild build = Build(project);
  EXPECT_EQ(Errors(build), (Names{"models/a.sql:4: dependency cycle: a -> b -> c -> a",
                                  "models/e.sql:3: model 'e' reads itself",
                                  "models/x.sql:1: dependency cycle: x -> y -> x"}));
  // Every node is still present; the acyclic part comes first, in order.
  EXPECT_EQ(Order(build.graph), (Names{"e", "ok", "a", "b", "c", "d", "x", "y"}));
}

TEST_F(GraphAssetGraph, ParseAndRenderErrorsAreAllReported) {
  Project project = TransitProject();
  project.models.push_back(Model("broken", "select a,\nfrom stops\nwhere x = = 2", 4));
  project.models.push_back(Model("templated", "select {{ oops }}", 2));
  project.models.push_back(Model("duplicate_of_seed", "select 1"));
  project.models.back().name = "agency";
  RenderFn render = [](const ModelSpec& model) -> Result<std::string> {
    if (model.name == "templated") return Status::Invalid("unknown variable 'oops'");
    return model.sql;
  };
  GraphBuild build = BuildAssetGraph(project, render, *parser_, nullptr);
  Names errors = Errors(build);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].rfind("models/broken.sql:6: Parser Error: syntax error at or near \"=\"", 0),
            0u)
      << errors[0];
  EXPECT_EQ(errors[1],
            "models/duplicate_of_seed.sql:1: duplicate asset name 'agency' (also defined at "
            "seeds/agency.csv:1)");
  EXPECT_EQ(errors[2], "models/templated.sql:2: cannot render model: unknown variable 'oops'");
}

TEST_F(GraphAssetGraph, Selectors) {
  GraphBuild build = Build(TransitProject());
  ASSERT_TRUE(build.errors.empty());
  const AssetGraph& graph = build.graph;
  auto select = [&](const Names& selectors) {
    auto names = SelectAssets(graph, selectors);
    EXPECT_TRUE(names.ok()) << names.status().ToString();
    return names.ok() ? *names : Names{};
  };
  EXPECT_EQ(select({}), Order(graph));
  EXPECT_EQ(select({"STOPS"}), (Names{"stops"}));
  EXPECT_EQ(select({"+mart_departures"}),
            (Names{"gtfs_stop_times", "gtfs_stops", "gtfs_trips", "stops", "mart_departures"}));
  EXPECT_EQ(select({"gtfs_stops+"}), (Names{"gtfs_stops", "stops", "mart_departures"}));
  EXPECT_EQ(select({"+stops+"}), (Names{"gtfs_stops", "stops", "mart_departures"}));
  EXPECT_EQ(select({"tag:geo"}), (Names{"gtfs_stops"}));
  EXPECT_EQ(select({"tag:transit"}), (Names{"gtfs_stop_times", "gtfs_stops", "gtfs_trips"}));
  EXPECT_EQ(select({"tag:finance"}), (Names{"with_external"}));
  EXPECT_EQ(select({"tag:geo+"}), (Names{"gtfs_stops", "stops", "mart_departures"}));
  EXPECT_EQ(select({"source:gtfs"}), (Names{"gtfs_stop_times", "gtfs_stops", "gtfs_trips"}));
  EXPECT_EQ(select({"source:*"}),
            (Names{"gtfs_stop_times", "gtfs_stops", "gtfs_trips", "weather"}));
  EXPECT_EQ(select({"seed:*"}), (Names{"agency"}));
  EXPECT_EQ(select({"model:*"}), (Names{"stops", "mart_departures", "with_external"}));
  EXPECT_EQ(select({"model:stops"}), (Names{"stops"}));
  EXPECT_EQ(select({"weather stops", "agency", "stops"}), (Names{"agency", "stops", "weather"}));

  auto error = [&](const Names& selectors) {
    auto names = SelectAssets(graph, selectors);
    EXPECT_FALSE(names.ok());
    return names.ok() ? std::string() : names.status().message();
  };
  EXPECT_EQ(error({"stpos"}), "no asset matches 'stpos' (did you mean stops?)");
  EXPECT_EQ(error({"stops", "+stpos+"}), "no asset matches '+stpos+' (did you mean stops?)");
  EXPECT_EQ(error({"source:gtfss"}), "no asset matches 'source:gtfss' (did you mean source:gtfs?)");
  EXPECT_EQ(error({"tag:geo_data"}), "no asset matches 'tag:geo_data'");
  EXPECT_EQ(error({"tag:tarnsit"}), "no asset matches 'tag:tarnsit' (did you mean tag:transit?)");
  EXPECT_EQ(error({"seed:stops"}), "no asset matches 'seed:stops'");
  EXPECT_NE(error({"owner:me"}).find("unknown selector method 'owner'"), std::string::npos);
  EXPECT_NE(error({"+"}).find("empty selector"), std::string::npos);
}

// 10,000 models (a chain with fan-in) through a warm cache. Prints timings;
// asserts only correctness, never a time.
TEST_F(GraphAssetGraph, TenThousandModelsWithWarmCache) {
  constexpr int kModels = 10'000;
  Project project;
  SourceSpec raw;
  raw.name = "raw";
  raw.tables = {Table("raw_events", "sources/raw.yaml", 1)};
  project.sources = {raw};
  auto name = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "m%05d", i);
    return std::string(buf);
  };
  for (int i = 0; i < kModels; ++i) {
    std::string sql = i == 0 ? "select * from raw_events"
                             : "select a.*, b.x as bx\nfrom " + name(i - 1) + " a\njoin " +
                                   name(i / 2) + " b using (id)\nwhere a.id > " + std::to_string(i);
    project.models.push_back(Model(name(i), sql));
  }
  std::string path = ::testing::TempDir() + "graph_cache_" + std::to_string(getpid()) + ".txt";
  std::filesystem::remove(path);
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
  };

  ParseCache cold = ParseCache::Load(path);
  auto t0 = Clock::now();
  GraphBuild first = Build(project, &cold);
  double cold_ms = ms(t0);
  ASSERT_TRUE(first.errors.empty()) << Errors(first)[0];
  ASSERT_EQ(cold.size(), static_cast<size_t>(kModels));
  t0 = Clock::now();
  ASSERT_TRUE(cold.Save().ok());
  double save_ms = ms(t0);

  t0 = Clock::now();
  ParseCache warm = ParseCache::Load(path);
  double load_ms = ms(t0);
  ASSERT_EQ(warm.size(), static_cast<size_t>(kModels));
  // Mark one cached entry so the build below provably reads from the cache.
  SqlRefs marked = *warm.Get(project.models[0].sql);
  marked.nondeterministic = true;
  warm.Put(project.models[0].sql, marked);

  t0 = Clock::now();
  GraphBuild second = Build(project, &warm);
  double warm_ms = ms(t0);
  ASSERT_TRUE(second.errors.empty());
  EXPECT_TRUE(second.graph.Find(name(0))->nondeterministic);
  EXPECT_EQ(Order(first.graph), Order(second.graph));
  ASSERT_EQ(second.graph.nodes.size(), static_cast<size_t>(kModels + 1));
  EXPECT_EQ(second.graph.nodes.front().name, "raw_events");
  EXPECT_EQ(second.graph.nodes.back().name, name(kModels - 1));
  EXPECT_EQ(second.graph.Find(name(10))->upstream, (Names{name(5), name(9)}));
  EXPECT_EQ(second.graph.Find(name(4))->downstream, (Names{name(5), name(8), name(9)}));
  auto selected = SelectAssets(second.graph, {"+" + name(100)});
  ASSERT_TRUE(selected.ok());
  EXPECT_EQ(selected->size(), 102u);  // m00000..m00100 and raw_events

  std::printf(
      "[ graph    ] %d models: cold build %.0f ms, cache save %.1f ms, load %.1f ms, "
      "warm build %.0f ms\n",
      kModels, cold_ms, save_ms, load_ms, warm_ms);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sluice
