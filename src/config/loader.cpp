#include "config/loader.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "config/template.h"
#include "config/yaml_util.h"
#include "core/cron.h"
#include "core/fs.h"
#include "core/strings.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kSluiceKeys = {"name",     "environments", "secrets", "external",
                                              "defaults", "vars",         "server",  "notify",
                                              "timezone", "concurrency",  "exports", "openlineage"};
const std::vector<std::string> kConcurrencyKeys = {"tasks", "per_host", "pools"};
const std::vector<std::string> kEnvironmentKeys = {"warehouse", "lake", "metadata", "server",
                                                   "publish"};
const std::vector<std::string> kExportKeys = {"table", "columns",     "query",      "format",
                                              "path",  "coordinates", "description"};
constexpr int64_t kMaxQueryThreads = 1024;
const std::vector<std::string> kDefaultsKeys = {"retries",    "timeout",       "memory_limit",
                                                "block_size", "query_threads", "keep_versions",
                                                "keep_logs",  "keep_runs"};
const std::vector<std::string> kServerKeys = {"listen", "tokens",       "cache",
                                              "check",  "stream_after", "lookups"};
const std::vector<std::string> kServerCheckKeys = {"urls", "max_size", "timeout", "memory_limit"};
const std::vector<std::string> kSourceKeys = {
    "name",       "description",  "fetch",       "format", "options",  "tables",
    "schedule",   "partition",    "freshness",   "tags",   "member",   "key",
    "columns",    "columns_only", "null_values", "filter", "checks",   "skip_patterns",
    "quarantine", "kind",         "command",     "pool",   "database", "incremental",
    "stream",     "chunk_rows"};
const std::vector<std::string> kDatabaseKeys = {"url", "table",  "query",   "timeout",
                                                "cdc", "schema", "include", "exclude"};
const std::vector<std::string> kCdcKeys = {"slot",   "publication", "max_changes",
                                           "binlog", "stream",      "publish_every"};
const std::vector<std::string> kStreamKeys = {"url",          "stream", "subject", "consumer",
                                              "max_messages", "wait",   "ack_wait"};
const std::vector<std::string> kIncrementalKeys = {"cursor", "lookback", "key_scan"};
const std::vector<std::string> kCommandKeys = {"run", "env", "inputs", "timeout", "always_run"};
// Keys that describe one table: at the top level of a single-table source,
// under tables: otherwise.
const std::vector<std::string> kSingleTableKeys = {
    "member", "key",           "columns",    "columns_only", "null_values", "filter",
    "checks", "skip_patterns", "quarantine", "incremental",  "chunk_rows"};
const std::vector<std::string> kTableKeys = {
    "member",      "format", "options", "key",         "columns",     "columns_only",
    "null_values", "filter", "checks",  "tags",        "description", "skip_patterns",
    "quarantine",  "table",  "query",   "incremental", "chunk_rows"};
const std::vector<std::string> kFetchKeys = {
    "url",       "headers", "paginate", "method",          "params",        "body",
    "timeout",   "retries", "backoff",  "connect_timeout", "stall_timeout", "rate_limit",
    "max_bytes", "expect",  "auth",     "ca_file"};
const std::vector<std::string> kExpectKeys = {"content_type", "min_bytes"};
const std::vector<std::string> kPaginateTypes = {"none", "page", "offset", "cursor", "link"};
const std::vector<std::string> kDecoderOptions = {"delimiter",
                                                  "header",
                                                  "quote",
                                                  "escape",
                                                  "encoding",
                                                  "skip",
                                                  "records",
                                                  "all_varchar",
                                                  "sample_size",
                                                  "date_format",
                                                  "timestamp_format",
                                                  "compression",
                                                  "table",
                                                  "sheet",
                                                  "ragged",
                                                  "bad_rows",
                                                  "entity"};
const std::vector<std::string> kColumnKeys = {"value",      "default_on_invalid",
                                              "field",      "type",
                                              "formats",    "range",
                                              "patch",      "default",
                                              "values",     "concat",
                                              "description"};
const std::vector<std::string> kPartitionKeys = {"by", "start", "end", "accumulate"};
const std::vector<std::string> kPartitionUnits = {"hour", "day", "week", "month", "year"};
const std::vector<std::string> kFreshnessKeys = {"warn_after", "error_after"};
const std::vector<std::string> kScheduleKeys = {"cron",     "every",   "after",       "on_file",
                                                "timezone", "misfire", "max_catch_up"};
const std::vector<std::string> kMisfirePolicies = {"skip", "latest", "all"};
const std::vector<std::string> kModelHeaderKeys = {
    "materialized", "strategy", "key",
    "checks",       "tags",     "description",
    "partition_by", "schedule", "on_upstream_failure",
    "pool"};
const std::vector<std::string> kModelDocKeys = {"description", "checks", "tags"};
const std::vector<std::string> kMaterializations = {"view", "table", "incremental", "snapshot"};
const std::vector<std::string> kStrategies = {"append", "merge", "replace_partition"};
const std::vector<std::string> kSeedKeys = {"key", "column_types", "checks", "tags", "description"};
const std::vector<std::string> kFieldKeys = {"type", "description", "pattern", "values"};
const std::vector<std::string> kFieldListKeys = {"field", "type", "description", "pattern",
                                                 "values"};
const std::vector<std::string> kRowCountKeys = {"min", "max"};
const std::vector<std::string> kAcceptedValuesKeys = {"column", "values"};

constexpr std::string_view kHeaderOpen = "/* ---";
constexpr std::string_view kHeaderClose = "--- */";

// "unknown format 'cvs' (did you mean csv?)" or "...; supported: a, b".
std::string UnknownWord(std::string_view what, std::string_view word,
                        const std::vector<std::string>& known) {
  std::string hint = DidYouMeanHint(word, known);
  if (hint.empty()) hint = "; supported: " + Join(known, ", ");
  return "unknown " + std::string(what) + " '" + std::string(word) + "'" + hint;
}

bool Contains(const std::vector<std::string>& list, std::string_view word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

int CountLines(std::string_view text, size_t end) {
  return static_cast<int>(
      std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(end), '\n'));
}

// Regular, non-hidden files in dir whose names end with one of exts, sorted.
std::vector<std::string> ListFiles(const std::string& dir, const std::vector<std::string>& exts) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    bool wanted = false;
    for (const std::string& ext : exts) wanted = wanted || EndsWith(name, ext);
    if (!wanted) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Stem(const std::string& file_name) {
  size_t dot = file_name.rfind('.');
  return dot == std::string::npos ? file_name : file_name.substr(0, dot);
}

// The start of the line after the one holding pos (text.size() at the end).
size_t NextLine(std::string_view text, size_t pos) {
  size_t nl = text.find('\n', pos);
  return nl == std::string_view::npos ? text.size() : nl + 1;
}

// True when the line starting at pos is `marker`, give or take spaces (so a
// banner comment such as "/* ------ */" is no header block).
bool IsMarkerLine(std::string_view text, size_t pos, std::string_view marker) {
  size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  return Trim(text.substr(pos, end - pos)) == marker;
}

// True when the SQL holds anything but whitespace and comments.
bool HasSqlContent(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t nl = sql.find('\n', i);
      if (nl == std::string_view::npos) return false;
      i = nl + 1;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t close = sql.find("*/", i + 2);
      if (close == std::string_view::npos) return false;
      i = close + 2;
    } else {
      return true;
    }
  }
  return false;
}

class Loader {
 public:
  explicit Loader(std::string root) : root_(std::move(root)) {}

