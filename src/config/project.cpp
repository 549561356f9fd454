#include "config/project.h"

namespace sluice {

std::string SourceLoc::ToString() const {
  if (line > 0) return file + ":" + std::to_string(line);
  return file;
}

std::string ConfigError::ToString() const {
  std::string where = loc.ToString();
  return where.empty() ? message : where + ": " + message;
}

const char* NotifyEventName(NotifyEvent event) {
  switch (event) {
    case NotifyEvent::kRunFailed:
      return "run_failed";
    case NotifyEvent::kCheckFailed:
      return "check_failed";
    case NotifyEvent::kFreshnessLate:
      return "freshness_late";
    case NotifyEvent::kRecovered:
      return "recovered";
  }
  return "run_failed";
}

std::string ScheduleSpec::ToString() const {
  switch (kind) {
    case ScheduleKind::kNone:
      return "";
    case ScheduleKind::kCron:
      return cron + (timezone.empty() ? "" : " (" + timezone + ")");
    case ScheduleKind::kEvery:
      return "every " + std::to_string(every_seconds) + "s";
    case ScheduleKind::kAfter: {
      std::string out = "after ";
      for (size_t i = 0; i < after.size(); ++i) out += (i ? ", " : "") + after[i];
      return out;
    }
    case ScheduleKind::kOnFile:
      return "on_file " + on_file;
  }
  return "";
}

}  // namespace sluice
