// MySQL and MariaDB through MariaDB Connector/C: the rows streamed from the
// server (mysql_use_result) as they come, inside a read-only transaction
// with a consistent snapshot, in a UTC session (TIMESTAMP columns are
// instants: read as TIMESTAMPTZ). Zero dates ('0000-00-00'), which no
// calendar has, are written as NULL and counted in the run's notes.
//
// URL: mysql://user:password@host:port/database?ssl=true&ssl_ca=PATH&socket=PATH
#include <charconv>
#include <mutex>
#include <set>

#include "core/clock.h"
#include "core/strings.h"
#include "ingest/database.h"
#include "ingest/mariadb_conn.h"

namespace sluice::mariadb {
namespace {

struct ResultDeleter {
  void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};

std::string Hint(unsigned code) {
  switch (code) {
    case 1045:
      return " (check the user and password in the url's secret)";
    case 2002:
    case 2003:
    case 2005:
      return " (is the server running, and are its host and port right in the url?)";
    case 1146:
    case 1049:
      return " (check the name in table: or query: and the url's database)";
    case 1142:
    case 1044:
      return " (grant the url's user SELECT on it)";
    case 1227:
      return " (change capture needs GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO the url's "
             "user)";
    default:
      return "";
  }
}

bool IsZeroDate(const char* v, size_t n) {
  return n >= 10 && std::string_view(v, 10) == "0000-00-00";
}

std::string What(const DbRequest& req) {
  return req.table.empty() ? std::string("the query") : "table " + req.table;
}

}  // namespace

Result<Url> ParseUrl(const std::string& url) {
  Url u;
  size_t scheme = url.find("://");
  std::string rest = url.substr(scheme + 3);
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string path;
  if (size_t slash = rest.find('/'); slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    u.user = PercentDecode(userinfo.substr(0, colon));
    if (colon != std::string::npos) u.password = PercentDecode(userinfo.substr(colon + 1));
  }
  if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return Status::Invalid("database: url: '" + port + "' is not a port number");
    }
    u.port = p;
  }
  if (!rest.empty()) u.host = PercentDecode(rest);
  u.database = PercentDecode(path);
  for (const std::string& pair : Split(query, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    u.params[PercentDecode(pair.substr(0, eq))] =
        eq == std::string::npos ? "" : PercentDecode(pair.substr(eq + 1));
  }
  for (const auto& [k, v] : u.params) {
    if (k != "ssl" && k != "ssl_ca" && k != "ssl_cert" && k != "ssl_key" && k != "socket" &&
        k != "ssl_verify") {
      return Status::Invalid("database: url: unknown parameter '" + k +
                             "'; supported: ssl, ssl_ca, ssl_cert, ssl_key, ssl_verify, socket");
    }
  }
  if (u.params.count("socket")) u.socket = u.params["socket"];
  return u;
}

std::string QuoteIdent(const std::string& name) {
  std::string out = "`";
  for (char c : name) out += c == '`' ? std::string("``") : std::string(1, c);
  return out + "`";
}

Result<std::string> QualifiedName(const std::string& relation) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitRelationName(relation));
  std::vector<std::string> quoted;
  for (const std::string& p : parts) quoted.push_back(QuoteIdent(p));
  return Join(quoted, ".");
}

Status Error(const DbRequest& req, MYSQL* conn, const std::string& what) {
  unsigned code = mysql_errno(conn);
  return DatabaseError(req, what, std::string(mysql_error(conn)) + Hint(code));
}

