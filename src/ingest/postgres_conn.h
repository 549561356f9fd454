// What the PostgreSQL reads share (database_postgres.cpp, cdc_postgres.cpp):
// a connection set up so that every value's text is unambiguous, the
// description of a relation's columns, the expression each column is
// written with, and one COPY streamed into a CsvFileWriter. Internal to
// ingest/.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ingest/database.h"

namespace sluice::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Res = std::unique_ptr<PGresult, ResultDeleter>;

// A hint for the errors people meet first ("" when none fits).
std::string Hint(const std::string& message);

// A connection to req.url, its session set for reading: UTC, ISO dates,
// round-trip floats, hex bytea, req's timeout. `replication`: a logical
// replication connection (replication=database), left as it connects.
Result<Conn> Connect(const DbRequest& req, bool replication = false);

// Runs `sql`; an error says what failed (`what`), with the server's message.
Status Exec(const DbRequest& req, PGconn* conn, const std::string& sql, const std::string& what);

// Runs a query with text parameters; the result, or an error naming `what`.
Result<Res> Query(const DbRequest& req, PGconn* conn, const std::string& sql,
                  const std::vector<std::string>& params, const std::string& what);

// "SELECT * FROM schema.table" for req.table, else req.query (its end stripped).
Result<std::string> RelationSql(const DbRequest& req);

// The relation's columns, each mapped from its base type.
Result<std::vector<DbColumn>> Describe(const DbRequest& req, PGconn* conn,
                                       const std::string& relation);

// The expression that writes column `c`, whose value is `id` (an SQL
// expression of the column's own type), as the text the decoder reads.
std::string ValueExpr(const DbColumn& c, const std::string& id);

// Streams `copy` (a COPY ... TO STDOUT) into `out`; a cancel or the timeout
// stops the server's work. Returns the rows the server counted.
Result<int64_t> CopyOut(const DbRequest& req, PGconn* conn, const std::string& copy,
                        CsvFileWriter& out);

// "the query" or "table schema.name", for messages.
std::string What(const DbRequest& req);

}  // namespace sluice::pg
