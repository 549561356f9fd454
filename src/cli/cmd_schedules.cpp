// sluice schedules / pause ASSET / resume ASSET: what `sluice serve` runs by
// itself, and stopping one schedule for a while.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdSchedules(const GlobalOptions& global, const CommandArgs& /*args*/) {
  nlohmann::json response = CallEngine(global, {{"cmd", "schedules"}}, nullptr);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  const nlohmann::json& r = response["result"];
  if (global.json) {
    std::printf("%s\n", r.dump(2).c_str());
    return code;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& s : r) {
    std::string last = "-";
    if (s.contains("last_tick")) {
      last = s["last_tick"].value("at", "") + " " + s["last_tick"].value("status", "");
    }
    rows.push_back({s["asset"], s["schedule"], s.value("paused", false) ? "paused" : "active", last,
                    s.value("next_tick", "-")});
  }
  std::fputs(RenderTable({"asset", "schedule", "state", "last tick", "next tick"}, rows).c_str(),
             stdout);
  return code;
}

int CmdPause(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json response = CallEngine(
      global, {{"cmd", args.resume ? "resume" : "pause"}, {"asset", args.asset}}, nullptr);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  if (global.json) {
    std::printf("%s\n", response["result"].dump(2).c_str());
  } else {
    std::printf("%s: schedule %s\n", args.asset.c_str(), args.resume ? "resumed" : "paused");
  }
  return code;
}

int CmdResume(const GlobalOptions& global, const CommandArgs& args) {
  CommandArgs resumed = args;
  resumed.resume = true;
  return CmdPause(global, resumed);
}

}  // namespace sluice
