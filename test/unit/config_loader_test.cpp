#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "config/loader.h"
#include "config/yaml_util.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

// A throw-away project folder written by each test.
class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sluice_config_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    NewProject();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // Starts a fresh, empty project folder; root_ names it.
  void NewProject() {
    root_ = base_ + "/p" + std::to_string(++projects_);
    fs::create_directories(root_);
  }

  void Write(const std::string& rel, const std::string& content) {
    fs::path path = fs::path(root_) / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  // A minimal valid sluice.yaml plus `files`.
  LoadedProject LoadWith(const std::vector<std::pair<std::string, std::string>>& files) {
    NewProject();
    Write("sluice.yaml", "name: t\n");
    for (const auto& [rel, content] : files) Write(rel, content);
    return LoadProject(root_);
  }

  static std::vector<std::string> Errors(const LoadedProject& loaded) {
    std::vector<std::string> out;
    for (const ConfigError& e : loaded.errors) out.push_back(e.ToString());
    return out;
  }

  // The one error loading `files` gives.
  std::string OnlyError(const std::vector<std::pair<std::string, std::string>>& files) {
    std::vector<std::string> errors = Errors(LoadWith(files));
    EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
    return errors.empty() ? "<no error>" : errors[0];
  }

  std::string base_;
  std::string root_;
  int projects_ = 0;
};

using Strings = std::vector<std::string>;

