#include "core/log.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "core/redact.h"

namespace sluice {
namespace {

struct Sink {
  std::FILE* file;
  LogLevel level;
  bool json;
};

struct LogState {
  std::mutex mu;
  LogOptions options;
  std::vector<Sink> files;
  LogLevel min_level = LogLevel::kWarn;
};

LogState& State() {
  static LogState state;
  return state;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "?";
}

void Recompute(LogState& s) {
  s.min_level = s.options.level;
  for (const Sink& sink : s.files) s.min_level = std::min(s.min_level, sink.level);
}

}  // namespace

void ConfigureLogging(const LogOptions& options) {
  LogState& s = State();
  std::lock_guard lock(s.mu);
  s.options = options;
  Recompute(s);
}

void AddLogFile(const std::string& path, LogLevel level) {
  LogState& s = State();
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) return;
  std::lock_guard lock(s.mu);
  s.files.push_back({f, level, true});
  Recompute(s);
}

thread_local TaskLog* t_task_log = nullptr;

bool LogEnabled(LogLevel level) {
  if (t_task_log && level >= LogLevel::kInfo) return true;
  LogState& s = State();
  std::lock_guard lock(s.mu);
  return level >= s.min_level;
}

TaskLog::TaskLog(std::string path) : path_(std::move(path)), previous_(t_task_log) {
  t_task_log = this;
}

TaskLog::~TaskLog() {
  if (!file_ && !discarded_) Materialize();
  if (file_) std::fclose(file_);
  t_task_log = previous_;
}

TaskLog::Borrow::Borrow(TaskLog* log) : previous_(t_task_log) { t_task_log = log; }

TaskLog::Borrow::~Borrow() { t_task_log = previous_; }

void TaskLog::Materialize() {
  std::lock_guard lock(mu_);
  MaterializeLocked();
}

void TaskLog::MaterializeLocked() {
  if (file_) return;
  size_t slash = path_.rfind('/');
  if (slash != std::string::npos && slash > 0) (void)MakeDirs(path_.substr(0, slash));
  file_ = std::fopen(path_.c_str(), "a");  // a log that cannot be written never fails a task
  if (file_ && !pending_.empty()) {
    std::fwrite(pending_.data(), 1, pending_.size(), file_);
    std::fflush(file_);
  }
  pending_.clear();
}

void TaskLog::SwitchTo(std::string path) {
  std::lock_guard lock(mu_);
  MaterializeLocked();
  if (file_) std::fclose(file_);
  file_ = nullptr;
  path_ = std::move(path);
  MaterializeLocked();
}

void TaskLog::Write(std::string_view line) {
  std::string clean = Redact(line);
  if (clean.empty() || clean.back() != '\n') clean += '\n';
  std::lock_guard lock(mu_);
  if (!file_) {
    pending_ += clean;
    return;
  }
  std::fwrite(clean.data(), 1, clean.size(), file_);
  std::fflush(file_);
}

TaskLog* TaskLog::Current() { return t_task_log; }

void LogLine(LogLevel level, std::string_view component, std::string_view message) {
  std::string clean = Redact(message);
  std::string time = FormatTimestamp(SystemClock().Now());
  nlohmann::json j = {
      {"time", time}, {"level", LevelName(level)}, {"component", component}, {"message", clean}};
  std::string json_line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string text_line =
      fmt::format("{} {:5} [{}] {}\n", time, LevelName(level), component, clean);
  LogState& s = State();
  std::lock_guard lock(s.mu);
  if (level >= s.options.level) {
    const std::string& line = s.options.json_lines ? json_line : text_line;
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  for (const Sink& sink : s.files) {
    if (level < sink.level) continue;
    const std::string& line = sink.json ? json_line : text_line;
    std::fwrite(line.data(), 1, line.size(), sink.file);
    std::fflush(sink.file);
  }
  if (t_task_log && level >= LogLevel::kInfo) {
    t_task_log->Write(text_line);
    t_task_log->Materialize();  // what a task logs is worth keeping
  }
}

}  // namespace sluice
