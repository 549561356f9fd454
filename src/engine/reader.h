// Readers: `sluice query` today, the HTTP API's data and query endpoints
// later. A reader gives one statement, a read. It is classified by parsing
// (DuckDB's json_serialize_sql) before anything binds, because binding
// already reads files: DDL, DML, ATTACH, COPY, SET, PRAGMA, several
// statements, file paths, globs, table functions that read files or the
// catalog, sequences and settings are refused with a message that says what
// readers may reach: the project's published relations, its `external:`
// tables, `_sluice.*` and `_sluice_failed.*`. An accepted read runs under a
// timeout (the connection is interrupted) and a row cap, and every value is
// rendered by RenderColumn. Thread-safe: each call uses the caller's session.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "warehouse/render.h"
#include "warehouse/warehouse.h"

namespace sluice {

// What a reader may reach, lower case: public names of published assets
// ("stops") and external tables ("legacy.customers").
struct ReadScope {
  std::set<std::string> relations;
};

// Refuses (StatusCode::kRefused) anything but one SELECT that reaches only
// what scope allows; a name that is no readable relation is NotFound.
// `parse_tree` is json_serialize_sql's output for `sql`.
Status CheckReadStatement(const std::string& sql, const std::string& parse_tree,
                          const ReadScope& scope);

struct ReadLimits {
  int64_t max_rows = 10000;     // 0: no cap
  int64_t timeout_seconds = 0;  // 0: none
};

struct ReadSummary {
  int64_t rows = 0;
  bool truncated = false;  // more rows than max_rows: the rest were not read
};

// Checks and runs a reader's statement on session, streaming rendered rows
// to visitor (whose row callback returning false stops the read).
Result<ReadSummary> RunRead(WarehouseSession& session, const std::string& sql,
                            const ReadScope& scope, RenderFormat format, const ReadLimits& limits,
                            const RowVisitor& visitor);

// A statement Sluice built itself from catalog names it checked, with every
// value a bound parameter ($1, ...; engine/dataset.h): the same timeout, row
// cap and rendering, without the parse a reader's own SQL needs.
// A cache_tag keeps the statement prepared on the session (see
// WarehouseSession::Read).
Result<ReadSummary> RunBuiltRead(WarehouseSession& session, const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params,
                                 RenderFormat format, const ReadLimits& limits,
                                 const RowVisitor& visitor, const std::string& cache_tag = "");

}  // namespace sluice