TEST_F(ConfigLoaderTest, ValidProject) {
  Write("sluice.yaml", R"(name: transit
environments:
  dev: {}
  prod:
    warehouse: duckdb:/srv/sluice/prod.duckdb
    lake: lake_prod
    metadata: sqlite:meta/prod.sqlite
secrets: [env, {file: .secrets}]
external: [Legacy.Customers]
defaults: {retries: 3, timeout: 30m, memory_limit: 4gb, block_size: 64KB, query_threads: 1,
           keep_versions: 5}
vars: {region: north, limit: 10}
server: {listen: 127.0.0.1:8080}
notify:
  - webhook: ${secret:SLACK_WEBHOOK}
    on: [run_failed]
)");
  Write("fields.yaml", R"(stop_id: {type: text, description: The stop}
stop_lat: {type: latitude}
stop_lon: {type: longitude}
route_id: {type: text}
reference: {type: text, pattern: "^[A-Z]+$"}
hectares: {type: decimal}
)");
  Write("sources/gtfs.yaml", R"(name: gtfs
fetch:
  url: https://example.org/feeds/{{ partition }}/gtfs.zip
  headers: {Authorization: "Bearer ${secret:FEED_TOKEN}"}
  paginate: {type: link}
  timeout: 10m
  expect: {content_type: application/zip}
format: zip
tables:
  gtfs_stops:
    member: stops.txt
    key: [stop_id]
    columns:
      stop_id:
      stop_lat: {type: latitude}
      stop_lon: stop_lon
    checks:
      - not_null: stop_id
      - unique: [stop_id]
        severity: warn
  gtfs_routes: {member: routes.json, key: route_id, options: {records: true}}
schedule: "@hourly"
partition: {by: day, start: 2026-01-01}
freshness: {warn_after: 2h, error_after: 6h}
tags: [transit]
)");
  Write("sources/planning.yml", R"(description: Planning data
fetch: {url: "file://data/sites.csv?x=1"}
options: {delimiter: ";", header: true}
columns:
  SiteReference: {field: reference}
  Hectares: {field: hectares, range: [0, 10000], default: 0}
null_values: ["", "N/A"]
filter: "hectares > 0"
key: reference
columns_only: true
checks:
  - row_count: {min: 1}
  - accepted_values: {column: reference, values: [A, B]}
    name: ref_ok
  - expression: "hectares >= 0"
schedule: {every: 20s}
)");
  Write("models/stg_stops.sql", "select * from gtfs_stops\n");
  Write("models/Mart_Departures.sql", R"(/* ---
materialized: incremental
strategy: merge
key: [stop_id, route_id]
checks:
  - relationships: {column: stop_id, to: gtfs_stops.stop_id}
--- */
select stop_id, route_id from stg_stops
{% if is_incremental %}where d > '{{ var('region') }}'{% endif %}
)");
  Write("models/mart_departures.yaml",
        "description: Departures\ntags: [mart]\nchecks:\n"
        "  - not_null: [stop_id, route_id]\n");
  Write("seeds/regions.csv", "id,name\n1,north\n");
  Write("seeds/regions.yaml", "key: [id]\ncolumn_types: {id: INTEGER}\ntags: [ref]\n");

  LoadedProject loaded = LoadProject(root_);
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(Errors(loaded));
  const Project& p = loaded.project;
  EXPECT_EQ(p.root, root_);
  EXPECT_EQ(p.name, "transit");

  ASSERT_EQ(p.environments.size(), 2u);
  const EnvironmentSpec& dev = p.environments.at("dev");
  EXPECT_EQ(dev.warehouse, "duckdb:" + root_ + "/.sluice/dev/warehouse.duckdb");
  EXPECT_EQ(dev.lake, root_ + "/.sluice/dev/lake");
  EXPECT_EQ(dev.metadata, "sqlite:" + root_ + "/.sluice/dev/metadata.sqlite");
  EXPECT_EQ(dev.state_dir, root_ + "/.sluice/dev");
  const EnvironmentSpec& prod = p.environments.at("prod");
  EXPECT_EQ(prod.warehouse, "duckdb:/srv/sluice/prod.duckdb");
  EXPECT_EQ(prod.lake, root_ + "/lake_prod");
  EXPECT_EQ(prod.metadata, "sqlite:" + root_ + "/meta/prod.sqlite");
  EXPECT_EQ(prod.state_dir, root_ + "/.sluice/prod");
  EXPECT_EQ(prod.loc.ToString(), "sluice.yaml:4");

  ASSERT_EQ(p.secret_providers.size(), 2u);
  EXPECT_EQ(p.secret_providers[0].kind, SecretProvider::Kind::kEnv);
  EXPECT_EQ(p.secret_providers[1].kind, SecretProvider::Kind::kFile);
  EXPECT_EQ(p.secret_providers[1].path, root_ + "/.secrets");
  EXPECT_EQ(p.external, Strings{"legacy.customers"});
  EXPECT_EQ(p.defaults.retries, 3);
  EXPECT_EQ(p.defaults.timeout_seconds, 1800);
  EXPECT_EQ(p.defaults.memory_limit, "4GB");
  EXPECT_EQ(p.defaults.block_size, 65536);
  EXPECT_EQ(p.defaults.query_threads, 1);
  EXPECT_EQ(p.defaults.keep_versions, 5);
  EXPECT_EQ(p.vars, (nlohmann::json{{"region", "north"}, {"limit", 10}}));
  EXPECT_TRUE(p.server.enabled);
  EXPECT_EQ(p.server.host, "127.0.0.1");
  EXPECT_EQ(p.server.port, 8080);
  // Environments without a server of their own take the project's.
  EXPECT_EQ(p.environments.at("prod").server.port, 8080);
  EXPECT_EQ(p.environments.at("dev").server.port, 8080);
  ASSERT_EQ(p.notify.size(), 1u);
  EXPECT_EQ(p.notify[0].webhook, "${secret:SLACK_WEBHOOK}");
  EXPECT_EQ(p.notify[0].on, (std::vector<NotifyEvent>{NotifyEvent::kRunFailed}));

  ASSERT_EQ(p.fields.size(), 6u);
  EXPECT_TRUE(p.has_fields_file);
  EXPECT_EQ(p.fields.at("reference").pattern, "^[A-Z]+$");
  EXPECT_EQ(p.fields.at("stop_id").description, "The stop");
  EXPECT_EQ(p.fields.at("stop_id").loc.ToString(), "fields.yaml:1");

  ASSERT_EQ(p.sources.size(), 2u);
  const SourceSpec& gtfs = p.sources[0];
  EXPECT_EQ(gtfs.name, "gtfs");
  EXPECT_EQ(gtfs.loc.ToString(), "sources/gtfs.yaml:1");
  EXPECT_EQ(gtfs.fetch.url, "https://example.org/feeds/{{ partition }}/gtfs.zip");
  EXPECT_EQ(gtfs.fetch.headers.at("Authorization"), "Bearer ${secret:FEED_TOKEN}");
  EXPECT_EQ(gtfs.fetch.paginate, (nlohmann::json{{"type", "link"}}));
  EXPECT_EQ(
      gtfs.fetch.options,
      (nlohmann::json{{"timeout", "10m"}, {"expect", {{"content_type", "application/zip"}}}}));
  EXPECT_EQ(gtfs.format, "zip");
  EXPECT_EQ(gtfs.schedule.kind, ScheduleKind::kCron);
  EXPECT_EQ(gtfs.schedule.cron, "@hourly");
  EXPECT_EQ(gtfs.partition, (nlohmann::json{{"by", "day"}, {"start", "2026-01-01"}}));
  EXPECT_EQ(gtfs.freshness, (nlohmann::json{{"warn_after", "2h"}, {"error_after", "6h"}}));
  EXPECT_EQ(gtfs.tags, Strings{"transit"});
  EXPECT_EQ(gtfs.config["fetch"]["headers"]["Authorization"], "Bearer ${secret:FEED_TOKEN}");
  EXPECT_EQ(gtfs.config["tables"]["gtfs_stops"]["key"], (nlohmann::json{"stop_id"}));

  ASSERT_EQ(gtfs.tables.size(), 2u);
  const TableSpec& stops = gtfs.tables[0];
  EXPECT_EQ(stops.name, "gtfs_stops");
  EXPECT_EQ(stops.loc.ToString(), "sources/gtfs.yaml:10");
  EXPECT_EQ(stops.member, "stops.txt");
  EXPECT_EQ(stops.format, "csv");
  EXPECT_EQ(stops.key, Strings{"stop_id"});
  ASSERT_EQ(stops.columns.size(), 3u);
  EXPECT_EQ(stops.columns[0].input, "stop_id");
  EXPECT_EQ(stops.columns[0].field, "stop_id");
  EXPECT_EQ(stops.columns[0].type, "text");  // from fields.yaml
  EXPECT_EQ(stops.columns[1].type, "latitude");
  EXPECT_EQ(stops.columns[1].loc.ToString(), "sources/gtfs.yaml:15");
  EXPECT_EQ(stops.columns[2].field, "stop_lon");
  ASSERT_EQ(stops.checks.size(), 2u);
  EXPECT_EQ(stops.checks[0].type, "not_null");
  EXPECT_EQ(stops.checks[0].args, (nlohmann::json{"stop_id"}));
  EXPECT_EQ(stops.checks[0].name, "not_null(stop_id)");
  EXPECT_EQ(stops.checks[0].severity, Severity::kError);
  EXPECT_EQ(stops.checks[0].loc.ToString(), "sources/gtfs.yaml:18");
  EXPECT_EQ(stops.checks[1].name, "unique(stop_id)");
  EXPECT_EQ(stops.checks[1].severity, Severity::kWarn);
  const TableSpec& routes = gtfs.tables[1];
  EXPECT_EQ(routes.format, "json");
  EXPECT_EQ(routes.key, Strings{"route_id"});
  EXPECT_EQ(routes.format_options, (nlohmann::json{{"records", true}}));

  const SourceSpec& planning = p.sources[1];
  EXPECT_EQ(planning.name, "planning");
  EXPECT_EQ(planning.description, "Planning data");
  EXPECT_EQ(planning.format, "csv");  // guessed from the url
  EXPECT_EQ(planning.schedule.kind, ScheduleKind::kEvery);
  EXPECT_EQ(planning.schedule.every_seconds, 20);
  EXPECT_EQ(planning.format_options, (nlohmann::json{{"delimiter", ";"}, {"header", true}}));
  EXPECT_TRUE(planning.partition.is_null());
  ASSERT_EQ(planning.tables.size(), 1u);
  const TableSpec& sites = planning.tables[0];
  EXPECT_EQ(sites.name, "planning");
  EXPECT_EQ(sites.format, "csv");
  EXPECT_EQ(sites.format_options, planning.format_options);
  EXPECT_EQ(sites.key, Strings{"reference"});
  EXPECT_TRUE(sites.columns_only);
  EXPECT_EQ(sites.null_values, (Strings{"", "N/A"}));
  EXPECT_EQ(sites.filter, "hectares > 0");
  ASSERT_EQ(sites.columns.size(), 2u);
  EXPECT_EQ(sites.columns[0].input, "SiteReference");
  EXPECT_EQ(sites.columns[0].field, "reference");
  EXPECT_EQ(sites.columns[1].type, "decimal");
  EXPECT_EQ(sites.columns[1].options, (nlohmann::json{{"range", {0, 10000}}, {"default", 0}}));
  ASSERT_EQ(sites.checks.size(), 3u);
  EXPECT_EQ(sites.checks[0].name, "row_count");
  EXPECT_EQ(sites.checks[0].args, (nlohmann::json{{"min", 1}}));
  EXPECT_EQ(sites.checks[1].name, "ref_ok");
  EXPECT_EQ(sites.checks[1].args["values"], (nlohmann::json{"A", "B"}));
  EXPECT_EQ(sites.checks[2].type, "expression");
  EXPECT_EQ(sites.checks[2].args, "hectares >= 0");

  ASSERT_EQ(p.models.size(), 2u);
  const ModelSpec& mart = p.models[0];  // "Mart_Departures.sql" sorts first
  EXPECT_EQ(mart.name, "mart_departures");
  EXPECT_EQ(mart.loc.ToString(), "models/Mart_Departures.sql:1");
  EXPECT_EQ(mart.materialized, "incremental");
  EXPECT_EQ(mart.strategy, "merge");
  EXPECT_EQ(mart.key, (Strings{"stop_id", "route_id"}));
  EXPECT_EQ(mart.sql_first_line, 8);
  EXPECT_EQ(mart.sql.substr(0, 38), "select stop_id, route_id from stg_stop");
  EXPECT_EQ(mart.header["strategy"], "merge");
  EXPECT_EQ(mart.description, "Departures");
  EXPECT_EQ(mart.tags, Strings{"mart"});
  ASSERT_EQ(mart.checks.size(), 2u);
  EXPECT_EQ(mart.checks[0].name, "relationships(stop_id)");
  EXPECT_EQ(mart.checks[0].loc.ToString(), "models/Mart_Departures.sql:6");
  EXPECT_EQ(mart.checks[1].name, "not_null(stop_id,route_id)");
  EXPECT_EQ(mart.checks[1].loc.ToString(), "models/mart_departures.yaml:4");
  const ModelSpec& stg = p.models[1];
  EXPECT_EQ(stg.name, "stg_stops");
  EXPECT_EQ(stg.materialized, "table");
  EXPECT_EQ(stg.sql, "select * from gtfs_stops\n");
  EXPECT_EQ(stg.sql_first_line, 1);
  EXPECT_EQ(stg.header, nlohmann::json::object());

  ASSERT_EQ(p.seeds.size(), 1u);
  EXPECT_EQ(p.seeds[0].name, "regions");
  EXPECT_EQ(p.seeds[0].path, root_ + "/seeds/regions.csv");
  EXPECT_EQ(p.seeds[0].key, Strings{"id"});
  EXPECT_EQ(p.seeds[0].column_types, (nlohmann::json{{"id", "INTEGER"}}));
  EXPECT_EQ(p.seeds[0].tags, Strings{"ref"});
}

