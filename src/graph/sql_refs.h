// What a SELECT reads, inferred from DuckDB's own parser: `json_serialize_sql`
// gives the parse tree as JSON and a walker collects table references (minus
// CTE names in scope), file reads and function calls. The SQL must already be
// rendered (no `{{ }}`) and be one SELECT statement.
//
// Thread-safety: SqlRefs is plain data. A SqlParser owns its own in-memory
// DuckDB connection and must be used by one thread at a time (one per thread).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "warehouse/duckdb.h"

namespace sluice {

struct SqlRefs {
  // Referenced names, lower-case, "schema.name" (or "catalog.schema.name")
  // when qualified, sorted unique. CTE names in scope are not references.
  std::vector<std::string> tables;
  // Quoted file paths read, as written: FROM 'x.parquet', read_csv('a.csv'),
  // read_parquet(['a', 'b']) ...; sorted unique.
  std::vector<std::string> files;
  // Every function name called (operators excluded), lower-case, sorted unique.
  std::vector<std::string> functions;
  // Calls now(), current_timestamp, random(), uuid(), nextval() or similar.
  bool nondeterministic = false;

  bool operator==(const SqlRefs&) const = default;
};

// Extracts SqlRefs from `json_serialize_sql` output for `sql` (the text is
// needed to tell FROM 'x.csv' from FROM "x.csv"). Errors: the JSON reports a
// parse error, holds no or several statements, or is not a parse tree.
Result<SqlRefs> RefsFromJson(std::string_view sql, std::string_view json);

class SqlParser {
 public:
  SqlParser(SqlParser&&) noexcept = default;
  SqlParser& operator=(SqlParser&&) = delete;  // members must close in reverse order

  // Cheap: DuckDB is opened lazily, on the first statement that needs parsing.
  static Result<SqlParser> Create();
  // The raw `json_serialize_sql` output for sql (error JSON included); for
  // golden tests and debugging.
  Result<std::string> SerializeToJson(const std::string& sql);
  // Parses one SELECT statement. Errors (Status::Invalid): DuckDB's parse
  // error message with its "LINE n:" context, or "a model must be a single
  // SELECT statement ..." for other statements.
  Result<SqlRefs> Parse(const std::string& sql);

 private:
  SqlParser() = default;
  Status EnsureOpen();
  Status ParseErrorDetail(const std::string& sql, const std::string& fallback);

  DuckDbDatabase db_;
  DuckDbConnection conn_;
  DuckDbPrepared serialize_;  // set by EnsureOpen  // SELECT json_serialize_sql(?::VARCHAR)
};

}  // namespace sluice