Result<Conn> Connect(const DbRequest& req) {
  static std::once_flag init;
  std::call_once(init, [] { mysql_library_init(0, nullptr, nullptr); });
  ASSIGN_OR_RETURN(Url url, ParseUrl(req.url));
  Conn conn(mysql_init(nullptr));
  if (!conn) return Status::Internal("MariaDB: out of memory");
  unsigned connect_timeout = static_cast<unsigned>(
      req.connect_timeout_seconds > 0 ? std::min<int64_t>(req.connect_timeout_seconds, 10) : 10);
  mysql_optionsv(conn.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (req.timeout_seconds > 0) {
    unsigned read_timeout = static_cast<unsigned>(req.timeout_seconds);
    mysql_optionsv(conn.get(), MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  }
  std::string ssl = url.params.count("ssl") ? url.params["ssl"] : "";
  if (ssl == "true" || ssl == "required" || url.params.count("ssl_ca")) {
    my_bool on = 1;
    mysql_optionsv(conn.get(), MYSQL_OPT_SSL_ENFORCE, &on);
    my_bool verify = url.params.count("ssl_verify") ? url.params["ssl_verify"] != "false" : 1;
    mysql_optionsv(conn.get(), MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (url.params.count("ssl_ca"))
      mysql_optionsv(conn.get(), MYSQL_OPT_SSL_CA, url.params["ssl_ca"].c_str());
    if (url.params.count("ssl_cert"))
      mysql_optionsv(conn.get(), MYSQL_OPT_SSL_CERT, url.params["ssl_cert"].c_str());
    if (url.params.count("ssl_key"))
      mysql_optionsv(conn.get(), MYSQL_OPT_SSL_KEY, url.params["ssl_key"].c_str());
  }
  mysql_optionsv(conn.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (!mysql_real_connect(conn.get(), url.host.c_str(), url.user.c_str(),
                          url.password.empty() ? nullptr : url.password.c_str(),
                          url.database.empty() ? nullptr : url.database.c_str(), url.port,
                          url.socket.empty() ? nullptr : url.socket.c_str(), 0)) {
    return Error(req, conn.get(), "cannot connect to MariaDB/MySQL");
  }
  RETURN_IF_ERROR(Exec(req, conn.get(), "SET time_zone = '+00:00'", "setting up the session"));
  if (req.timeout_seconds > 0) {
    // MariaDB's per-statement limit; MySQL calls it max_execution_time (ms).
    std::string limit = "SET SESSION max_statement_time = " + std::to_string(req.timeout_seconds);
    if (mysql_query(conn.get(), limit.c_str()) != 0) {
      limit = "SET SESSION max_execution_time = " + std::to_string(req.timeout_seconds * 1000);
      (void)mysql_query(conn.get(), limit.c_str());
    }
  }
  return conn;
}

Status Exec(const DbRequest& req, MYSQL* conn, const std::string& sql, const std::string& what) {
  if (mysql_real_query(conn, sql.data(), sql.size()) != 0) return Error(req, conn, what);
  // A statement that returns rows (SHOW, SELECT) has them read and dropped.
  std::unique_ptr<MYSQL_RES, ResultDeleter> res(mysql_store_result(conn));
  if (!res && mysql_field_count(conn) != 0) return Error(req, conn, what);
  return Status::Ok();
}

Result<Rows> Query(const DbRequest& req, MYSQL* conn, const std::string& sql,
                   const std::string& what) {
  if (mysql_real_query(conn, sql.data(), sql.size()) != 0) return Error(req, conn, what);
  std::unique_ptr<MYSQL_RES, ResultDeleter> res(mysql_store_result(conn));
  if (!res) {
    if (mysql_field_count(conn) == 0) return Rows{};
    return Error(req, conn, what);
  }
  Rows rows;
  unsigned n = mysql_num_fields(res.get());
  while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
    unsigned long* lengths = mysql_fetch_lengths(res.get());
    std::vector<std::optional<std::string>> out;
    for (unsigned i = 0; i < n; ++i) {
      if (row[i] == nullptr) {
        out.emplace_back();
      } else {
        out.emplace_back(std::string(row[i], lengths[i]));
      }
    }
    rows.push_back(std::move(out));
  }
  return rows;
}

namespace {

Result<std::vector<DbColumn>> Columns(const DbRequest& req, MYSQL_RES* res) {
  unsigned n = mysql_num_fields(res);
  MYSQL_FIELD* fields = mysql_fetch_fields(res);
  std::vector<DbColumn> columns;
  std::set<std::string> seen;
  for (unsigned i = 0; i < n; ++i) {
    MariaDbField f;
    f.name = std::string(fields[i].name, fields[i].name_length);
    f.type = static_cast<int>(fields[i].type);
    f.is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
    f.binary = fields[i].charsetnr == 63;
    f.length = fields[i].length;
    f.decimals = fields[i].decimals;
    if (!seen.insert(f.name).second) {
      return DatabaseError(req, What(req) + " returns the column '" + f.name + "' twice",
                           "give each column of the query its own name (AS ...)");
    }
    columns.push_back(MapMariaDbType(f));
  }
  return columns;
}

}  // namespace

Result<std::vector<DbColumn>> Describe(const DbRequest& req, MYSQL* conn, const std::string& sql) {
  std::string limited = "SELECT * FROM (" + sql + "\n) AS d LIMIT 0";
  if (mysql_real_query(conn, limited.data(), limited.size()) != 0) {
    return Error(req, conn, "MariaDB/MySQL cannot describe " + What(req));
  }
  std::unique_ptr<MYSQL_RES, ResultDeleter> res(mysql_store_result(conn));
  if (!res) return Error(req, conn, "MariaDB/MySQL cannot describe " + What(req));
  return Columns(req, res.get());
}

Result<DbExtract> Stream(const DbRequest& req, MYSQL* conn, const std::string& sql,
                         CsvFileWriter& out) {
  if (mysql_real_query(conn, sql.data(), sql.size()) != 0) {
    return Error(req, conn, "MariaDB/MySQL cannot read " + What(req));
  }
  std::unique_ptr<MYSQL_RES, ResultDeleter> res(mysql_use_result(conn));
  if (!res) {
    if (mysql_field_count(conn) == 0) {
      return DatabaseError(req, What(req) + " returns no rows",
                           "a query: must be a SELECT that returns rows");
    }
    return Error(req, conn, "MariaDB/MySQL cannot read " + What(req));
  }
  unsigned n = mysql_num_fields(res.get());
  DbExtract extract;
  ASSIGN_OR_RETURN(extract.columns, Columns(req, res.get()));
  for (const DbRequest::Constant& k : req.constants) {
    extract.columns.push_back(DbColumn{k.name, "text", k.type, DbEncoding::kPlain});
  }
  for (const DbColumn& c : extract.columns) RETURN_IF_ERROR(out.Text(c.name.data(), c.name.size()));
  RETURN_IF_ERROR(out.EndRow());
  const int64_t deadline =
      req.timeout_seconds > 0 ? MonotonicMillis() + req.timeout_seconds * 1000 : 0;
  int64_t zero_dates = 0;
  std::string text;
  // A failed write stops the read without draining the rest of the
  // result (mysql_free_result would read it all).
  struct CancelOnError {
    MYSQL* conn;
    bool done = false;
    ~CancelOnError() {
      if (!done) mariadb_cancel(conn);
    }
  } cancel_on_error{conn};
  while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
    unsigned long* lengths = mysql_fetch_lengths(res.get());
    for (unsigned i = 0; i < n; ++i) {
      const DbColumn& c = extract.columns[i];
      const char* v = row[i];
      size_t len = lengths[i];
      if (v == nullptr) {
        RETURN_IF_ERROR(out.Null());
      } else if (c.encoding == DbEncoding::kHex) {
        RETURN_IF_ERROR(out.Hex(reinterpret_cast<const unsigned char*>(v), len));
      } else if (c.source_type == "bit") {
        uint64_t bits = 0;
        for (size_t b = 0; b < len && b < 8; ++b)
          bits = (bits << 8) | static_cast<unsigned char>(v[b]);
        text = std::to_string(bits);
        RETURN_IF_ERROR(out.Text(text.data(), text.size()));
      } else if ((c.type == "DATE" || c.type == "TIMESTAMP" || c.type == "TIMESTAMPTZ") &&
                 IsZeroDate(v, len)) {
        ++zero_dates;
        RETURN_IF_ERROR(out.Null());
      } else if (c.type == "TIMESTAMPTZ") {
        text.assign(v, len);
        text += "+00";
        RETURN_IF_ERROR(out.Text(text.data(), text.size()));
      } else {
        RETURN_IF_ERROR(out.Text(v, len));
      }
    }
    for (const DbRequest::Constant& k : req.constants) {
      RETURN_IF_ERROR(out.Text(k.value.data(), k.value.size()));
    }
    RETURN_IF_ERROR(out.EndRow());
    if ((++extract.rows & 4095) == 0) {
      bool cancelled = req.cancel && req.cancel->load();
      if (cancelled || (deadline > 0 && MonotonicMillis() > deadline)) {
        mariadb_cancel(conn);  // the rest is not read (nor drained)
        if (cancelled) return Status::Cancelled("the run was cancelled while reading " + What(req));
        return Status(StatusCode::kTimeout, "reading " + What(req) + " took longer than " +
                                                std::to_string(req.timeout_seconds) +
                                                "s (raise timeout: or defaults.timeout)");
      }
    }
  }
  cancel_on_error.done = true;
  if (mysql_errno(conn) != 0) {
    return Error(req, conn, "MariaDB/MySQL stopped sending " + What(req));
  }
  if (zero_dates > 0) {
    extract.notes.push_back(std::to_string(zero_dates) +
                            " zero date(s) ('0000-00-00') loaded as NULL");
  }
  return extract;
}

}  // namespace sluice::mariadb

namespace sluice {

Result<std::vector<DbTableInfo>> ListMariaDbTables(const DbRequest& req,
                                                   const std::string& schema) {
  ASSIGN_OR_RETURN(mariadb::Conn conn, mariadb::Connect(req));
  std::string escaped(schema.size() * 2 + 1, '\0');
  escaped.resize(
      mysql_real_escape_string(conn.get(), escaped.data(), schema.data(), schema.size()));
  ASSIGN_OR_RETURN(
      mariadb::Rows rows,
      mariadb::Query(req, conn.get(),
                     "SELECT t.TABLE_NAME, k.COLUMN_NAME FROM information_schema.TABLES t LEFT "
                     "JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = "
                     "t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME AND k.CONSTRAINT_NAME = "
                     "'PRIMARY' WHERE t.TABLE_SCHEMA = '" +
                         escaped +
                         "' AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY "
                         "BINARY t.TABLE_NAME, k.ORDINAL_POSITION",
                     "listing the tables of schema " + schema));
  std::vector<DbTableInfo> out;
  for (const auto& row : rows) {
    std::string name = row[0].value_or("");
    if (out.empty() || out.back().name != name) out.push_back(DbTableInfo{name, {}});
    if (row[1]) out.back().key.push_back(*row[1]);
  }
  return out;
}

namespace {

class MariaDbDriver final : public DatabaseDriver {
 public:
  Result<DbExtract> Extract(const DbRequest& req, CsvFileWriter& out) const override {
    ASSIGN_OR_RETURN(mariadb::Conn conn, mariadb::Connect(req));
    for (const char* setup :
         {"SET SESSION TRANSACTION READ ONLY", "START TRANSACTION WITH CONSISTENT SNAPSHOT"}) {
      RETURN_IF_ERROR(mariadb::Exec(req, conn.get(), setup, "setting up the session"));
    }
    std::string sql;
    if (!req.table.empty()) {
      ASSIGN_OR_RETURN(std::string name, mariadb::QualifiedName(req.table));
      sql = "SELECT * FROM " + name;
    } else {
      sql = StripStatementEnd(req.query);
    }
    if (!req.only_columns.empty()) {
      std::vector<std::string> cols;
      for (const std::string& c : req.only_columns) cols.push_back(mariadb::QuoteIdent(c));
      sql = "SELECT " + Join(cols, ", ") + " FROM (" + sql + "\n) AS k";
    }
    if (!req.since.column.empty()) {
      std::string escaped(req.since.value.size() * 2 + 1, '\0');
      unsigned long n = mysql_real_escape_string(conn.get(), escaped.data(), req.since.value.data(),
                                                 req.since.value.size());
      escaped.resize(n);
      const std::string& t = req.since.type;
      bool number = (t.find("INT") != std::string::npos && t != "INTERVAL") ||
                    StartsWith(t, "DECIMAL") || t == "DOUBLE" || t == "FLOAT";
      std::string bound = number ? req.since.value : "'" + escaped + "'";
      if (number &&
          (bound.empty() || bound.find_first_not_of("0123456789.-+eE") != std::string::npos)) {
        return Status::Internal("a numeric cursor's value is not a number: " + bound);
      }
      if (req.since.lookback_seconds > 0) {
        bound =
            "(" + bound + " - INTERVAL " + std::to_string(req.since.lookback_seconds) + " SECOND)";
      }
      sql = "SELECT * FROM (" + sql + "\n) AS s WHERE s." + mariadb::QuoteIdent(req.since.column) +
            " >= " + bound;
    }
    sql = PageSql(
        sql, req.page, [](const std::string& n) { return mariadb::QuoteIdent(n); },
        [&](const std::string& v) {
          std::string escaped(v.size() * 2 + 1, '\0');
          escaped.resize(mysql_real_escape_string(conn.get(), escaped.data(), v.data(), v.size()));
          return "'" + escaped + "'";
        });
    ASSIGN_OR_RETURN(DbExtract extract, mariadb::Stream(req, conn.get(), sql, out));
    (void)mysql_query(conn.get(), "COMMIT");
    return extract;
  }
};

}  // namespace

std::unique_ptr<DatabaseDriver> NewMariaDbDriver() { return std::make_unique<MariaDbDriver>(); }

}  // namespace sluice
