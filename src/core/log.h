// Logging with levels, as text or JSON lines, to stderr or a file. Every line
// passes through Redact(). Thread-safe.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

struct LogOptions {
  LogLevel level = LogLevel::kWarn;
  bool json_lines = false;
};

void ConfigureLogging(const LogOptions& options);
// Adds a file (appended to) that receives every line at or above level.
void AddLogFile(const std::string& path, LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view component, std::string_view message);

// One task attempt's log (`sluice logs RUN ASSET`). While alive, the lines
// its thread logs at info or above (redacted, as everywhere) also go to its
// file, whatever the process's own level; Write adds lines of the task's
// own (its start and outcome, a script's output). The file (and its folder)
// is created at the first line the thread logs, or when the TaskLog ends,
// unless Discard() came first: a task that only found its asset unchanged
// leaves no file (a 20-second poll of 10,000 models would otherwise write
// 10,000 files). With a shared file, a log that holds only what Write
// added (a task's start and outcome) is appended to that file as one block
// when it ends, instead of a file of its own (creating a file was a tenth
// of a trivial model's build). Not copyable; one per thread at a time
// (nesting restores the outer one). A task's helper threads (the
// partitions of one asset built side by side) write into it through a
// Borrow; thread-safe.
class TaskLog {
 public:
  explicit TaskLog(std::string path, std::string shared_path = "");
  ~TaskLog();
  TaskLog(const TaskLog&) = delete;
  TaskLog& operator=(const TaskLog&) = delete;
  // Continues in another file (the task's next attempt), created at once.
  void SwitchTo(std::string path);
  void Write(std::string_view line);
  // Nothing worth keeping: no file unless one exists already.
  void Discard() { discarded_ = true; }
  // The task log of the calling thread, if any.
  static TaskLog* Current();
  // Creates the file now, with what was written so far.
  void Materialize();

  // While alive, the calling thread logs into `log` too (null: into none).
  class Borrow {
   public:
    explicit Borrow(TaskLog* log);
    ~Borrow();
    Borrow(const Borrow&) = delete;
    Borrow& operator=(const Borrow&) = delete;

   private:
    TaskLog* previous_;
  };

 private:
  void MaterializeLocked();
  // The end of an attempt: its lines to the shared file, or its own file.
  void EndAttemptLocked();

  std::mutex mu_;
  std::string path_;           // GUARDED_BY(mu_)
  std::string pending_;        // GUARDED_BY(mu_): lines written before the file exists
  std::FILE* file_ = nullptr;  // GUARDED_BY(mu_)
  const std::string shared_path_;
  bool discarded_ = false;
  TaskLog* previous_ = nullptr;
};

// The shared file of task logs (TaskLog's shared_path) holds blocks, each
// "== NAME BYTES\n" then BYTES bytes of log; NAME is the file name the log
// would have had on its own. Appended with one write each, so blocks of
// tasks that end together never mix. The blocks in text, in order; a block
// cut short (the process died while writing it) ends the list.
std::vector<std::pair<std::string, std::string>> SharedTaskLogBlocks(std::string_view text);
// The shared file's name in a run's folder of task logs.
inline constexpr const char* kShortTaskLogs = "short-logs";

template <typename... Args>
void Log(LogLevel level, std::string_view component, fmt::format_string<Args...> format,
         Args&&... args) {
  if (!LogEnabled(level)) return;
  LogLine(level, component, fmt::format(format, std::forward<Args>(args)...));
}

#define LOG_DEBUG(component, ...) ::sluice::Log(::sluice::LogLevel::kDebug, component, __VA_ARGS__)
#define LOG_INFO(component, ...) ::sluice::Log(::sluice::LogLevel::kInfo, component, __VA_ARGS__)
#define LOG_WARN(component, ...) ::sluice::Log(::sluice::LogLevel::kWarn, component, __VA_ARGS__)
#define LOG_ERROR(component, ...) ::sluice::Log(::sluice::LogLevel::kError, component, __VA_ARGS__)

}  // namespace sluice
