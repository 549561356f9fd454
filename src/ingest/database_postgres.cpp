// PostgreSQL through libpq: the relation's columns from a prepared
// statement's description, each mapped by its base type; then one COPY (…)
// TO STDOUT (FORMAT csv, HEADER) streamed into the raw object as the server
// sends it, inside a read-only REPEATABLE READ transaction (one snapshot; a
// query: cannot write). The session is set so that text is unambiguous:
// UTC for timestamptz, ISO dates, intervals as exact parts, round-trip floats.
#include <poll.h>

#include <algorithm>
#include <set>

#include "core/clock.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "ingest/postgres_conn.h"

namespace sluice::pg {

std::string Hint(const std::string& message) {
  if (message.find("password authentication failed") != std::string::npos ||
      message.find("no password supplied") != std::string::npos) {
    return " (check the user and password in the url's secret)";
  }
  if (message.find("Connection refused") != std::string::npos ||
      message.find("could not connect") != std::string::npos ||
      message.find("could not translate host name") != std::string::npos) {
    return " (is the server running, and are its host and port right in the url?)";
  }
  if (message.find("does not exist") != std::string::npos) {
    return " (check the name in table: or query:, and that the url's user may see it)";
  }
  if (message.find("permission denied") != std::string::npos) {
    return " (grant the url's user SELECT on it)";
  }
  return "";
}

Result<Conn> Connect(const DbRequest& req, bool replication) {
  const char* keys[] = {"dbname",          "connect_timeout", "application_name",
                        "client_encoding", "replication",     nullptr};
  const std::string connect_timeout =
      std::to_string(std::max<int64_t>(2, req.connect_timeout_seconds));
  const char* values[] = {req.url.c_str(),
                          connect_timeout.c_str(),
                          "sluice",
                          "UTF8",
                          replication ? "database" : nullptr,
                          nullptr};
  Conn conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string m = conn ? PQerrorMessage(conn.get()) : "out of memory";
    if (replication && m.find("replication") != std::string::npos) {
      m += " (the url's user needs the REPLICATION attribute: ALTER ROLE ... REPLICATION, and "
           "pg_hba.conf must allow its replication connections)";
    }
    return DatabaseError(req, "cannot connect to PostgreSQL", m + Hint(m));
  }
  if (replication) return conn;
  int64_t timeout_ms = req.timeout_seconds > 0 ? req.timeout_seconds * 1000 : 0;
  RETURN_IF_ERROR(Exec(req, conn.get(),
                       "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                       "SET extra_float_digits = 3; SET bytea_output = 'hex'; "
                       "SET statement_timeout = " +
                           std::to_string(timeout_ms),
                       "setting up the session"));
  return conn;
}

Status Exec(const DbRequest& req, PGconn* conn, const std::string& sql, const std::string& what) {
  Res res(PQexec(conn, sql.c_str()));
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string m = res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn);
    return DatabaseError(req, "PostgreSQL failed " + what, m + Hint(m));
  }
  return Status::Ok();
}

Result<Res> Query(const DbRequest& req, PGconn* conn, const std::string& sql,
                  const std::vector<std::string>& params, const std::string& what) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  Res res(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                       nullptr, nullptr, 0));
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string m = res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn);
    return DatabaseError(req, "PostgreSQL failed " + what, m);
  }
  return res;
}

std::string What(const DbRequest& req) {
  return req.table.empty() ? std::string("the query") : "table " + req.table;
}

Result<std::string> RelationSql(const DbRequest& req) {
  if (req.table.empty()) return StripStatementEnd(req.query);
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitRelationName(req.table));
  std::vector<std::string> quoted;
  for (const std::string& p : parts) quoted.push_back(QuoteIdent(p));
  return "SELECT * FROM " + Join(quoted, ".");
}