  LoadedProject Run(bool settings_only) {
    project_.root = root_;
    if (LoadSluiceYaml() && !settings_only) {
      LoadFields();
      LoadSources();
      LoadModels();
      LoadSeeds();
      CheckAssetNames();
      CheckNamedColumns();
      CheckPools();
    }
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       if (a.loc.file != b.loc.file) return a.loc.file < b.loc.file;
                       return a.loc.line < b.loc.line;
                     });
    return LoadedProject{std::move(project_), std::move(errors_)};
  }

 private:
  struct AssetDef {
    std::string name;
    SourceLoc loc;
  };

  // Checks that name a column the asset cannot have, where its columns are
  // known without building it: a seed's header, and a source table with
  // columns_only: true (its fields). Other assets are bound at run time.
  void CheckNamedColumns() {
    auto check_all = [&](const std::string& asset, const std::vector<CheckSpec>& checks,
                         const std::vector<std::string>& columns) {
      std::set<std::string> lower;
      for (const std::string& c : columns) lower.insert(ToLower(c));
      for (const CheckSpec& check : checks) {
        std::vector<std::string> named;
        if (check.args.is_array()) {
          for (const auto& c : check.args) {
            if (c.is_string()) named.push_back(c.get<std::string>());
          }
        } else if (check.args.is_object() && check.args.contains("column") &&
                   check.args["column"].is_string()) {
          named.push_back(check.args["column"].get<std::string>());
        }
        for (const std::string& c : named) {
          if (lower.count(ToLower(c))) continue;
          errors_.push_back({check.loc, "check " + check.name + ": " + asset + " has no column '" +
                                            c + "'" + DidYouMeanHint(c, columns) +
                                            "; its columns are " + Join(columns, ", ")});
          break;
        }
      }
    };
    for (const SeedSpec& seed : project_.seeds) {
      std::string head = ReadHead(seed.path, 64 * 1024);
      if (head.compare(0, 3, "\xEF\xBB\xBF") == 0) head = head.substr(3);
      std::string line = head.substr(0, head.find('\n'));
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> columns;
      std::string cell;
      bool quoted = false;
      for (size_t i = 0; i <= line.size(); ++i) {
        char c = i < line.size() ? line[i] : ',';
        if (quoted) {
          if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            cell += '"';
            ++i;
          } else if (c == '"') {
            quoted = false;
          } else {
            cell += c;
          }
        } else if (c == '"') {
          quoted = true;
        } else if (c == ',') {
          columns.push_back(Trim(cell));
          cell.clear();
        } else {
          cell += c;
        }
      }
      if (!line.empty()) check_all(seed.name, seed.checks, columns);
    }
    for (const SourceSpec& source : project_.sources) {
      for (const TableSpec& table : source.tables) {
        if (!table.columns_only || table.columns.empty()) continue;
        std::vector<std::string> fields;
        for (const ColumnSpec& c : table.columns) fields.push_back(c.field);
        check_all(table.name, table.checks, fields);
      }
    }
  }

  std::string Abs(const std::string& path) const {
    if (!path.empty() && path[0] == '/') return fs::path(path).lexically_normal().string();
    return (fs::path(root_) / path).lexically_normal().string();
  }

  // Reads root/rel; reports an error and returns nullopt when it cannot.
  std::optional<std::string> Read(const std::string& rel) {
    Result<std::string> text = ReadFile(JoinPath(root_, rel));
    if (!text.ok()) {
      errors_.push_back({SourceLoc{rel, 0}, "cannot read: " + text.status().message()});
      return std::nullopt;
    }
    return std::move(text).value();
  }

  // ---- sluice.yaml -------------------------------------------------------

  bool LoadSluiceYaml() {
    const std::string rel = "sluice.yaml";
    if (!FileExists(JoinPath(root_, rel))) {
      errors_.push_back({SourceLoc{rel, 0}, "no sluice.yaml in " + root_ +
                                                "; run `sluice init DIR` to create a project"});
      return false;
    }
    std::optional<std::string> text = Read(rel);
    if (!text) return false;
    FileErrors errs(rel, &errors_);
    std::optional<YAML::Node> doc = ParseYaml(*text, errs);
    if (doc) {
      ReadDocument(*doc, errs);  // reports malformed ${secret:...} anywhere in the file
      MapReader top(*doc, kSluiceKeys, "sluice.yaml", errs);
      if (top.is_map()) ReadSluice(top, errs);
    }
    // Without a readable vars: every var('x') would look unset; check none.
    template_vars_ = vars_ok_ && doc ? project_.vars : nlohmann::json();
    if (!project_.environments.count("dev"))
      project_.environments["dev"] = DefaultEnvironment("dev");
    if (project_.secret_providers.empty()) project_.secret_providers.push_back(SecretProvider{});
    return true;
  }

  EnvironmentSpec DefaultEnvironment(const std::string& name) const {
    EnvironmentSpec env;
    env.name = name;
    env.state_dir = Abs(".sluice/" + name);
    env.warehouse = "duckdb:" + env.state_dir + "/warehouse.duckdb";
    env.lake = env.state_dir + "/lake";
    env.metadata = "sqlite:" + env.state_dir + "/metadata.sqlite";
    env.publish_dir = env.state_dir + "/publish";
    env.loc = SourceLoc{"sluice.yaml", 1};
    return env;
  }

  // "duckdb:rel/path" -> "duckdb:/abs/path"; nullopt when the scheme is not `scheme`.
  std::optional<std::string> SchemePath(const std::string& value, const std::string& scheme) const {
    if (!StartsWith(value, scheme + ":")) return std::nullopt;
    std::string path = value.substr(scheme.size() + 1);
    if (path.empty()) return std::nullopt;
    if (path == ":memory:") return value;
    return scheme + ":" + Abs(path);
  }

  void ReadSluice(const MapReader& top, FileErrors& errs) {
    if (const YamlEntry* e = top.Find("name")) {
      if (auto name = ReadString(*e, errs)) {
        project_.name = Trim(*name);
        if (project_.name.empty()) errs.At(e->line, "name: must not be empty");
      }
    } else {
      errs.At(1, "missing required key 'name' (the project's name)");
    }
    if (const YamlEntry* e = top.Find("environments")) ReadEnvironments(*e, errs);
    if (const YamlEntry* e = top.Find("secrets")) ReadSecrets(*e, errs);
    if (const YamlEntry* e = top.Find("external")) {
      if (auto list = ReadStringList(*e, errs, "a list of table names")) {
        for (const std::string& name : *list) project_.external.push_back(ToLower(Trim(name)));
      }
    }
    if (const YamlEntry* e = top.Find("defaults")) ReadDefaults(*e, errs);
    if (const YamlEntry* e = top.Find("concurrency")) ReadConcurrency(*e, errs);
    if (const YamlEntry* e = top.Find("timezone")) {
      if (auto zone = ReadString(*e, errs)) {
        Result<TimeZone> found = TimeZone::Find(Trim(*zone));
        if (found.ok()) {
          project_.timezone = Trim(*zone);
        } else {
          errs.At(e->value, "timezone: " + found.status().message(), e->line);
        }
      }
    }
    if (const YamlEntry* e = top.Find("vars")) {
      MapReader vars(e->value, {}, "vars", errs, e->line);
      vars_ok_ = vars.is_map();
      if (vars.is_map() && !e->value.IsNull()) project_.vars = YamlToJson(e->value);
    }
    if (const YamlEntry* e = top.Find("server")) project_.server = ReadServer(*e, errs);
    // An environment without its own server takes the project's.
    if (!project_.environments.count("dev"))
      project_.environments["dev"] = DefaultEnvironment("dev");
    for (auto& [name, env] : project_.environments) {
      if (!env.own_server) env.server = project_.server;
    }
    // Two environments served at once must not want one port.
    std::map<std::string, std::string> listening;
    for (const auto& [name, env] : project_.environments) {
      if (!env.own_server || !env.server.enabled) continue;
      std::string address = env.server.host + ":" + std::to_string(env.server.port);
      auto [it, fresh] = listening.emplace(address, name);
      if (!fresh && env.server.port != 0) {
        errs.At(env.server.loc.line, "environments '" + it->second + "' and '" + name +
                                         "' both listen on " + address +
                                         ": give each its own port");
      }
    }
    // Each environment publishes its own exports.
    std::map<std::string, std::string> publishing;
    for (const auto& [name, env] : project_.environments) {
      auto [it, fresh] = publishing.emplace(env.publish_dir, name);
      if (!fresh) {
        errs.At(env.loc.line, "environments '" + it->second + "' and '" + name +
                                  "' both publish to " + env.publish_dir +
                                  ": give each its own publish: folder");
      }
    }
    if (const YamlEntry* e = top.Find("notify")) ReadNotify(*e, errs);
    if (const YamlEntry* e = top.Find("exports")) ReadExports(*e, errs);
    if (const YamlEntry* e = top.Find("openlineage")) ReadOpenLineage(*e, errs);
  }

  // openlineage: {url: URL, namespace: NAME, api_key: ${secret:X}}
  void ReadOpenLineage(const YamlEntry& e, FileErrors& errs) {
    MapReader m(e.value, {"url", "namespace", "api_key"}, "openlineage", errs, e.line);
    if (!m.is_map() || e.value.IsNull()) return;
    OpenLineageSpec spec;
    spec.loc = errs.Loc(e.line);
    spec.job_namespace = project_.name;
    if (const YamlEntry* u = m.Find("url")) spec.url = Trim(ReadString(*u, errs).value_or(""));
    if (!StartsWith(spec.url, "http://") && !StartsWith(spec.url, "https://")) {
      errs.At(e.line,
              "openlineage: needs url: http(s)://... (the collector's endpoint, e.g. "
              "http://marquez:5000/api/v1/lineage)");
      return;
    }
    if (const YamlEntry* n = m.Find("namespace")) {
      spec.job_namespace = Trim(ReadString(*n, errs).value_or(""));
      if (spec.job_namespace.empty()) errs.At(n->line, "namespace: must not be empty");
    }
    if (const YamlEntry* k = m.Find("api_key")) spec.api_key = ReadString(*k, errs).value_or("");
    project_.openlineage = std::move(spec);
  }

  // exports: {NAME: {table: T | query: SQL, format, path, columns, coordinates, description}}
  void ReadExports(const YamlEntry& e, FileErrors& errs) {
    MapReader exports(e.value, {}, "exports", errs, e.line);
    std::map<std::string, std::string> paths;  // path -> export
    for (const YamlEntry& x : exports.entries()) {
      ExportSpec spec;
      spec.name = ToLower(Trim(x.key));
      spec.loc = errs.Loc(x.line);
      bool named =
          !spec.name.empty() && std::all_of(spec.name.begin(), spec.name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                   c == '.';
          });
      if (!named) {
        errs.At(x.line, "exports: '" + x.key +
                            "' cannot name an export: use letters, digits, _, - and . "
                            "(it names the resource in datapackage.json)");
        continue;
      }
      MapReader m(x.value, kExportKeys, "export '" + spec.name + "'", errs, x.line);
      if (!m.is_map()) continue;
      const YamlEntry* table = m.Find("table");
      const YamlEntry* query = m.Find("query");
      if ((table == nullptr) == (query == nullptr)) {
        errs.At(x.line, "export '" + spec.name +
                            "': give either table: ASSET or query: SELECT ... (one of them)");
        continue;
      }
      if (table) spec.table = ToLower(Trim(ReadString(*table, errs).value_or("")));
      if (query) {
        spec.query = Trim(ReadString(*query, errs).value_or(""));
        if (spec.query.empty()) errs.At(query->line, "query: expected a SELECT statement");
      }
      if (const YamlEntry* c = m.Find("columns")) {
        if (query) {
          errs.At(c->line, "columns: belongs with table:; a query selects its own columns");
        } else if (auto list = ReadStringList(*c, errs, "a list of column names")) {
          spec.columns = *list;
        }
      }
      std::string ext = "csv";
      if (const YamlEntry* f = m.Find("format")) {
        std::string v = ToLower(Trim(ReadString(*f, errs).value_or("")));
        static const std::vector<std::pair<std::string, ExportFormat>> kFormats = {
            {"csv", ExportFormat::kCsv},
            {"json", ExportFormat::kJson},
            {"geojson", ExportFormat::kGeoJson},
            {"parquet", ExportFormat::kParquet},
            {"sqlite", ExportFormat::kSqlite}};
        auto it = std::find_if(kFormats.begin(), kFormats.end(),
                               [&](const auto& p) { return p.first == v; });
        if (it == kFormats.end()) {
          errs.At(f->value,
                  "format: expected csv, json, geojson, parquet or sqlite, got '" + v + "'",
                  f->line);
        } else {
          spec.format = it->second;
          ext = it->first;
        }
      }
      spec.path = spec.name + "." + ext;
      if (const YamlEntry* p = m.Find("path")) {
        std::string v = Trim(ReadString(*p, errs).value_or(""));
        bool bad = v.empty() || v[0] == '/' || v.back() == '/' || v.find('\\') != std::string::npos;
        for (const std::string& part : Split(v, '/'))
          bad = bad || part.empty() || part == "." || part == "..";
        if (bad) {
          errs.At(p->value,
                  "path: expected a relative file path inside the publish folder, such as "
                  "data/stops.csv (no .., no leading /), got '" +
                      v + "'",
                  p->line);
        } else {
          spec.path = v;
        }
      }
      if (spec.path == "datapackage.json") {
        errs.At(x.line, "export '" + spec.name +
                            "': datapackage.json is the catalog Sluice writes; "
                            "choose another path");
      }
      if (auto [it, fresh] = paths.emplace(spec.path, spec.name); !fresh) {
        errs.At(x.line, "export '" + spec.name + "' writes " + spec.path + ", as export '" +
                            it->second + "' does: give it its own path:");
      }
      if (const YamlEntry* c = m.Find("coordinates")) {
        auto list = ReadStringList(*c, errs, "[LONGITUDE_COLUMN, LATITUDE_COLUMN]");
        if (spec.format != ExportFormat::kGeoJson) {
          errs.At(c->line, "coordinates: belongs with format: geojson");
        } else if (list && list->size() == 2) {
          spec.lon = (*list)[0];
          spec.lat = (*list)[1];
        } else if (list) {
          errs.At(c->line, "coordinates: expected [LONGITUDE_COLUMN, LATITUDE_COLUMN]");
        }
      }
      if (const YamlEntry* d = m.Find("description")) {
        spec.description = ReadString(*d, errs).value_or("");
      }
      project_.exports.push_back(std::move(spec));
    }
    std::sort(project_.exports.begin(), project_.exports.end(),
              [](const ExportSpec& a, const ExportSpec& b) { return a.name < b.name; });
  }

  // server: {listen: HOST:PORT, tokens: [{name, sha256, role}]}
  ServerSpec ReadServer(const YamlEntry& e, FileErrors& errs) {
    ServerSpec spec;
    spec.loc = errs.Loc(e.line);
    MapReader server(e.value, kServerKeys, "server", errs, e.line);
    if (!server.is_map() || e.value.IsNull()) return spec;
    if (const YamlEntry* l = server.Find("listen")) {
      if (auto text = ReadString(*l, errs)) {
        Result<std::pair<std::string, int>> address = ParseListenAddress(Trim(*text));
        if (address.ok()) {
          spec.enabled = true;
          spec.host = address->first;
          spec.port = address->second;
        } else {
          errs.At(l->value, "listen: " + address.status().message(), l->line);
        }
      }
    }
    if (const YamlEntry* c = server.Find("cache")) {
      if (auto text = ReadString(*c, errs)) {
        std::optional<int64_t> bytes =
            ToLower(Trim(*text)) == "off" ? std::optional<int64_t>(0) : ParseByteSize(*text);
        if (bytes) {
          spec.cache_bytes = *bytes;
        } else {
          errs.At(c->value, "cache: expected a size such as 64MB, or off; got '" + *text + "'",
                  c->line);
        }
      }
    }
    if (const YamlEntry* c = server.Find("stream_after")) {
      std::optional<int64_t> bytes = ParseByteSize(ReadString(*c, errs).value_or(""));
      if (bytes && *bytes > 0) {
        spec.stream_after_bytes = *bytes;
      } else {
        errs.At(c->value, "stream_after: expected a size such as 1MB", c->line);
      }
    }
    if (const YamlEntry* l = server.Find("lookups")) {
      MapReader tables(l->value, {}, "lookups", errs, l->line);
      for (const YamlEntry& t : tables.entries()) {
        auto list = ReadStringList(t, errs, "a list of column names, such as [stop_id]");
        if (!list) continue;
        std::vector<std::string>& columns = spec.lookups[ToLower(Trim(t.key))];
        for (const std::string& c : *list) {
          if (!Trim(c).empty()) columns.push_back(ToLower(Trim(c)));
        }
        if (columns.empty()) {
          errs.At(t.line,
                  "lookups: " + t.key + ": name the columns read by equality, such as [id]");
        }
      }
    }
    if (const YamlEntry* c = server.Find("check")) {
      MapReader check(c->value, kServerCheckKeys, "check", errs, c->line);
      if (const YamlEntry* u = check.Find("urls")) {
        std::string v = ToLower(Trim(ReadString(*u, errs).value_or("")));
        if (v == "true" || v == "false") {
          spec.check_urls = v == "true";
        } else {
          errs.At(u->value, "urls: expected true or false, got '" + v + "'", u->line);
        }
      }
      if (const YamlEntry* m = check.Find("max_size")) {
        std::optional<int64_t> bytes = ParseByteSize(ReadString(*m, errs).value_or(""));
        if (bytes) {
          spec.check_max_bytes = *bytes;
        } else {
          errs.At(m->value, "max_size: expected a size such as 16MB", m->line);
        }
      }
      if (const YamlEntry* t = check.Find("timeout")) {
        if (auto seconds = ReadDuration(*t, errs)) spec.check_timeout_seconds = *seconds;
      }
      if (const YamlEntry* m = check.Find("memory_limit")) {
        std::optional<std::string> limit = NormalizeMemoryLimit(ReadString(*m, errs).value_or(""));
        if (limit) {
          spec.check_memory_limit = *limit;
        } else {
          errs.At(m->value, "memory_limit: expected a size such as 512MB", m->line);
        }
      }
    }
    if (const YamlEntry* t = server.Find("tokens")) {
      if (!t->value.IsSequence()) {
        errs.At(t->value,
                "tokens: expected a list such as - {name: ci, sha256: HEX, role: operator}",
                t->line);
        return spec;
      }
      std::set<std::string> names;
      for (const YAML::Node& item : t->value) {
        int line = errs.LineOf(item, t->line);
        MapReader m(item, {"name", "sha256", "role"}, "token", errs, line);
        if (!m.is_map()) continue;
        ApiToken token;
        token.loc = errs.Loc(line);
        if (const YamlEntry* n = m.Find("name")) {
          if (auto name = ReadString(*n, errs)) token.name = Trim(*name);
        }
        if (token.name.empty()) {
          errs.At(line, "token: needs a name (who holds it, for the request log)");
        } else if (!names.insert(token.name).second) {
          errs.At(line, "token: the name '" + token.name + "' is used twice");
        }
        const YamlEntry* h = m.Find("sha256");
        if (h == nullptr) {
          errs.At(line,
                  "token: needs sha256: the token's SHA-256 in hex, never the token itself "
                  "(printf %s \"$TOKEN\" | sha256sum)");
        } else if (auto hex = ReadString(*h, errs)) {
          std::string value = ToLower(Trim(*hex));
          bool ok = value.size() == 64 && std::all_of(value.begin(), value.end(), [](char c) {
                      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                    });
          if (!ok) {
            errs.At(h->value,
                    "sha256: expected 64 hex digits (printf %s \"$TOKEN\" | sha256sum), not the "
                    "token itself",
                    h->line);
          }
          token.sha256 = value;
        }
        if (const YamlEntry* r = m.Find("role")) {
          if (auto role = ReadString(*r, errs)) {
            std::string v = ToLower(Trim(*role));
            if (v == "viewer") {
              token.role = ApiRole::kViewer;
            } else if (v == "operator") {
              token.role = ApiRole::kOperator;
            } else if (v == "admin") {
              token.role = ApiRole::kAdmin;
            } else {
              errs.At(r->value, "role: expected viewer, operator or admin, got '" + *role + "'",
                      r->line);
            }
          }
        }
        spec.tokens.push_back(std::move(token));
      }
    }
    return spec;
  }

  // notify: [{webhook: URL, on: [run_failed, check_failed, freshness_late, recovered]}]
  void ReadNotify(const YamlEntry& e, FileErrors& errs) {
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
      errs.At(e.value, "notify: expected a list such as - webhook: URL", e.line);
      return;
    }
    const std::vector<std::string> events = {"run_failed", "check_failed", "freshness_late",
                                             "recovered"};
    for (const YAML::Node& item : e.value) {
      int line = errs.LineOf(item, e.line);
      MapReader m(item, {"webhook", "on"}, "notify entry", errs, line);
      if (!m.is_map()) continue;
      NotifySpec spec;
      spec.loc = errs.Loc(line);
      const YamlEntry* hook = m.Find("webhook");
      if (hook == nullptr) {
        errs.At(line, "notify: an entry needs webhook: URL (e.g. ${secret:SLACK_WEBHOOK})");
        continue;
      }
      if (auto url = ReadString(*hook, errs)) spec.webhook = Trim(*url);
      if (const YamlEntry* on = m.Find("on")) {
        if (auto names = ReadStringList(*on, errs, "a list of events")) {
          for (const std::string& name : *names) {
            auto it = std::find(events.begin(), events.end(), name);
            if (it == events.end()) {
              errs.At(on->value, UnknownWord("notify event", name, events), on->line);
            } else {
              spec.on.push_back(static_cast<NotifyEvent>(it - events.begin()));
            }
          }
        }
      } else {
        spec.on = {NotifyEvent::kRunFailed, NotifyEvent::kCheckFailed, NotifyEvent::kFreshnessLate,
                   NotifyEvent::kRecovered};
      }
      if (!spec.webhook.empty()) project_.notify.push_back(std::move(spec));
    }
  }

  void ReadEnvironments(const YamlEntry& entry, FileErrors& errs) {
    MapReader envs(entry.value, {}, "environments", errs, entry.line);
    for (const YamlEntry& e : envs.entries()) {
      const std::string& name = e.key;
      bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      });
      if (!name_ok) {
        errs.At(e.line, "environment name '" + name + "' may hold only letters, digits, _ and -");
        continue;
      }
      EnvironmentSpec env = DefaultEnvironment(name);
      env.loc = errs.Loc(e.line);
      MapReader fields(e.value, kEnvironmentKeys, "environment '" + name + "'", errs, e.line);
      if (const YamlEntry* w = fields.Find("warehouse")) {
        if (auto value = ReadString(*w, errs)) {
          if (auto path = SchemePath(*value, "duckdb")) {
            env.warehouse = *path;
          } else {
            errs.At(w->value,
                    "unsupported warehouse '" + *value +
                        "'; supported now: duckdb:PATH (e.g. duckdb:/srv/sluice/prod.duckdb)",
                    w->line);
          }
        }
      }
      if (const YamlEntry* m = fields.Find("metadata")) {
        if (auto value = ReadString(*m, errs)) {
          if (auto path = SchemePath(*value, "sqlite")) {
            env.metadata = *path;
          } else {
            errs.At(m->value,
                    "unsupported metadata store '" + *value +
                        "'; supported now: sqlite:PATH (e.g. sqlite:/srv/sluice/meta.sqlite)",
                    m->line);
          }
        }
      }
      if (const YamlEntry* l = fields.Find("lake")) {
        if (auto value = ReadString(*l, errs)) {
          if (Trim(*value).empty()) {
            errs.At(l->value, "lake: expected a folder path", l->line);
          } else {
            env.lake = Abs(*value);
          }
        }
      }
      if (const YamlEntry* p = fields.Find("publish")) {
        if (auto value = ReadString(*p, errs)) {
          if (Trim(*value).empty()) {
            errs.At(p->value, "publish: expected a folder path", p->line);
          } else {
            env.publish_dir = Abs(Trim(*value));
          }
        }
      }
      if (const YamlEntry* sv = fields.Find("server")) {
        env.server = ReadServer(*sv, errs);
        env.own_server = true;
      }
      project_.environments[name] = std::move(env);
    }
  }

  void ReadSecrets(const YamlEntry& entry, FileErrors& errs) {
    if (!entry.value.IsSequence()) {
      errs.At(entry.value, "secrets: expected a list such as [env, {file: .secrets}]", entry.line);
      return;
    }
    for (const YAML::Node& item : entry.value) {
      if (item.IsScalar() && item.Scalar() == "env") {
        project_.secret_providers.push_back(SecretProvider{SecretProvider::Kind::kEnv, ""});
        continue;
      }
      if (item.IsMap()) {
        MapReader file(item, {"file"}, "secrets entry", errs, entry.line);
        const YamlEntry* f = file.Find("file");
        if (f == nullptr) {
          // An unknown key was reported by MapReader; an empty mapping is not.
          if (item.size() == 0)
            errs.At(item, "secrets: an entry is `env` or {file: PATH}", entry.line);
          continue;
        }
        if (auto path = ReadString(*f, errs)) {
          project_.secret_providers.push_back(
              SecretProvider{SecretProvider::Kind::kFile, Abs(*path)});
        }
        continue;
      }
      std::string got = item.IsScalar() ? " (got '" + item.Scalar() + "')" : "";
      errs.At(item, "secrets: an entry is `env` or {file: PATH}" + got, entry.line);
    }
  }

  void ReadDefaults(const YamlEntry& entry, FileErrors& errs) {
    MapReader d(entry.value, kDefaultsKeys, "defaults", errs, entry.line);
    if (const YamlEntry* e = d.Find("retries")) {
      if (auto n = ReadInt(*e, errs, 0)) {
        project_.defaults.retries = static_cast<int>(*n);
        project_.defaults.retries_set = true;
      }
    }
    if (const YamlEntry* e = d.Find("timeout")) {
      if (auto seconds = ReadDuration(*e, errs)) project_.defaults.timeout_seconds = *seconds;
    }
    if (const YamlEntry* e = d.Find("memory_limit")) {
      if (auto text = ReadString(*e, errs)) {
        if (auto limit = NormalizeMemoryLimit(*text)) {
          project_.defaults.memory_limit = *limit;
        } else {
          errs.At(e->value,
                  "memory_limit: expected a size such as 512MB or 4GB, got '" + *text + "'",
                  e->line);
        }
      }
    }
    if (const YamlEntry* e = d.Find("block_size")) {
      if (auto text = ReadString(*e, errs)) {
        if (std::optional<int64_t> bytes = ParseBlockSize(*text)) {
          project_.defaults.block_size = *bytes;
        } else {
          errs.At(e->value,
                  "block_size: expected one of 16KB, 32KB, 64KB, 128KB or 256KB (the "
                  "warehouse's block size, in KiB), got '" +
                      *text + "'",
                  e->line);
        }
      }
    }
    if (const YamlEntry* e = d.Find("query_threads")) {
      if (auto n = ReadInt(*e, errs, 1)) {
        if (*n > kMaxQueryThreads) {
          errs.At(e->value,
                  "query_threads: expected 1 to " + std::to_string(kMaxQueryThreads) +
                      " (the threads one warehouse statement may run on), got " +
                      std::to_string(*n),
                  e->line);
        } else {
          project_.defaults.query_threads = static_cast<int>(*n);
        }
      }
    }
    if (const YamlEntry* e = d.Find("keep_versions")) {
      if (auto n = ReadInt(*e, errs, 0)) project_.defaults.keep_versions = static_cast<int>(*n);
    }
    if (const YamlEntry* e = d.Find("keep_logs")) {
      if (auto n = ReadInt(*e, errs, 1)) project_.defaults.keep_logs = static_cast<int>(*n);
    }
    if (const YamlEntry* e = d.Find("keep_runs")) {
      if (auto n = ReadInt(*e, errs, 1)) project_.defaults.keep_runs = static_cast<int>(*n);
    }
  }

  // concurrency: {tasks: 16, per_host: 4, pools: {NAME: N}}; 0 = no limit.
  void ReadConcurrency(const YamlEntry& entry, FileErrors& errs) {
    MapReader c(entry.value, kConcurrencyKeys, "concurrency", errs, entry.line);
    ConcurrencySpec& spec = project_.concurrency;
    if (const YamlEntry* e = c.Find("tasks")) {
      if (auto n = ReadInt(*e, errs, 0)) spec.tasks = static_cast<int>(*n);
    }
    if (const YamlEntry* e = c.Find("per_host")) {
      if (auto n = ReadInt(*e, errs, 0)) spec.per_host = static_cast<int>(*n);
    }
    if (const YamlEntry* e = c.Find("pools")) {
      MapReader pools(e->value, {}, "pools", errs, e->line);
      for (const YamlEntry& p : pools.entries()) {
        std::string name = ToLower(Trim(p.key));
        if (name.empty() || name.rfind("host:", 0) == 0) {
          errs.At(p.line, "pools: '" + p.key +
                              "' cannot name a pool (host: pools are each source host's own; "
                              "set their limit with per_host)");
          continue;
        }
        if (auto n = ReadInt(p, errs, 1)) spec.pools[name] = static_cast<int>(*n);
      }
    }
  }

  // Every `pool:` names a pool under concurrency: pools:.
  void CheckPools() {
    std::vector<std::string> defined;
    for (const auto& [name, limit] : project_.concurrency.pools) defined.push_back(name);
    auto check = [&](const std::string& pool, const SourceLoc& loc, int line) {
      if (pool.empty() || project_.concurrency.pools.count(pool)) return;
      std::string hint = DidYouMeanHint(pool, defined);
      errors_.push_back(
          {SourceLoc{loc.file, line},
           "pool: '" + pool + "' is not defined" +
               (hint.empty() ? "; define it in sluice.yaml as concurrency: {pools: {" + pool +
                                   ": N}} (N tasks at once)"
                             : hint)});
    };
    for (const SourceSpec& s : project_.sources) check(s.pool, s.loc, s.pool_line);
    for (const ModelSpec& m : project_.models) check(m.pool, m.loc, m.pool_line);
  }

  std::optional<int64_t> ReadDuration(const YamlEntry& e, FileErrors& errs) {
    if (e.value.IsScalar()) {
      if (auto seconds = ParseDuration(e.value.Scalar())) return seconds;
    }
    std::string got = e.value.IsScalar() ? ", got '" + e.value.Scalar() + "'" : "";
    errs.At(e.value, e.key + ": expected a duration such as 30s, 30m or 2h" + got, e.line);
    return std::nullopt;
  }

  // ---- fields.yaml -------------------------------------------------------

  void LoadFields() {
    const std::string rel = "fields.yaml";
    if (!FileExists(JoinPath(root_, rel))) return;
    project_.has_fields_file = true;
    std::optional<std::string> text = Read(rel);
    if (!text) return;
    FileErrors errs(rel, &errors_);
    std::optional<YAML::Node> doc = ParseYaml(*text, errs);
    if (!doc || doc->IsNull()) return;
    ReadDocument(*doc, errs);  // reports malformed ${secret:...} and non-string keys
    if (doc->IsSequence()) {
      for (const YAML::Node& item : *doc) {
        MapReader m(item, kFieldListKeys, "field", errs);
        if (!m.is_map()) continue;
        const YamlEntry* name = m.Find("field");
        if (name == nullptr) {
          errs.At(item, "missing required key 'field' (the field's name)");
          continue;
        }
        if (auto n = ReadString(*name, errs)) AddField(*n, errs.LineOf(item), m, errs);
      }
      return;
    }
    MapReader top(*doc, {}, "fields.yaml", errs);
    for (const YamlEntry& e : top.entries()) {
      MapReader m(e.value, kFieldKeys, "field '" + e.key + "'", errs, e.line);
      if (m.is_map()) AddField(e.key, e.line, m, errs);
    }
  }

  void AddField(const std::string& name, int line, const MapReader& m, FileErrors& errs) {
    if (project_.fields.count(name)) {
      errs.At(line, "duplicate field '" + name + "' (also defined at " +
                        project_.fields[name].loc.ToString() + ")");
      return;
    }
    FieldSpec field;
    field.name = name;
    field.loc = errs.Loc(line);
    if (const YamlEntry* e = m.Find("type")) {
      if (auto type = ReadString(*e, errs)) {
        if (Contains(KnownFieldTypes(), *type)) {
          field.type = *type;
        } else {
          errs.At(e->value, UnknownWord("type", *type, KnownFieldTypes()), e->line);
        }
      }
    }
    if (const YamlEntry* e = m.Find("description"))
      field.description = ReadString(*e, errs).value_or("");
    if (const YamlEntry* e = m.Find("pattern")) field.pattern = ReadString(*e, errs).value_or("");
    if (const YamlEntry* e = m.Find("values")) {
      if (e->value.IsSequence()) {
        field.values = YamlToJson(e->value);
      } else {
        errs.At(e->value, "values: expected a list (a category's values)", e->line);
      }
    }
    project_.fields[name] = std::move(field);
  }

  // ---- sources -----------------------------------------------------------

  void LoadSources() {
    for (const std::string& file : ListFiles(JoinPath(root_, "sources"), {".yaml", ".yml"})) {
      LoadSource("sources/" + file, Stem(file));
    }
  }

  std::string ReadFormat(const YamlEntry& e, FileErrors& errs) {
    std::optional<std::string> format = ReadString(e, errs);
    if (!format) return "";
    if (Contains(KnownFormats(), *format)) return *format;
    errs.At(e.value, UnknownWord("format", *format, KnownFormats()), e.line);
    return "";
  }

  void CheckTemplateText(const std::string& text, int line, FileErrors& errs) {
    if (auto err = CheckTemplate(text, template_vars_, line)) errs.At(err->line, err->message);
  }

  void LoadSource(const std::string& rel, const std::string& stem) {
    std::optional<std::string> text = Read(rel);
    if (!text) return;
    FileErrors errs(rel, &errors_);
    std::optional<YAML::Node> doc = ParseYaml(*text, errs);
    if (!doc) return;
    SourceSpec source;
    source.loc = SourceLoc{rel, 1};
    source.config = ReadDocument(*doc, errs);
    MapReader top(*doc, kSourceKeys, "source", errs);
    if (!top.is_map()) return;

    int name_line = 1;
    source.name = stem;
    if (const YamlEntry* e = top.Find("name")) {
      name_line = e->line;
      if (auto name = ReadString(*e, errs)) source.name = *name;
    }
    if (!IsLowerIdentifier(source.name)) {
      errs.At(name_line, "source name '" + source.name +
                             "' must be a lower-case identifier ([a-z_][a-z0-9_]*)" +
                             (top.Find("name") ? "" : "; set name: or rename the file"));
    }
    if (const YamlEntry* e = top.Find("description"))
      source.description = ReadString(*e, errs).value_or("");

    const YamlEntry* fetch = top.Find("fetch");
    const YamlEntry* command = top.Find("command");
    const YamlEntry* database = top.Find("database");
    const YamlEntry* stream = top.Find("stream");
    TableSpec database_table;  // database: {table | query} of a single-table source
    int url_line = 1;
    bool is_command = command != nullptr;
    if (const YamlEntry* kind = top.Find("kind")) {
      if (auto k = ReadString(*kind, errs)) {
        if (*k == "command") {
          is_command = true;
          if (command == nullptr) {
            errs.At(kind->line,
                    "kind: command needs command: {run: [program, args...], inputs: [...]}");
          }
        } else if (*k == "database") {
          if (database == nullptr) {
            errs.At(kind->line, "kind: database needs database: {url: ..., table: ...}");
          }
        } else if (*k != "fetch") {
          errs.At(kind->value,
                  "kind: expected fetch (the default), command or database, got '" + *k + "'",
                  kind->line);
        } else if (command != nullptr) {
          errs.At(command->line, "command: belongs to kind: command, not kind: fetch");
        }
      }
    }
    if (stream != nullptr) {
      if (is_command || database != nullptr) {
        errs.At(stream->line, "a source is a stream, a command or a database: one of them");
      }
      if (fetch != nullptr) {
        errs.At(fetch->line, "a stream source has no fetch: (stream: says where it reads)");
      }
      if (const YamlEntry* f = top.Find("format")) {
        errs.At(f->line, "a stream source has no format: each message's JSON fields are columns");
      }
      for (const char* key : {"partition", "tables"}) {
        if (const YamlEntry* e = top.Find(key)) {
          errs.At(e->line, std::string(key) + ": is not supported for stream sources");
        }
      }
      source.format = "messages";
      source.stream = ReadStream(*stream, source.name, errs);
    } else if (database != nullptr) {
      if (is_command) errs.At(database->line, "a source is a command or a database, not both");
      if (fetch != nullptr) {
        errs.At(fetch->line, "a database source has no fetch: (database: says where it reads)");
      }
      if (const YamlEntry* f = top.Find("format")) {
        errs.At(f->line, "a database source has no format: its columns keep the database's types");
      }
      if (const YamlEntry* p = top.Find("partition")) {
        errs.At(p->line,
                "partition: is not supported for database sources yet; read a window with "
                "query: and a var, or the whole table");
      }
      source.format = "database";
      source.database = ReadDatabase(*database, &database_table, errs);
      if (!source.database) source.database = DatabaseSpec{};
    } else if (is_command) {
      if (fetch != nullptr) {
        errs.At(fetch->line, "a command source has no fetch: (its program writes its tables)");
      }
      if (const YamlEntry* f = top.Find("format")) {
        errs.At(f->line, "a command source has no format: its tables are Parquet files");
      }
      if (const YamlEntry* p = top.Find("partition")) {
        errs.At(p->line, "partition: is not supported for command sources yet");
      }
      source.format = "parquet";
      if (command != nullptr) source.command = ReadCommand(*command, errs);
      if (!source.command) source.command = CommandSpec{};
    } else if (fetch == nullptr) {
      errs.At(1, "missing required key 'fetch' (where to collect from, e.g. fetch: {url: ...})");
    } else {
      // An on_file source runs once per file, with var('file') set to it.
      const YamlEntry* sched = top.Find("schedule");
      bool on_file = sched && sched->value.IsMap() && sched->value["on_file"];
      nlohmann::json saved = template_vars_;
      if (on_file && template_vars_.is_object() && !template_vars_.contains("file")) {
        template_vars_["file"] = "";
      }
      url_line = ReadFetch(*fetch, &source.fetch, errs);
      template_vars_ = std::move(saved);
    }

    if (is_command || source.database || source.stream) {
      // parquet, database or messages, set above
    } else if (const YamlEntry* e = top.Find("format")) {
      source.format = ReadFormat(*e, errs);
    } else if (!source.fetch.url.empty()) {
      source.format = GuessFormat(source.fetch.url);
      if (source.format.empty()) {
        errs.At(url_line, "cannot guess the format from the url '" + source.fetch.url +
                              "'; set format: to one of " + Join(KnownFormats(), ", "));
      }
    }
    if (const YamlEntry* e = top.Find("options")) source.format_options = ReadOptions(*e, errs);

    if (const YamlEntry* tables = top.Find("tables")) {
      for (const std::string& key : kSingleTableKeys) {
        if (const YamlEntry* stray = top.Find(key)) {
          errs.At(stray->line,
                  "'" + key + "' belongs under each table when the source lists tables:");
        }
      }
      MapReader entries(tables->value, {}, "tables", errs, tables->line);
      if (entries.is_map() && entries.entries().empty()) {
        errs.At(tables->line, "tables: lists no tables; add one or remove tables:");
      }
      for (const YamlEntry& t : entries.entries()) {
        TableSpec table;
        table.name = t.key;
        table.loc = errs.Loc(t.line);
        if (!IsLowerIdentifier(t.key)) {
          errs.At(t.line,
                  "table name '" + t.key + "' must be a lower-case identifier ([a-z_][a-z0-9_]*)");
        }
        MapReader fields(t.value, kTableKeys, "table '" + t.key + "'", errs, t.line);
        if (!fields.is_map()) continue;
        ReadTable(fields, source, /*top_level=*/false, &table, errs);
        if (source.database) {
          ReadDatabaseTable(fields, &table, errs);
          if (table.db_table.empty() && table.db_query.empty()) {
            // With schema:, a table of that schema.
            table.db_table = source.database->schema.empty()
                                 ? table.name
                                 : source.database->schema + "." + table.name;
          }
        } else {
          for (const char* key : {"table", "query"}) {
            if (const YamlEntry* stray = fields.Find(key)) {
              errs.At(stray->line, std::string(key) + ": belongs to tables of a database source");
            }
          }
        }
        source.tables.push_back(std::move(table));
      }
      if (source.database && database != nullptr &&
          !(database_table.db_table.empty() && database_table.db_query.empty())) {
        errs.At(database->line,
                "with tables:, each table says its own table: or query: (not database:)");
      }
    } else if (source.database && !source.database->schema.empty()) {
      // The schema's tables join when it is listed (orchestrate/catalog.h).
      for (const std::string& key : kSingleTableKeys) {
        if (const YamlEntry* stray = top.Find(key)) {
          errs.At(stray->line, "'" + key +
                                   "' belongs under a table: with schema:, list the tables that "
                                   "need it under tables:");
        }
      }
    } else {
      TableSpec table;
      table.name = source.name;
      table.loc = errs.Loc(name_line);
      ReadTable(top, source, /*top_level=*/true, &table, errs);
      if (source.database) {
        table.db_table = database_table.db_table;
        table.db_query = database_table.db_query;
        if (table.db_table.empty() && table.db_query.empty() && database != nullptr) {
          errs.At(database->line, "database: needs table: (e.g. table: public.orders) or query:");
        }
      }
      source.tables.push_back(std::move(table));
    }

    if (source.database && source.database->cdc) {
      CdcSpec& cdc = *source.database->cdc;
      // The slot's default names the environment too (CaptureSlot): two
      // environments reading one database must not share a slot.
      if (cdc.publication.empty()) cdc.publication = "sluice_" + source.name;
      for (const TableSpec& table : source.tables) {
        std::string why;
        if (table.db_table.empty()) why = "needs table: (a query's changes cannot be captured)";
        if (table.key.empty())
          why = "needs key: (the columns changes are matched on), e.g. key: [id]";
        if (!table.db_cursor.empty()) why = "has incremental: (a captured table needs none)";
        if (!table.columns.empty() || !table.filter.empty() || table.quarantine) {
          why = "cannot map columns:, filter: or quarantine: yet (do it in a model downstream)";
        }
        if (!why.empty()) errs.At(table.loc.line, "cdc: table " + table.name + " " + why);
      }
    }
    if (source.stream) {
      for (const TableSpec& table : source.tables) {
        bool kept = std::any_of(table.columns.begin(), table.columns.end(),
                                [](const ColumnSpec& c) { return c.input == "_stream_seq"; });
        if (!table.key.empty() && table.columns_only && !kept) {
          errs.At(table.loc.line,
                  "stream: with key:, keep _stream_seq (list it under columns:): the last "
                  "message of a key is found by it");
        }
      }
    }
    for (const TableSpec& table : source.tables) {
      if (table.db_chunk_rows <= 0) continue;
      if (table.key.empty()) {
        errs.At(table.db_chunk_line,
                "chunk_rows: needs key: (a full read goes in key order, and resumes after "
                "the last key it stored), e.g. key: [id]");
      }
      if (source.database && source.database->cdc) {
        errs.At(table.db_chunk_line,
                "chunk_rows: a captured table's snapshot is read whole, at one point of the "
                "change stream; remove chunk_rows:");
      }
    }
    for (const TableSpec& table : source.tables) {
      if (table.db_cursor.empty()) continue;
      if (table.key.empty()) {
        errs.At(table.loc.line,
                "incremental: needs key: (rows read again, at the cursor and within the "
                "lookback, are merged on it), e.g. key: [id]");
      }
      if (!table.filter.empty() || table.quarantine) {
        errs.At(table.loc.line,
                "incremental: cannot be combined with filter: or quarantine: (a changed row "
                "left out of a read would keep its old version in the table); filter in a "
                "model downstream instead");
      }
      bool listed = std::any_of(table.columns.begin(), table.columns.end(),
                                [&](const ColumnSpec& c) { return c.input == table.db_cursor; });
      if (table.columns_only && !listed) {
        errs.At(table.loc.line, "incremental: cursor " + table.db_cursor +
                                    " must be kept: list it under columns: (columns_only: true)");
      }
    }
    if (const YamlEntry* e = top.Find("schedule")) source.schedule = ReadSchedule(*e, errs);
    if (const YamlEntry* e = top.Find("partition")) {
      MapReader p(e->value, kPartitionKeys, "partition", errs, e->line);
      if (p.is_map() && !e->value.IsNull()) {
        const YamlEntry* by = p.Find("by");
        if (by == nullptr) {
          errs.At(e->line,
                  "partition: missing required key 'by' (" + Join(kPartitionUnits, ", ") + ")");
        } else if (auto unit = ReadString(*by, errs); unit && !Contains(kPartitionUnits, *unit)) {
          errs.At(by->value, UnknownWord("partition unit", *unit, kPartitionUnits), by->line);
        }
        for (const char* key : {"start", "end"}) {
          const YamlEntry* d = p.Find(key);
          if (d == nullptr) continue;
          std::optional<std::string> date = ReadString(*d, errs);
          int y = 0, mo = 0, day = 0;
          if (date && !(date->size() >= 10 &&
                        std::sscanf(date->c_str(), "%4d-%2d-%2d", &y, &mo, &day) == 3 && mo >= 1 &&
                        mo <= 12 && day >= 1 && day <= 31)) {
            errs.At(d->value,
                    std::string("partition ") + key + ": '" + *date +
                        "' is not a date; write YYYY-MM-DD",
                    d->line);
          }
        }
        source.partition = YamlToJson(e->value);
        if (const YamlEntry* a = p.Find("accumulate")) {
          // Every poll of the current partition is kept and the partition
          // is built from all of them: for feeds that show only the present.
          std::optional<bool> on = ReadBool(*a, errs);
          source.partition["accumulate"] = on.value_or(false);
          if (on.value_or(false) && source.command) {
            errs.At(a->line,
                    "partition: accumulate applies to downloads; a command's output is "
                    "its whole table");
          }
        }
      }
    }
    if (const YamlEntry* e = top.Find("freshness")) {
      MapReader f(e->value, kFreshnessKeys, "freshness", errs, e->line);
      if (f.is_map() && !e->value.IsNull()) {
        for (const YamlEntry& d : f.entries()) (void)ReadDuration(d, errs);
        source.freshness = YamlToJson(e->value);
      }
    }
    if (const YamlEntry* e = top.Find("tags")) {
      source.tags = ReadStringList(*e, errs, "a list of tags").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = top.Find("pool")) {
      source.pool = ToLower(Trim(ReadString(*e, errs).value_or("")));
      source.pool_line = e->line;
    }

    source_name_locs_.push_back(errs.Loc(name_line));
    project_.sources.push_back(std::move(source));
  }

  // command: {run: [program, args], env: {NAME: value}, inputs: [assets], timeout, always_run}
  std::optional<CommandSpec> ReadCommand(const YamlEntry& entry, FileErrors& errs) {
    CommandSpec spec;
    spec.loc = errs.Loc(entry.line);
    MapReader m(entry.value, kCommandKeys, "command", errs, entry.line);
    if (!m.is_map()) return std::nullopt;
    const YamlEntry* run = m.Find("run");
    if (run == nullptr || !run->value.IsSequence() || run->value.size() == 0) {
      errs.At(run ? run->line : entry.line,
              "command: run: expected the program and its arguments as a list, e.g. "
              "run: [python3, scripts/enrich.py, --fast]");
    } else if (auto argv = ReadStringList(*run, errs, "a list of strings")) {
      spec.run = *argv;
      for (const std::string& arg : spec.run) {
        if (arg.find("${secret:") != std::string::npos) {
          errs.At(run->line,
                  "run: a secret in the arguments would show in every process listing; pass it "
                  "in env: {NAME: \"${secret:...}\"} instead");
          break;
        }
      }
    }
    if (const YamlEntry* e = m.Find("env")) {
      MapReader env(e->value, {}, "env", errs, e->line);
      for (const YamlEntry& v : env.entries()) {
        bool name_ok = !v.key.empty() && !std::isdigit(static_cast<unsigned char>(v.key[0])) &&
                       std::all_of(v.key.begin(), v.key.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                       });
        if (!name_ok) {
          errs.At(v.line, "env: '" + v.key + "' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
          continue;
        }
        if (StartsWith(v.key, "SLUICE_")) {
          errs.At(v.line, "env: names starting SLUICE_ are Sluice's own (inputs, output folder)");
          continue;
        }
        if (!v.value.IsScalar()) {
          errs.At(v.line, "env: " + v.key + ": expected a string");
          continue;
        }
        spec.env[v.key] = v.value.Scalar();
      }
    }
    if (const YamlEntry* e = m.Find("inputs")) {
      if (auto list = ReadStringList(*e, errs, "a list of asset names")) {
        for (const std::string& name : *list) spec.inputs.push_back(ToLower(Trim(name)));
      }
    }
    if (const YamlEntry* e = m.Find("timeout")) {
      if (auto seconds = ReadDuration(*e, errs)) spec.timeout_seconds = *seconds;
    }
    if (const YamlEntry* e = m.Find("always_run")) {
      if (auto b = ReadBool(*e, errs)) spec.always_run = *b;
    }
    return spec;
  }

  // database: {url, table | query, timeout}. The url is checked here when
  // it is written out; a ${secret:...} one when the run resolves it.
  std::optional<DatabaseSpec> ReadDatabase(const YamlEntry& entry, TableSpec* single,
                                           FileErrors& errs) {
    DatabaseSpec spec;
    spec.loc = errs.Loc(entry.line);
    MapReader m(entry.value, kDatabaseKeys, "database", errs, entry.line);
    if (!m.is_map()) return std::nullopt;
    ReadDatabaseTable(m, single, errs);
    if (const YamlEntry* u = m.Find("url")) {
      spec.url = ReadString(*u, errs).value_or("");
      spec.loc = errs.Loc(u->line);
      static const std::vector<std::string> kSchemes = {"postgresql://", "postgres://", "mysql://",
                                                        "mariadb://", "sqlite:"};
      bool known = HasSecretRef(spec.url) || spec.url.find("{{") != std::string::npos ||
                   spec.url.find("dbname=") != std::string::npos ||
                   std::any_of(kSchemes.begin(), kSchemes.end(),
                               [&](const std::string& p) { return StartsWith(spec.url, p); });
      if (!spec.url.empty() && !known) {
        errs.At(u->line,
                "database: url: expected postgresql://, mysql:// (MariaDB too) or "
                "sqlite:PATH, usually kept in a secret: url: ${secret:SHOP_DB}");
      }
      // user:password@ in the authority (before the path or query).
      size_t scheme_end = spec.url.find("://");
      std::string authority;
      if (scheme_end != std::string::npos) {
        authority = spec.url.substr(scheme_end + 3);
        authority = authority.substr(0, authority.find_first_of("/?#"));
      }
      size_t at = authority.rfind('@');
      if (!HasSecretRef(spec.url) && at != std::string::npos &&
          authority.substr(0, at).find(':') != std::string::npos) {
        errs.At(u->line,
                "database: url: a password written in the project would be in git and "
                "in every copy; put the url in a secret: url: ${secret:SHOP_DB}");
      }
      CheckTemplateText(spec.url, u->line, errs);
    } else {
      errs.At(entry.line, "database: missing required key 'url' (e.g. url: ${secret:SHOP_DB})");
    }
    if (const YamlEntry* e = m.Find("timeout")) {
      if (auto seconds = ReadDuration(*e, errs)) spec.timeout_seconds = *seconds;
    }
    if (const YamlEntry* e = m.Find("cdc")) spec.cdc = ReadCdc(*e, spec.url, errs);
    if (const YamlEntry* e = m.Find("schema")) {
      spec.schema = Trim(ReadString(*e, errs).value_or(""));
      if (spec.schema.empty()) errs.At(e->line, "schema: is empty");
      if (!single->db_table.empty() || !single->db_query.empty()) {
        errs.At(e->line, "schema: reads every table of a schema; remove table: or query: here");
      }
      if (StartsWith(spec.url, "sqlite:")) {
        errs.At(e->line,
                "schema: lists the tables of a PostgreSQL or MariaDB schema; list "
                "SQLite's under tables:");
      }
    }
    for (const char* key : {"include", "exclude"}) {
      const YamlEntry* e = m.Find(key);
      if (!e) continue;
      std::vector<std::string> globs = ReadStringList(*e, errs, "a list of table name globs")
                                           .value_or(std::vector<std::string>{});
      if (spec.schema.empty()) errs.At(e->line, std::string(key) + ": applies with schema:");
      (std::string_view(key) == "include" ? spec.include : spec.exclude) = std::move(globs);
    }
    return spec;
  }

  // stream: {url, stream, subject, consumer, max_messages, wait, ack_wait}.
  StreamSpec ReadStream(const YamlEntry& entry, const std::string& source, FileErrors& errs) {
    StreamSpec spec;
    spec.loc = errs.Loc(entry.line);
    (void)source;  // the consumer's default names the environment too (the runner's)
    MapReader m(entry.value, kStreamKeys, "stream", errs, entry.line);
    if (!m.is_map()) return spec;
    if (const YamlEntry* u = m.Find("url")) {
      spec.url = ReadString(*u, errs).value_or("");
      spec.loc = errs.Loc(u->line);
      CheckTemplateText(spec.url, u->line, errs);
      if (!HasSecretRef(spec.url) && spec.url.find("{{") == std::string::npos &&
          !StartsWith(spec.url, "nats://") && !StartsWith(spec.url, "tls://")) {
        errs.At(u->line,
                "stream: url: expected nats://host:4222 (or tls://), usually kept in a "
                "secret: url: ${secret:NATS_URL}");
      }
      if (!HasSecretRef(spec.url) && spec.url.find('@') != std::string::npos) {
        errs.At(u->line,
                "stream: url: credentials written in the project would be in git; put "
                "the url in a secret: url: ${secret:NATS_URL}");
      }
    } else {
      errs.At(entry.line, "stream: missing required key 'url' (e.g. url: ${secret:NATS_URL})");
    }
    if (const YamlEntry* e = m.Find("stream")) {
      spec.stream = ReadString(*e, errs).value_or("");
    } else {
      errs.At(entry.line, "stream: missing required key 'stream' (the JetStream stream's name)");
    }
    if (const YamlEntry* e = m.Find("subject")) spec.subject = ReadString(*e, errs).value_or("");
    if (const YamlEntry* e = m.Find("consumer")) {
      spec.consumer = ReadString(*e, errs).value_or("");
      if (spec.consumer.empty() || spec.consumer.find_first_of(" .*>\t") != std::string::npos) {
        errs.At(e->line, "stream: consumer: a durable name, without spaces, '.', '*' or '>'");
      }
    }
    if (const YamlEntry* e = m.Find("max_messages")) {
      if (auto n = ReadInt(*e, errs, 1)) spec.max_messages = *n;
    }
    if (const YamlEntry* e = m.Find("wait")) {
      if (auto seconds = ReadDuration(*e, errs)) spec.wait_ms = *seconds * 1000;
    }
    if (const YamlEntry* e = m.Find("ack_wait")) {
      if (auto seconds = ReadDuration(*e, errs)) spec.ack_wait_seconds = *seconds;
    }
    return spec;
  }

  // cdc: true | {slot, publication, max_changes, binlog, stream, publish_every}:
  // PostgreSQL and MariaDB.
  std::optional<CdcSpec> ReadCdc(const YamlEntry& e, const std::string& url, FileErrors& errs) {
    CdcSpec cdc;
    cdc.loc = errs.Loc(e.line);
    if (e.value.IsScalar()) {
      std::optional<bool> on = ReadBool(e, errs);
      if (!on || !*on) return std::nullopt;
    } else {
      MapReader m(e.value, kCdcKeys, "cdc", errs, e.line);
      if (!m.is_map()) return std::nullopt;
      for (const char* key : {"slot", "publication"}) {
        const YamlEntry* f = m.Find(key);
        if (!f) continue;
        std::string name = ReadString(*f, errs).value_or("");
        if (!IsLowerIdentifier(name)) {
          errs.At(f->line, std::string("cdc: ") + key +
                               ": must be a lower-case identifier ([a-z_][a-z0-9_]*), as "
                               "PostgreSQL's slot names are");
        }
        (std::string_view(key) == "slot" ? cdc.slot : cdc.publication) = name;
      }
      if (const YamlEntry* f = m.Find("binlog")) {
        // MariaDB's form (DESIGN §2): the URL says which log is read; this
        // only asks that it be a binlog.
        if (std::optional<bool> on = ReadBool(*f, errs); on && !*on) {
          errs.At(f->line, "cdc: binlog: false reads nothing; remove cdc: to read tables whole");
        } else if (on) {
          cdc.binlog = true;
        }
      }
      if (const YamlEntry* f = m.Find("stream")) {
        if (std::optional<bool> on = ReadBool(*f, errs)) cdc.stream = *on;
      }
      if (const YamlEntry* f = m.Find("publish_every")) {
        if (auto seconds = ReadDuration(*f, errs)) cdc.publish_every_seconds = *seconds;
      }
      if (const YamlEntry* f = m.Find("max_changes")) {
        if (auto n = ReadInt(*f, errs, 1)) {
          if (*n > 2147483647) {
            errs.At(f->line, "cdc: max_changes: at most 2147483647");
          } else {
            cdc.max_changes = *n;
          }
        }
      }
    }
    bool postgres = StartsWith(url, "postgresql://") || StartsWith(url, "postgres://") ||
                    url.find("dbname=") != std::string::npos;
    bool mariadb = StartsWith(url, "mysql://") || StartsWith(url, "mariadb://");
    const bool literal = !url.empty() && !HasSecretRef(url) && url.find("{{") == std::string::npos;
    if (literal && !postgres && !mariadb) {
      errs.At(e.line,
              "cdc: reads PostgreSQL's logical decoding or MariaDB's binlog; for SQLite read "
              "tables whole or with incremental:");
    } else if (literal && postgres && cdc.binlog) {
      errs.At(e.line,
              "cdc: binlog: is MariaDB's; PostgreSQL's changes are read with slot: and "
              "publication:");
    }
    return cdc;
  }

  // A database table's relation or query: `table:` / `query:` where `m`
  // has them (under database: for a single table, or the table's entry).
  void ReadDatabaseTable(const MapReader& m, TableSpec* table, FileErrors& errs) {
    const YamlEntry* t = m.Find("table");
    const YamlEntry* q = m.Find("query");
    if (t && q) errs.At(q->line, "set table: or query:, not both");
    if (t) table->db_table = Trim(ReadString(*t, errs).value_or(""));
    if (q) {
      table->db_query = ReadString(*q, errs).value_or("");
      CheckTemplateText(table->db_query, q->line, errs);
      if (Trim(table->db_query).empty()) errs.At(q->line, "query: is empty");
    }
    if (t && table->db_table.empty()) errs.At(t->line, "table: is empty");
  }

  // Returns the line of the url, for later messages about it.
  int ReadFetch(const YamlEntry& entry, FetchSpec* fetch, FileErrors& errs) {
    fetch->loc = errs.Loc(entry.line);
    MapReader m(entry.value, kFetchKeys, "fetch", errs, entry.line);
    if (!m.is_map()) return entry.line;
    for (const YamlEntry& e : m.entries()) fetch->key_lines[e.key] = e.line;
    int url_line = entry.line;
    if (const YamlEntry* e = m.Find("url")) {
      url_line = errs.LineOf(e->value, e->line);
      if (auto url = ReadString(*e, errs)) {
        fetch->url = Trim(*url);
        if (fetch->url.empty()) errs.At(url_line, "fetch: url must not be empty");
        CheckTemplateText(fetch->url, url_line, errs);
      }
    } else {
      errs.At(entry.line, "fetch: missing required key 'url' (http(s)://, file:// or a path)");
    }
    if (const YamlEntry* e = m.Find("headers")) {
      MapReader headers(e->value, {}, "headers", errs, e->line);
      for (const YamlEntry& h : headers.entries()) {
        if (auto value = ReadString(h, errs)) {
          CheckTemplateText(*value, errs.LineOf(h.value, h.line), errs);
          fetch->headers[h.key] = *value;
        }
      }
    }
    if (const YamlEntry* e = m.Find("paginate")) {
      if (e->value.IsScalar()) {
        fetch->paginate = nlohmann::json{{"type", e->value.Scalar()}};
      } else if (e->value.IsMap()) {
        fetch->paginate = YamlToJson(e->value);
      } else {
        errs.At(e->value, "paginate: expected {type: " + Join(kPaginateTypes, "|") + ", ...}",
                e->line);
      }
      auto type = fetch->paginate.find("type");
      if (fetch->paginate.is_object() && type != fetch->paginate.end()) {
        std::string t = type->is_string() ? type->get<std::string>() : type->dump();
        if (!Contains(kPaginateTypes, t)) {
          errs.At(e->value, UnknownWord("paginate type", t, kPaginateTypes), e->line);
        }
      }
    }
    // Durations, rates and auth are checked by the fetcher's ParseFetchSettings.
    if (const YamlEntry* e = m.Find("retries")) (void)ReadInt(*e, errs, 0);
    if (const YamlEntry* e = m.Find("max_bytes")) (void)ReadInt(*e, errs, 1);
    if (const YamlEntry* e = m.Find("expect")) {
      MapReader expect(e->value, kExpectKeys, "expect", errs, e->line);
      if (const YamlEntry* b = expect.Find("min_bytes")) (void)ReadInt(*b, errs, 0);
    }
    for (const YamlEntry& e : m.entries()) {
      if (e.key == "url" || e.key == "headers" || e.key == "paginate") continue;
      fetch->options[e.key] = YamlToJson(e.value);
    }
    if (const YamlEntry* e = m.Find("ca_file")) {
      // A private CA's certificates (PEM), relative to the project.
      if (auto path = ReadString(*e, errs)) {
        fetch->options["ca_file"] = Abs(*path);
        if (!fs::exists(Abs(*path))) {
          errs.At(e->line, "fetch.ca_file: no file " + *path + " (PEM certificates to trust)");
        }
      }
    }
    return url_line;
  }

  nlohmann::json ReadOptions(const YamlEntry& e, FileErrors& errs) {
    MapReader m(e.value, kDecoderOptions, "options", errs, e.line);
    nlohmann::json out = nlohmann::json::object();
    for (const YamlEntry& o : m.entries()) out[o.key] = YamlToJson(o.value);
    // Options with a fixed set of values are checked here, not at run time.
    static const std::map<std::string, std::vector<std::string>> kChoices = {
        {"ragged", {"report", "pad"}}, {"bad_rows", {"fail", "skip"}}};
    for (const YamlEntry& o : m.entries()) {
      auto choices = kChoices.find(o.key);
      if (choices == kChoices.end()) continue;
      const nlohmann::json& v = out[o.key];
      std::string text = v.is_string() ? v.get<std::string>() : v.dump();
      if (std::find(choices->second.begin(), choices->second.end(), text) ==
          choices->second.end()) {
        errs.At(o.line, "options." + o.key + ": '" + text + "'" +
                            DidYouMeanHint(text, choices->second) + "; use " +
                            Join(choices->second, " or "));
      }
    }
    return out;
  }

  // Reads one table's keys from m: a `tables:` entry, or the source's own
  // mapping when top_level (then format, options, tags and description are
  // the source's and were read already).
  void ReadTable(const MapReader& m, const SourceSpec& source, bool top_level, TableSpec* table,
                 FileErrors& errs) {
    bool zip = source.format == "zip";
    if (const YamlEntry* e = m.Find("member")) {
      if (auto member = ReadString(*e, errs)) {
        table->member = *member;
        if (!zip) errs.At(e->line, "member: only applies to zip sources (format: zip)");
      }
    } else if (zip) {
      errs.At(table->loc.line,
              top_level ? "a zip source needs member: (the file inside the zip), or tables: "
                          "with a member each"
                        : "table '" + table->name +
                              "' of a zip source needs member: (the file inside the zip)");
    }
    // A table's format is the source's, or for a zip member its extension's,
    // unless the table says otherwise.
    table->format = zip ? GuessFormat(table->member) : source.format;
    const YamlEntry* format = top_level ? nullptr : m.Find("format");
    if (format != nullptr) {
      table->format = ReadFormat(*format, errs);
    } else if (zip && table->format.empty() && !table->member.empty()) {
      errs.At(table->loc.line, "cannot guess the format of member '" + table->member +
                                   "'; set format: to one of " + Join(KnownFormats(), ", "));
    }
    table->format_options = source.format_options;
    if (!top_level) {
      if (const YamlEntry* e = m.Find("options"))
        table->format_options.update(ReadOptions(*e, errs));
      if (const YamlEntry* e = m.Find("tags")) {
        table->tags =
            ReadStringList(*e, errs, "a list of tags").value_or(std::vector<std::string>{});
      }
      if (const YamlEntry* e = m.Find("description")) {
        table->description = ReadString(*e, errs).value_or("");
      }
    } else {
      table->description = source.description;
    }
    if (const YamlEntry* e = m.Find("incremental")) {
      if (source.format != "database") {
        errs.At(e->line,
                "incremental: reads a database table bit by bit; it applies to database "
                "sources (a model's is materialized: incremental)");
      } else {
        MapReader inc(e->value, kIncrementalKeys, "incremental", errs, e->line);
        if (inc.is_map()) {
          if (const YamlEntry* c = inc.Find("cursor")) {
            table->db_cursor = Trim(ReadString(*c, errs).value_or(""));
          }
          if (table->db_cursor.empty()) {
            errs.At(e->line,
                    "incremental: needs cursor: (a column that grows with each change, "
                    "e.g. cursor: updated_at)");
          }
          if (const YamlEntry* k = inc.Find("key_scan")) {
            if (auto seconds = ReadDuration(*k, errs)) table->db_key_scan_seconds = *seconds;
          }
          if (const YamlEntry* l = inc.Find("lookback")) {
            if (auto seconds = ReadDuration(*l, errs)) table->db_lookback_seconds = *seconds;
          }
        }
      }
    }
    if (const YamlEntry* e = m.Find("chunk_rows")) {
      if (source.format != "database") {
        errs.At(e->line,
                "chunk_rows: reads a database table in chunks; it applies to database "
                "sources");
      } else if (auto n = ReadInt(*e, errs, 1)) {
        table->db_chunk_rows = *n;
        table->db_chunk_line = e->line;
      }
    }
    if (const YamlEntry* e = m.Find("key")) {
      table->key =
          ReadStringList(*e, errs, "a list of column names").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("columns")) ReadColumns(*e, table, errs);
    if (const YamlEntry* e = m.Find("columns_only")) {
      table->columns_only = ReadBool(*e, errs).value_or(false);
    }
    if (const YamlEntry* e = m.Find("null_values")) {
      table->null_values =
          ReadStringList(*e, errs, "a list of strings").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("filter")) table->filter = ReadString(*e, errs).value_or("");
    if (const YamlEntry* e = m.Find("quarantine")) {
      table->quarantine = ReadBool(*e, errs).value_or(false);
      if (!m.Find("columns")) {
        errs.At(e->line, "quarantine: applies to tables with columns: (the cleaning phases)");
      }
    }
    if (const YamlEntry* e = m.Find("skip_patterns")) {
      table->skip_patterns = ReadStringList(*e, errs, "a list of regular expressions")
                                 .value_or(std::vector<std::string>{});
      for (const std::string& p : table->skip_patterns) {
        try {
          std::regex re(p, std::regex::ECMAScript);
        } catch (const std::regex_error&) {
          errs.At(e->line, "skip_patterns: '" + p + "' is not a valid regular expression");
        }
      }
    }
    if (const YamlEntry* e = m.Find("checks")) table->checks = ReadChecks(*e, errs);
  }

  void ReadColumns(const YamlEntry& entry, TableSpec* table, FileErrors& errs) {
    MapReader m(entry.value, {}, "columns", errs, entry.line);
    for (const YamlEntry& c : m.entries()) {
      ColumnSpec column;
      column.input = c.key;
      column.field = c.key;
      column.loc = errs.Loc(c.line);
      if (c.value.IsScalar()) {
        column.field = c.value.Scalar();
      } else if (c.value.IsMap()) {
        MapReader fields(c.value, kColumnKeys, "column '" + c.key + "'", errs, c.line);
        for (const YamlEntry& f : fields.entries()) {
          if (f.key == "field") {
            column.field = ReadString(f, errs).value_or(c.key);
          } else if (f.key == "type") {
            if (auto type = ReadString(f, errs)) {
              if (Contains(KnownFieldTypes(), *type)) {
                column.type = *type;
              } else {
                errs.At(f.value, UnknownWord("type", *type, KnownFieldTypes()), f.line);
              }
            }
          } else {
            if (f.key == "range" && !(f.value.IsSequence() && f.value.size() == 2)) {
              errs.At(f.value, "range: expected [min, max]", f.line);
            } else if ((f.key == "values" || f.key == "concat") && !f.value.IsSequence()) {
              errs.At(f.value, f.key + ": expected a list", f.line);
            } else if (f.key == "patch" && !f.value.IsMap()) {
              errs.At(f.value, "patch: expected a mapping of pattern: replacement", f.line);
            } else if (f.key == "patch") {
              nlohmann::json patches = YamlToJson(f.value);
              for (auto it = patches.begin(); it != patches.end(); ++it) {
                try {
                  std::regex re(it.key(), std::regex::ECMAScript);
                } catch (const std::regex_error&) {
                  errs.At(f.line, "patch: '" + it.key() + "' is not a valid regular expression");
                }
              }
            } else if (f.key == "formats") {
              (void)ReadStringList(f, errs, "a list of formats such as [\"%d/%m/%Y\"]");
            } else if (f.key == "description") {
              (void)ReadString(f, errs);
            }
            column.options[f.key] = YamlToJson(f.value);
          }
        }
      } else if (!c.value.IsNull()) {
        errs.At(c.value, "column '" + c.key + "': expected a field name or a mapping", c.line);
      }
      if (project_.has_fields_file) {
        auto field = project_.fields.find(column.field);
        if (field == project_.fields.end()) {
          std::vector<std::string> names;
          names.reserve(project_.fields.size());
          for (const auto& [name, spec] : project_.fields) names.push_back(name);
          errs.At(c.line, "field '" + column.field + "' is not defined in fields.yaml" +
                              DidYouMeanHint(column.field, names));
        } else if (column.type.empty()) {
          column.type = field->second.type;
        }
      }
      bool field_values =
          project_.fields.count(column.field) && !project_.fields.at(column.field).values.empty();
      if (column.type == "category" && !column.options.contains("values") && !field_values) {
        errs.At(c.line, "column '" + c.key +
                            "': type category needs values: [...] (here or in fields.yaml)");
      }
      if (column.options.contains("value") && column.options.contains("concat")) {
        errs.At(c.line, "column '" + c.key + "': a constant value: takes no concat:");
      }
      table->columns.push_back(std::move(column));
    }
  }

  // schedule: "0 * * * *" | "@hourly" | {every: 20s} | {after: [a, b]} |
  // {on_file: "inbox/*.csv"} | {cron: ..., timezone: ..., misfire: ..., max_catch_up: N}
  ScheduleSpec ReadSchedule(const YamlEntry& e, FileErrors& errs) {
    ScheduleSpec spec;
    spec.loc = errs.Loc(e.line);
    auto read_cron = [&](const YAML::Node& value, int line) {
      std::string text = Trim(value.Scalar());
      Result<CronExpr> cron = CronExpr::Parse(text);
      if (!cron.ok()) {
        errs.At(value,
                "schedule: " + cron.status().message() +
                    " (a cron line, @hourly/@daily/@weekly/@monthly/@yearly, {every: 20s}, "
                    "{after: [asset]} or {on_file: \"inbox/*.csv\"})",
                line);
        return;
      }
      spec.kind = ScheduleKind::kCron;
      spec.cron = text;
    };
    if (e.value.IsScalar()) {
      read_cron(e.value, e.line);
      return spec;
    }
    MapReader m(e.value, kScheduleKeys, "schedule", errs, e.line);
    if (!m.is_map()) return spec;
    int kinds = 0;
    for (const char* key : {"cron", "every", "after", "on_file"}) kinds += m.Find(key) != nullptr;
    if (kinds != 1) {
      errs.At(e.line, "schedule: give exactly one of cron:, every:, after: or on_file:");
      return spec;
    }
    if (const YamlEntry* c = m.Find("cron")) {
      if (ReadString(*c, errs)) read_cron(c->value, c->line);
    } else if (const YamlEntry* every = m.Find("every")) {
      if (auto seconds = ReadDuration(*every, errs)) {
        if (*seconds <= 0) {
          errs.At(every->value, "every: expected a positive duration such as 20s", every->line);
        } else {
          spec.kind = ScheduleKind::kEvery;
          spec.every_seconds = *seconds;
        }
      }
    } else if (const YamlEntry* after = m.Find("after")) {
      if (auto names = ReadStringList(*after, errs, "a list of asset names")) {
        if (names->empty()) {
          errs.At(after->value, "after: name at least one asset", after->line);
        } else {
          spec.kind = ScheduleKind::kAfter;
          for (const std::string& name : *names) spec.after.push_back(ToLower(Trim(name)));
        }
      }
    } else if (const YamlEntry* glob = m.Find("on_file")) {
      if (auto pattern = ReadString(*glob, errs)) {
        if (Trim(*pattern).empty()) {
          errs.At(glob->value, "on_file: expected a file pattern such as inbox/*.csv", glob->line);
        } else {
          spec.kind = ScheduleKind::kOnFile;
          spec.on_file = Trim(*pattern);
        }
      }
    }
    if (const YamlEntry* tz = m.Find("timezone")) {
      if (auto zone = ReadString(*tz, errs)) {
        Result<TimeZone> found = TimeZone::Find(Trim(*zone));
        if (!found.ok()) {
          errs.At(tz->value, "timezone: " + found.status().message(), tz->line);
        } else if (spec.kind != ScheduleKind::kCron && kinds == 1 && !m.Find("cron")) {
          errs.At(tz->line, "timezone: applies to cron: schedules only");
        } else {
          spec.timezone = Trim(*zone);
        }
      }
    }
    if (const YamlEntry* mf = m.Find("misfire")) {
      if (auto policy = ReadString(*mf, errs)) {
        if (*policy == "skip") {
          spec.misfire = Misfire::kSkip;
        } else if (*policy == "latest") {
          spec.misfire = Misfire::kLatest;
        } else if (*policy == "all") {
          spec.misfire = Misfire::kAll;
        } else {
          errs.At(mf->value, UnknownWord("misfire policy", *policy, kMisfirePolicies), mf->line);
        }
      }
    }
    if (const YamlEntry* cap = m.Find("max_catch_up")) {
      if (auto n = ReadInt(*cap, errs, 1)) spec.max_catch_up = static_cast<int>(*n);
    }
    return spec;
  }

  std::vector<CheckSpec> ReadChecks(const YamlEntry& entry, FileErrors& errs) {
    std::vector<CheckSpec> out;
    if (!entry.value.IsSequence()) {
      errs.At(entry.value, "checks: expected a list, e.g. - not_null: [id]", entry.line);
      return out;
    }
    for (const YAML::Node& item : entry.value) {
      int line = errs.LineOf(item, entry.line);
      if (!item.IsMap()) {
        std::string got = item.IsScalar() ? " '" + item.Scalar() + "'" : "";
        errs.At(line, "a check is a mapping such as - not_null: [id], got" +
                          (got.empty() ? std::string(" a list") : got));
        continue;
      }
      CheckSpec check;
      check.loc = errs.Loc(line);
      YAML::Node args;
      bool ok = true;
      for (const auto& kv : item) {
        if (!kv.first.IsScalar()) {  // reported by ReadDocument
          ok = false;
          continue;
        }
        const std::string& key = kv.first.Scalar();
        int key_line = errs.LineOf(kv.first, line);
        if (key == "severity") {
          std::string sev = kv.second.IsScalar() ? kv.second.Scalar() : "";
          if (sev == "error") {
            check.severity = Severity::kError;
          } else if (sev == "warn") {
            check.severity = Severity::kWarn;
          } else {
            errs.At(key_line, "severity: expected error or warn, got '" + sev + "'" +
                                  DidYouMeanHint(sev, {"error", "warn"}));
            ok = false;
          }
        } else if (key == "name") {
          if (kv.second.IsScalar()) {
            check.name = kv.second.Scalar();
          } else {
            errs.At(key_line, "name: expected a string");
            ok = false;
          }
        } else if (Contains(KnownCheckTypes(), key)) {
          if (!check.type.empty()) {
            errs.At(key_line, "a check has one type; found '" + check.type + "' and '" + key +
                                  "' (write them as two - items)");
            ok = false;
            continue;
          }
          check.type = key;
          args = kv.second;
        } else {
          errs.At(key_line, UnknownWord("check", key, KnownCheckTypes()));
          ok = false;
        }
      }
      if (!ok) continue;
      if (check.type.empty()) {
        errs.At(line, "check has no type; write e.g. - not_null: [column]");
        continue;
      }
      if (!ShapeCheck(&check, args, line, errs)) continue;
      out.push_back(std::move(check));
    }
    return out;
  }

  // Validates and normalises a check's arguments; sets its default name.
  bool ShapeCheck(CheckSpec* check, const YAML::Node& args, int line, FileErrors& errs) {
    YamlEntry e{check->type, YAML::Node(), args, errs.LineOf(args, line)};
    std::string default_name = check->type;
    if (check->type == "not_null" || check->type == "unique") {
      auto columns = ReadStringList(e, errs, "a column name or a list of column names");
      if (!columns) return false;
      if (columns->empty()) {
        errs.At(e.line, check->type + ": name at least one column");
        return false;
      }
      check->args = *columns;
      default_name = check->type + "(" + Join(*columns, ",") + ")";
    } else if (check->type == "row_count") {
      MapReader m(args, kRowCountKeys, "row_count", errs, e.line);
      if (!m.is_map() || args.IsNull()) {
        if (args.IsNull()) errs.At(e.line, "row_count: expected {min: N, max: N}");
        return false;
      }
      bool ok = true;
      for (const YamlEntry& b : m.entries()) ok = ReadInt(b, errs, 0).has_value() && ok;
      if (!ok) return false;
      check->args = YamlToJson(args);
    } else if (check->type == "accepted_values") {
      MapReader m(args, kAcceptedValuesKeys, "accepted_values", errs, e.line);
      if (!m.is_map()) return false;
      const YamlEntry* column = m.Find("column");
      const YamlEntry* values = m.Find("values");
      if (column == nullptr || values == nullptr) {
        errs.At(e.line, "accepted_values: expected {column: NAME, values: [...]}");
        return false;
      }
      auto name = ReadString(*column, errs);
      if (!name) return false;
      if (!values->value.IsSequence()) {
        errs.At(values->value, "values: expected a list", values->line);
        return false;
      }
      check->args = YamlToJson(args);
      default_name = check->type + "(" + *name + ")";
    } else if (check->type == "freshness") {
      MapReader m(args, {"column", "warn_after", "error_after"}, "freshness", errs, e.line);
      if (!m.is_map() || args.IsNull() || !m.Find("column") ||
          (!m.Find("warn_after") && !m.Find("error_after"))) {
        errs.At(e.line,
                "freshness: expected {column: a timestamp or date column, warn_after: 2h, "
                "error_after: 1d} (a source's own freshness goes under freshness: at its top "
                "level)");
        return false;
      }
      for (const char* key : {"warn_after", "error_after"}) {
        if (const YamlEntry* d = m.Find(key)) {
          if (!ReadDuration(*d, errs)) return false;
        }
      }
      check->args = YamlToJson(args);
      default_name = "freshness(" + check->args.value("column", "") + ")";
    } else {
      check->args = YamlToJson(args);
      if (check->args.is_object() && check->args.contains("column") &&
          check->args["column"].is_string()) {
        default_name = check->type + "(" + check->args["column"].get<std::string>() + ")";
      }
    }
    if (!CheckArguments(*check, e.line, errs)) return false;
    if (check->name.empty()) check->name = default_name;
    return true;
  }

  // What each check type needs, said at validate time rather than as a
  // binder error at run time.
  bool CheckArguments(const CheckSpec& check, int line, FileErrors& errs) {
    const nlohmann::json& a = check.args;
    auto has_column = [&] {
      return a.is_object() && a.contains("column") && a["column"].is_string();
    };
    if (check.type == "range") {
      if (!has_column() || (!a.contains("min") && !a.contains("max"))) {
        errs.At(line, "range: expected {column: NAME, min: N, max: N} (min or max or both)");
        return false;
      }
      for (const char* bound : {"min", "max"}) {
        if (a.contains(bound) && !a[bound].is_number()) {
          errs.At(line,
                  std::string("range: ") + bound + " must be a number, got " + a[bound].dump());
          return false;
        }
      }
      if (a.contains("min") && a.contains("max") &&
          a["min"].get<double>() > a["max"].get<double>()) {
        errs.At(line, "range: min (" + a["min"].dump() + ") is greater than max (" +
                          a["max"].dump() + "); no value could pass");
        return false;
      }
    } else if (check.type == "regex") {
      if (!has_column() || !a.contains("pattern") || !a["pattern"].is_string()) {
        errs.At(line, "regex: expected {column: NAME, pattern: REGEX}");
        return false;
      }
    } else if (check.type == "relationships") {
      std::string to = a.is_object() ? a.value("to", "") : "";
      size_t dot = to.rfind('.');
      if (!has_column() || dot == std::string::npos || dot == 0 || dot + 1 == to.size()) {
        errs.At(line, "relationships: expected {column: NAME, to: TABLE.COLUMN}");
        return false;
      }
    } else if (check.type == "expression" || check.type == "sql") {
      std::string key = check.type == "sql" ? "query" : "expression";
      std::string text = a.is_string()   ? a.get<std::string>()
                         : a.is_object() ? a.value(key, "")
                                         : "";
      if (Trim(text).empty()) {
        errs.At(line, check.type + ": expected the SQL text (a string, or {" + key + ": ...})");
        return false;
      }
    }
    return true;
  }

  // ---- models ------------------------------------------------------------

  void LoadModels() {
    const std::string dir = JoinPath(root_, "models");
    std::vector<std::string> files = ListFiles(dir, {".sql", ".yaml", ".yml"});
    std::vector<std::string> sql_files;
    for (const std::string& file : files) {
      if (EndsWith(file, ".sql")) sql_files.push_back("models/" + file);
    }
    std::vector<Result<std::string>> texts = ReadFiles(sql_files);
    project_.models.reserve(sql_files.size());
    std::unordered_map<std::string, size_t> by_name;
    by_name.reserve(sql_files.size());
    for (size_t i = 0; i < sql_files.size(); ++i) {
      const std::string& rel = sql_files[i];
      if (!texts[i].ok()) {
        errors_.push_back({SourceLoc{rel, 0}, "cannot read: " + texts[i].status().message()});
        continue;
      }
      size_t before = project_.models.size();
      LoadModel(rel, ToLower(Stem(Basename(rel))), std::move(texts[i]).value());
      if (project_.models.size() > before) by_name.emplace(project_.models.back().name, before);
    }
    for (const std::string& file : files) {
      if (EndsWith(file, ".sql")) continue;
      std::string rel = "models/" + file;
      std::string name = ToLower(Stem(file));
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        errors_.push_back({SourceLoc{rel, 1}, "no model '" + name + "' for this file; add models/" +
                                                  Stem(file) + ".sql or remove it"});
        continue;
      }
      LoadModelDocs(rel, &project_.models[it->second]);
    }
  }

  // Reads root/rels[i] into the i-th result, on a few threads when there are
  // many: for a big project, opening and reading files is most of the load.
  std::vector<Result<std::string>> ReadFiles(const std::vector<std::string>& rels) const {
    std::vector<Result<std::string>> out(rels.size(), Result<std::string>(std::string()));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < rels.size(); i = next++) {
        try {
          out[i] = ReadFile(JoinPath(root_, rels[i]));
        } catch (const std::exception& e) {  // a thread boundary: never terminate
          out[i] = Status::Internal(rels[i] + ": cannot read: " + e.what());
        }
      }
    };
    size_t workers =
        rels.size() < 256 ? 1 : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
    std::vector<std::thread> threads;
    for (size_t w = 1; w < workers; ++w) {
      try {
        threads.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no more threads: the ones running (and this one) read the rest
      }
    }
    work();
    for (std::thread& t : threads) t.join();
    return out;
  }

  void LoadModel(const std::string& rel, const std::string& name, std::string text) {
    ModelSpec model;
    model.name = name;
    model.loc = SourceLoc{rel, 1};
    if (!IsLowerIdentifier(name)) {
      errors_.push_back({SourceLoc{rel, 1}, "model name '" + name +
                                                "' (from the file name) must be an identifier "
                                                "([a-z_][a-z0-9_]*); rename the file"});
    }
    FileErrors errs(rel, &errors_);
    size_t start = 0;
    if (StartsWith(text, "\xEF\xBB\xBF")) start = 3;
    while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
    size_t sql_begin = 0;
    if (IsMarkerLine(text, start, kHeaderOpen)) {
      int open_line = CountLines(text, start) + 1;
      size_t yaml_begin = NextLine(text, start);
      size_t close = yaml_begin;
      while (close < text.size() && !IsMarkerLine(text, close, kHeaderClose)) {
        close = NextLine(text, close);
      }
      if (close >= text.size()) {
        errs.At(open_line, "the header block /* --- has no closing --- */ line");
        project_.models.push_back(std::move(model));
        return;
      }
      ReadModelHeader(text.substr(yaml_begin, close - yaml_begin), open_line, &model, rel);
      sql_begin = NextLine(text, close);
      model.sql_first_line = CountLines(text, sql_begin) + 1;
    }
    model.sql = sql_begin == 0 ? std::move(text) : text.substr(sql_begin);
    if (!HasSqlContent(model.sql)) {
      errs.At(model.sql_first_line, "model is empty; write a SELECT statement");
    } else {
      CheckTemplateText(model.sql, model.sql_first_line, errs);
    }
    project_.models.push_back(std::move(model));
  }

  // yaml is the header's body; its first line is file line open_line + 1.
  void ReadModelHeader(const std::string& yaml, int open_line, ModelSpec* model,
                       const std::string& rel) {
    FileErrors errs(rel, &errors_, open_line);
    std::optional<YAML::Node> doc = ParseYaml(yaml, errs);
    if (!doc) return;
    nlohmann::json header = ReadDocument(*doc, errs);
    if (header.is_object()) model->header = std::move(header);
    MapReader m(*doc, kModelHeaderKeys, "model header", errs, open_line);
    if (!m.is_map()) return;
    if (const YamlEntry* e = m.Find("materialized")) {
      if (auto value = ReadString(*e, errs)) {
        if (Contains(kMaterializations, *value)) {
          model->materialized = *value;
        } else {
          errs.At(e->value, UnknownWord("materialization", *value, kMaterializations), e->line);
        }
      }
    }
    const YamlEntry* strategy = m.Find("strategy");
    if (strategy != nullptr) {
      if (auto value = ReadString(*strategy, errs)) {
        if (Contains(kStrategies, *value)) {
          model->strategy = *value;
        } else {
          errs.At(strategy->value, UnknownWord("strategy", *value, kStrategies), strategy->line);
        }
      }
    }
    if (const YamlEntry* e = m.Find("key")) {
      model->key =
          ReadStringList(*e, errs, "a list of column names").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("checks")) model->checks = ReadChecks(*e, errs);
    if (const YamlEntry* e = m.Find("schedule")) model->schedule = ReadSchedule(*e, errs);
    if (const YamlEntry* e = m.Find("tags")) {
      model->tags = ReadStringList(*e, errs, "a list of tags").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("on_upstream_failure")) {
      if (auto value = ReadString(*e, errs)) {
        if (*value == "last_good") {
          model->build_on_stale_inputs = true;
        } else if (*value != "skip") {
          errs.At(
              e->value,
              "on_upstream_failure: expected skip (the default) or last_good, got '" + *value + "'",
              e->line);
        }
      }
    }
    if (const YamlEntry* e = m.Find("description"))
      model->description = ReadString(*e, errs).value_or("");
    if (const YamlEntry* e = m.Find("pool")) {
      model->pool = ToLower(Trim(ReadString(*e, errs).value_or("")));
      model->pool_line = e->line;
    }
    if (const YamlEntry* e = m.Find("partition_by")) {
      if (ReadStringList(*e, errs, "a column name or a list of column names")) {
        model->partition_by = YamlToJson(e->value);
      }
    }
    if (model->materialized == "incremental") {
      if (strategy == nullptr) {
        const YamlEntry* e = m.Find("materialized");
        errs.At(e->line,
                "materialized: incremental needs strategy: append, merge or replace_partition");
      } else if (model->strategy == "merge" && model->key.empty()) {
        errs.At(strategy->line, "strategy: merge needs key: [columns] to merge on");
      } else if (model->strategy == "replace_partition" && model->partition_by.is_null()) {
        errs.At(strategy->line,
                "strategy: replace_partition needs partition_by: [columns] (which rows a batch "
                "replaces)");
      }
    } else if (model->materialized == "snapshot") {
      if (model->key.empty()) {
        errs.At(m.Find("materialized")->line,
                "materialized: snapshot needs key: [columns] (what identifies a row over time)");
      }
      if (strategy != nullptr) {
        errs.At(strategy->line, "strategy: only applies to materialized: incremental");
      }
    } else if (strategy != nullptr) {
      errs.At(strategy->line, "strategy: only applies to materialized: incremental");
    }
  }

  void LoadModelDocs(const std::string& rel, ModelSpec* model) {
    std::optional<std::string> text = Read(rel);
    if (!text) return;
    FileErrors errs(rel, &errors_);
    std::optional<YAML::Node> doc = ParseYaml(*text, errs);
    if (!doc) return;
    ReadDocument(*doc, errs);
    MapReader m(*doc, kModelDocKeys, "model file", errs);
    if (const YamlEntry* e = m.Find("description")) {
      if (auto d = ReadString(*e, errs)) model->description = *d;
    }
    if (const YamlEntry* e = m.Find("checks")) {
      for (CheckSpec& check : ReadChecks(*e, errs)) model->checks.push_back(std::move(check));
    }
    if (const YamlEntry* e = m.Find("tags")) {
      for (std::string& tag :
           ReadStringList(*e, errs, "a list of tags").value_or(std::vector<std::string>{})) {
        if (!Contains(model->tags, tag)) model->tags.push_back(std::move(tag));
      }
    }
  }

  // ---- seeds -------------------------------------------------------------

  void LoadSeeds() {
    const std::string dir = JoinPath(root_, "seeds");
    std::vector<std::string> files = ListFiles(dir, {".csv", ".yaml", ".yml"});
    std::unordered_map<std::string, size_t> by_name;
    for (const std::string& file : files) {
      if (!EndsWith(file, ".csv")) continue;
      SeedSpec seed;
      seed.name = ToLower(Stem(file));
      seed.loc = SourceLoc{"seeds/" + file, 1};
      seed.path = Abs("seeds/" + file);
      if (!IsLowerIdentifier(seed.name)) {
        errors_.push_back({seed.loc, "seed name '" + seed.name +
                                         "' (from the file name) must be an identifier "
                                         "([a-z_][a-z0-9_]*); rename the file"});
      }
      by_name.emplace(seed.name, project_.seeds.size());
      project_.seeds.push_back(std::move(seed));
    }
    for (const std::string& file : files) {
      if (EndsWith(file, ".csv")) continue;
      std::string rel = "seeds/" + file;
      auto it = by_name.find(ToLower(Stem(file)));
      if (it == by_name.end()) {
        errors_.push_back({SourceLoc{rel, 1}, "no seed '" + ToLower(Stem(file)) +
                                                  "' for this file; add seeds/" + Stem(file) +
                                                  ".csv or remove it"});
        continue;
      }
      LoadSeedConfig(rel, &project_.seeds[it->second]);
    }
  }

  void LoadSeedConfig(const std::string& rel, SeedSpec* seed) {
    std::optional<std::string> text = Read(rel);
    if (!text) return;
    FileErrors errs(rel, &errors_);
    std::optional<YAML::Node> doc = ParseYaml(*text, errs);
    if (!doc) return;
    ReadDocument(*doc, errs);
    MapReader m(*doc, kSeedKeys, "seed", errs);
    if (const YamlEntry* e = m.Find("key")) {
      seed->key =
          ReadStringList(*e, errs, "a list of column names").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("column_types")) {
      MapReader types(e->value, {}, "column_types", errs, e->line);
      for (const YamlEntry& t : types.entries()) {
        if (auto type = ReadString(t, errs)) seed->column_types[t.key] = *type;
      }
    }
    if (const YamlEntry* e = m.Find("checks")) seed->checks = ReadChecks(*e, errs);
    if (const YamlEntry* e = m.Find("tags")) {
      seed->tags = ReadStringList(*e, errs, "a list of tags").value_or(std::vector<std::string>{});
    }
    if (const YamlEntry* e = m.Find("description"))
      seed->description = ReadString(*e, errs).value_or("");
  }

  // ---- cross-file checks -------------------------------------------------

  // Asset names are unique case-insensitively. The first definition is the
  // earliest in data-flow order (sources, seeds, models), then file, then line.
  void CheckAssetNames() {
    std::vector<AssetDef> defs;
    auto add_sorted = [&defs](std::vector<AssetDef> kind) {
      std::stable_sort(kind.begin(), kind.end(), [](const AssetDef& a, const AssetDef& b) {
        if (a.loc.file != b.loc.file) return a.loc.file < b.loc.file;
        return a.loc.line < b.loc.line;
      });
      defs.insert(defs.end(), kind.begin(), kind.end());
    };
    std::vector<AssetDef> kind;
    for (const SourceSpec& source : project_.sources) {
      for (const TableSpec& table : source.tables) kind.push_back({table.name, table.loc});
    }
    add_sorted(std::move(kind));
    kind.clear();
    for (const SeedSpec& seed : project_.seeds) kind.push_back({seed.name, seed.loc});
    add_sorted(std::move(kind));
    kind.clear();
    for (const ModelSpec& model : project_.models) kind.push_back({model.name, model.loc});
    add_sorted(std::move(kind));

    std::unordered_map<std::string, SourceLoc> seen;
    seen.reserve(defs.size());
    std::unordered_map<std::string, bool> reported;  // loc -> true
    for (const AssetDef& def : defs) {
      auto [it, inserted] = seen.emplace(ToLower(def.name), def.loc);
      if (!inserted) {
        errors_.push_back({def.loc, "duplicate asset name '" + def.name + "' (also defined at " +
                                        it->second.ToString() + ")"});
        reported[def.loc.ToString()] = true;
      }
    }
    // Source names (for source:NAME selectors) are unique too; a single-table
    // source's duplicate was already reported as an asset name.
    std::unordered_map<std::string, SourceLoc> sources;
    for (size_t i = 0; i < project_.sources.size(); ++i) {
      const SourceSpec& source = project_.sources[i];
      const SourceLoc& loc = source_name_locs_[i];
      auto [it, inserted] = sources.emplace(source.name, loc);
      if (!inserted && !reported.count(loc.ToString())) {
        errors_.push_back({loc, "duplicate source name '" + source.name + "' (also defined at " +
                                    it->second.ToString() + ")"});
      }
    }
  }

  std::string root_;
  Project project_;
  std::vector<SourceLoc> source_name_locs_;  // where each source's name is set
  bool vars_ok_ = true;                      // sluice.yaml's vars: was readable
  nlohmann::json template_vars_;             // vars for CheckTemplate; null = unknown
  std::vector<ConfigError> errors_;
};

}  // namespace

