#include "core/log.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "core/clock.h"
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

bool LogEnabled(LogLevel level) {
  LogState& s = State();
  std::lock_guard lock(s.mu);
  return level >= s.min_level;
}

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
}

}  // namespace sluice
