#include "orchestrate/check_file.h"

#include <unistd.h>

#include <filesystem>

#include "config/template.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "ingest/decoder.h"
#include "ingest/fetcher.h"
#include "ingest/zip_member.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "orchestrate/build_step.h"
#include "orchestrate/capture.h"
#include "quality/checks.h"
#include "transform/load.h"
#include "transform/phases.h"
#include "transform/publication.h"
#include "warehouse/warehouse.h"
#include "warehouse/watchdog.h"

namespace sluice {
namespace {

// A folder removed with everything in it when the check ends.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = (std::filesystem::temp_directory_path() /
             ("sluice-check-" + std::to_string(::getpid()) + "-" +
              std::to_string(reinterpret_cast<uintptr_t>(this))))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    // Raw objects are stored read-only; their folders are not.
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

nlohmann::json Rows(const QueryResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows) {
    nlohmann::json obj = nlohmann::json::object();
    for (size_t i = 0; i < r.columns.size(); ++i) {
      obj[r.columns[i]] = row[i] ? nlohmann::json(*row[i]) : nlohmann::json(nullptr);
    }
    rows.push_back(obj);
  }
  return rows;
}

// A database table read for `sluice check`: the source's url (templates
// and secrets resolved, its password registered for redaction) and query.
Result<DbExtract> ExtractDatabaseForCheck(const Project& project, const std::string& env_name,
                                          const SourceSpec& source, const TableSpec& table,
                                          const std::string& file,
                                          const CheckFileRequest& request) {
  TemplateContext ctx;
  ctx.vars = project.vars;
  ctx.env = env_name;
  ASSIGN_OR_RETURN(DbRequest req, DatabaseRequestOf(project, source, table, ctx));
  if (request.timeout_seconds > 0) req.timeout_seconds = request.timeout_seconds;
  Result<DbExtract> out = ExtractToFile(req, file);
  if (!out.ok()) return out.status().WithContext(table.loc.ToString() + ": reading " + table.name);
  return out;
}

}  // namespace

Result<DbRequest> DatabaseRequestOf(const Project& project, const SourceSpec& source,
                                    const TableSpec& table, const TemplateContext& ctx) {
  const DatabaseSpec& db = *source.database;
  ASSIGN_OR_RETURN(std::string url_text, RenderTemplate(db.url, ctx, db.loc.line));
  SecretResolver secrets(project.secret_providers);
  Result<std::string> url = secrets.Substitute(url_text);
  if (!url.ok()) return url.status().WithContext(db.loc.ToString() + ": database: url");
  RegisterDatabaseSecrets(*url);
  DbRequest req;
  req.url = *url;
  req.table = table.db_table;
  if (!table.db_query.empty()) {
    ASSIGN_OR_RETURN(req.query, RenderTemplate(table.db_query, ctx, table.loc.line));
  }
  req.project_root = project.root;
  req.timeout_seconds =
      db.timeout_seconds > 0 ? db.timeout_seconds : project.defaults.timeout_seconds;
  return req;
}

Result<StreamRequest> StreamRequestOf(const Project& project, const SourceSpec& source,
                                      const TemplateContext& ctx) {
  const StreamSpec& spec = *source.stream;
  ASSIGN_OR_RETURN(std::string url_text, RenderTemplate(spec.url, ctx, spec.loc.line));
  SecretResolver secrets(project.secret_providers);
  Result<std::string> url = secrets.Substitute(url_text);
  if (!url.ok()) return url.status().WithContext(spec.loc.ToString() + ": stream: url");
  RegisterStreamSecrets(*url);
  StreamRequest req;
  req.url = *url;
  req.stream = spec.stream;
  req.subject = spec.subject;
  req.consumer = spec.consumer.empty() ? CaptureSlot(source, ctx.env) : spec.consumer;
  req.max_messages = spec.max_messages;
  req.wait_ms = spec.wait_ms;
  req.ack_wait_seconds = spec.ack_wait_seconds > 0 ? spec.ack_wait_seconds
                         : project.defaults.timeout_seconds > 0
                             ? std::max<int64_t>(60, project.defaults.timeout_seconds)
                             : 1800;
  return req;
}

