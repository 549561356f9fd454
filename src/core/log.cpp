#include "core/log.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
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

TaskLog::TaskLog(std::string path, std::string shared_path)
    : path_(std::move(path)), shared_path_(std::move(shared_path)), previous_(t_task_log) {
  t_task_log = this;
}

TaskLog::~TaskLog() {
  {
    std::lock_guard lock(mu_);
    EndAttemptLocked();
  }
  t_task_log = previous_;
}

namespace {

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One block of the shared file, in one write (O_APPEND: blocks never mix).
void AppendBlock(const std::string& shared_path, const std::string& name, const std::string& text) {
  std::string block = "== " + name + " " + std::to_string(text.size()) + "\n" + text;
  int fd = ::open(shared_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0 && errno == ENOENT) {
    size_t slash = shared_path.rfind('/');
    if (slash != std::string::npos && slash > 0) (void)MakeDirs(shared_path.substr(0, slash));
    fd = ::open(shared_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  }
  if (fd < 0) return;  // a log that cannot be written never fails a task
  (void)WriteAll(fd, block);
  ::close(fd);
}

}  // namespace

void TaskLog::EndAttemptLocked() {
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
  } else if (!discarded_) {
    if (shared_path_.empty()) {
      MaterializeLocked();
      if (file_) std::fclose(file_);
      file_ = nullptr;
    } else {
      size_t slash = path_.rfind('/');
      AppendBlock(shared_path_, slash == std::string::npos ? path_ : path_.substr(slash + 1),
                  pending_);
    }
  }
  pending_.clear();
}

std::vector<std::pair<std::string, std::string>> SharedTaskLogBlocks(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    if (eol == std::string_view::npos || text.substr(0, 3) != "== ") break;
    std::string_view header = text.substr(3, eol - 3);
    size_t space = header.rfind(' ');
    if (space == std::string_view::npos) break;
    size_t bytes = 0;
    std::string_view digits = header.substr(space + 1);
    if (digits.empty() || digits.size() > 12) break;
    bool ok = true;
    for (char c : digits) {
      if (c < '0' || c > '9') ok = false;
      bytes = bytes * 10 + static_cast<size_t>(c - '0');
    }
    if (!ok || text.size() - eol - 1 < bytes) break;
    out.emplace_back(std::string(header.substr(0, space)),
                     std::string(text.substr(eol + 1, bytes)));
    text.remove_prefix(eol + 1 + bytes);
  }
  return out;
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
  const bool discarded = discarded_;
  discarded_ = false;  // the attempt that ends was worth a log: a next one came
  EndAttemptLocked();
  discarded_ = discarded;
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
