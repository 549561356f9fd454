// sluice runs [ID]: the run history kept in metadata.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdRuns(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json request = args.run_id ? nlohmann::json{{"cmd", "run_detail"}, {"id", args.run_id}}
                                       : nlohmann::json{{"cmd", "runs"}, {"limit", args.limit}};
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, request, &code);
  if (!answer) return code;
  const nlohmann::json& r = *answer;
  nlohmann::json rows = nlohmann::json::array();
  if (args.run_id) {
    std::printf("run %lld (%s): %s, exit %d, started %s\n%s\n\n",
                static_cast<long long>(r.value("id", int64_t{0})), r.value("command", "").c_str(),
                r.value("status", "").c_str(), r.value("exit_code", 0),
                r.value("started_at", "").c_str(), r.value("summary", "").c_str());
    for (const auto& t : r["tasks"]) {
      rows.push_back({t["asset"], t["status"], t["rows"], t["version"], t["reason"], t["error"]});
    }
    std::fputs(RenderTable({"asset", "status", "rows", "version", "why", "error"}, rows).c_str(),
               stdout);
    return code;
  }
  for (const auto& run : r) {
    // What started it: a schedule's trigger, or a person ("manual").
    std::string trigger = "manual";
    if (run.contains("args") && run["args"].is_object()) {
      trigger = run["args"].value("trigger", trigger);
    }
    rows.push_back(
        {run["id"], run["command"], trigger, run["status"], run["started_at"], run["summary"]});
  }
  std::fputs(
      RenderTable({"id", "command", "trigger", "status", "started", "summary"}, rows).c_str(),
      stdout);
  return code;
}

}  // namespace sluice
