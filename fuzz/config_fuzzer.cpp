// Fuzzes the project loader: the first byte picks which file of a small
// project the rest of the input becomes (sluice.yaml, a source, a model, a
// seed's YAML, fields.yaml). The loader must report errors, never crash.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/loader.h"

namespace {

const std::string& Root() {
  static const std::string root = [] {
    std::string dir = "/tmp/sluice-config-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir + "/sources");
    std::filesystem::create_directories(dir + "/models");
    std::filesystem::create_directories(dir + "/seeds");
    return dir;
  }();
  return root;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& root = Root();
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A valid baseline, then one file replaced by the input.
  Write(root + "/sluice.yaml", "name: fuzz\nvars: {x: 1}\n");
  Write(root + "/sources/orders.yaml", "fetch: {url: data/orders.csv}\nformat: csv\n");
  Write(root + "/models/totals.sql", "select count(*) as n from orders\n");
  Write(root + "/seeds/codes.csv", "code,name\n1,a\n");
  Write(root + "/seeds/codes.yaml", "key: [code]\n");
  std::filesystem::remove(root + "/fields.yaml");
  switch (data[0] % 5) {
    case 0:
      Write(root + "/sluice.yaml", text);
      break;
    case 1:
      Write(root + "/sources/orders.yaml", text);
      break;
    case 2:
      Write(root + "/models/totals.sql", text);
      break;
    case 3:
      Write(root + "/seeds/codes.yaml", text);
      break;
    case 4:
      Write(root + "/fields.yaml", text);
      break;
  }
  sluice::LoadedProject loaded = sluice::LoadProject(root);
  for (const sluice::ConfigError& e : loaded.errors) (void)e.ToString();
  return 0;
}