TEST_F(ConfigLoaderTest, MinimalProjectGetsDefaults) {
  LoadedProject loaded = LoadWith({});
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(Errors(loaded));
  const Project& p = loaded.project;
  EXPECT_EQ(p.name, "t");
  ASSERT_EQ(p.environments.count("dev"), 1u);
  EXPECT_EQ(p.environments.at("dev").warehouse,
            "duckdb:" + root_ + "/.sluice/dev/warehouse.duckdb");
  ASSERT_EQ(p.secret_providers.size(), 1u);
  EXPECT_EQ(p.secret_providers[0].kind, SecretProvider::Kind::kEnv);
  EXPECT_EQ(p.defaults.memory_limit, "2GB");
  EXPECT_EQ(p.defaults.block_size, 0);     // DuckDB's own
  EXPECT_EQ(p.defaults.query_threads, 0);  // DuckDB's own: one per CPU
  EXPECT_FALSE(p.has_fields_file);
  EXPECT_TRUE(p.sources.empty());
}

TEST_F(ConfigLoaderTest, NoSluiceYaml) {
  LoadedProject loaded = LoadProject(root_);
  EXPECT_EQ(Errors(loaded), Strings{"sluice.yaml: no sluice.yaml in " + root_ +
                                    "; run `sluice init DIR` to create a project"});
}

TEST_F(ConfigLoaderTest, SluiceYamlErrors) {
  Write("sluice.yaml", R"(enviroments: {}
environments:
  prod:
    warehouse: postgres://db/x
    metadata: mysql:x
    lake: ""
  "bad/name": {}
secrets: [env, vault, {file: }]
defaults: {retries: -1, timeout: soon, memory_limit: 4 potatoes, block_size: 100KB,
           query_threads: 0, keep_versions: x}
vars: [a]
server: {listn: x}
notify: {webhook: x}
external: {a: b}
)");
  EXPECT_EQ(Errors(LoadProject(root_)),
            (Strings{
                "sluice.yaml:1: unknown key 'enviroments' in sluice.yaml (did you mean "
                "environments?)",
                "sluice.yaml:1: missing required key 'name' (the project's name)",
                "sluice.yaml:4: unsupported warehouse 'postgres://db/x'; supported now: "
                "duckdb:PATH (e.g. duckdb:/srv/sluice/prod.duckdb)",
                "sluice.yaml:5: unsupported metadata store 'mysql:x'; supported now: sqlite:PATH "
                "(e.g. sqlite:/srv/sluice/meta.sqlite)",
                "sluice.yaml:6: lake: expected a folder path",
                "sluice.yaml:7: environment name 'bad/name' may hold only letters, digits, _ and -",
                "sluice.yaml:8: secrets: an entry is `env` or {file: PATH} (got 'vault')",
                "sluice.yaml:8: file: expected a string, got nothing",
                "sluice.yaml:9: retries: expected a whole number (0 or more), got '-1'",
                "sluice.yaml:9: timeout: expected a duration such as 30s, 30m or 2h, got 'soon'",
                "sluice.yaml:9: memory_limit: expected a size such as 512MB or 4GB, got '4 "
                "potatoes'",
                "sluice.yaml:9: block_size: expected one of 16KB, 32KB, 64KB, 128KB or 256KB "
                "(the warehouse's block size, in KiB), got '100KB'",
                "sluice.yaml:10: query_threads: expected a whole number (at least 1), got '0'",
                "sluice.yaml:10: keep_versions: expected a whole number (0 or more), got 'x'",
                "sluice.yaml:11: vars: expected a mapping (key: value), got a list",
                "sluice.yaml:12: unknown key 'listn' in server (did you mean listen?)",
                "sluice.yaml:13: notify: expected a list such as - webhook: URL",
                "sluice.yaml:14: external: expected a list of table names",
            }));
}

TEST_F(ConfigLoaderTest, QueryThreadsHasABound) {
  Write("sluice.yaml", "name: t\ndefaults: {query_threads: 5000}\n");
  EXPECT_EQ(Errors(LoadProject(root_)),
            Strings{"sluice.yaml:2: query_threads: expected 1 to 1024 (the threads one "
                    "warehouse statement may run on), got 5000"});
  Write("sluice.yaml", "name: t\ndefaults: {query_threads: 16}\n");
  LoadedProject loaded = LoadProject(root_);
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(Errors(loaded));
  EXPECT_EQ(loaded.project.defaults.query_threads, 16);
}

TEST_F(ConfigLoaderTest, ServerPerEnvironmentAndTokens) {
  Write("sluice.yaml", R"(name: t
server:
  listen: ":9000"
  tokens:
    - {name: ci, sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08, role: operator}
    - {name: dash, sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}
environments:
  prod: {server: {listen: "[::1]:9001"}}
)");
  Project p = LoadProject(root_).project;
  ASSERT_TRUE(p.server.enabled);
  EXPECT_EQ(p.server.host, "127.0.0.1");
  EXPECT_EQ(p.server.port, 9000);
  ASSERT_EQ(p.server.tokens.size(), 2u);
  EXPECT_EQ(p.server.tokens[0].sha256,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(p.server.tokens[0].role, ApiRole::kOperator);
  EXPECT_EQ(p.server.tokens[1].role, ApiRole::kViewer);
  EXPECT_EQ(p.environments.at("prod").server.host, "::1");
  EXPECT_EQ(p.environments.at("prod").server.port, 9001);
  EXPECT_TRUE(p.environments.at("prod").server.tokens.empty());
  EXPECT_EQ(p.environments.at("dev").server.port, 9000);
  EXPECT_EQ(p.environments.at("dev").server.tokens.size(), 2u);

  Write("sluice.yaml", R"(name: t
server:
  listen: somewhere
  tokens:
    - {name: ci, sha256: s3cr3t-token, role: root}
    - {name: ci, sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}
    - {role: viewer}
environments:
  a: {server: {listen: "127.0.0.1:70000"}}
  b: {server: {listen: "example.org:80"}}
  c: {server: {listen: "127.0.0.1:8080"}}
  d: {server: {listen: "localhost:8080"}}
)");
  EXPECT_EQ(Errors(LoadProject(root_)),
            (Strings{
                "sluice.yaml:3: listen: expected HOST:PORT such as 127.0.0.1:8080, got "
                "'somewhere'",
                "sluice.yaml:5: sha256: expected 64 hex digits (printf %s \"$TOKEN\" | "
                "sha256sum), not the token itself",
                "sluice.yaml:5: role: expected viewer, operator or admin, got 'root'",
                "sluice.yaml:6: token: the name 'ci' is used twice",
                "sluice.yaml:7: token: needs a name (who holds it, for the request log)",
                "sluice.yaml:7: token: needs sha256: the token's SHA-256 in hex, never the "
                "token itself (printf %s \"$TOKEN\" | sha256sum)",
                "sluice.yaml:9: listen: the port must be a number from 0 to 65535, got '70000'",
                "sluice.yaml:10: listen: 'example.org' is not an IP address (use 127.0.0.1, "
                "0.0.0.0 or ::)",
                "sluice.yaml:12: environments 'c' and 'd' both listen on 127.0.0.1:8080: give "
                "each its own port",
            }));
}

TEST_F(ConfigLoaderTest, ConcurrencyAndPools) {
  Write("sluice.yaml", "name: t\nconcurrency: {tasks: 6, per_host: 2, pools: {Slow_API: 1}}\n");
  Write("sources/a.yaml", "fetch: {url: \"https://x.org/a.csv\"}\npool: slow_api\n");
  Write("models/m.sql", "/* ---\npool: slow_api\n--- */\nselect 1 as x\n");
  LoadedProject loaded = LoadProject(root_);
  ASSERT_TRUE(loaded.errors.empty()) << ::testing::PrintToString(Errors(loaded));
  EXPECT_EQ(loaded.project.concurrency.tasks, 6);
  EXPECT_EQ(loaded.project.concurrency.per_host, 2);
  EXPECT_EQ(loaded.project.concurrency.pools.at("slow_api"), 1);
  EXPECT_EQ(loaded.project.sources.at(0).pool, "slow_api");
  EXPECT_EQ(loaded.project.models.at(0).pool, "slow_api");

  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: a.csv}\npool: slow\n"}}),
            "sources/a.yaml:2: pool: 'slow' is not defined; define it in sluice.yaml as "
            "concurrency: {pools: {slow: N}} (N tasks at once)");
  NewProject();
  Write("sluice.yaml", "name: t\nconcurrency:\n  pools: {\"host:x\": 1, slow: 0}\n");
  EXPECT_EQ(Errors(LoadProject(root_)),
            (Strings{"sluice.yaml:3: pools: 'host:x' cannot name a pool (host: pools are each "
                     "source host's own; set their limit with per_host)",
                     "sluice.yaml:3: slow: expected a whole number (at least 1), got '0'"}));
}

