// sluice cancel RUN: stops a run in the environment's owner. A queued run is
// cancelled at once; a running one ends its running tasks (statements
// interrupted, command programs stopped) and starts no more.
#include <cstdio>

#include "cli/commands.h"

namespace sluice {

int CmdCancel(const GlobalOptions& global, const CommandArgs& args) {
  int code = 0;
  std::optional<nlohmann::json> answer =
      CallForText(global, {{"cmd", "cancel"}, {"id", args.run_id}}, &code);
  if (!answer) return code;
  std::string status = answer->value("status", "");
  if (status == "cancelled") {
    std::printf("run %lld: cancelled before it started\n", static_cast<long long>(args.run_id));
  } else {
    std::printf(
        "run %lld: cancelling: its running tasks stop, the rest do not start (sluice runs "
        "%lld)\n",
        static_cast<long long>(args.run_id), static_cast<long long>(args.run_id));
  }
  return code;
}

}  // namespace sluice
