// sluice logs RUN [ASSET]: the log of each task attempt of a run.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdLogs(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json request = {{"cmd", "logs"}, {"id", args.run_id}, {"asset", args.asset}};
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, request, &code);
  if (!answer) return code;
  const nlohmann::json& r = *answer;
  bool first = true;
  for (const auto& entry : r["logs"]) {
    std::printf("%s== %s, attempt %d ==\n%s", first ? "" : "\n", entry.value("asset", "").c_str(),
                entry.value("attempt", 1), entry.value("log", "").c_str());
    first = false;
  }
  return code;
}

}  // namespace sluice
