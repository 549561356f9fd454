// Tests of what a version is (orchestrate/version.h): the version id is a
// pure function of the fingerprint and the input versions, the fingerprint
// covers what decides content and nothing else, and checks are hashed apart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "orchestrate/version.h"

namespace sluice {
namespace {

using ::testing::MatchesRegex;

// A multi-table source config as the loader gives it (the file as JSON).
nlohmann::json SourceConfig() {
  return nlohmann::json::parse(R"({
    "name": "gtfs",
    "description": "transit feed",
    "fetch": {"url": "https://example.org/gtfs.zip"},
    "format": "zip",
    "schedule": "@hourly",
    "freshness": {"warn_after": "2h"},
    "tags": ["transit"],
    "checks": [{"row_count": {"min": 1}}],
    "tables": {
      "gtfs_stops": {
        "member": "stops.txt", "format": "csv", "key": ["stop_id"],
        "description": "stops", "tags": ["geo"],
        "columns": {"stop_lat": {"type": "latitude", "description": "WGS84 latitude"}},
        "checks": [{"not_null": ["stop_id"]}]
      },
      "gtfs_routes": {"member": "routes.txt", "format": "csv"}
    }
  })");
}

CheckSpec Check(const std::string& type, nlohmann::json args, Severity severity) {
  CheckSpec c;
  c.type = type;
  c.args = std::move(args);
  c.severity = severity;
  c.name = type;
  return c;
}

TEST(VersionId, StableForEqualInputs) {
  nlohmann::json inputs = {"aaa", "bbb"};
  std::string id = VersionId("fp", inputs);
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(VersionId("fp", inputs), id);
  EXPECT_EQ(VersionId("fp", nlohmann::json::parse(R"(["aaa","bbb"])")), id);
}

TEST(VersionId, ChangesWithFingerprintOrInputs) {
  nlohmann::json inputs = {"aaa", "bbb"};
  std::string id = VersionId("fp", inputs);
  EXPECT_NE(VersionId("fp2", inputs), id);
  EXPECT_NE(VersionId("fp", nlohmann::json({"aaa", "bbc"})), id);
  EXPECT_NE(VersionId("fp", nlohmann::json({"bbb", "aaa"})), id);  // order of objects loaded
  EXPECT_NE(VersionId("fp", nlohmann::json({"aaa", "bbb", "ccc"})), id);
  EXPECT_NE(VersionId("fp", nlohmann::json::array()), id);
}

TEST(VersionFingerprint, CoversConfigSqlAndEngine) {
  nlohmann::json config = ContentConfig(SourceConfig());
  std::string fp = Fingerprint(config, "select 1", "duckdb v1.4.4");
  EXPECT_THAT(fp, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(Fingerprint(config, "select 1", "duckdb v1.4.4"), fp);
  EXPECT_NE(Fingerprint(config, "select 2", "duckdb v1.4.4"), fp);
  EXPECT_NE(Fingerprint(config, "select 1", "duckdb v1.5.0"), fp);
  nlohmann::json other = config;
  other["tables"]["gtfs_stops"]["key"] = {"stop_code"};
  EXPECT_NE(Fingerprint(other, "select 1", "duckdb v1.4.4"), fp);
}

TEST(VersionFingerprint, KeyOrderInTheConfigDoesNotMatter) {
  nlohmann::json a =
      nlohmann::json::parse(R"({"format": "csv", "key": ["id"], "filter": "x > 0"})");
  nlohmann::json b =
      nlohmann::json::parse(R"({"filter": "x > 0", "key": ["id"], "format": "csv"})");
  EXPECT_EQ(Fingerprint(a, "", "e"), Fingerprint(b, "", "e"));
}

TEST(VersionContentConfig, DropsKeysThatDoNotChangeContent) {
  nlohmann::json original = SourceConfig();
  nlohmann::json content = ContentConfig(original);
  for (const char* key : {"checks", "description", "tags", "schedule", "freshness"}) {
    EXPECT_FALSE(content.contains(key)) << key;
  }
  const nlohmann::json& stops = content["tables"]["gtfs_stops"];
  for (const char* key : {"checks", "description", "tags"}) {
    EXPECT_FALSE(stops.contains(key)) << "tables.gtfs_stops." << key;
  }
  // A column's description is documentation too; its type is content.
  EXPECT_FALSE(stops["columns"]["stop_lat"].contains("description"));
  EXPECT_EQ(stops["columns"]["stop_lat"]["type"], "latitude");
  // What decides content stays.
  EXPECT_EQ(content["name"], "gtfs");
  EXPECT_EQ(content["format"], "zip");
  EXPECT_EQ(content["fetch"]["url"], "https://example.org/gtfs.zip");
  EXPECT_EQ(stops["member"], "stops.txt");
  EXPECT_EQ(stops["key"], nlohmann::json({"stop_id"}));
  EXPECT_EQ(content["tables"]["gtfs_routes"]["member"], "routes.txt");
  // The input is not modified.
  EXPECT_EQ(original, SourceConfig());
}

TEST(VersionContentConfig, DocumentationChangesKeepTheVersion) {
  nlohmann::json before = SourceConfig();
  nlohmann::json after = SourceConfig();
  after["description"] = "the city's transit feed";
  after["schedule"] = "@daily";
  after["checks"] = nlohmann::json::array();
  after["tables"]["gtfs_stops"]["checks"].push_back({{"unique", {"stop_id"}}});
  after["tables"]["gtfs_stops"]["tags"] = {"geo", "core"};
  after["tables"]["gtfs_stops"]["columns"]["stop_lat"]["description"] = "latitude, WGS84";
  nlohmann::json inputs = {"abc"};
  auto version = [&](const nlohmann::json& config) {
    return VersionId(Fingerprint(ContentConfig(config), "csv", "duckdb v1.4.4"), inputs);
  };
  EXPECT_EQ(version(after), version(before));

  after["tables"]["gtfs_stops"]["columns"]["stop_lat"]["type"] = "decimal";
  EXPECT_NE(version(after), version(before));
}

TEST(VersionContentConfig, SingleTableSourcesAndModelHeaders) {
  nlohmann::json single = nlohmann::json::parse(R"({
    "name": "sites", "format": "csv", "key": ["reference"], "filter": "hectares > 0",
    "columns": {"Hectares": {"field": "hectares", "type": "decimal", "description": "area"}},
    "checks": [{"not_null": ["reference"]}], "tags": ["planning"]})");
  nlohmann::json content = ContentConfig(single);
  EXPECT_EQ(content, nlohmann::json::parse(R"({
    "name": "sites", "format": "csv", "key": ["reference"], "filter": "hectares > 0",
    "columns": {"Hectares": {"field": "hectares", "type": "decimal"}}})"));

  nlohmann::json header = nlohmann::json::parse(R"({
    "materialized": "incremental", "strategy": "merge", "key": ["id"],
    "checks": [{"unique": ["id"]}], "tags": ["mart"], "description": "a mart"})");
  EXPECT_EQ(ContentConfig(header), nlohmann::json::parse(R"({
    "materialized": "incremental", "strategy": "merge", "key": ["id"]})"));

