#include "orchestrate/partitions.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <optional>

namespace sluice {
namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

// A UTC instant at hour precision: the day and the hour of day.
struct Instant {
  sys_days day;
  int hour = 0;
};

const char* UnitName(PartitionUnit unit) {
  switch (unit) {
    case PartitionUnit::kHour:
      return "hour";
    case PartitionUnit::kDay:
      return "day";
    case PartitionUnit::kWeek:
      return "week";
    case PartitionUnit::kMonth:
      return "month";
    case PartitionUnit::kYear:
      return "year";
  }
  return "day";
}

const char* UnitForm(PartitionUnit unit) {
  switch (unit) {
    case PartitionUnit::kHour:
      return "YYYY-MM-DDTHH";
    case PartitionUnit::kDay:
    case PartitionUnit::kWeek:
      return "YYYY-MM-DD";
    case PartitionUnit::kMonth:
      return "YYYY-MM";
    case PartitionUnit::kYear:
      return "YYYY";
  }
  return "YYYY-MM-DD";
}

std::string DateText(sys_days d) {
  year_month_day ymd(d);
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// Truncates an instant to the start of its partition.
Instant Truncate(PartitionUnit unit, Instant t) {
  year_month_day ymd(t.day);
  switch (unit) {
    case PartitionUnit::kHour:
      return t;
    case PartitionUnit::kDay:
      return {t.day, 0};
    case PartitionUnit::kWeek: {
      // Monday of the ISO week.
      std::chrono::weekday wd(t.day);
      return {t.day - days((wd.c_encoding() + 6) % 7), 0};
    }
    case PartitionUnit::kMonth:
      return {sys_days(ymd.year() / ymd.month() / 1), 0};
    case PartitionUnit::kYear:
      return {sys_days(ymd.year() / 1 / 1), 0};
  }
  return t;
}

Instant Next(PartitionUnit unit, Instant t) {
  year_month_day ymd(t.day);
  switch (unit) {
    case PartitionUnit::kHour:
      return t.hour == 23 ? Instant{t.day + days(1), 0} : Instant{t.day, t.hour + 1};
    case PartitionUnit::kDay:
      return {t.day + days(1), 0};
    case PartitionUnit::kWeek:
      return {t.day + days(7), 0};
    case PartitionUnit::kMonth:
      return {sys_days((ymd.year() / ymd.month() + std::chrono::months(1)) / 1), 0};
    case PartitionUnit::kYear:
      return {sys_days((ymd.year() + std::chrono::years(1)) / 1 / 1), 0};
  }
  return t;
}

std::string KeyOf(PartitionUnit unit, Instant t) {
  year_month_day ymd(t.day);
  switch (unit) {
    case PartitionUnit::kHour:
      return DateText(t.day) + fmt::format("T{:02d}", t.hour);
    case PartitionUnit::kDay:
    case PartitionUnit::kWeek:
      return DateText(t.day);
    case PartitionUnit::kMonth:
      return fmt::format("{:04d}-{:02d}", static_cast<int>(ymd.year()),
                         static_cast<unsigned>(ymd.month()));
    case PartitionUnit::kYear:
      return fmt::format("{:04d}", static_cast<int>(ymd.year()));
  }
  return DateText(t.day);
}

// Parses "YYYY", "YYYY-MM", "YYYY-MM-DD" or "YYYY-MM-DDTHH" exactly at the
// unit's precision (weeks take a day).
Result<Instant> ParseAt(PartitionUnit unit, const std::string& text) {
  int y = 0, m = 1, d = 1, h = 0;
  char tail = 0;
  int n = 0;
  switch (unit) {
    case PartitionUnit::kYear:
      n = std::sscanf(text.c_str(), "%4d%c", &y, &tail) == 1 && text.size() == 4 ? 1 : 0;
      break;
    case PartitionUnit::kMonth:
      n = std::sscanf(text.c_str(), "%4d-%2d%c", &y, &m, &tail) == 2 && text.size() == 7 ? 1 : 0;
      break;
    case PartitionUnit::kDay:
    case PartitionUnit::kWeek:
      n = std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && text.size() == 10
              ? 1
              : 0;
      break;
    case PartitionUnit::kHour:
      n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d%c", &y, &m, &d, &h, &tail) == 4 &&
                  text.size() == 13
              ? 1
              : 0;
      break;
  }
  year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(m)),
                     std::chrono::day(static_cast<unsigned>(d))};
  if (n != 1 || !ymd.ok() || h < 0 || h > 23) {
    return Status::Invalid(fmt::format("partition '{}': expected {} (partitions by {})", text,
                                       UnitForm(unit), UnitName(unit)));
  }
  return Truncate(unit, Instant{sys_days(ymd), h});
}

