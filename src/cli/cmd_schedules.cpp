// sluice schedules / pause ASSET / resume ASSET: what `sluice serve` runs by
// itself, and stopping one schedule for a while.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdSchedules(const GlobalOptions& global, const CommandArgs& /*args*/) {
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, {{"cmd", "schedules"}}, &code);
  if (!answer) return code;
  const nlohmann::json& r = *answer;
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
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(
      global, {{"cmd", args.resume ? "resume" : "pause"}, {"asset", args.asset}}, &code);
  if (answer)
    std::printf("%s: schedule %s\n", args.asset.c_str(), args.resume ? "resumed" : "paused");
  return code;
}

int CmdResume(const GlobalOptions& global, const CommandArgs& args) {
  CommandArgs resumed = args;
  resumed.resume = true;
  return CmdPause(global, resumed);
}

}  // namespace sluice
