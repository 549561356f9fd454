#include "cli/cli.h"

#include <cstdio>

namespace sluice {

int RunCli(int, char**) {
  std::fputs("sluice: not built yet\n", stderr);
  return 2;
}

}  // namespace sluice
