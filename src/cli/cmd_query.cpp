// sluice query "SQL": one read, answered by the environment's owner when
// there is one. The engine checks the statement (reader.h) and renders every
// value; this file only lays the rows out.
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace sluice {

int CmdQuery(const GlobalOptions& global, const CommandArgs& args) {
  std::string format = global.json ? "json" : args.format;
  nlohmann::json request = {{"cmd", "query"},
                            {"sql", args.sql},
                            {"format", format == "json" ? "json" : "text"},
                            {"max_rows", args.max_rows},
                            {"timeout", args.timeout_seconds}};
  nlohmann::json response = CallEngine(global, request, nullptr);
  int code = response.value("exit_code", 1);
  if (!response.value("ok", false)) return ReportError(global, response.value("error", ""), code);
  const nlohmann::json& r = response["result"];
  auto columns = r["columns"].get<std::vector<std::string>>();
  if (format == "csv") {
    std::fputs(RenderCsv(columns, r["rows"]).c_str(), stdout);
  } else if (format == "json") {
    std::printf("%s\n", RowsToObjects(columns, r["rows"]).dump(2).c_str());
  } else {
    std::fputs(RenderTable(columns, r["rows"]).c_str(), stdout);
  }
  if (r.value("truncated", false)) {
    std::fprintf(stderr,
                 "note: only the first %lld rows were read; add a LIMIT, or raise --max-rows\n",
                 static_cast<long long>(r.value("max_rows", int64_t{0})));
  }
  return code;
}

}  // namespace sluice
