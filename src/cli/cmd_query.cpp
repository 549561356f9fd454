// sluice query "SQL": answered by the environment's owner when there is one.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdQuery(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json response = CallEngine(global, {{"cmd", "query"}, {"sql", args.sql}}, nullptr);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  const nlohmann::json& r = response["result"];
  auto columns = r["columns"].get<std::vector<std::string>>();
  std::string format = global.json ? "json" : args.format;
  if (format == "csv") {
    std::fputs(RenderCsv(columns, r["rows"]).c_str(), stdout);
  } else if (format == "json") {
    std::printf("%s\n", RowsToObjects(columns, r["rows"]).dump(2).c_str());
  } else {
    std::fputs(RenderTable(columns, r["rows"]).c_str(), stdout);
  }
  return code;
}

}  // namespace sluice