Result<std::vector<DbColumn>> Describe(const DbRequest& req, PGconn* conn,
                                       const std::string& relation) {
  Res prepared(PQprepare(conn, "", relation.c_str(), 0, nullptr));
  if (!prepared || PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
    std::string m = prepared ? PQresultErrorMessage(prepared.get()) : PQerrorMessage(conn);
    return DatabaseError(req, "PostgreSQL cannot read " + What(req), m + Hint(m));
  }
  Res desc(PQdescribePrepared(conn, ""));
  if (!desc || PQresultStatus(desc.get()) != PGRES_COMMAND_OK) {
    std::string m = desc ? PQresultErrorMessage(desc.get()) : PQerrorMessage(conn);
    return DatabaseError(req, "PostgreSQL cannot describe " + What(req), m);
  }
  int n = PQnfields(desc.get());
  if (n == 0) {
    return DatabaseError(req, What(req) + " returns no columns",
                         "a query: must be a SELECT (or TABLE, VALUES) that returns rows");
  }
  std::vector<std::string> names, oids, mods;
  std::set<std::string> seen;
  for (int i = 0; i < n; ++i) {
    std::string name = PQfname(desc.get(), i);
    if (!seen.insert(name).second) {
      return DatabaseError(req, What(req) + " returns the column '" + name + "' twice",
                           "give each column of the query its own name (AS ...)");
    }
    names.push_back(name);
    oids.push_back(std::to_string(PQftype(desc.get(), i)));
    mods.push_back(std::to_string(PQfmod(desc.get(), i)));
  }
  ASSIGN_OR_RETURN(
      Res types,
      Query(req, conn,
            "SELECT format_type(u.o, u.m), b.oid, b.typcategory, b.typtype, "
            "CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE u.m END "
            "FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, i) "
            "JOIN pg_type t ON t.oid = u.o "
            "JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
            "ORDER BY u.i",
            {"{" + Join(oids, ",") + "}", "{" + Join(mods, ",") + "}"},
            "describing the types of " + What(req)));
  if (PQntuples(types.get()) != n) {
    return DatabaseError(req, "PostgreSQL cannot describe the types of " + What(req),
                         "a column's type was not found");
  }
  std::vector<DbColumn> columns;
  for (int i = 0; i < n; ++i) {
    std::string formatted = PQgetvalue(types.get(), i, 0);
    uint32_t oid = static_cast<uint32_t>(std::stoul(PQgetvalue(types.get(), i, 1)));
    char category = PQgetvalue(types.get(), i, 2)[0];
    char typtype = PQgetvalue(types.get(), i, 3)[0];
    int32_t typmod = static_cast<int32_t>(std::stol(PQgetvalue(types.get(), i, 4)));
    columns.push_back(MapPostgresType(names[i], formatted, oid, typmod, category, typtype));
  }
  return columns;
}

std::string ValueExpr(const DbColumn& c, const std::string& id) {
  if (c.encoding == DbEncoding::kHex) return "encode(" + id + ", 'hex')";
  if (c.type == "JSON" && c.source_type != "json" && c.source_type != "jsonb") {
    return "to_json(" + id + ")";
  }
  if (c.source_type == "money") return id + "::numeric";
  if (c.type == "INTERVAL") {
    // Exact components DuckDB parses (it reads no ISO 8601, nor
    // PostgreSQL's mixed signs).
    return "CASE WHEN " + id +
           " IS NOT NULL THEN format('%s months %s days %s microseconds', "
           "extract(year from " +
           id + ") * 12 + extract(month from " + id + "), extract(day from " + id +
           "), extract(hour from " + id + ") * 3600000000 + extract(minute from " + id +
           ") * 60000000 + extract(microseconds from " + id + ")) END";
  }
  if (c.type == "DATE") {
    // DuckDB reads "0044-03-15 BC" as a date AD; "(BC)" it reads right.
    return "CASE WHEN " + id + " < '0001-01-01' THEN replace(" + id +
           "::text, ' BC', ' (BC)') ELSE " + id + "::text END";
  }
  return id;
}

