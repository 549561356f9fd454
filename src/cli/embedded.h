// Files compiled into the binary: the example projects `sluice init
// --example NAME` writes out (examples/NAME/... in the source tree).
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct EmbeddedFile {
  std::string path;  // "transit/sources/stops.yaml"
  std::string content;
};

const std::vector<EmbeddedFile>& EmbeddedExampleFiles();

}  // namespace sluice
