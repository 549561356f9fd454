#include "core/test_hooks.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

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

void MaybeDelay(const char* point, const std::string& name, size_t count) {
  static const char* spec = std::getenv("SLUICE_DELAY_AT");
  if (!spec || count == 0) return;
  const std::string wanted = spec;
  const std::string here = std::string(point) + ":" + name + ":";
  if (wanted.compare(0, here.size(), here) != 0) return;
  const long ms = std::atol(wanted.c_str() + here.size());
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms * static_cast<long>(count)));
}

bool InjectIoFailure(const char* op) {
  static const char* spec = std::getenv("SLUICE_FAIL_IO");
  if (!spec) return false;
  static const std::string wanted = spec;
  static std::mutex mu;
  static std::map<std::string, int> calls;
  size_t colon = wanted.find(':');
  if (colon == std::string::npos || wanted.compare(0, colon, op) != 0) return false;
  int n = std::atoi(wanted.c_str() + colon + 1);
  std::lock_guard lock(mu);
  if (++calls[op] != n) return false;
  errno = std::string(op) == "write" ? ENOSPC : EIO;
  return true;
}

bool TestHooksEnabled() { return true; }

int64_t TestHookSeconds(const char* name, int64_t fallback) {
  const char* value = std::getenv((std::string("SLUICE_") + name).c_str());
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  long long n = std::strtoll(value, &end, 10);
  return end != nullptr && *end == '\0' && n > 0 ? n : fallback;
}

#else

void MaybeCrash(const char*, const std::string&) {}
void MaybeDelay(const char*, const std::string&, size_t) {}
bool InjectIoFailure(const char*) { return false; }
bool TestHooksEnabled() { return false; }
int64_t TestHookSeconds(const char*, int64_t fallback) { return fallback; }

#endif

}  // namespace sluice
