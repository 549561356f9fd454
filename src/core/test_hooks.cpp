#include "core/test_hooks.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <stdexcept>

namespace sluice {

#if SLUICE_TEST_HOOKS

void MaybeCrash(const char* point, const std::string& name) {
  static const char* crash = std::getenv("SLUICE_CRASH_AT");
  static const char* fail = std::getenv("SLUICE_THROW_AT");
  if (!crash && !fail) return;
  const std::string here = std::string(point) + ":" + name;
  if (crash && here == crash) ::kill(::getpid(), SIGKILL);
  if (fail && here == fail) throw std::runtime_error("test hook: thrown at " + here);
}

bool TestHooksEnabled() { return true; }

#else

void MaybeCrash(const char*, const std::string&) {}
bool TestHooksEnabled() { return false; }

#endif

}  // namespace sluice