Result<int64_t> CopyOut(const DbRequest& req, PGconn* conn, const std::string& copy,
                        CsvFileWriter& out) {
  if (!PQsendQuery(conn, copy.c_str())) {
    std::string m = PQerrorMessage(conn);
    return DatabaseError(req, "PostgreSQL cannot start reading " + What(req), m);
  }
  Res started(PQgetResult(conn));
  if (!started || PQresultStatus(started.get()) != PGRES_COPY_OUT) {
    std::string m = started ? PQresultErrorMessage(started.get()) : PQerrorMessage(conn);
    while (PGresult* r = PQgetResult(conn)) PQclear(r);
    return DatabaseError(req, "PostgreSQL cannot read " + What(req), m + Hint(m));
  }
  const int64_t deadline =
      req.timeout_seconds > 0 ? MonotonicMillis() + req.timeout_seconds * 1000 : 0;
  std::string stopped;
  Status failed = Status::Ok();
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn, &buf, /*async=*/1);
    if (n > 0) {
      Status st = out.Raw(buf, static_cast<size_t>(n));
      PQfreemem(buf);
      if (!st.ok() && failed.ok()) {
        failed = st;
        stopped = "write";
      }
      if (!failed.ok()) break;
      continue;
    }
    if (n == -1) break;  // done
    if (n == -2) {
      // The connection is closed by the caller (PQfinish): draining a
      // COPY that broke off could wait on it for ever.
      return DatabaseError(req, "PostgreSQL stopped sending " + What(req), PQerrorMessage(conn));
    }
    bool cancelled = req.cancel && req.cancel->load();
    bool late = deadline > 0 && MonotonicMillis() > deadline;
    if (cancelled || late) {
      stopped = cancelled ? "cancel" : "timeout";
      break;
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    (void)::poll(&p, 1, 200);
    if (!PQconsumeInput(conn)) {
      std::string m = PQerrorMessage(conn);
      return DatabaseError(req, "PostgreSQL's connection broke while sending " + What(req), m);
    }
  }
  if (!stopped.empty()) {
    // The server stops the query; the connection, still in COPY OUT
    // (where PQgetResult never returns NULL), is closed by the caller.
    if (PGcancel* c = PQgetCancel(conn)) {
      char err[256];
      (void)PQcancel(c, err, sizeof err);
      PQfreeCancel(c);
    }
    if (stopped == "cancel")
      return Status::Cancelled("the run was cancelled while reading " + What(req));
    if (stopped == "timeout") {
      return Status(StatusCode::kTimeout,
                    "reading " + What(req) + " took longer than " +
                        std::to_string(req.timeout_seconds) +
                        "s; the server's query was cancelled (raise timeout: or "
                        "defaults.timeout)");
    }
    return failed;
  }
  Res done(PQgetResult(conn));
  if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
    std::string m = done ? PQresultErrorMessage(done.get()) : PQerrorMessage(conn);
    while (PGresult* r = PQgetResult(conn)) PQclear(r);
    return DatabaseError(req, "PostgreSQL failed while sending " + What(req), m + Hint(m));
  }
  int64_t rows = std::atoll(PQcmdTuples(done.get()));
  while (PGresult* r = PQgetResult(conn)) PQclear(r);
  return rows;
}

}  // namespace sluice::pg

