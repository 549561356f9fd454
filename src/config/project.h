// The project model: what sluice.yaml, sources/*.yaml, models/*.sql (with an
// optional YAML header), seeds/*.csv and fields.yaml say, after validation.
// Every element remembers where it was written (file:line) so later stages
// can report errors the user can find. Plain data; no behaviour.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/secrets.h"
#include "core/status.h"

namespace sluice {

struct SourceLoc {
  std::string file;              // relative to the project root, e.g. "sources/gtfs.yaml"
  int line = 0;                  // 1-based; 0 when unknown
  std::string ToString() const;  // "sources/gtfs.yaml:4"
};

enum class Severity { kError, kWarn };

// One data check, e.g. `- not_null: [stop_id]` or `- row_count: {min: 1}`.
struct CheckSpec {
  std::string type;     // not_null | unique | row_count | accepted_values | ...
  nlohmann::json args;  // the value under the type key, as written (not_null and
                        // unique: always a list of column names)
  Severity severity = Severity::kError;
  std::string name;  // display name, e.g. "not_null(stop_id)"
  SourceLoc loc;
};

// One entry of `columns:`, keyed by the input column name.
struct ColumnSpec {
  std::string input;
  std::string field;                                  // output name; defaults to input
  std::string type;                                   // "" = keep as loaded
  nlohmann::json options = nlohmann::json::object();  // formats, range, patch, default, values...
  SourceLoc loc;
};

// One table a source yields. A single-table source has one TableSpec named
// after the source.
struct TableSpec {
  std::string name;
  std::string member;  // zip member, "" otherwise
  // A database source's table: the relation ("schema.table") or a query
  // (template text) it reads; one of the two is set.
  std::string db_table;
  std::string db_query;
  // `incremental: {cursor, lookback}`: after the first read, only rows whose
  // cursor column is at or past the last value seen, less `lookback`
  // seconds for late commits; merged on `key` (appended without one).
  std::string db_cursor;
  int64_t db_lookback_seconds = 0;
  // `incremental: {key_scan: 1d}`: at most this often, the table's keys are
  // read whole and rows whose key is gone at the source are deleted.
  // -1: never (the default); 0: every read.
  int64_t db_key_scan_seconds = -1;
  // `chunk_rows: N`: a full read goes in key order, N rows a raw object,
  // and one that stops resumes after the last chunk it stored. 0: one read.
  int64_t db_chunk_rows = 0;
  int db_chunk_line = 0;
  std::string format;  // csv | tsv | json | ndjson | parquet | html_table | zip
  nlohmann::json format_options = nlohmann::json::object();  // delimiter, header, encoding, ...
  std::vector<std::string> key;
  std::vector<ColumnSpec> columns;
  bool columns_only = false;
  std::vector<std::string> null_values;
  std::string filter;
  std::vector<std::string> skip_patterns;  // rows whose text matches one are skipped (logged)
  bool quarantine = false;  // rows with a failed value go to _sluice_failed, not the table
  std::vector<CheckSpec> checks;
  std::vector<std::string> tags;
  SourceLoc loc;
  std::string description;
};

struct FetchSpec {
  std::string url;                             // template text, secrets still as ${secret:NAME}
  std::map<std::string, std::string> headers;  // template text
  nlohmann::json paginate = nlohmann::json::object();
  nlohmann::json options = nlohmann::json::object();  // every other fetch: key, as written
  std::map<std::string, int> key_lines;               // where each fetch: key is written
  SourceLoc loc;
};

// When an asset runs by itself under `sluice serve` (orchestrate/scheduler.h).
enum class ScheduleKind { kNone, kCron, kEvery, kAfter, kOnFile };
// What a schedule does with the ticks it missed while nothing ran (downtime):
// none of them, the latest one, or each (up to max_catch_up, newest first).
enum class Misfire { kSkip, kLatest, kAll };

struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::kNone;
  std::string cron;                // kCron: a 5-field line or a macro, validated
  int64_t every_seconds = 0;       // kEvery: ticks at multiples of it since the epoch (UTC)
  std::vector<std::string> after;  // kAfter: lower-case asset names
  std::string on_file;             // kOnFile: a glob relative to the project root
  std::string timezone;            // kCron: "" = the project's timezone
  Misfire misfire = Misfire::kLatest;
  int max_catch_up = 24;  // kAll
  SourceLoc loc;
  // "0 * * * *", "every 20s", "after a, b", "on_file inbox/*.csv"; "" for none.
  std::string ToString() const;
};