const std::vector<std::string>& KnownFormats() {
  static const std::vector<std::string> kFormats = {"csv",     "tsv",        "json", "ndjson",
                                                    "parquet", "html_table", "zip",  "gtfs-rt"};
  return kFormats;
}

const std::vector<std::string>& KnownFieldTypes() {
  static const std::vector<std::string> kTypes = {
      "text",     "integer", "bigint", "decimal",  "double",   "boolean",   "date",
      "datetime", "time",    "uri",    "category", "latitude", "longitude", "json"};
  return kTypes;
}

const std::vector<std::string>& KnownCheckTypes() {
  static const std::vector<std::string> kChecks = {
      "not_null", "unique",    "accepted_values", "relationships", "range",
      "regex",    "row_count", "freshness",       "expression",    "sql"};
  return kChecks;
}

std::string GuessFormat(std::string_view path_or_url) {
  std::string_view s = path_or_url;
  s = s.substr(0, s.find_first_of("?#"));
  size_t slash = s.rfind('/');
  if (slash != std::string_view::npos) s = s.substr(slash + 1);
  std::string name = ToLower(s);
  for (const char* compressed : {".gz", ".zst", ".bz2"}) {
    if (EndsWith(name, compressed)) name.resize(name.size() - std::string_view(compressed).size());
  }
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return "";
  std::string ext = name.substr(dot + 1);
  if (ext == "csv" || ext == "txt") return "csv";
  if (ext == "tsv" || ext == "tab") return "tsv";
  if (ext == "json" || ext == "geojson") return "json";
  if (ext == "ndjson" || ext == "jsonl") return "ndjson";
  if (ext == "parquet" || ext == "pq") return "parquet";
  if (ext == "html" || ext == "htm") return "html_table";
  if (ext == "zip") return "zip";
  if (ext == "pb") return "gtfs-rt";
  return "";
}

