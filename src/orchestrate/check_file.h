// `sluice check SOURCE FILE|URL`: one file (or one download) through a
// source's decoding, column phases and checks, in an in-memory warehouse and
// a scratch folder that is deleted afterwards — nothing reaches the project's
// warehouse, lake or metadata. The report is what a data provider needs to
// fix the file: per table, rows, the issue log, check results and notes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "config/project.h"
#include "core/status.h"

namespace sluice {

struct CheckFileRequest {
  std::string source;    // a source name (or one of its tables)
  std::string target;    // a local path or an http(s) URL
  int issue_rows = 100;  // issue rows listed per table (all are counted)
};

// {"source", "target", "sha256", "bytes", "ok", "tables": [{"table", "rows",
//  "columns", "issue_counts", "issues", "checks", "notes"}]}. "ok" is false
// when a check with severity error fails.
Result<nlohmann::json> CheckFile(const Project& project, const std::string& env_name,
                                 const CheckFileRequest& request);

}  // namespace sluice
