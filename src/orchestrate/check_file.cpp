#include "orchestrate/check_file.h"

#include <unistd.h>

#include <filesystem>

#include "core/fs.h"
#include "core/hash.h"
#include "core/redact.h"
#include "core/strings.h"
#include "ingest/decoder.h"
#include "ingest/fetcher.h"
#include "ingest/zip_member.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "quality/checks.h"
#include "transform/phases.h"
#include "transform/publication.h"
#include "warehouse/warehouse.h"

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

}  // namespace

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
  ScratchDir scratch;
  std::string path = request.target;
  nlohmann::json report = {{"source", source->name}, {"target", Redact(request.target)}};
  if (IsHttpUrl(request.target)) {
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
  ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
  ASSIGN_OR_RETURN(FileStat stat, StatFile(path));
  report["sha256"] = sha;
  report["bytes"] = stat.size;

  DuckDbOptions options;
  options.memory_limit = project.defaults.memory_limit;
  options.temp_directory = JoinPath(scratch.path(), "duckdb_tmp");
  ASSIGN_OR_RETURN(std::unique_ptr<Warehouse> warehouse, OpenDuckDbWarehouse(":memory:", options));
  ASSIGN_OR_RETURN(std::unique_ptr<WarehouseSession> session, warehouse->Connect());
  RETURN_IF_ERROR(session->Execute("CREATE SCHEMA IF NOT EXISTS _sluice; " + IssueTableDdl()));

  bool ok = true;
  nlohmann::json out_tables = nlohmann::json::array();
  for (const TableSpec* table : tables) {
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
    Result<const Decoder*> decoder = FindDecoder(format);
    if (!decoder.ok()) {
      fail(decoder.status());
      continue;
    }
    nlohmann::json decode_options = source->format_options;
    for (const auto& [k, v] : table->format_options.items()) decode_options[k] = v;
    bool cleaned = !table->columns.empty();
    Result<DecodePlan> plan = (*decoder)->Plan(
        {file, format, decode_options, cleaned, JoinPath(scratch.path(), "derived")});
    if (!plan.ok()) {
      fail(plan.status());
      continue;
    }
    t["notes"] = plan->notes;
    std::string relation = "checked_" + std::to_string(out_tables.size());
    Status built;
    if (cleaned) {
      Result<nlohmann::json> schema = DescribeRelation(*session, plan->sql);
      if (!schema.ok()) {
        fail(schema.status());
        continue;
      }
      std::vector<std::string> columns;
      for (const auto& c : *schema) columns.push_back(c.value("name", ""));
      Result<PhaseSql> phases = CompilePhases(*table, {{plan->sql, sha}}, columns, project.fields);
      if (!phases.ok()) {
        fail(phases.status());
        continue;
      }
      auto fill = [&](std::string sql) {
        for (const auto& [token, value] :
             {std::pair<std::string, std::string>{"@QUARANTINE@",
                                                  QuoteIdent(relation + "_quarantine")},
              {"@PHYSICAL@", QuoteIdent(relation)},
              {"@ASSET@", QuoteLiteral(table->name)},
              {"@VERSION@", QuoteLiteral("check")}}) {
          for (size_t at; (at = sql.find(token)) != std::string::npos;) {
            sql.replace(at, token.size(), value);
          }
        }
        return sql;
      };
      built = session->Execute(fill(phases->build));
      if (built.ok() && !phases->dedup.empty()) built = session->Execute(fill(phases->dedup));
      if (built.ok() && !phases->quarantine.empty())
        built = session->Execute(fill(phases->quarantine));
      if (built.ok()) built = session->Execute(fill(phases->issues));
      if (built.ok()) built = session->Execute(fill(phases->finalize));
    } else {
      built = session->Execute("CREATE TABLE " + QuoteIdent(relation) + " AS SELECT * FROM " +
                               plan->sql);
    }
    if (!built.ok()) {
      fail(built);
      continue;
    }
    for (const auto& [rejects, scan] : plan->rejects) {
      Result<QueryResult> r = session->Query("SELECT line, error_message FROM temp." +
                                             QuoteIdent(rejects) + " ORDER BY line LIMIT 20");
      if (r.ok()) {
        for (const auto& row : r->rows) {
          t["notes"].push_back("line " + row[0].value_or("?") +
                               " not loaded: " + row[1].value_or(""));
        }
      }
    }
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
    nlohmann::json checks = nlohmann::json::array();
    for (const CheckOutcome& c : RunChecks(*session, table->checks, QuoteIdent(relation))) {
      if (c.Blocks()) ok = false;
      checks.push_back(CheckOutcomeJson(c));
    }
    t["checks"] = checks;
    out_tables.push_back(t);
  }
  report["tables"] = out_tables;
  report["ok"] = ok;
  return report;
}

}  // namespace sluice
