// Loading a source table (DESIGN §2): a source's raw objects become a staged
// table, for `sluice run` and `sluice check` alike. Each object is read by
// its format's decoder (the pages of a format that reads many files at once
// in one scan); a table with `columns:` is read as text and cleaned by the
// column phases, whose issues go to the issue log.
//
// Inference never loses a row. A value that does not fit the type a reader
// inferred widens its column instead — integer → bigint → hugeint → double
// → text, date → timestamp → timestamptz → text — at the cost of one more
// read of the objects concerned. Rows broken in structure (too many or too
// few fields, bad quoting) fail the load with their line numbers, or, with
// `options: {bad_rows: skip}`, are left out and each logged in the issue log.
//
// Uses the caller's session, from one thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/status.h"
#include "transform/phases.h"
#include "warehouse/warehouse.h"

namespace sluice {

struct LoadObject {
  std::string path;    // a local file (a zip member already extracted)
  std::string sha256;  // the raw object's: record numbers and issues are per object
};

struct LoadSpec {
  const TableSpec* table = nullptr;
  std::string format;
  nlohmann::json options = nlohmann::json::object();  // the source's, then the table's
  const std::map<std::string, FieldSpec>* fields = nullptr;
  std::vector<LoadObject> objects;
  std::string cache_dir;  // for files derived from the objects
  PhaseTargets targets;   // the staged table to create, quarantine, issue log keys
};

struct LoadOutcome {
  std::vector<std::string> notes;    // for the run's summary
  int64_t bad_rows = 0;              // rows left out under bad_rows: skip
  std::vector<std::string> widened;  // "id: BIGINT -> VARCHAR"
};

// Runs one statement that builds the staged table; the runner adds its
// timeout and retries here.
using BuildExecutor = std::function<Status(const std::string& sql)>;

// Creates spec.targets.physical from the objects, logs its issues (replacing
// those an earlier build of the same version logged) and says what the user
// must know. On error the staged table may exist: the caller drops it.
Result<LoadOutcome> LoadSourceTable(WarehouseSession& session, const LoadSpec& spec,
                                    const BuildExecutor& execute);

// A database extract's numbers of unbounded precision (`columns`: its
// DbColumnsToJson; those with encoding "fit" were read as text) each become
// the narrowest DECIMAL(p,s) in `physical` that holds every value exactly,
// or stay text when none does. Returns notes for the ones kept as text.
Result<std::vector<std::string>> FitNumericColumns(WarehouseSession& session,
                                                   const nlohmann::json& columns,
                                                   const std::string& physical);

// The counts of an asset version's issues as one line for the run summary,
// or "" when it has none.
Result<std::string> IssueSummary(WarehouseSession& session, const std::string& asset,
                                 const std::string& version);

}  // namespace sluice
