// Column phases (DESIGN §2): a source table with `columns:` is read as text
// and cleaned by SQL generated here, in order: normalise (trim, null tokens,
// skip patterns) → map (input columns onto fields; concat) → patch (regex
// replacements) → harmonise (the field type vocabulary; range) → default (a
// value or another field) → filter → de-duplicate by key (the last row wins).
// Every value that could not be converted, was out of range, patched or
// defaulted, and every dropped duplicate or skipped row, becomes a row of the
// issue log. All of it is set-based SQL; nothing loops over rows in C++.
// Pure functions of the table spec and the project's fields.
#pragma once

#include <string>
#include <vector>

#include "config/project.h"
#include "core/status.h"

namespace sluice {

// One raw object's rows as text: a table expression (e.g. read_csv(...,
// all_varchar=true)) and the object's hash, for record numbers and issues.
struct PhaseInput {
  std::string read_sql;
  std::string object_sha256;
};

// "CREATE TABLE <physical>", or CREATE TEMP TABLE for a batch staged in the
// session's temp catalog ("temp.<name>"); `replace`: CREATE OR REPLACE.
std::string CreateTableSql(const std::string& physical, bool replace = false);

// Where a build's results go: the staged relation (schema-qualified and
// quoted), the quarantine table (likewise; "" without quarantine: true), and
// the asset and version the issue log rows are keyed by.
struct PhaseTargets {
  std::string physical;
  std::string quarantine;
  std::string asset;
  std::string version;
};

struct PhaseSql {
  // Statements, in order:
  std::string build;       // CREATE TABLE <physical> AS ...: every phase in one pass, every
                           // row in file order (record number = rowid - the object's first
                           // rowid + 1), with flag columns (skipped, filtered out, bad, the
                           // row's issues)
  std::string dedup;       // "" without a key: the duplicates to drop, into a temp table
  std::string quarantine;  // "" unless quarantine: true: CREATE OR REPLACE TABLE <quarantine>
  std::string issues;      // INSERT INTO _sluice.issues ... (bounded per object, field, type)
  std::string finalize;    // delete the flagged rows, drop the flag columns
  std::vector<std::string> fields;  // the output columns, in order
  // Input columns no columns: entry maps: kept under their own names, or
  // left out with columns_only: true.
  std::vector<std::string> unmapped;
};

// Issues kept per (object, field, issue type); beyond it only a count.
inline constexpr int kIssueRowsPerKind = 100;

// The SQL for one table's phases over its raw objects. `input_columns` are
// the columns the raw data has (read as text), in file order.
Result<PhaseSql> CompilePhases(const TableSpec& table, const std::vector<PhaseInput>& inputs,
                               const std::vector<std::string>& input_columns,
                               const std::map<std::string, FieldSpec>& fields,
                               const PhaseTargets& targets,
                               int issue_rows_per_kind = kIssueRowsPerKind);

// The DuckDB type a field type is stored as ("integer" -> INTEGER, ...).
std::string StorageType(const std::string& field_type);

// Creates _sluice.issues when missing.
std::string IssueTableDdl();

}  // namespace sluice
