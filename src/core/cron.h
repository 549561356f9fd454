// Cron expressions and time zones: when a schedule's next tick falls.
//
// A cron expression is the 5 fields of crontab(5) — minute, hour, day of
// month, month, day of week — with lists, ranges, steps and names (jan..dec,
// sun..sat; 7 is Sunday too), or a macro (@hourly, @daily, @midnight,
// @weekly, @monthly, @yearly, @annually). As in crontab(5), when both day
// fields are restricted (neither starts with '*') a day matches either.
//
// It is evaluated on the wall clock of a time zone (the tz database Debian
// ships under /usr/share/zoneinfo, through Howard Hinnant's date/tz), and
// daylight-saving changes neither lose nor double a tick:
//   - a wall time that does not exist (the hour skipped in spring) runs once,
//     at the instant the clocks jump;
//   - a wall time that happens twice (the hour repeated in autumn) runs once,
//     at its first occurrence, unless the hour field is '*' (an hourly or
//     finer schedule), which runs in both hours: each is a real hour.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace date {
class time_zone;
}

namespace sluice {

// A time zone of the tz database; "UTC" always exists.
class TimeZone {
 public:
  // NotFound (with a hint) for a name the database does not have.
  static Result<TimeZone> Find(const std::string& name);
  static TimeZone Utc();

  const std::string& name() const { return name_; }
  // The UTC offset in seconds at instant t.
  int64_t OffsetAt(Micros t) const;
  // "2026-03-08 03:00:00-04:00"
  std::string FormatLocal(Micros t) const;

 private:
  friend class CronExpr;
  TimeZone(std::string name, const date::time_zone* zone) : name_(std::move(name)), zone_(zone) {}
  std::string name_;
  const date::time_zone* zone_ = nullptr;  // owned by the library's database, never freed
};

class CronExpr {
 public:
  // InvalidArgument naming the field and what is wrong, e.g.
  // "hour field '25': a value must be 0-23".
  static Result<CronExpr> Parse(std::string_view text);

  // The first tick strictly after `after`, evaluated in `zone`. Every
  // expression that parses has one (an impossible date is refused by Parse).
  Micros Next(Micros after, const TimeZone& zone) const;

  const std::string& text() const { return text_; }

 private:
  bool DayMatches(unsigned day, unsigned weekday) const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;        // 1..31
  std::bitset<13> months_;      // 1..12
  std::bitset<7> weekdays_;     // 0 = Sunday
  bool days_star_ = false;      // the day-of-month field starts with '*'
  bool weekdays_star_ = false;  // the day-of-week field starts with '*'
  bool hours_star_ = false;     // the hour field is '*': runs in both repeated hours
};

}  // namespace sluice