// A command asset (`kind: command`): a program whose declared output tables
// become the source's tables. It gets its inputs as Parquet files, writes
// each table as <table>.parquet into a folder it is given (ingest/process.h,
// orchestrate/runner.cpp).
struct CommandSpec {
  std::vector<std::string> run;            // argv as written; no secrets (they go in env)
  std::map<std::string, std::string> env;  // NAME -> value; may hold ${secret:NAME}
  std::vector<std::string> inputs;         // upstream assets, lower case
  int64_t timeout_seconds = 0;             // 0 = defaults.timeout
  bool always_run = false;                 // run even when the command and its inputs are unchanged
  SourceLoc loc;
};

// A database source (`database:`): where its tables are read from. Each
// table says which relation or query (TableSpec::db_table / db_query).
// `cdc:` of a PostgreSQL source: its tables read as a change stream
// through a logical replication slot (ingest/cdc.h).
struct CdcSpec {
  std::string slot;               // default sluice_<source>
  std::string publication;        // default sluice_<source>
  int64_t max_changes = 1000000;  // messages a read takes at most (whole transactions)
  bool binlog = false;            // `binlog: true`: the source must be MariaDB (checked at read)
  // `serve` keeps the change stream open (orchestrate/capture_feed.h) and
  // runs the source when changes come, at most once per publish_every.
  bool stream = true;
  int64_t publish_every_seconds = 1;
  SourceLoc loc;
};

struct DatabaseSpec {
  std::string url;              // template text; usually ${secret:NAME}
  int64_t timeout_seconds = 0;  // 0 = defaults.timeout
  std::optional<CdcSpec> cdc;   // set: every table is captured, not re-read
  // `schema: NAME`: every base table of the schema is a table of the source
  // (each its own asset, keyed on its primary key), as the last listing of
  // it found them (orchestrate/catalog.h); `include:`/`exclude:` filter
  // their names with globs. Tables under `tables:` are kept as written.
  std::string schema;
  std::vector<std::string> include, exclude;
  SourceLoc loc;
};

// `stream:` — a NATS JetStream stream read as a source (ingest/stream_nats.h).
struct StreamSpec {
  std::string url;       // template text; usually ${secret:NAME} (nats://user:pw@host:4222)
  std::string stream;    // the JetStream stream
  std::string subject;   // a filter subject; "" = the whole stream
  std::string consumer;  // Sluice's durable consumer; "" = sluice_<env>_<source>
  int64_t max_messages = 100000;  // a read takes at most this many
  int64_t wait_ms = 1000;         // how long a fetch waits for messages
  int64_t ack_wait_seconds = 0;   // 0 = the run's timeout (defaults.timeout), at least 60 s
  SourceLoc loc;
};

struct SourceSpec {
  std::string name;
  SourceLoc loc;                         // the file, line 1
  std::optional<CommandSpec> command;    // set: a command asset, and `fetch` is empty
  std::optional<DatabaseSpec> database;  // set: a database source, and `fetch` is empty
  std::optional<StreamSpec> stream;      // set: a message stream, and `fetch` is empty
  FetchSpec fetch;
  std::string format;  // the body's format
  nlohmann::json format_options = nlohmann::json::object();
  std::vector<TableSpec> tables;
  ScheduleSpec schedule;
  nlohmann::json partition;  // null when unpartitioned
  nlohmann::json freshness;  // null when not set
  std::vector<std::string> tags;
  nlohmann::json config;  // the whole file as JSON (secrets unresolved), for fingerprints
  std::string description;
  std::string pool;  // `pool:` (a name under concurrency: pools:); "" = by its host
  int pool_line = 0;
};