  // Anything that is not an object passes through.
  EXPECT_EQ(ContentConfig(nlohmann::json(nullptr)), nlohmann::json(nullptr));
  EXPECT_EQ(ContentConfig(nlohmann::json::array({1, 2})), nlohmann::json::array({1, 2}));
}

TEST(VersionChecksHash, ChangesWithWhatChecksDo) {
  std::vector<CheckSpec> checks = {Check("not_null", {"id"}, Severity::kError),
                                   Check("row_count", {{"min", 1}}, Severity::kError)};
  std::string h = ChecksHash(checks);
  EXPECT_THAT(h, MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(ChecksHash(checks), h);

  std::vector<CheckSpec> warn = checks;
  warn[0].severity = Severity::kWarn;
  EXPECT_NE(ChecksHash(warn), h);

  std::vector<CheckSpec> args = checks;
  args[1].args = {{"min", 2}};
  EXPECT_NE(ChecksHash(args), h);

  std::vector<CheckSpec> type = checks;
  type[0].type = "unique";
  EXPECT_NE(ChecksHash(type), h);

  std::vector<CheckSpec> fewer = {checks[0]};
  EXPECT_NE(ChecksHash(fewer), h);
  EXPECT_NE(ChecksHash({}), h);

  // A display name or a source location is not what a check does.
  std::vector<CheckSpec> renamed = checks;
  renamed[0].name = "ids present";
  renamed[0].loc = SourceLoc{"sources/x.yaml", 9};
  EXPECT_EQ(ChecksHash(renamed), h);
}

}  // namespace
}  // namespace sluice
