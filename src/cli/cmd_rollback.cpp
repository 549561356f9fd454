// sluice rollback ASSET [--partition KEY] [--to VERSION]: publish an older version again.
#include <cstdio>

#include "cli/commands.h"

namespace sluice {

int CmdRollback(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json request = {{"cmd", "rollback"}, {"asset", args.asset}};
  if (!args.target.empty()) request["to"] = args.target;
  if (!args.partition.empty()) request["partition"] = args.partition;
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, request, &code);
  if (!answer) return code;
  const nlohmann::json& r = *answer;
  std::string partition = r.value("partition", "");
  std::printf("%s%s: rolled back from %s to %s (%s rows)\n", r.value("asset", "").c_str(),
              partition.empty() ? "" : (" partition " + partition).c_str(),
              r.value("from", "").c_str(), r.value("to", "").c_str(), r["rows"].dump().c_str());
  std::vector<std::string> downstream = r.value("downstream", std::vector<std::string>{});
  if (!downstream.empty()) {
    std::string list;
    for (const std::string& d : downstream) list += (list.empty() ? "" : ", ") + d;
    std::printf("downstream, rebuilt by the next run: %s\n", list.c_str());
  }
  std::printf(
      "note: a later run that selects %s rebuilds it from its current inputs; to keep this "
      "version, run only what is downstream of it\n",
      r.value("asset", "").c_str());
  return code;
}

}  // namespace sluice