struct ModelSpec {
  std::string name;  // file stem, lower case
  SourceLoc loc;
  std::string sql;                     // the SQL text after the header block, templates unrendered
  int sql_first_line = 1;              // line of the file where `sql` starts
  std::string materialized = "table";  // view | table | incremental
  std::string strategy;                // incremental: append | merge | replace_partition
  // on_upstream_failure: last_good — when an upstream fails in a run, build
  // from its last published version instead of skipping (named as stale).
  bool build_on_stale_inputs = false;
  std::vector<std::string> key;
  std::vector<CheckSpec> checks;
  std::vector<std::string> tags;
  ScheduleSpec schedule;
  nlohmann::json header = nlohmann::json::object();  // the header as JSON, for fingerprints
  std::string description;
  nlohmann::json partition_by;  // null, or a column name / list as written in the header
  std::string pool;             // `pool:` (a name under concurrency: pools:); "" = none
  int pool_line = 0;
};

struct SeedSpec {
  std::string name;  // file stem, lower case
  SourceLoc loc;
  std::string path;  // absolute path of the CSV
  std::vector<std::string> key;
  std::vector<CheckSpec> checks;                           // from seeds/<name>.yaml when present
  nlohmann::json column_types = nlohmann::json::object();  // column -> DuckDB type
  std::vector<std::string> tags;
  std::string description;
};

struct FieldSpec {
  std::string name;
  std::string type;
  std::string description;
  std::string pattern;
  nlohmann::json values = nlohmann::json::array();  // a category's values
  SourceLoc loc;
};

// `server:` in sluice.yaml, or under environments.<env> (which wins): the
// HTTP API of `sluice serve` (server/api.h).
enum class ApiRole { kViewer, kOperator, kAdmin };  // each may do what the one before may
const char* ApiRoleName(ApiRole role);

struct ApiToken {
  std::string name;    // who holds it, for the request log
  std::string sha256;  // hex SHA-256 of the token; the token itself is never stored
  ApiRole role = ApiRole::kViewer;
  SourceLoc loc;
};

// "127.0.0.1:8080", ":8080" (loopback), "[::1]:8080", "localhost:8080" ->
// (IP address, port). InvalidArgument says what is wrong.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text);

struct ServerSpec {
  bool enabled = false;  // `listen:` was given
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<ApiToken> tokens;    // none: no token is asked for
  int64_t cache_bytes = 64000000;  // `cache:` the response cache's size (64MB); 0 = off
  // `stream_after:` a dataset answer larger than this goes out in chunks as
  // it is rendered (1MB)
  int64_t stream_after_bytes = 1000000;
  // `lookups:` {table: [column, ...]}: a dataset read filtering one of
  // these columns by equality is answered from the table's rows rendered
  // once in memory per publication (engine/lookup.h), lower case.
  std::map<std::string, std::vector<std::string>> lookups;
  // `check:` POST /api/v1/check/{source}: whether {"url": ...} may make the
  // server fetch an address (off: it lets callers reach what the server
  // reaches), and the limits of one check.
  bool check_urls = false;
  int64_t check_max_bytes = 16000000;
  int64_t check_timeout_seconds = 60;
  std::string check_memory_limit = "512MB";
  SourceLoc loc;
};

struct EnvironmentSpec {
  std::string name;
  std::string warehouse;  // "duckdb:/abs/path.duckdb"
  std::string lake;       // absolute folder
  std::string metadata;   // "sqlite:/abs/path.sqlite"
  std::string state_dir;  // absolute .sluice/<env>
  ServerSpec server;      // its own, or the project's `server:`
  bool own_server = false;
  std::string publish_dir;  // absolute; where exports go (default <state_dir>/publish)
  SourceLoc loc;
};