TEST_F(ConfigLoaderTest, YamlSyntaxErrorHasItsLine) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "name: a\nfetch:\n  url: [x\nformat: csv\n"}}),
            "sources/a.yaml:4: YAML syntax error: end of sequence flow not found");
}

TEST_F(ConfigLoaderTest, UnknownKeyInSource) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nfromat: csv\n"}}),
            "sources/a.yaml:2: unknown key 'fromat' in source (did you mean format?)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv, hedaers: {}}\n"}}),
            "sources/a.yaml:1: unknown key 'hedaers' in fetch (did you mean headers?)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nzzz: 1\n"}}),
            "sources/a.yaml:2: unknown key 'zzz' in source; known keys: name, description, "
            "fetch, format, options, tables, schedule, partition, freshness, tags, member, key, "
            "columns, columns_only, null_values, filter, checks, skip_patterns, quarantine, kind, "
            "command, pool, database, incremental, stream, chunk_rows");
}

TEST_F(ConfigLoaderTest, ChangeCaptureSources) {
  LoadedProject ok =
      LoadWith({{"sources/shop.yaml",
                 "database:\n  url: \"${secret:SHOP}\"\n  cdc: {max_changes: 500}\n"
                 "tables:\n  orders: {table: public.orders, key: [id]}\n"},
                {"sources/crm.yaml",
                 "database: {url: \"${secret:CRM}\", cdc: {slot: crm_s, publication: crm_p}}\n"
                 "tables:\n  people: {table: people, key: [id]}\n"}});
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(Errors(ok));
  const SourceSpec& shop = ok.project.sources[1];
  ASSERT_EQ(shop.name, "shop");
  ASSERT_TRUE(shop.database->cdc.has_value());
  EXPECT_EQ(shop.database->cdc->slot, "");  // sluice_<env>_shop (CaptureSlot)
  EXPECT_EQ(shop.database->cdc->publication, "sluice_shop");
  EXPECT_EQ(shop.database->cdc->max_changes, 500);
  const SourceSpec& crm = ok.project.sources[0];
  EXPECT_EQ(crm.database->cdc->slot, "crm_s");
  EXPECT_EQ(crm.database->cdc->publication, "crm_p");

  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"${secret:X}\", cdc: true}\ntables:\n"
                        "  t: {query: select 1, key: [id]}\n"}}),
            "sources/a.yaml:3: cdc: table t needs table: (a query's changes cannot be captured)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"${secret:X}\", cdc: true}\n"
                        "tables:\n  t: {table: t}\n"}}),
            "sources/a.yaml:3: cdc: table t needs key: (the columns changes are matched on), e.g. "
            "key: [id]");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"${secret:X}\", cdc: {slot: My-Slot}}\n"
                        "tables:\n  t: {table: t, key: [id]}\n"}}),
            "sources/a.yaml:1: cdc: slot: must be a lower-case identifier ([a-z_][a-z0-9_]*), as "
            "PostgreSQL's slot names are");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"sqlite:app.db\", cdc: true}\n"
                        "tables:\n  t: {table: t, key: [id]}\n"}}),
            "sources/a.yaml:1: cdc: reads PostgreSQL's logical decoding or MariaDB's binlog; for "
            "SQLite read tables whole or with incremental:");
  EXPECT_TRUE(LoadWith({{"sources/a.yaml",
                         "database: {url: \"mysql://h/db\", cdc: true}\n"
                         "tables:\n  t: {table: t, key: [id]}\n"}})
                  .errors.empty());
  LoadedProject binlog = LoadWith({{"sources/a.yaml",
                                    "database: {url: \"mariadb://h/db\", cdc: {binlog: true}}\n"
                                    "tables:\n  t: {table: t, key: [id]}\n"}});
  ASSERT_TRUE(binlog.errors.empty());
  EXPECT_TRUE(binlog.project.sources[0].database->cdc->binlog);
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"postgresql://h/db\", cdc: {binlog: true}}\n"
                        "tables:\n  t: {table: t, key: [id]}\n"}}),
            "sources/a.yaml:1: cdc: binlog: is MariaDB's; PostgreSQL's changes are read with "
            "slot: and publication:");
  // serve's stream: on by default, a run at most once a second.
  EXPECT_TRUE(binlog.project.sources[0].database->cdc->stream);
  EXPECT_EQ(binlog.project.sources[0].database->cdc->publish_every_seconds, 1);
  LoadedProject streamed =
      LoadWith({{"sources/a.yaml",
                 "database: {url: \"postgresql://h/db\", cdc: {stream: false, publish_every: 5m}}\n"
                 "tables:\n  t: {table: t, key: [id]}\n"}});
  ASSERT_TRUE(streamed.errors.empty()) << ::testing::PrintToString(Errors(streamed));
  EXPECT_FALSE(streamed.project.sources[0].database->cdc->stream);
  EXPECT_EQ(streamed.project.sources[0].database->cdc->publish_every_seconds, 300);
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: \"postgresql://h/db\", cdc: {publish_every: soon}}\n"
                        "tables:\n  t: {table: t, key: [id]}\n"}}),
            "sources/a.yaml:1: publish_every: expected a duration such as 30s, 30m or 2h, got "
            "'soon'");
}

TEST_F(ConfigLoaderTest, StreamSources) {
  LoadedProject ok = LoadWith({{"sources/events.yaml",
                                "stream: {url: \"${secret:NATS}\", stream: ORDERS, subject: "
                                "\"orders.>\", max_messages: 50, wait: 2s, ack_wait: 5m}\n"
                                "key: [id]\n"}});
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(Errors(ok));
  const SourceSpec& src = ok.project.sources[0];
  ASSERT_TRUE(src.stream.has_value());
  EXPECT_EQ(src.format, "messages");
  EXPECT_EQ(src.stream->stream, "ORDERS");
  EXPECT_EQ(src.stream->subject, "orders.>");
  EXPECT_EQ(src.stream->consumer, "");  // sluice_<env>_events at run time
  EXPECT_EQ(src.stream->max_messages, 50);
  EXPECT_EQ(src.stream->wait_ms, 2000);
  EXPECT_EQ(src.stream->ack_wait_seconds, 300);
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "stream: {url: \"${secret:NATS}\", stream: S}\nkey: [id]\n"
                        "columns_only: true\ncolumns:\n  id: {}\n"}}),
            "sources/a.yaml:1: stream: with key:, keep _stream_seq (list it under columns:): the "
            "last message of a key is found by it");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "stream: {url: \"${secret:NATS}\", stream: S}\nformat: csv\n"}}),
            "sources/a.yaml:2: a stream source has no format: each message's JSON fields are "
            "columns");
}