namespace sluice {

Result<std::vector<DbTableInfo>> ListPostgresTables(const DbRequest& req,
                                                    const std::string& schema) {
  ASSIGN_OR_RETURN(pg::Conn conn, pg::Connect(req));
  ASSIGN_OR_RETURN(
      pg::Res r,
      pg::Query(req, conn.get(),
                "SELECT c.relname, coalesce((SELECT array_to_json(array_agg(a.attname ORDER BY "
                "k.ord))::text FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS "
                "k(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
                "k.attnum WHERE i.indrelid = c.oid AND i.indisprimary AND k.ord <= "
                "i.indnkeyatts), '[]'), c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT "
                "c.relispartition AND has_table_privilege(c.oid, 'SELECT') ORDER BY c.relname",
                {schema}, "listing the tables of schema " + schema));
  std::vector<DbTableInfo> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    DbTableInfo t;
    t.name = PQgetvalue(r.get(), i, 0);
    nlohmann::json key = nlohmann::json::parse(PQgetvalue(r.get(), i, 1), nullptr, false);
    if (key.is_array()) {
      for (const auto& k : key) t.key.push_back(k.get<std::string>());
    }
    t.partitioned = std::string(PQgetvalue(r.get(), i, 2)) == "t";
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

class PostgresDriver final : public DatabaseDriver {
 public:
  Result<DbExtract> Extract(const DbRequest& req, CsvFileWriter& out) const override {
    ASSIGN_OR_RETURN(pg::Conn conn, pg::Connect(req));
    RETURN_IF_ERROR(pg::Exec(req, conn.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                             "starting the read"));
    if (!req.snapshot.empty()) {
      RETURN_IF_ERROR(pg::Exec(req, conn.get(),
                               "SET TRANSACTION SNAPSHOT " + QuoteLiteral(req.snapshot),
                               "taking the change capture's snapshot"));
    }
    ASSIGN_OR_RETURN(std::string relation, pg::RelationSql(req));
    if (!req.only_columns.empty()) {
      std::vector<std::string> cols;
      for (const std::string& c : req.only_columns) cols.push_back(QuoteIdent(c));
      relation = "SELECT " + Join(cols, ", ") + " FROM (" + relation + "\n) AS k";
    }
    ASSIGN_OR_RETURN(std::vector<DbColumn> columns, pg::Describe(req, conn.get(), relation));
    if (!req.since.column.empty()) {
      ASSIGN_OR_RETURN(relation, Since(req, conn.get(), relation, columns));
    }
    auto ident = [](const std::string& n) { return QuoteIdent(n); };
    relation = PageSql(relation, req.page, ident, [&](const std::string& v) {
      char* escaped = PQescapeLiteral(conn.get(), v.data(), v.size());
      std::string out = escaped ? escaped : QuoteLiteral(v);
      PQfreemem(escaped);
      return out;
    });
    std::vector<std::string> select;
    for (const DbColumn& c : columns) {
      select.push_back(pg::ValueExpr(c, "q." + QuoteIdent(c.name)) + " AS " + QuoteIdent(c.name));
    }
    for (const DbRequest::Constant& k : req.constants) {
      select.push_back(QuoteLiteral(k.value) + "::text AS " + QuoteIdent(k.name));
      columns.push_back(DbColumn{k.name, "text", k.type, DbEncoding::kPlain});
    }
    std::string copy = "COPY (SELECT " + Join(select, ", ") + " FROM (" + relation + "\n) AS q" +
                       PageOrder(req.page, "q", ident) +
                       ") TO STDOUT WITH (FORMAT csv, HEADER true)";
    DbExtract extract;
    extract.columns = std::move(columns);
    ASSIGN_OR_RETURN(extract.rows, pg::CopyOut(req, conn.get(), copy, out));
    (void)pg::Exec(req, conn.get(), "COMMIT", "ending the read");
    return extract;  // a failure above returns at once: PQfinish drops the connection
  }

 private:
  // The relation limited to the rows at or past the cursor (less the
  // lookback), the value a literal of the cursor column's own type.
  static Result<std::string> Since(const DbRequest& req, PGconn* conn, const std::string& relation,
                                   const std::vector<DbColumn>& columns) {
    const DbColumn* cursor = nullptr;
    for (const DbColumn& c : columns) {
      if (c.name == req.since.column) cursor = &c;
    }
    if (!cursor) {
      return DatabaseError(
          req, "incremental: cursor '" + req.since.column + "' is not a column of " + pg::What(req),
          "name a column it returns");
    }
    char* literal = PQescapeLiteral(conn, req.since.value.data(), req.since.value.size());
    if (!literal)
      return DatabaseError(req, "cannot quote the cursor's value", PQerrorMessage(conn));
    std::string value = literal;
    PQfreemem(literal);
    std::string bound = "CAST(" + value + " AS " + cursor->source_type + ")";
    if (req.since.lookback_seconds > 0) {
      bound = "(" + bound + " - make_interval(secs => " +
              std::to_string(req.since.lookback_seconds) + "))";
    }
    return "SELECT * FROM (" + relation + "\n) AS s WHERE s." + QuoteIdent(cursor->name) +
           " >= " + bound;
  }
};

}  // namespace

std::unique_ptr<DatabaseDriver> NewPostgresDriver() { return std::make_unique<PostgresDriver>(); }

}  // namespace sluice