bool Before(Instant a, Instant b) { return a.day < b.day || (a.day == b.day && a.hour < b.hour); }

std::string WindowText(PartitionUnit unit, Instant t) {
  if (unit == PartitionUnit::kHour) return DateText(t.day) + fmt::format("T{:02d}:00:00Z", t.hour);
  return DateText(t.day);
}

}  // namespace

Result<PartitionScheme> ParsePartitionScheme(const nlohmann::json& partition) {
  PartitionScheme s;
  std::string by = partition.value("by", "day");
  if (by == "hour") {
    s.unit = PartitionUnit::kHour;
  } else if (by == "day") {
    s.unit = PartitionUnit::kDay;
  } else if (by == "week") {
    s.unit = PartitionUnit::kWeek;
  } else if (by == "month") {
    s.unit = PartitionUnit::kMonth;
  } else if (by == "year") {
    s.unit = PartitionUnit::kYear;
  } else {
    return Status::Invalid("unknown partition unit '" + by + "'");
  }
  // start:/end: may be written as any date; they bound the partitions holding them.
  for (const char* bound : {"start", "end"}) {
    auto it = partition.find(bound);
    if (it == partition.end() || !it->is_string()) continue;
    std::string text = it->get<std::string>();
    std::string day = text.substr(0, 10);
    Result<Instant> t = ParseAt(PartitionUnit::kDay, day);
    if (!t.ok()) {
      return Status::Invalid(
          fmt::format("partition {}: '{}' is not a date (YYYY-MM-DD)", bound, text));
    }
    (std::string(bound) == "start" ? s.first : s.last) = KeyOf(s.unit, Truncate(s.unit, *t));
  }
  return s;
}

Result<std::string> PartitionKey(const PartitionScheme& scheme, const std::string& value) {
  ASSIGN_OR_RETURN(Instant t, ParseAt(scheme.unit, value));
  return KeyOf(scheme.unit, t);
}

Result<std::vector<std::string>> ExpandPartitions(const PartitionScheme& scheme,
                                                  const std::string& range) {
  std::string from = range, to = range;
  if (size_t dots = range.find(".."); dots != std::string::npos) {
    from = range.substr(0, dots);
    to = range.substr(dots + 2);
  }
  ASSIGN_OR_RETURN(Instant a, ParseAt(scheme.unit, from));
  ASSIGN_OR_RETURN(Instant b, ParseAt(scheme.unit, to));
  if (Before(b, a)) {
    return Status::Invalid("partition range '" + range + "' ends before it starts");
  }
  std::optional<Instant> first, last;
  if (!scheme.first.empty()) first = *ParseAt(scheme.unit, scheme.first);
  if (!scheme.last.empty()) last = *ParseAt(scheme.unit, scheme.last);
  if (first && Before(a, *first)) {
    return Status::Invalid(fmt::format("partition {} is before the source's partition start {}",
                                       KeyOf(scheme.unit, a), scheme.first));
  }
  if (last && Before(*last, b)) {
    return Status::Invalid(fmt::format("partition {} is after the source's partition end {}",
                                       KeyOf(scheme.unit, b), scheme.last));
  }
  std::vector<std::string> out;
  for (Instant t = a; !Before(b, t); t = Next(scheme.unit, t)) {
    if (out.size() == 10000) {
      return Status::Invalid("partition range '" + range +
                             "' holds more than 10000 partitions; run it in parts");
    }
    out.push_back(KeyOf(scheme.unit, t));
  }
  return out;
}

std::string CurrentPartition(const PartitionScheme& scheme, Micros now) {
  int64_t seconds = now / 1000000;
  sys_days day{days(seconds / 86400 - (seconds % 86400 < 0 ? 1 : 0))};
  int hour = static_cast<int>(((seconds % 86400) + 86400) % 86400 / 3600);
  return KeyOf(scheme.unit, Truncate(scheme.unit, Instant{day, hour}));
}

Result<PartitionWindow> WindowOf(const PartitionScheme& scheme, const std::string& key) {
  ASSIGN_OR_RETURN(Instant t, ParseAt(scheme.unit, key));
  return PartitionWindow{key, WindowText(scheme.unit, t),
                         WindowText(scheme.unit, Next(scheme.unit, t))};
}

}  // namespace sluice
