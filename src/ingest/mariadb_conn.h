// What the MariaDB/MySQL reads share (database_mariadb.cpp, cdc_mariadb.cpp):
// a connection set up so that every value's text is unambiguous (utf8mb4,
// a UTC session), small queries, and one result streamed into a
// CsvFileWriter. Internal to ingest/.
#pragma once

#include <mysql.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "ingest/database.h"

namespace sluice::mariadb {

struct ConnDeleter {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
using Conn = std::unique_ptr<MYSQL, ConnDeleter>;

struct Url {
  std::string user, password, host = "127.0.0.1", database, socket;
  unsigned port = 3306;
  std::map<std::string, std::string> params;
};
Result<Url> ParseUrl(const std::string& url);

// A connection to req.url (TLS as its parameters say, utf8mb4), its
// session in UTC with req's timeout as the per-statement limit.
Result<Conn> Connect(const DbRequest& req);

// An error naming `what`, with the server's message and a hint.
Status Error(const DbRequest& req, MYSQL* conn, const std::string& what);

std::string QuoteIdent(const std::string& name);
// "`db`.`table`" for "db.table" or "table".
Result<std::string> QualifiedName(const std::string& relation);

// Runs `sql`; an error names `what`.
Status Exec(const DbRequest& req, MYSQL* conn, const std::string& sql, const std::string& what);

// A small query's rows (nullopt: NULL).
using Rows = std::vector<std::vector<std::optional<std::string>>>;
Result<Rows> Query(const DbRequest& req, MYSQL* conn, const std::string& sql,
                   const std::string& what);

// The columns `sql` returns, each mapped (MapMariaDbType); no rows are read.
Result<std::vector<DbColumn>> Describe(const DbRequest& req, MYSQL* conn, const std::string& sql);

// Streams `sql`'s rows into `out` (a header row first), with req.constants
// after each row's columns; a cancel or req's timeout stops the server.
Result<DbExtract> Stream(const DbRequest& req, MYSQL* conn, const std::string& sql,
                         CsvFileWriter& out);

}  // namespace sluice::mariadb
