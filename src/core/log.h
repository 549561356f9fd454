// Logging with levels, as text or JSON lines, to stderr or a file. Every line
// passes through Redact(). Thread-safe.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

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