struct Defaults {
  // Further attempts after a transient failure, for builds (a lock, a write
  // conflict) and, unless a source's fetch.retries says otherwise, downloads.
  int retries = 0;
  bool retries_set = false;     // written in sluice.yaml (downloads then follow it)
  int64_t timeout_seconds = 0;  // 0 = none
  std::string memory_limit = "2GB";
  // A new DuckDB warehouse's block size in bytes (16 KiB ... 256 KiB, a
  // power of two); 0: DuckDB's default, 256 KiB. Every table takes at least
  // one block, so a project of many small models wants small blocks; big
  // tables scan faster in big ones (README, "How fast").
  int64_t block_size = 0;
  // DuckDB's worker threads (its `threads`): the most one statement runs
  // on; 0: DuckDB's default, one per CPU. Tasks run side by side anyway,
  // each statement on its task's thread, so a project of many small models
  // gains from 1 (no worker to wake for each statement) and a big model
  // alone loses (README, "How fast").
  int query_threads = 0;
  int keep_versions = 3;
  int keep_logs = 100;   // runs whose task logs are kept (`sluice logs`)
  int keep_runs = 1000;  // runs whose records (tasks, check results) are kept
};

// `concurrency:` in sluice.yaml: how many tasks the owner runs at once,
// every run together (orchestrate/executor.h). 0 = no limit.
struct ConcurrencySpec {
  int tasks = 16;    // tasks at once in the owner, across its runs
  int per_host = 4;  // tasks at once fetching from one HTTP host (each source's default pool)
  std::map<std::string, int> pools;  // named pools an asset joins with `pool: NAME`
};

// `notify:` in sluice.yaml: a webhook told about runs (notify/notifier.h).
enum class NotifyEvent { kRunFailed, kCheckFailed, kFreshnessLate, kRecovered };
const char* NotifyEventName(NotifyEvent event);

struct NotifySpec {
  std::string webhook;          // URL; secrets still as ${secret:NAME} (a Slack URL is one)
  std::vector<NotifyEvent> on;  // default: all four
  SourceLoc loc;
};

// exports: in sluice.yaml: a table or a query written as a file under the
// environment's publish folder after each run that changed what it reads
// (publish/exports.h), and by `sluice export`.
enum class ExportFormat { kCsv, kJson, kGeoJson, kParquet, kSqlite };
const char* ExportFormatName(ExportFormat format);  // "csv" | "json" | ...

struct ExportSpec {
  std::string name;                  // lower case: the resource's name in datapackage.json
  std::string table;                 // the asset written, or "" when `query` is given
  std::vector<std::string> columns;  // with table: the columns written (empty: all)
  std::string query;                 // a SELECT over the project's assets
  ExportFormat format = ExportFormat::kCsv;
  std::string path;      // relative to the publish folder; default NAME.<format's extension>
  std::string lon, lat;  // geojson: the coordinate columns ("": found by their names)
  std::string description;
  SourceLoc loc;
};

// openlineage: in sluice.yaml: each task's start and end (and each run's)
// sent as OpenLineage run events to a collector such as Marquez
// (notify/openlineage.h).
struct OpenLineageSpec {
  std::string url;            // the collector's endpoint, e.g. http://marquez:5000/api/v1/lineage
  std::string job_namespace;  // default: the project's name
  std::string api_key;        // sent as Authorization: Bearer; may be ${secret:NAME}
  SourceLoc loc;
};

struct ConfigError {
  SourceLoc loc;
  std::string message;  // includes a hint, e.g. "unknown key 'fromat' (did you mean format?)"
  std::string ToString() const;  // "sources/gtfs.yaml:4: unknown key ..."
};

struct Project {
  std::string root;  // absolute path of the folder holding sluice.yaml
  std::string name;
  std::map<std::string, EnvironmentSpec> environments;  // always has "dev"
  std::vector<SecretProvider> secret_providers;         // default: [env]
  std::vector<std::string> external;                    // lower case
  Defaults defaults;
  ConcurrencySpec concurrency;
  std::string timezone = "UTC";  // of cron schedules, a tz database name
  nlohmann::json vars = nlohmann::json::object();
  ServerSpec server;  // the project's `server:`; each environment's is in its spec
  std::vector<NotifySpec> notify;
  std::vector<ExportSpec> exports;  // sorted by name
  std::optional<OpenLineageSpec> openlineage;
  std::vector<SourceSpec> sources;
  std::vector<ModelSpec> models;
  std::vector<SeedSpec> seeds;
  std::map<std::string, FieldSpec> fields;  // empty when there is no fields.yaml
  bool has_fields_file = false;
  // Settings that are valid but not acted on yet (validate prints them).
  std::vector<ConfigError> warnings;
};

}  // namespace sluice
