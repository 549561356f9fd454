// Data checks compiled to SQL. Each check type registers a compiler that
// turns a CheckSpec into a query whose rows are the failures; running a check
// counts them and keeps a small sample. Checks run on a staged build before it
// is published (the audit of write-audit-publish) and alone in `sluice test`.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/status.h"
#include "warehouse/warehouse.h"

namespace sluice {

// How a check ended: its failing-rows query found none (pass), found some
// (fail), or could not run (error). Stored and shown by name.
enum class CheckStatus { kPass, kFail, kError };
const char* CheckStatusName(CheckStatus status);

struct CheckOutcome {
  std::string name;
  Severity severity = Severity::kError;
  CheckStatus status = CheckStatus::kPass;
  int64_t failing_rows = 0;
  nlohmann::json sample = nlohmann::json::array();  // up to 5 failing rows as objects
  std::string message;
  bool Blocks() const { return severity == Severity::kError && status != CheckStatus::kPass; }
};

// relation: the SQL name of the relation to check (e.g. _sluice_v."stops__ab12").
using CheckCompiler =
    std::function<Result<std::string>(const CheckSpec&, const std::string& relation)>;

// The failing-rows query of a check, or an error naming the check.
Result<std::string> CompileCheck(const CheckSpec& check, const std::string& relation);
std::vector<std::string> RegisteredCheckTypes();

// {name, severity, status, failing_rows, sample, message}: the form reports use.
nlohmann::json CheckOutcomeJson(const CheckOutcome& outcome);

// Freshness: how old the newest data is against {warn_after, error_after}
// (durations such as "2h"). Stale past error_after is a blocking failure,
// past warn_after a warning; age_seconds < 0 means no data at all.
CheckOutcome FreshnessOutcome(const std::string& name, const nlohmann::json& thresholds,
                              int64_t age_seconds, const std::string& what);

// Runs checks against relation; a check whose SQL fails gets status "error".
std::vector<CheckOutcome> RunChecks(WarehouseSession& session, const std::vector<CheckSpec>& checks,
                                    const std::string& relation);

// True for the checks that judge each row alone (not_null, accepted_values,
// range, regex, expression, relationships): a batch applied in place need
// only have its own rows checked by them. The others (unique, row_count,
// sql, freshness) look at the whole table.
bool CheckLooksAtRows(const CheckSpec& check);

// Checks of a table changed in place: those that judge rows one by one on
// `rows` (the rows the change wrote), the others on the whole `table`; the
// outcomes in the checks' order.
std::vector<CheckOutcome> RunChecksOnChange(WarehouseSession& session,
                                            const std::vector<CheckSpec>& checks,
                                            const std::string& table, const std::string& rows);

}  // namespace sluice