LoadedProject LoadProject(const std::string& root) {
  try {
    return Loader(AbsolutePath(root)).Run(/*settings_only=*/false);
  } catch (const std::exception& e) {
    LoadedProject out;
    out.project.root = AbsolutePath(root);
    out.errors.push_back(
        {SourceLoc{"sluice.yaml", 0}, std::string("internal error while loading: ") + e.what()});
    return out;
  }
}

LoadedProject LoadProjectSettings(const std::string& root) {
  try {
    return Loader(AbsolutePath(root)).Run(/*settings_only=*/true);
  } catch (const std::exception& e) {
    LoadedProject out;
    out.project.root = AbsolutePath(root);
    out.errors.push_back(
        {SourceLoc{"sluice.yaml", 0}, std::string("internal error while loading: ") + e.what()});
    return out;
  }
}

Result<std::string> FindProjectRoot(const std::string& start) {
  fs::path dir = AbsolutePath(start.empty() ? "." : start);
  while (true) {
    if (FileExists((dir / "sluice.yaml").string())) return dir.string();
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return Status::NotFound("no sluice.yaml in " + AbsolutePath(start.empty() ? "." : start) +
                          " or any folder above it; run `sluice init DIR` to create a project, "
                          "or pass --project DIR");
}

}  // namespace sluice
