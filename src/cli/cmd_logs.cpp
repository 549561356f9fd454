// sluice logs RUN [ASSET]: the log of each task attempt of a run.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdLogs(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json request = {{"cmd", "logs"}, {"id", args.run_id}, {"asset", args.asset}};
  nlohmann::json response = CallEngine(global, request, nullptr);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  const nlohmann::json& r = response["result"];
  if (global.json) {
    std::printf("%s\n", r.dump(2).c_str());
    return code;
  }
  bool first = true;
  for (const auto& entry : r["logs"]) {
    std::printf("%s== %s, attempt %d ==\n%s", first ? "" : "\n", entry.value("asset", "").c_str(),
                entry.value("attempt", 1), entry.value("log", "").c_str());
    first = false;
  }
  return code;
}

}  // namespace sluice
