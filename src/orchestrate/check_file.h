// `sluice check SOURCE FILE|URL`: one file (or one download) through a
// source's decoding, column phases and checks, in an in-memory warehouse and
// a scratch folder that is deleted afterwards — nothing reaches the project's
// warehouse, lake or metadata. The report is what a data provider needs to
// fix the file: per table, rows, the issue log, check results and notes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "config/project.h"
#include "config/template.h"
#include "core/status.h"
#include "ingest/database.h"
#include "ingest/stream_nats.h"

namespace sluice {

struct CheckFileRequest {
  std::string source;    // a source name (or one of its tables)
  std::string target;    // a local path or an http(s) URL; "" with `upload`
  int issue_rows = 100;  // issue rows listed per table (all are counted)
  // The file's bytes themselves (the HTTP check API), written into the
  // check's scratch folder as `upload_name` (its extension may tell a
  // format): used when target is "".
  std::string upload;
  std::string upload_name = "upload";
  std::string memory_limit;     // the scratch warehouse's; "" = defaults.memory_limit
  int64_t timeout_seconds = 0;  // the load and checks together; 0 = none
};

// {"source", "target", "sha256", "bytes", "ok", "tables": [{"table", "rows",
//  "columns", "issue_counts", "issues", "checks", "notes"}]}. "ok" is false
// when a check with severity error fails.
Result<nlohmann::json> CheckFile(const Project& project, const std::string& env_name,
                                 const CheckFileRequest& request);

// What reading a database source's table asks for, as `sluice run` and
// `sluice check` both read it: the url with templates rendered and secrets
// substituted (its password registered for redaction), the relation or the
// rendered query, and the source's timeout.
Result<DbRequest> DatabaseRequestOf(const Project& project, const SourceSpec& source,
                                    const TableSpec& table, const TemplateContext& ctx);

// What reading a stream source asks for, as `sluice run`, `plan` and
// /metrics read it: the url with templates rendered and secrets substituted
// (its password registered for redaction), the consumer (by default
// sluice_<env>_<source>: environments never share one), and its limits.
Result<StreamRequest> StreamRequestOf(const Project& project, const SourceSpec& source,
                                      const TemplateContext& ctx);

}  // namespace sluice
