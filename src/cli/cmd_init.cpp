// sluice init DIR [--example NAME]: a new project, empty or from an example.
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli/commands.h"
#include "cli/embedded.h"
#include "core/fs.h"
#include "core/strings.h"

namespace sluice {
namespace {

constexpr const char* kGitignore = ".sluice/\n.secrets\n";

std::string ScaffoldYaml(const std::string& name) {
  return "name: " + name +
         "\n"
         "environments:\n"
         "  dev: {}\n"
         "secrets: [env, {file: .secrets}]\n"
         "defaults: {retries: 0, timeout: 30m, memory_limit: 2GB}\n";
}

}  // namespace

int CmdInit(const GlobalOptions& global, const CommandArgs& args) {
  namespace fs = std::filesystem;
  fs::path dir = fs::absolute(args.dir).lexically_normal();
  if (fs::exists(dir / "sluice.yaml")) {
    return ReportError(
        global, (dir / "sluice.yaml").string() + " already exists; init creates new projects only",
        kExitUsage);
  }
  std::vector<std::pair<std::string, std::string>> files;
  std::string name = ToLower(dir.filename().string());
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  if (!args.example.empty()) {
    std::set<std::string> examples;
    std::string prefix = args.example + "/";
    for (const EmbeddedFile& f : EmbeddedExampleFiles()) {
      examples.insert(f.path.substr(0, f.path.find('/')));
      if (StartsWith(f.path, prefix)) files.emplace_back(f.path.substr(prefix.size()), f.content);
    }
    // Every project gets a .gitignore: state and secrets stay out of git.
    bool has_gitignore = false;
    for (const auto& f : files) has_gitignore |= f.first == ".gitignore";
    if (!files.empty() && !has_gitignore) files.emplace_back(".gitignore", kGitignore);
    if (files.empty()) {
      std::vector<std::string> known(examples.begin(), examples.end());
      return ReportError(global,
                         "no example '" + args.example + "'" + DidYouMeanHint(args.example, known) +
                             "; examples: " + Join(known, ", "),
                         kExitUsage);
    }
  } else {
    files = {{"sluice.yaml", ScaffoldYaml(name)},
             {".gitignore", kGitignore},
             {"sources/.keep", ""},
             {"models/.keep", ""},
             {"seeds/.keep", ""}};
  }
  for (const auto& [path, content] : files) {
    fs::path target = dir / path;
    if (fs::exists(target)) {
      return ReportError(global, target.string() + " already exists; not overwriting", kExitUsage);
    }
  }
  for (const auto& [path, content] : files) {
    fs::path target = dir / path;
    Status st = MakeDirs(target.parent_path().string());
    if (st.ok()) st = WriteFileAtomic(target.string(), content);
    if (!st.ok()) return ReportError(global, st.message(), kExitFailed);
  }
  if (global.json) {
    std::printf("{\"ok\": true, \"project\": \"%s\", \"files\": %zu}\n", dir.string().c_str(),
                files.size());
  } else {
    std::printf("created %s (%zu files)\nnext: cd %s && sluice validate && sluice run\n",
                dir.string().c_str(), files.size(), dir.string().c_str());
  }
  return kExitOk;
}

}  // namespace sluice
