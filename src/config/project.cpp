#include "config/project.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

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

const char* ExportFormatName(ExportFormat format) {
  switch (format) {
    case ExportFormat::kCsv:
      return "csv";
    case ExportFormat::kJson:
      return "json";
    case ExportFormat::kGeoJson:
      return "geojson";
    case ExportFormat::kParquet:
      return "parquet";
    case ExportFormat::kSqlite:
      return "sqlite";
  }
  return "csv";
}

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::Invalid("expected [IPv6]:PORT, got '" + text + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return Status::Invalid("expected HOST:PORT such as 127.0.0.1:8080, got '" + text + "'");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  unsigned char buf[sizeof(struct in6_addr)];
  if (::inet_pton(AF_INET, host.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    return Status::Invalid("'" + host + "' is not an IP address (use 127.0.0.1, 0.0.0.0 or ::)");
  }
  bool digits = !port.empty() && port.size() <= 5 &&
                std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(port) > 65535) {
    return Status::Invalid("the port must be a number from 0 to 65535, got '" + port + "'");
  }
  return std::make_pair(host, std::stoi(port));
}

const char* ApiRoleName(ApiRole role) {
  switch (role) {
    case ApiRole::kViewer:
      return "viewer";
    case ApiRole::kOperator:
      return "operator";
    case ApiRole::kAdmin:
      return "admin";
  }
  return "viewer";
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
