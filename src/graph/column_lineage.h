// Column-level lineage: for each output column of a model's SELECT, the
// upstream columns that feed it, from DuckDB's own parse tree
// (`json_serialize_sql`, as graph/sql_refs.h), through `*` (with EXCLUDE,
// REPLACE, RENAME, and USING / NATURAL columns counted once), joins, CTEs,
// subqueries in FROM and in expressions, set operations (by position or by
// name) and `GROUP BY ALL`. A column's sources are the columns its
// expression reads (WHERE, JOIN ON and GROUP BY feed which rows, not
// values: they are not sources).
//
// Where it cannot be known it says so instead of guessing: a relation whose
// columns are unknown (not yet published, a table function, a file), a
// COLUMNS(...) expression, a name that resolves to nothing or to several
// relations. Such a column carries `unknown` (why), with what is known.
//
// Plain functions over plain data: no DuckDB here (the caller parses).
#pragma once

#include <compare>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace sluice {

struct ColumnRef {
  std::string relation;  // lower-case asset (or table) name
  std::string column;    // as the relation names it
  auto operator<=>(const ColumnRef&) const = default;
};

struct ColumnLineage {
  std::string column;              // the output column's name
  std::vector<ColumnRef> sources;  // sorted unique
  std::string unknown;             // why the sources are incomplete, or ""
};

struct QueryColumnLineage {
  std::vector<ColumnLineage> columns;
  // Why the output's columns themselves are not known (SELECT * over a
  // relation of unknown columns, COLUMNS(*)), or "". When set, `columns`
  // holds only what could be placed.
  std::string unknown;
};

// The columns of a relation the SQL reads (lower-case name), in order; nullopt
// when they are not known.
using SchemaLookup = std::function<std::optional<std::vector<std::string>>(const std::string&)>;

// The lineage of the SELECT whose `json_serialize_sql` output is `tree_json`.
// `output_names`: the columns the engine gave the result (a published
// schema), used when their count matches, since DuckDB names unaliased
// expressions ("count_star()") its own way; else names are derived.
// Errors: the JSON is not a parse tree of one statement.
Result<QueryColumnLineage> ColumnLineageFromJson(std::string_view tree_json,
                                                 const SchemaLookup& schema_of,
                                                 const std::vector<std::string>& output_names = {});

// As JSON: [{"column", "sources": [{"asset", "column"}], "unknown"?}].
nlohmann::json ColumnLineageJson(const QueryColumnLineage& lineage);

}  // namespace sluice
