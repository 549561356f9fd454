#include "core/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "core/strings.h"

namespace sluice {
namespace {

using std::chrono::duration_cast;
using std::chrono::floor;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using LocalMinutes = date::local_time<minutes>;
using SysMicros = date::sys_time<microseconds>;

// The widest daylight-saving shift in the database is 2 hours (Troll).
constexpr hours kMaxShift{3};

struct FieldDef {
  const char* name;
  int lo, hi;
  std::vector<std::string_view> names;  // names[i] means lo + i
};

const FieldDef kMinute{"minute", 0, 59, {}};
const FieldDef kHour{"hour", 0, 23, {}};
const FieldDef kDay{"day-of-month", 1, 31, {}};
const FieldDef kMonth{
    "month",
    1,
    12,
    {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}};
// 0..7, both 0 and 7 Sunday.
const FieldDef kWeekday{"day-of-week", 0, 7, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}};

Status FieldError(const FieldDef& f, std::string_view field, const std::string& what) {
  return Status::Invalid(std::string(f.name) + " field '" + std::string(field) + "': " + what);
}

Result<int> ParseValue(const FieldDef& f, std::string_view field, std::string_view text) {
  std::string lower = ToLower(std::string(text));
  for (size_t i = 0; i < f.names.size(); ++i) {
    if (lower == f.names[i]) return f.lo + static_cast<int>(i);
  }
  if (text.empty() || text.size() > 4 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::string expected = "a number " + std::to_string(f.lo) + "-" + std::to_string(f.hi);
    if (!f.names.empty()) expected += " or a name such as " + std::string(f.names[0]);
    return FieldError(f, field, "expected " + expected + ", got '" + std::string(text) + "'");
  }
  int v = std::stoi(std::string(text));
  if (v < f.lo || v > f.hi) {
    return FieldError(f, field,
                      "a value must be " + std::to_string(f.lo) + "-" + std::to_string(f.hi) +
                          ", got " + std::to_string(v));
  }
  return v;
}

// Sets bits[v - base] for each value the field names.
template <size_t N>
Status ParseField(const FieldDef& f, std::string_view field, std::bitset<N>* bits, int base) {
  if (field.empty()) return FieldError(f, field, "empty");
  for (const std::string& item : Split(std::string(field), ',')) {
    std::string_view range = item;
    int step = 1;
    const size_t slash = range.find('/');
    const bool stepped = slash != std::string_view::npos;
    if (stepped) {
      std::string_view s = range.substr(slash + 1);
      if (s.empty() || s.size() > 4 ||
          !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          std::stoi(std::string(s)) == 0) {
        return FieldError(f, field,
                          "a step must be a positive number, got '" + std::string(s) + "'");
      }
      step = std::stoi(std::string(s));
      range = range.substr(0, slash);
    }
    int lo, hi;
    if (range == "*") {
      lo = f.lo;
      hi = f.hi;
      if (&f == &kWeekday) hi = 6;  // 7 is 0 again
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      ASSIGN_OR_RETURN(lo, ParseValue(f, field, range.substr(0, dash)));
      ASSIGN_OR_RETURN(hi, ParseValue(f, field, range.substr(dash + 1)));
      if (lo > hi) {
        return FieldError(f, field,
                          "a range runs from low to high (" + std::to_string(hi) + "-" +
                              std::to_string(lo) + "?)");
      }
    } else {
      ASSIGN_OR_RETURN(lo, ParseValue(f, field, range));
      // "5/15" means 5, 20, 35, 50 as in cronie ("5/1": 5 to the end).
      hi = stepped ? f.hi : lo;
    }
    for (int v = lo; v <= hi; v += step) {
      int bit = (&f == &kWeekday && v == 7) ? 0 : v - base;
      bits->set(static_cast<size_t>(bit));
    }
  }
  return Status::Ok();
}

unsigned DaysIn(unsigned month) {  // the most a month can have (February: 29)
  static constexpr unsigned kDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

SysMicros ToSys(Micros t) { return SysMicros(microseconds(t)); }
Micros FromSys(date::sys_seconds t) {
  return duration_cast<microseconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---- TimeZone -------------------------------------------------------------

Result<TimeZone> TimeZone::Find(const std::string& name) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return Utc();
  try {
    const date::time_zone* zone = date::locate_zone(name);
    return TimeZone(name, zone);
  } catch (const std::exception&) {
    std::vector<std::string> names;
    try {
      for (const date::time_zone& z : date::get_tzdb().zones) names.emplace_back(z.name());
    } catch (const std::exception&) {
    }
    return Status::NotFound("unknown time zone '" + name + "'" + DidYouMeanHint(name, names) +
                            " (names as in /usr/share/zoneinfo, e.g. America/New_York; Debian's "
                            "tzdata package provides them)");
  }
}

TimeZone TimeZone::Utc() { return TimeZone("UTC", nullptr); }

int64_t TimeZone::OffsetAt(Micros t) const {
  if (!zone_) return 0;
  return zone_->get_info(floor<seconds>(ToSys(t))).offset.count();
}

std::string TimeZone::FormatLocal(Micros t) const {
  int64_t offset = OffsetAt(t);
  auto local = floor<seconds>(ToSys(t)) + seconds(offset);
  std::string text = date::format("%F %T", local);
  char sign = offset < 0 ? '-' : '+';
  int64_t a = offset < 0 ? -offset : offset;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, static_cast<int>(a / 3600),
                static_cast<int>(a % 3600 / 60));
  return text + buf;
}

// ---- CronExpr -------------------------------------------------------------

Result<CronExpr> CronExpr::Parse(std::string_view input) {
  std::string text = Trim(std::string(input));
  static const std::vector<std::pair<std::string, std::string>> kMacros = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  std::string fields_text = text;
  if (StartsWith(text, "@")) {
    auto it = std::find_if(kMacros.begin(), kMacros.end(),
                           [&](const auto& m) { return m.first == ToLower(text); });
    if (it == kMacros.end()) {
      std::vector<std::string> names;
      for (const auto& m : kMacros) names.push_back(m.first);
      return Status::Invalid("unknown schedule '" + text + "'" + DidYouMeanHint(text, names));
    }
    fields_text = it->second;
  }
  std::vector<std::string> fields;
  for (const std::string& part : Split(fields_text, ' ')) {
    std::string t = Trim(part);
    if (!t.empty()) fields.push_back(t);
  }
  if (fields.size() != 5) {
    return Status::Invalid(
        "a cron line has 5 fields (minute hour day-of-month month day-of-week, "
        "e.g. '*/15 * * * *'), got " +
        std::to_string(fields.size()) + " in '" + text + "'");
  }
  CronExpr e;
  e.text_ = text;
  RETURN_IF_ERROR(ParseField(kMinute, fields[0], &e.minutes_, 0));
  RETURN_IF_ERROR(ParseField(kHour, fields[1], &e.hours_, 0));
  RETURN_IF_ERROR(ParseField(kDay, fields[2], &e.days_, 0));
  RETURN_IF_ERROR(ParseField(kMonth, fields[3], &e.months_, 0));
  RETURN_IF_ERROR(ParseField(kWeekday, fields[4], &e.weekdays_, 0));
  e.days_star_ = fields[2][0] == '*';
  e.weekdays_star_ = fields[4][0] == '*';
  e.hours_star_ = fields[1] == "*";
  // A date that never comes ("0 0 30 2 *") is an error, not a silent never.
  if (!e.days_star_ && e.weekdays_star_) {
    bool possible = false;
    for (unsigned m = 1; m <= 12 && !possible; ++m) {
      if (!e.months_[m]) continue;
      for (unsigned d = 1; d <= DaysIn(m) && !possible; ++d) possible = e.days_[d];
    }
    if (!possible) {
      return Status::Invalid("'" + text + "' never runs: no month it names has that day");
    }
  }
  return e;
}

bool CronExpr::DayMatches(unsigned day, unsigned weekday) const {
  bool dom = days_[day];
  bool dow = weekdays_[weekday];
  // crontab(5): both restricted -> either matches; otherwise both must.
  if (!days_star_ && !weekdays_star_) return dom || dow;
  return dom && dow;
}

Micros CronExpr::Next(Micros after, const TimeZone& zone) const {
  const date::time_zone* tz = zone.zone_;
  auto to_local = [&](date::sys_seconds s) -> date::local_seconds {
    if (!tz) return date::local_seconds(s.time_since_epoch());
    return tz->to_local(s);
  };
  // The first wall-clock minute at or after c that the fields match.
  auto next_match = [&](LocalMinutes c) -> std::optional<LocalMinutes> {
    for (int guard = 0; guard < 200000; ++guard) {
      auto day = floor<date::days>(c);
      date::year_month_day ymd(day);
      auto tod = c - day;
      auto h = static_cast<unsigned>(tod.count() / 60);
      auto m = static_cast<unsigned>(tod.count() % 60);
      unsigned month = static_cast<unsigned>(ymd.month());
      if (!months_[month]) {
        date::year_month ym = date::year_month(ymd.year(), ymd.month()) + date::months(1);
        c = LocalMinutes(date::local_days(ym / 1).time_since_epoch());
        continue;
      }
      unsigned weekday = date::weekday(day).c_encoding();
      if (!DayMatches(static_cast<unsigned>(ymd.day()), weekday)) {
        c = LocalMinutes((day + date::days(1)).time_since_epoch());
        continue;
      }
      if (!hours_[h]) {
        c = LocalMinutes(day.time_since_epoch()) + hours(h + 1);
        continue;
      }
      if (!minutes_[m]) {
        c += minutes(1);
        continue;
      }
      return c;
    }
    return std::nullopt;
  };
  // The instants a wall-clock minute stands for (see the header).
  auto instants = [&](LocalMinutes c) {
    std::vector<date::sys_seconds> out;
    date::local_seconds ls(c.time_since_epoch());
    if (!tz) {
      out.emplace_back(ls.time_since_epoch());
      return out;
    }
    date::local_info info = tz->get_info(ls);
    switch (info.result) {
      case date::local_info::unique:
        out.emplace_back(ls.time_since_epoch() - info.first.offset);
        break;
      case date::local_info::nonexistent:
        out.push_back(info.first.end);  // the instant the clocks jump
        break;
      case date::local_info::ambiguous:
        out.emplace_back(ls.time_since_epoch() - info.first.offset);
        if (hours_star_) out.emplace_back(ls.time_since_epoch() - info.second.offset);
        break;
    }
    return out;
  };

  // Wall-clock order and real order differ only near an offset change.
  auto near_shift = [&](date::sys_seconds u) {
    if (!tz) return false;
    date::sys_info info = tz->get_info(u);
    return u - kMaxShift < info.begin || u + kMaxShift >= info.end;
  };
  date::sys_seconds after_s = floor<seconds>(ToSys(after));
  // Near a shift, look from a little before, and keep looking until no later
  // wall time can come sooner.
  LocalMinutes c = floor<minutes>(to_local(after_s));
  if (near_shift(after_s)) c -= kMaxShift;
  std::optional<date::sys_seconds> best;
  while (true) {
    std::optional<LocalMinutes> match = next_match(c);
    if (!match) break;
    for (date::sys_seconds u : instants(*match)) {
      if (FromSys(u) > after && (!best || u < *best)) best = u;
    }
    if (best && (!near_shift(*best) || *match > floor<minutes>(to_local(*best)) + kMaxShift)) {
      break;
    }
    c = *match + minutes(1);
  }
  // Parse refuses expressions that never match; a century is "never" otherwise.
  if (!best) return after + int64_t{100} * 366 * 86400 * 1000000;
  return FromSys(*best);
}

}  // namespace sluice
