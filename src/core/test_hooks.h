// Fault injection for crash and failure tests, compiled in only when the
// build has its test suite (CMake: SLUICE_TEST_HOOKS, which follows
// SLUICE_TESTS); in any other build every hook does nothing, whatever the
// environment says.
//   SLUICE_CRASH_AT=<point>:<name>  SIGKILL at that point, as `kill -9` would
//   SLUICE_THROW_AT=<point>:<name>  throw std::runtime_error there
//   SLUICE_FAIL_IO=<op>:<n>         the n-th call of op (write, fsync, rename;
//                                   publish: a publication's transaction) in
//                                   this process fails: ENOSPC for write, EIO
//                                   for the others (see core/fs.h Sys*)
//   SLUICE_DELAY_AT=<point>:<name>:<ms>  sleep ms for each of `count` there
//                                   (a slow disk, for benches of falling behind)
//   SLUICE_CHECKPOINT_EVERY=<seconds>  how often serve checkpoints (default 300)
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice {

// Crashes or throws when the environment names this point and name.
void MaybeCrash(const char* point, const std::string& name);
// Sleeps count times the milliseconds SLUICE_DELAY_AT gives this point and name.
void MaybeDelay(const char* point, const std::string& name, size_t count);
// True (errno set) when this call of op is the one SLUICE_FAIL_IO names.
bool InjectIoFailure(const char* op);
// A period the environment may shorten in test builds (SLUICE_<name>=seconds).
int64_t TestHookSeconds(const char* name, int64_t fallback);
// Whether this binary honours the hooks (`sluice --version` says so).
bool TestHooksEnabled();

}  // namespace sluice