TEST_F(ConfigLoaderTest, DatabaseSources) {
  LoadedProject ok = LoadWith(
      {{"sources/orders.yaml",
        "database: {url: \"${secret:SHOP}\", table: public.orders, timeout: 5m}\nkey: [id]\n"},
       {"sources/shop.yaml",
        "database:\n  url: sqlite:data/app.db\ntables:\n  customers: {key: [id]}\n"
        "  rich:\n    query: \"select * from customers where spent > {{ var('min') }}\"\n"},
       {"sluice.yaml", "name: t\nvars: {min: 100}\n"}});
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(Errors(ok));
  ASSERT_EQ(ok.project.sources.size(), 2u);
  const SourceSpec& orders = ok.project.sources[0];
  ASSERT_TRUE(orders.database.has_value());
  EXPECT_EQ(orders.format, "database");
  EXPECT_EQ(orders.database->timeout_seconds, 300);
  EXPECT_EQ(orders.tables[0].db_table, "public.orders");
  const SourceSpec& shop = ok.project.sources[1];
  EXPECT_EQ(shop.tables[0].db_table, "customers");  // the table's own name by default
  EXPECT_EQ(shop.tables[1].db_query, "select * from customers where spent > {{ var('min') }}");

  EXPECT_EQ(OnlyError({{"sources/a.yaml", "database: {url: \"${secret:X}\"}\n"}}),
            "sources/a.yaml:1: database: needs table: (e.g. table: public.orders) or query:");
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml", "database: {url: \"postgresql://u:pw@h/db\", table: t}\n"}}),
      "sources/a.yaml:1: database: url: a password written in the project would be in git "
      "and in every copy; put the url in a secret: url: ${secret:SHOP_DB}");
  for (const char* url : {"postgresql://app@h:5432/db", "mysql://h:3306/db?ssl_ca=/a@b/ca.pem"}) {
    LoadedProject fine =
        LoadWith({{"sources/a.yaml", std::string("database: {url: \"") + url + "\", table: t}\n"}});
    EXPECT_TRUE(fine.ok()) << url << ": " << ::testing::PrintToString(Errors(fine));
  }
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "database: {url: \"oracle://h/db\", table: t}\n"}}),
            "sources/a.yaml:1: database: url: expected postgresql://, mysql:// (MariaDB too) or "
            "sqlite:PATH, usually kept in a secret: url: ${secret:SHOP_DB}");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "database: {url: sqlite:x.db, table: t, query: q}\n"}}),
            "sources/a.yaml:1: set table: or query:, not both");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: sqlite:x.db, table: t}\npartition: {by: day}\n"}}),
            "sources/a.yaml:2: partition: is not supported for database sources yet; read a window "
            "with query: and a var, or the whole table");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: sqlite:x.db, table: t}\nfetch: {url: x.csv}\n"}}),
            "sources/a.yaml:2: a database source has no fetch: (database: says where it reads)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ntables:\n  t: {table: x}\n"}}),
            "sources/a.yaml:3: table: belongs to tables of a database source");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: sqlite:x.db, table: t}\nincremental: {cursor: at}\n"}}),
            "sources/a.yaml:1: incremental: needs key: (rows read again, at the cursor and within "
            "the lookback, are merged on it), e.g. key: [id]");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "database: {url: sqlite:x.db, table: t}\nincremental: {cursor: at}\n"
                        "key: [id]\nfilter: \"a > 1\"\n"}}),
            "sources/a.yaml:1: incremental: cannot be combined with filter: or quarantine: (a "
            "changed row left out of a read would keep its old version in the table); filter in "
            "a model downstream instead");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nincremental: {cursor: at}\n"}}),
            "sources/a.yaml:2: incremental: reads a database table bit by bit; it applies to "
            "database sources (a model's is materialized: incremental)");
}

TEST_F(ConfigLoaderTest, DuplicateYamlKey) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nkey: [a]\nkey: [b]\n"}}),
            "sources/a.yaml:3: duplicate key 'key' in source");
}

TEST_F(ConfigLoaderTest, WrongValueType) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nkey: {a: 1}\n"}}),
            "sources/a.yaml:2: key: expected a list of column names");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ncolumns_only: maybe\n"}}),
            "sources/a.yaml:2: columns_only: expected true or false, got 'maybe'");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: [x.csv]\n"}}),
            "sources/a.yaml:1: fetch: expected a mapping (key: value), got a list");
}

TEST_F(ConfigLoaderTest, FetchNeedsUrl) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "format: csv\n"}}),
            "sources/a.yaml:1: missing required key 'fetch' (where to collect from, e.g. fetch: "
            "{url: ...})");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "format: csv\nfetch:\n  method: GET\n"}}),
            "sources/a.yaml:2: fetch: missing required key 'url' (http(s)://, file:// or a "
            "path)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch:\n  url: x.csv\n  paginate: {type: pages}\n"}}),
            "sources/a.yaml:3: unknown paginate type 'pages' (did you mean page?)");
}

TEST_F(ConfigLoaderTest, Formats) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nformat: cvs\n"}}),
            "sources/a.yaml:2: unknown format 'cvs' (did you mean csv?)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch:\n  url: https://x.org/api/data\n"}}),
            "sources/a.yaml:2: cannot guess the format from the url 'https://x.org/api/data'; "
            "set format: to one of csv, tsv, json, ndjson, parquet, html_table, zip, gtfs-rt");
  EXPECT_EQ(GuessFormat("https://x.org/a.CSV?download=1#top"), "csv");
  EXPECT_EQ(GuessFormat("/data/x.csv.gz"), "csv");
  EXPECT_EQ(GuessFormat("stops.txt"), "csv");
  EXPECT_EQ(GuessFormat("a.jsonl"), "ndjson");
  EXPECT_EQ(GuessFormat("a.htm"), "html_table");
  EXPECT_EQ(GuessFormat("a.parquet"), "parquet");
  EXPECT_EQ(GuessFormat("https://x.org/{{ partition }}/feed.zip"), "zip");
  EXPECT_EQ(GuessFormat("https://x.org/data"), "");
}

TEST_F(ConfigLoaderTest, DecoderOptions) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\noptions:\n  delimter: ';'\n"}}),
            "sources/a.yaml:3: unknown key 'delimter' in options (did you mean delimiter?)");
}

TEST_F(ConfigLoaderTest, ZipTables) {
  EXPECT_EQ(OnlyError({{"sources/g.yaml", R"(fetch: {url: g.zip}
tables:
  stops: {member: stops.txt}
  routes: {key: [route_id]}
)"}}),
            "sources/g.yaml:4: table 'routes' of a zip source needs member: (the file inside "
            "the zip)");
  EXPECT_EQ(OnlyError({{"sources/g.yaml",
                        "fetch: {url: g.zip}\ntables:\n  shapes: {member: "
                        "shapes.dat}\n"}}),
            "sources/g.yaml:3: cannot guess the format of member 'shapes.dat'; set format: to "
            "one of csv, tsv, json, ndjson, parquet, html_table, zip, gtfs-rt");
  EXPECT_EQ(OnlyError({{"sources/g.yaml", "fetch: {url: g.csv}\nmember: a.csv\n"}}),
            "sources/g.yaml:2: member: only applies to zip sources (format: zip)");
  EXPECT_EQ(OnlyError({{"sources/g.yaml",
                        "fetch: {url: g.zip}\ntables:\n  Stops: {member: "
                        "stops.txt}\n"}}),
            "sources/g.yaml:3: table name 'Stops' must be a lower-case identifier "
            "([a-z_][a-z0-9_]*)");
  EXPECT_EQ(OnlyError({{"sources/g.yaml",
                        "fetch: {url: g.zip}\nkey: [a]\ntables:\n  stops: "
                        "{member: stops.txt}\n"}}),
            "sources/g.yaml:2: 'key' belongs under each table when the source lists tables:");
}

TEST_F(ConfigLoaderTest, SourceNames) {
  EXPECT_EQ(OnlyError({{"sources/My-Feed.yaml", "fetch: {url: x.csv}\n"}}),
            "sources/My-Feed.yaml:1: source name 'My-Feed' must be a lower-case identifier "
            "([a-z_][a-z0-9_]*); set name: or rename the file");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nname: 9x\n"}}),
            "sources/a.yaml:2: source name '9x' must be a lower-case identifier "
            "([a-z_][a-z0-9_]*)");
}

TEST_F(ConfigLoaderTest, ColumnTypes) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ncolumns:\n  n: {type: integr}\n"}}),
            "sources/a.yaml:3: unknown type 'integr' (did you mean integer?)");
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ncolumns:\n  n: {type: category}\n"}}),
      "sources/a.yaml:3: column 'n': type category needs values: [...] (here or in fields.yaml)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ncolumns:\n  n: {range: 5}\n"}}),
            "sources/a.yaml:3: range: expected [min, max]");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\ncolumns:\n  n: {feild: x}\n"}}),
            "sources/a.yaml:3: unknown key 'feild' in column 'n' (did you mean field?)");
}

