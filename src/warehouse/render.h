// How a reader sees values: one function renders every value a reader gets
// (`sluice query`, check samples, and the HTTP API later). Each result column
// becomes a SQL expression that DuckDB evaluates to text, so every type the
// engine has (nested types, uuid, timestamptz, timetz, intervals, bit strings,
// enums, 128-bit integers) prints as DuckDB itself prints it, and JSON keeps
// numbers of up to 64 bits, booleans and nested values as JSON (wider exact
// numbers, nan and inf are strings, so no reader loses a digit). Pure
// functions; thread-safe.
#pragma once

#include <duckdb.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

enum class RenderFormat {
  kText,  // every value as DuckDB's own text (tables, CSV)
  kJson,  // numbers, booleans and nested values as JSON literals; the rest as strings
};

// How a rendered value is written into JSON.
enum class JsonKind {
  kString,   // a JSON string holding the text
  kLiteral,  // the text is already JSON (a number, true/false, an array or object)
};

struct RenderedColumn {
  std::string name;
  std::string type;  // DuckDB's type name, e.g. DECIMAL(10,2), INTEGER[], STRUCT(a INTEGER)
  JsonKind json = JsonKind::kString;
  std::string sql;  // evaluates to VARCHAR (or NULL) for the column at its position
};

// The rendering of the result column at `position` (1-based) of a query
// wrapped as `SELECT <sql>... FROM (query)`.
RenderedColumn RenderColumn(size_t position, const std::string& name, duckdb_logical_type type,
                            RenderFormat format);

// A rendered value as a JSON value: null, the literal itself (a number,
// boolean, array or object), else a string — a literal that does not parse
// stays its text.
nlohmann::json RenderedJsonValue(const std::optional<std::string_view>& value, JsonKind kind);

// DuckDB's name for a logical type, nested types spelled out.
std::string LogicalTypeName(duckdb_logical_type type);

}  // namespace sluice
