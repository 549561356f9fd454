// sluice check SOURCE FILE|URL: a file through the source's decoding, column
// phases and checks, in memory; prints the issue report. Writes nothing to
// the project's warehouse, lake or metadata, so it needs no environment owner.
#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"
#include "config/loader.h"
#include "core/redact.h"
#include "orchestrate/check_file.h"

namespace sluice {

int CmdCheck(const GlobalOptions& global, const CommandArgs& args) {
  Result<std::string> root = ResolveProjectRoot(global);
  if (!root.ok()) return ReportError(global, root.status().message(), kExitUsage);
  LoadedProject loaded = LoadProject(*root);
  if (!loaded.ok()) {
    std::string text;
    for (const ConfigError& e : loaded.errors) text += e.ToString() + "\n";
    return ReportError(global, text, kExitUsage);
  }
  CheckFileRequest request{args.asset, args.target, args.limit};
  Result<nlohmann::json> report = CheckFile(loaded.project, global.env, request);
  if (!report.ok()) {
    int code = report.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
    return ReportError(global, Redact(report.status().message()), code);
  }
  const nlohmann::json& r = *report;
  int code = r.value("ok", false) ? kExitOk : kExitFailed;
  if (global.json) {
    std::printf("%s\n", r.dump(2).c_str());
    return code;
  }
  if (r.contains("bytes")) {
    std::printf("%s: %s (%s bytes, sha256 %s)\n", r.value("source", "").c_str(),
                r.value("target", "").c_str(), r["bytes"].dump().c_str(),
                r.value("sha256", "").substr(0, 12).c_str());
  } else {
    std::printf("%s: %s\n", r.value("source", "").c_str(), r.value("target", "").c_str());
  }
  for (const auto& t : r["tables"]) {
    std::printf("\n== %s", t.value("table", "").c_str());
    if (t.contains("error")) {
      std::printf(": cannot be read: %s\n", t.value("error", "").c_str());
      continue;
    }
    std::printf(": %s rows\n", t["rows"].dump().c_str());
    for (const auto& note : t["notes"]) std::printf("note: %s\n", note.get<std::string>().c_str());
    if (!t["issue_counts"].empty()) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& c : t["issue_counts"]) {
        rows.push_back({c["issue_type"], c["field"], c["count"], c["severity"]});
      }
      std::printf("issues:\n%s",
                  RenderTable({"issue", "field", "count", "severity"}, rows).c_str());
      nlohmann::json detail = nlohmann::json::array();
      for (const auto& i : t["issues"]) {
        detail.push_back({i["record"], i["field"], i["issue_type"], i["value"], i["message"]});
      }
      std::printf("%s",
                  RenderTable({"record", "field", "issue", "value", "message"}, detail).c_str());
    } else {
      std::printf("issues: none\n");
    }
    for (const auto& c : t["checks"]) {
      std::printf("check %s [%s]: %s%s\n", c.value("name", "").c_str(),
                  c.value("severity", "").c_str(), c.value("status", "").c_str(),
                  c.value("status", "") == "pass"
                      ? ""
                      : fmt::format(" ({} failing rows) {}", c.value("failing_rows", int64_t{0}),
                                    c.value("message", ""))
                            .c_str());
    }
  }
  std::printf("\n%s\n", code == kExitOk
                            ? "ok: no blocking check failed"
                            : "failed: a blocking check failed or a table is unreadable");
  return code;
}

}  // namespace sluice