TEST_F(ConfigLoaderTest, FieldsMustBeDefinedInFieldsYaml) {
  EXPECT_EQ(OnlyError({{"fields.yaml", "- {field: reference, type: text}\n- {field: name}\n"},
                       {"sources/a.yaml",
                        "fetch: {url: x.csv}\ncolumns:\n  Ref: {field: "
                        "refrence}\n  name:\n"}}),
            "sources/a.yaml:3: field 'refrence' is not defined in fields.yaml (did you mean "
            "reference?)");
  // Without fields.yaml any field name goes.
  EXPECT_TRUE(LoadWith({{"sources/b.yaml", "fetch: {url: x.csv}\ncolumns: {X: whatever}\n"}}).ok());
}

TEST_F(ConfigLoaderTest, FieldsYamlErrors) {
  LoadedProject loaded =
      LoadWith({{"fields.yaml", "a: {type: txt}\nb: {typ: text}\na: {type: text}\n"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{"fields.yaml:1: unknown type 'txt' (did you mean text?)",
                     "fields.yaml:2: unknown key 'typ' in field 'b' (did you mean type?)",
                     "fields.yaml:3: duplicate key 'a' in fields.yaml"}));
}

TEST_F(ConfigLoaderTest, Checks) {
  LoadedProject loaded = LoadWith({{"sources/a.yaml", R"(fetch: {url: x.csv}
checks:
  - not_nul: [a]
  - unique: {a: 1}
  - row_count: {min: x}
  - accepted_values: {column: a}
  - not_null: a
    severity: fatal
  - {}
  - not_null: a
    unique: a
  - just_a_string
  - row_count: {mni: 1}
)"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{
                "sources/a.yaml:3: unknown check 'not_nul' (did you mean not_null?)",
                "sources/a.yaml:4: unique: expected a column name or a list of column names",
                "sources/a.yaml:5: min: expected a whole number (0 or more), got 'x'",
                "sources/a.yaml:6: accepted_values: expected {column: NAME, values: [...]}",
                "sources/a.yaml:8: severity: expected error or warn, got 'fatal'",
                "sources/a.yaml:9: check has no type; write e.g. - not_null: [column]",
                "sources/a.yaml:11: a check has one type; found 'not_null' and 'unique' (write "
                "them as two - items)",
                "sources/a.yaml:12: a check is a mapping such as - not_null: [id], got "
                "'just_a_string'",
                "sources/a.yaml:13: unknown key 'mni' in row_count (did you mean min?)",
            }));
}

TEST_F(ConfigLoaderTest, ScheduleAndPartition) {
  const std::string kinds =
      " (a cron line, @hourly/@daily/@weekly/@monthly/@yearly, {every: 20s}, {after: [asset]} or "
      "{on_file: \"inbox/*.csv\"})";
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: '@hourl'\n"}}),
      "sources/a.yaml:2: schedule: unknown schedule '@hourl' (did you mean @hourly?)" + kinds);
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: every hour\n"}}),
            "sources/a.yaml:2: schedule: a cron line has 5 fields (minute hour day-of-month "
            "month day-of-week, e.g. '*/15 * * * *'), got 2 in 'every hour'" +
                kinds);
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: '0 25 * * *'\n"}}),
            "sources/a.yaml:2: schedule: hour field '25': a value must be 0-23, got 25" + kinds);
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: '0 0 30 2 *'\n"}}),
            "sources/a.yaml:2: schedule: '0 0 30 2 *' never runs: no month it names has that "
            "day" +
                kinds);
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml",
                  "fetch: {url: x.csv}\nschedule: {cron: '@daily', timezone: Europe/Lundon}\n"}}),
      "sources/a.yaml:2: timezone: unknown time zone 'Europe/Lundon' (did you mean "
      "Europe/London?) (names as in /usr/share/zoneinfo, e.g. America/New_York; Debian's "
      "tzdata package provides them)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml",
                        "fetch: {url: x.csv}\nschedule: {every: 1m, misfire: sometimes}\n"}}),
            "sources/a.yaml:2: unknown misfire policy 'sometimes'; supported: skip, latest, "
            "all");
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: {every: 1m, after: [b]}\n"}}),
      "sources/a.yaml:2: schedule: give exactly one of cron:, every:, after: or on_file:");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\nschedule: {every: 2 days}\n"}}),
            "sources/a.yaml:2: every: expected a duration such as 30s, 30m or 2h, got '2 days'");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: x.csv}\npartition: {by: dya}\n"}}),
            "sources/a.yaml:2: unknown partition unit 'dya' (did you mean day?)");
  LoadedProject ok = LoadWith({{"sources/a.yaml",
                                "fetch: {url: x.csv}\nschedule: '*/5 * * * "
                                "*'\n"},
                               {"sources/b.yaml",
                                "fetch: {url: y.csv}\nschedule: {after: [A, "
                                "b]}\n"}});
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(Errors(ok));
  EXPECT_EQ(ok.project.sources[0].schedule.ToString(), "*/5 * * * *");
  EXPECT_EQ(ok.project.sources[1].schedule.ToString(), "after a, b");
  EXPECT_EQ(ok.project.sources[1].schedule.misfire, Misfire::kLatest);
  LoadedProject full = LoadWith(
      {{"sources/a.yaml",
        "fetch: {url: x.csv}\nschedule: {cron: '30 2 * * *', timezone: America/New_York, "
        "misfire: all, max_catch_up: 5}\n"},
       {"sources/b.yaml",
        "fetch: {url: '{{ var(\"file\") }}'}\nformat: csv\nschedule: {on_file: 'inbox/*.csv'}\n"},
       {"models/m.sql", "/* ---\nschedule: {after: [a]}\n--- */\nselect * from a\n"},
       {"sluice.yaml", "name: t\ntimezone: Europe/London\n"}});
  ASSERT_TRUE(full.ok()) << ::testing::PrintToString(Errors(full));
  EXPECT_EQ(full.project.timezone, "Europe/London");
  const ScheduleSpec& a = full.project.sources[0].schedule;
  EXPECT_EQ(a.kind, ScheduleKind::kCron);
  EXPECT_EQ(a.timezone, "America/New_York");
  EXPECT_EQ(a.misfire, Misfire::kAll);
  EXPECT_EQ(a.max_catch_up, 5);
  EXPECT_EQ(full.project.sources[1].schedule.kind, ScheduleKind::kOnFile);
  EXPECT_EQ(full.project.sources[1].schedule.on_file, "inbox/*.csv");
  EXPECT_EQ(full.project.models[0].schedule.ToString(), "after a");
}

