// Running an external program for a command asset (DESIGN.md §5: "a command
// asset exchanges data with the owner as Parquet files"): its own process
// group, a given environment and folder, stdin from /dev/null, stdout and
// stderr merged and handed over line by line, and a timeout that really
// stops the work — SIGTERM to the whole group, SIGKILL after a grace period,
// so a script's children (a `sleep`, a worker pool) stop with it, and to
// every descendant seen (looked for in /proc every 100 ms), so one that
// left the group (setsid, a daemon) stops too. Processes the program leaves
// behind when it exits are killed too.
//
// Thread-safety: RunProcess may be called from several threads at once; it
// forks with every string prepared beforehand (only async-signal-safe calls
// run in the child before exec).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice {

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] found on the env's PATH unless it has a '/'
  std::map<std::string, std::string> env;  // the whole environment of the program
  std::string cwd;                         // "" = this process's
  int64_t timeout_ms = 0;                  // 0 = none
  int64_t kill_grace_ms = 5000;            // between SIGTERM and SIGKILL
  // Each line of output (without '\n'; a line over 64 KiB is cut there, before
  // any secret the cut would split, and the rest of it left out).
  std::function<void(std::string_view line)> on_line;
  const std::atomic<bool>* cancel = nullptr;  // set: stop the program as on a timeout
};

struct ProcessResult {
  int exit_code = -1;      // when it exited; -1 when a signal ended it
  int signal = 0;          // the signal that ended it, 0 if it exited
  bool timed_out = false;  // stopped by the timeout
  bool cancelled = false;  // stopped by `cancel`
  int64_t output_bytes = 0;
  std::vector<std::string> tail;  // the last lines of output (at most 20), for errors
  // "exited with code 3", "killed by signal 9", "timed out after 10s (...)"
  std::string Describe() const;
};

// Runs the program to its end. Errors: NotFound when argv[0] cannot be found
// or executed (named, with the PATH searched); IOError when the process
// cannot be started. A program that fails is a result, not an error.
Result<ProcessResult> RunProcess(const ProcessSpec& spec);

}  // namespace sluice