Result<nlohmann::json> CheckFile(const Project& project, const std::string& env_name,
                                 const CheckFileRequest& request) {
  const SourceSpec* source = nullptr;
  std::vector<const TableSpec*> tables;
  std::vector<std::string> names;
  for (const SourceSpec& s : project.sources) {
    names.push_back(s.name);
    if (s.name == request.source) {
      source = &s;
      for (const TableSpec& t : s.tables) tables.push_back(&t);
    }
    for (const TableSpec& t : s.tables) {
      if (!source && t.name == request.source) {
        source = &s;
        tables.push_back(&t);
      }
    }
  }
  if (!source) {
    return Status::Invalid("no source or source table '" + request.source + "'" +
                           DidYouMeanHint(request.source, names) +
                           "; sources: " + Join(names, ", "));
  }
  if (source->stream) {
    return Status::Invalid("source '" + source->name +
                           "' reads a message stream: there is no file to check it against; "
                           "`sluice plan " +
                           source->name +
                           "` says what its next read takes, and its checks run on each batch");
  }
  const bool database = source->database.has_value();
  if (database && (!request.target.empty() || !request.upload.empty())) {
    return Status::Invalid("source '" + source->name +
                           "' reads a database: check it against the database itself with "
                           "`sluice check " +
                           request.source + "` (no file)");
  }
  if (!database && request.target.empty() && request.upload.empty()) {
    return Status::Invalid("sluice check " + request.source +
                           " needs the FILE or URL to check against the source");
  }
  ScratchDir scratch;
  std::string path = request.target;
  std::string sha;
  nlohmann::json report = {{"source", source->name},
                           {"target", Redact(database ? DisplayDatabaseUrl(source->database->url)
                                             : request.target.empty() ? request.upload_name
                                                                      : request.target)}};
  if (database) {
    // Each table is read from the database below.
  } else if (request.target.empty()) {
    // An upload: its bytes, under its name, in the scratch folder.
    std::string name = std::filesystem::path(request.upload_name).filename().string();
    if (name.empty() || name == "." || name == "..") name = "upload";
    path = JoinPath(scratch.path(), "upload-" + name);
    RETURN_IF_ERROR(WriteFileAtomic(path, request.upload));
  } else if (IsHttpUrl(request.target)) {
    // Downloaded into a scratch lake with a scratch fetch log, then dropped.
    ASSIGN_OR_RETURN(std::unique_ptr<ObjectStore> store,
                     OpenLocalObjectStore(JoinPath(scratch.path(), "lake")));
    SystemClock clock;
    ASSIGN_OR_RETURN(std::unique_ptr<MetadataStore> metadata,
                     OpenSqliteMetadata(JoinPath(scratch.path(), "meta.sqlite"), &clock));
    RawArchive archive(store.get(), metadata.get(), &clock);
    std::unique_ptr<HttpClient> client = NewCurlHttpClient();
    HttpFetcher fetcher(client.get(), &archive, metadata.get(), &clock,
                        SecretResolver(project.secret_providers));
    SourceSpec probe = *source;
    probe.fetch.url = request.target;
    probe.fetch.paginate = nlohmann::json::object();
    HttpFetchRequest fetch;
    fetch.source = &probe;
    fetch.context.vars = project.vars;
    fetch.context.env = env_name;
    fetch.format = source->format;
    Result<const Decoder*> body_decoder = FindDecoder(source->format);
    fetch.extension = body_decoder.ok() ? (*body_decoder)->Extension() : source->format;
    ASSIGN_OR_RETURN(HttpFetchResult fetched, fetcher.Fetch(fetch));
    if (fetched.objects.empty()) return Status::DataError("the URL returned no body");
    path = fetched.objects.front().local_path;
  } else if (!FileExists(path)) {
    return Status::Invalid("no file '" + path + "' (give a local file or an http(s) URL)");
  }
  if (!database) {
    ASSIGN_OR_RETURN(sha, Sha256File(path));
    ASSIGN_OR_RETURN(FileStat stat, StatFile(path));
    report["sha256"] = sha;
    report["bytes"] = stat.size;
  }

  DuckDbOptions options;
  options.memory_limit =
      request.memory_limit.empty() ? project.defaults.memory_limit : request.memory_limit;
  options.temp_directory = JoinPath(scratch.path(), "duckdb_tmp");
  ASSIGN_OR_RETURN(std::unique_ptr<Warehouse> warehouse, OpenDuckDbWarehouse(":memory:", options));
  ASSIGN_OR_RETURN(std::unique_ptr<WarehouseSession> session, warehouse->Connect());
  RETURN_IF_ERROR(session->Execute("CREATE SCHEMA IF NOT EXISTS _sluice; " + IssueTableDdl()));

  bool ok = true;
  nlohmann::json out_tables = nlohmann::json::array();
  // The load and the checks within the request's time (DuckDB has no
  // statement timeout of its own: the watchdog interrupts the session).
  Watchdog watchdog(session.get(), request.timeout_seconds);
  for (const TableSpec* table : tables) {
    if (watchdog.fired()) break;
    nlohmann::json t = {{"table", table->name}};
    std::string file = path;
    std::string format = table->format.empty() ? source->format : table->format;
    auto fail = [&](const Status& st) {
      t["error"] = Redact(st.message());
      ok = false;
      out_tables.push_back(t);
    };
    if (source->format == "zip") {
      Result<std::string> member =
          ExtractZipMember(path, sha, table->member, JoinPath(scratch.path(), "derived"));
      if (!member.ok()) {
        fail(member.status());
        continue;
      }
      file = *member;
    }
    nlohmann::json read_columns;
    std::string table_sha = sha;
    if (database) {
      // The table read now into the scratch folder, as `sluice run` reads it.
      file = JoinPath(scratch.path(), "extract-" + table->name + ".csv");
      Result<DbExtract> extract =
          ExtractDatabaseForCheck(project, env_name, *source, *table, file, request);
      if (!extract.ok()) {
        fail(extract.status());
        continue;
      }
      read_columns = DbColumnsToJson(extract->columns);
      table_sha = extract->sha256;
      t["sha256"] = extract->sha256;
      t["bytes"] = extract->bytes;
      t["extract_notes"] = extract->notes;
    }
    std::string relation = "checked_" + std::to_string(out_tables.size());
    LoadSpec spec;
    spec.table = table;
    spec.format = format;
    spec.options = source->format_options;
    for (const auto& [k, v] : table->format_options.items()) spec.options[k] = v;
    if (database) spec.options["columns"] = read_columns;
    spec.fields = &project.fields;
    spec.objects.push_back({file, table_sha});
    spec.cache_dir = JoinPath(scratch.path(), "derived");
    spec.targets.physical = QuoteIdent(relation);
    if (table->quarantine) spec.targets.quarantine = QuoteIdent(relation + "_quarantine");
    spec.targets.asset = table->name;
    spec.targets.version = "check";
    // The same load as `sluice run`, into the scratch warehouse.
    Result<LoadOutcome> loaded = LoadSourceTable(
        *session, spec, [&](const std::string& sql) { return session->Execute(sql); });
    if (!loaded.ok()) {
      fail(loaded.status());
      continue;
    }
    t["notes"] = loaded->notes;
    if (t.contains("extract_notes")) {
      for (const auto& n : t["extract_notes"]) t["notes"].push_back(n);
      t.erase("extract_notes");
    }
    t["bad_rows"] = loaded->bad_rows;
    ASSIGN_OR_RETURN(QueryResult count,
                     session->Query("SELECT count(*) FROM " + QuoteIdent(relation)));
    t["rows"] = count.ScalarInt();
    ASSIGN_OR_RETURN(t["columns"], DescribeRelation(*session, QuoteIdent(relation)));
    std::string where = " FROM _sluice.issues WHERE asset = " + QuoteLiteral(table->name);
    ASSIGN_OR_RETURN(QueryResult counts,
                     session->Query("SELECT issue_type, coalesce(field, '') AS field, "
                                    "sum(CASE WHEN record IS NULL THEN TRY_CAST(split_part("
                                    "message, ' ', 1) AS BIGINT) ELSE 1 END) AS count, "
                                    "any_value(severity) AS severity" +
                                    where + " GROUP BY ALL ORDER BY count DESC, 1, 2"));
    t["issue_counts"] = Rows(counts);
    ASSIGN_OR_RETURN(
        QueryResult issues,
        session->Query("SELECT record, field, issue_type, value, message, severity" + where +
                       " AND record IS NOT NULL ORDER BY record, field LIMIT " +
                       std::to_string(request.issue_rows)));
    t["issues"] = Rows(issues);
    // The build step's audit, as a run would make it; recorded nowhere (a
    // check touches no project state).
    BuildTarget target;
    target.asset = table->name;
    target.checks = &table->checks;
    Audit audit = AuditRelation(BuildEnv{}, *session, target, QuoteIdent(relation));
    if (audit.blocked) ok = false;
    nlohmann::json checks = nlohmann::json::array();
    for (const CheckOutcome& c : audit.checks) checks.push_back(CheckOutcomeJson(c));
    t["checks"] = checks;
    out_tables.push_back(t);
  }
  if (watchdog.fired()) {
    return Status(StatusCode::kTimeout, "the check took longer than its " +
                                            std::to_string(request.timeout_seconds) +
                                            " s (server: {check: {timeout: ...}})");
  }
  report["tables"] = out_tables;
  report["ok"] = ok;
  return report;
}

}  // namespace sluice