TEST_F(ConfigLoaderTest, SecretReferences) {
  LoadedProject loaded = LoadWith({{"sources/a.yaml", R"(fetch:
  url: "https://x.org/a.csv?key=${secret:}"
  headers:
    A: "${secret:TOKEN"
    B: "${secret:ok_NAME} and ${secret:bad name}"
)"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{"sources/a.yaml:2: ${secret:} has no name; write ${secret:NAME}",
                     "sources/a.yaml:4: unterminated ${secret:...}; write ${secret:NAME}",
                     "sources/a.yaml:5: bad secret name 'bad name' in ${secret:bad name}; use "
                     "letters, digits and _"}));
}

TEST_F(ConfigLoaderTest, SecretInKeptJsonIsReportedOnce) {
  EXPECT_EQ(
      OnlyError({{"sources/a.yaml", "fetch:\n  url: x.csv\n  auth: {token: \"${secret:\"}\n"}}),
      "sources/a.yaml:3: unterminated ${secret:...}; write ${secret:NAME}");
  EXPECT_EQ(OnlyError({{"sluice.yaml", "name: t\nnotify:\n  - webhook: ${secret:}\n"}}),
            "sluice.yaml:3: ${secret:} has no name; write ${secret:NAME}");
}

TEST_F(ConfigLoaderTest, TemplatesInUrlsAreChecked) {
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch:\n  url: https://x.org/{{ partiton }}.csv\n"}}),
            "sources/a.yaml:2: unknown template variable 'partiton' (did you mean partition?)");
}

TEST_F(ConfigLoaderTest, ModelHeaderErrorsUseSqlFileLines) {
  EXPECT_EQ(
      OnlyError({{"models/m.sql", "/* ---\nmaterialized: table\nkey: [a\n--- */\nselect 1\n"}}),
      "models/m.sql:4: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(OnlyError({{"models/m.sql", "\n/* ---\nmaterialised: view\n--- */\nselect 1\n"}}),
            "models/m.sql:3: unknown key 'materialised' in model header (did you mean "
            "materialized?)");
  EXPECT_EQ(OnlyError({{"models/m.sql", "/* ---\nmaterialized: viw\n--- */\nselect 1\n"}}),
            "models/m.sql:2: unknown materialization 'viw' (did you mean view?)");
  EXPECT_EQ(OnlyError({{"models/m.sql", "/* ---\nmaterialized: view\nselect 1\n"}}),
            "models/m.sql:1: the header block /* --- has no closing --- */ line");
}

TEST_F(ConfigLoaderTest, HeaderBlockMarkers) {
  // A banner comment is SQL, not a header block.
  LoadedProject loaded = LoadWith(
      {{"models/m.sql", "/* ---------- */\n/* -----\n  notes\n----- */\nselect 1\n"},
       {"models/h.sql", "\xEF\xBB\xBF\n/* ---  \r\nmaterialized: view\r\n  --- */  \r\nselect 2"}});
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(Errors(loaded));
  const ModelSpec& h = loaded.project.models[0];
  EXPECT_EQ(h.materialized, "view");
  EXPECT_EQ(h.sql, "select 2");
  EXPECT_EQ(h.sql_first_line, 5);
  const ModelSpec& m = loaded.project.models[1];
  EXPECT_EQ(m.materialized, "table");
  EXPECT_EQ(m.sql_first_line, 1);
  EXPECT_EQ(m.sql.substr(0, 16), "/* ---------- */");
  // An unclosed header still yields the model, so models/x.yaml finds it.
  EXPECT_EQ(OnlyError({{"models/x.sql", "/* ---\nmaterialized: view\n"},
                       {"models/x.yaml", "description: d\n"}}),
            "models/x.sql:1: the header block /* --- has no closing --- */ line");
}

TEST_F(ConfigLoaderTest, IncrementalRules) {
  EXPECT_EQ(OnlyError({{"models/m.sql", "/* ---\nmaterialized: incremental\n--- */\nselect 1\n"}}),
            "models/m.sql:2: materialized: incremental needs strategy: append, merge or "
            "replace_partition");
  EXPECT_EQ(OnlyError({{"models/m.sql",
                        "/* ---\nmaterialized: incremental\nstrategy: merge\n--- */\nselect 1\n"}}),
            "models/m.sql:3: strategy: merge needs key: [columns] to merge on");
  EXPECT_EQ(OnlyError({{"models/m.sql", "/* ---\nstrategy: append\n--- */\nselect 1\n"}}),
            "models/m.sql:2: strategy: only applies to materialized: incremental");
  EXPECT_EQ(
      OnlyError({{"models/m.sql",
                  "/* ---\nmaterialized: incremental\nstrategy: upsert\n--- */\nselect 1\n"}}),
      "models/m.sql:3: unknown strategy 'upsert'; supported: append, merge, "
      "replace_partition");
}

TEST_F(ConfigLoaderTest, EmptyModel) {
  EXPECT_EQ(OnlyError({{"models/m.sql", "  \n-- nothing here\n/* nor here */\n"}}),
            "models/m.sql:1: model is empty; write a SELECT statement");
  EXPECT_EQ(OnlyError({{"models/m.sql", "/* ---\nmaterialized: view\n--- */\n\n"}}),
            "models/m.sql:4: model is empty; write a SELECT statement");
}

TEST_F(ConfigLoaderTest, ModelTemplateErrorsUseFileLines) {
  EXPECT_EQ(OnlyError({{"models/m.sql",
                        "/* ---\nmaterialized: view\n--- */\nselect 1\nwhere x = '{{ var('rgn') "
                        "}}'\n"}}),
            "models/m.sql:5: var('rgn') is not set; define it under vars: in sluice.yaml or "
            "give a default");
}

TEST_F(ConfigLoaderTest, BrokenSluiceYamlDoesNotFlagEveryVar) {
  EXPECT_EQ(OnlyError({{"sluice.yaml", "name: t\nvars: {a: [1}\n"},
                       {"models/m.sql", "select {{ var('a') }}\n"}}),
            "sluice.yaml:2: YAML syntax error: illegal flow end");
  // Template syntax is still checked.
  std::vector<std::string> errors =
      Errors(LoadWith({{"sluice.yaml", "name: t\nvars: [1]\n"},
                       {"models/m.sql", "select {{ var('a') }}\n{{ x }}"}}));
  EXPECT_EQ(errors, (Strings{"models/m.sql:2: unknown template variable 'x'; known: var('name'), "
                             "env, partition, start, end, this",
                             "sluice.yaml:2: vars: expected a mapping (key: value), got a list"}));
}

TEST_F(ConfigLoaderTest, ModelAndSeedNames) {
  EXPECT_EQ(OnlyError({{"models/my-model.sql", "select 1\n"}}),
            "models/my-model.sql:1: model name 'my-model' (from the file name) must be an "
            "identifier ([a-z_][a-z0-9_]*); rename the file");
  EXPECT_EQ(OnlyError({{"models/orphan.yaml", "description: x\n"}}),
            "models/orphan.yaml:1: no model 'orphan' for this file; add models/orphan.sql or "
            "remove it");
  EXPECT_EQ(OnlyError({{"seeds/ref.yaml", "key: [a]\n"}}),
            "seeds/ref.yaml:1: no seed 'ref' for this file; add seeds/ref.csv or remove it");
  EXPECT_EQ(OnlyError({{"seeds/ref.csv", "a\n1\n"}, {"seeds/ref.yaml", "kye: [a]\n"}}),
            "seeds/ref.yaml:1: unknown key 'kye' in seed (did you mean key?)");
}

