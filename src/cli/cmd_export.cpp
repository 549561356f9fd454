// sluice export [NAME...]: write the project's exports (the named ones, or
// all) from what is published now, as a new version of the publish folder.
#include <cstdio>

#include "cli/commands.h"

namespace sluice {

int CmdExport(const GlobalOptions& global, const CommandArgs& args) {
  nlohmann::json request = {{"cmd", "export"}, {"names", args.select}};
  int code = 0;
  std::optional<nlohmann::json> answer = CallForText(global, request, &code);
  if (!answer) return code;
  const nlohmann::json& r = *answer;
  for (const nlohmann::json& x : r.value("exports", nlohmann::json::array())) {
    std::string status = x.value("status", "");
    std::string name = x.value("export", "");
    if (status == "success") {
      std::string notes;
      for (const auto& n : x.value("notes", nlohmann::json::array())) {
        notes += n.is_string() ? n.get<std::string>() : n.dump();
      }
      std::printf("%s: %s rows, %s, %s ms\n", name.c_str(), x["rows"].dump().c_str(), notes.c_str(),
                  x["ms"].dump().c_str());
    } else {
      std::printf("%s: %s: %s\n", name.c_str(), status.c_str(), x.value("error", "").c_str());
    }
  }
  std::printf("published in %s\n", r.value("folder", "").c_str());
  return code;
}

}  // namespace sluice
