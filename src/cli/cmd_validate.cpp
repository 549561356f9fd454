// sluice validate: load the project and its graph; report every error.
#include <cstdio>

#include "cli/commands.h"
#include "engine/workspace.h"

namespace sluice {

int CmdValidate(const GlobalOptions& global, const CommandArgs&) {
  Result<std::string> root = ResolveProjectRoot(global);
  if (!root.ok()) return ReportError(global, root.status().message(), kExitUsage);
  Workspace ws = LoadWorkspace(*root, global.env);
  int sources = static_cast<int>(ws.project.sources.size());
  int tables = 0;
  for (const SourceSpec& s : ws.project.sources) tables += static_cast<int>(s.tables.size());
  if (global.json) {
    nlohmann::json errors = nlohmann::json::array();
    for (const ConfigError& e : ws.errors) {
      errors.push_back({{"file", e.loc.file}, {"line", e.loc.line}, {"message", e.message}});
    }
    nlohmann::json warnings = nlohmann::json::array();
    for (const ConfigError& w : ws.project.warnings) {
      warnings.push_back({{"file", w.loc.file}, {"line", w.loc.line}, {"message", w.message}});
    }
    nlohmann::json out = {{"ok", ws.ok()},
                          {"errors", errors},
                          {"warnings", warnings},
                          {"sources", sources},
                          {"tables", tables},
                          {"models", ws.project.models.size()},
                          {"seeds", ws.project.seeds.size()}};
    std::printf("%s\n", out.dump(2).c_str());
    return ws.ok() ? kExitOk : kExitUsage;
  }
  for (const ConfigError& w : ws.project.warnings) {
    std::fprintf(stderr, "warning: %s\n", w.ToString().c_str());
  }
  if (!ws.ok()) {
    for (const ConfigError& e : ws.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    std::fprintf(stderr, "%zu error%s\n", ws.errors.size(), ws.errors.size() == 1 ? "" : "s");
    return kExitUsage;
  }
  std::printf("ok: %d sources (%d tables), %zu models, %zu seeds\n", sources, tables,
              ws.project.models.size(), ws.project.seeds.size());
  return kExitOk;
}

}  // namespace sluice