TEST_F(ConfigLoaderTest, DuplicateAssetNames) {
  LoadedProject loaded =
      LoadWith({{"sources/a.yaml", "fetch: {url: g.zip}\ntables:\n  stops: {member: s.txt}\n"},
                {"sources/b.yaml", "name: stops\nfetch: {url: s.csv}\n"},
                {"models/Stops.sql", "select 1\n"},
                {"seeds/stops.csv", "a\n1\n"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{"models/Stops.sql:1: duplicate asset name 'stops' (also defined at "
                     "sources/a.yaml:3)",
                     "seeds/stops.csv:1: duplicate asset name 'stops' (also defined at "
                     "sources/a.yaml:3)",
                     "sources/b.yaml:1: duplicate asset name 'stops' (also defined at "
                     "sources/a.yaml:3)"}));
  // A single-table source's duplicate name is its table's: reported once.
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: a.csv}\n"},
                       {"sources/b.yaml", "name: a\nfetch: {url: b.csv}\n"},
                       {"models/a_2.sql", "select 1"}}),
            "sources/b.yaml:1: duplicate asset name 'a' (also defined at sources/a.yaml:1)");
  EXPECT_EQ(OnlyError({{"sources/a.yaml", "fetch: {url: a.zip}\ntables: {x: {member: x.csv}}\n"},
                       {"sources/b.yaml",
                        "\nname: a\nfetch: {url: b.zip}\ntables: {y: {member: y.csv}}\n"}}),
            "sources/b.yaml:2: duplicate source name 'a' (also defined at sources/a.yaml:1)");
}

TEST_F(ConfigLoaderTest, EveryErrorIsReportedSortedByFileThenLine) {
  LoadedProject loaded = LoadWith({{"sources/b.yaml", "fetch: {url: x.csv}\nformat: cvs\n"},
                                   {"sources/a.yaml",
                                    "fetch: {url: x.csv}\n\nfromat: csv\nkey: "
                                    "{}\n"},
                                   {"models/m.sql", ""},
                                   {"sluice.yaml", "name: t\ndefaults: {timeout: x}\n"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{"models/m.sql:1: model is empty; write a SELECT statement",
                     "sluice.yaml:2: timeout: expected a duration such as 30s, 30m or 2h, got 'x'",
                     "sources/a.yaml:3: unknown key 'fromat' in source (did you mean format?)",
                     "sources/a.yaml:4: key: expected a list of column names",
                     "sources/b.yaml:2: unknown format 'cvs' (did you mean csv?)"}));
}

TEST_F(ConfigLoaderTest, NothingThrowsOnHostileInput) {
  LoadedProject loaded = LoadWith({{"sources/a.yaml", "- just\n- a list\n"},
                                   {"sources/b.yaml", "&a [*a]\n"},
                                   {"sources/c.yaml", "? [complex, key]\n: value\n"},
                                   {"sources/d.yaml", std::string("\0\xff\xfe", 3)},
                                   {"models/x.sql", "/* ---\n[1, 2]\n--- */\nselect 1"}});
  EXPECT_EQ(Errors(loaded),
            (Strings{
                "models/x.sql:2: model header: expected a mapping (key: value), got a list",
                "sources/a.yaml:1: source: expected a mapping (key: value), got a list",
                "sources/b.yaml:1: nesting deeper than 64 levels (a recursive alias?)",
                "sources/b.yaml:1: source: expected a mapping (key: value), got a list",
                "sources/c.yaml:1: a mapping key must be a plain string",
                "sources/c.yaml:1: missing required key 'fetch' (where to collect from, e.g. "
                "fetch: {url: ...})",
                "sources/d.yaml:1: YAML syntax error: unknown escape character: \xFF",
            }));
}

TEST_F(ConfigLoaderTest, FindProjectRoot) {
  Write("sluice.yaml", "name: t\n");
  fs::create_directories(fs::path(root_) / "models" / "deep");
  Result<std::string> found = FindProjectRoot(root_ + "/models/deep");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, root_);
  found = FindProjectRoot(root_);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, root_);
  fs::remove(fs::path(root_) / "sluice.yaml");
  found = FindProjectRoot(root_ + "/models/deep");
  // The temp folder normally has no sluice.yaml above it.
  if (!found.ok()) {
    EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
    EXPECT_NE(found.status().message().find("sluice init"), std::string::npos);
  }
}

TEST(ConfigYamlUtil, DurationsAndSizes) {
  EXPECT_EQ(ParseDuration("45"), 45);
  EXPECT_EQ(ParseDuration("30s"), 30);
  EXPECT_EQ(ParseDuration("30m"), 1800);
  EXPECT_EQ(ParseDuration("2h"), 7200);
  EXPECT_EQ(ParseDuration("1d"), 86400);
  EXPECT_EQ(ParseDuration("1h30m"), 5400);
  EXPECT_EQ(ParseDuration("h"), std::nullopt);
  EXPECT_EQ(ParseDuration("10x"), std::nullopt);
  EXPECT_EQ(ParseDuration(""), std::nullopt);
  EXPECT_EQ(NormalizeMemoryLimit("4GB"), "4GB");
  EXPECT_EQ(NormalizeMemoryLimit("512 mb"), "512MB");
  EXPECT_EQ(NormalizeMemoryLimit("1.5GiB"), "1.5GiB");
  EXPECT_EQ(NormalizeMemoryLimit("0GB"), std::nullopt);
  EXPECT_EQ(NormalizeMemoryLimit("4"), std::nullopt);
  EXPECT_EQ(NormalizeMemoryLimit("4XB"), std::nullopt);
  EXPECT_EQ(NormalizeMemoryLimit("1.2.3GB"), std::nullopt);
  // Block sizes are powers of two: KB counts as KiB.
  EXPECT_EQ(ParseBlockSize("16KB"), 16384);
  EXPECT_EQ(ParseBlockSize("16KiB"), 16384);
  EXPECT_EQ(ParseBlockSize("64 kb"), 65536);
  EXPECT_EQ(ParseBlockSize("262144"), 262144);
  EXPECT_EQ(ParseBlockSize("256KB"), 262144);
  EXPECT_EQ(ParseBlockSize("8KB"), std::nullopt);
  EXPECT_EQ(ParseBlockSize("512KB"), std::nullopt);
  EXPECT_EQ(ParseBlockSize("20KB"), std::nullopt);
  EXPECT_EQ(ParseBlockSize("1MB"), std::nullopt);
  EXPECT_EQ(ParseBlockSize("16000"), std::nullopt);
  EXPECT_EQ(ParseBlockSize("99999999999999999999"), std::nullopt);
  EXPECT_EQ(ParseBlockSize(""), std::nullopt);
}

TEST(ConfigYamlUtil, JsonTyping) {
  std::vector<ConfigError> errors;
  FileErrors errs("x.yaml", &errors);
  YAML::Node node = YAML::Load(
      "{a: 1, b: -2.5, c: true, d: 'true', e: ~, f: yes, g: 2026-01-01, h: '', i: [1, x], "
      "j: 1e3, k: 007}");
  nlohmann::json json = ReadDocument(node, errs);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(json["a"], 1);
  EXPECT_EQ(json["b"], -2.5);
  EXPECT_EQ(json["c"], true);
  EXPECT_EQ(json["d"], "true");
  EXPECT_TRUE(json["e"].is_null());
  EXPECT_EQ(json["f"], "yes");
  EXPECT_EQ(json["g"], "2026-01-01");
  EXPECT_EQ(json["h"], "");
  EXPECT_EQ(json["i"], (nlohmann::json{1, "x"}));
  EXPECT_EQ(json["j"], 1000.0);
  EXPECT_EQ(json["k"], 7);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// Found by fuzz/fetch_helpers_fuzzer: huge numbers once threw out of stoll.
TEST(ParseDurationTest, RejectsOverflowingDurations) {
  EXPECT_EQ(ParseDuration("90"), 90);
  EXPECT_EQ(ParseDuration("1h30m"), 5400);
  EXPECT_FALSE(ParseDuration("11111111111111111111111111111111"));
  EXPECT_FALSE(ParseDuration("999999999999w999999999999w"));
  EXPECT_FALSE(ParseDuration("200y"));
}

}  // namespace
}  // namespace sluice
