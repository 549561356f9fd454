// Cron expressions across month ends, leap years and daylight-saving changes
// (real tz database zones), and the scheduler's ticks under a fake clock with
// a real (in-memory) SQLite metadata store: misfires after downtime, restarts,
// after-triggers, file sensors.
#include <gtest/gtest.h>

#include <date/date.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/cron.h"
#include "metadata/metadata_store.h"
#include "metadata/sqlite.h"
#include "orchestrate/scheduler.h"

namespace sluice {
namespace {

// Micros of a UTC civil time.
Micros Utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  using namespace std::chrono;
  auto day = date::sys_days(date::year(y) / date::month(mo) / date::day(d));
  auto t = day + hours(h) + minutes(mi) + seconds(s);
  return duration_cast<microseconds>(t.time_since_epoch()).count();
}

std::string Iso(Micros t) { return FormatTimestamp(t); }

CronExpr Cron(const std::string& text) {
  Result<CronExpr> c = CronExpr::Parse(text);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

TimeZone Zone(const std::string& name) {
  Result<TimeZone> z = TimeZone::Find(name);
  EXPECT_TRUE(z.ok()) << z.status().message();
  return z.ok() ? *z : TimeZone::Utc();
}

// The first n ticks after `from`.
std::vector<std::string> Ticks(const std::string& expr, const std::string& zone, Micros from,
                               int n) {
  CronExpr c = Cron(expr);
  TimeZone z = Zone(zone);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    from = c.Next(from, z);
    out.push_back(Iso(from));
  }
  return out;
}

TEST(CronTest, ParseErrorsNameTheField) {
  auto error = [](const std::string& text) {
    Result<CronExpr> c = CronExpr::Parse(text);
    return c.ok() ? std::string("ok") : c.status().message();
  };
  EXPECT_EQ(error("60 * * * *"), "minute field '60': a value must be 0-59, got 60");
  EXPECT_EQ(error("* * * * mon-sux"),
            "day-of-week field 'mon-sux': expected a number 0-7 or a name such as sun, got 'sux'");
  EXPECT_EQ(error("*/0 * * * *"), "minute field '*/0': a step must be a positive number, got '0'");
  EXPECT_EQ(error("5-1 * * * *"), "minute field '5-1': a range runs from low to high (1-5?)");
  EXPECT_EQ(error("* * * *"),
            "a cron line has 5 fields (minute hour day-of-month month day-of-week, e.g. '*/15 * "
            "* * *'), got 4 in '* * * *'");
  EXPECT_EQ(error("0 0 31 4,6 *"), "'0 0 31 4,6 *' never runs: no month it names has that day");
  EXPECT_EQ(error("@dialy"), "unknown schedule '@dialy' (did you mean @daily?)");
  EXPECT_EQ(error("0 0 29 2 *"), "ok");    // leap years
  EXPECT_EQ(error("0 0 31 4 mon"), "ok");  // both days restricted: Mondays in April
}

TEST(CronTest, StepsListsNamesAndMacros) {
  Micros t = Utc(2026, 1, 1, 0, 0);
  EXPECT_EQ(Ticks("*/20 * * * *", "UTC", t, 3),
            (std::vector<std::string>{"2026-01-01T00:20:00.000Z", "2026-01-01T00:40:00.000Z",
                                      "2026-01-01T01:00:00.000Z"}));
  EXPECT_EQ(Ticks("0 9 * * mon-fri", "UTC", t, 3),  // 2026-01-01 is a Thursday
            (std::vector<std::string>{"2026-01-01T09:00:00.000Z", "2026-01-02T09:00:00.000Z",
                                      "2026-01-05T09:00:00.000Z"}));
  EXPECT_EQ(Ticks("@monthly", "UTC", t, 2),
            (std::vector<std::string>{"2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"}));
  EXPECT_EQ(Ticks("58/1 * * * *", "UTC", t, 3),  // 58 to the end of the hour, as 58/2 does
            (std::vector<std::string>{"2026-01-01T00:58:00.000Z", "2026-01-01T00:59:00.000Z",
                                      "2026-01-01T01:58:00.000Z"}));
  EXPECT_EQ(Ticks("0 0 * * 7", "UTC", t, 1),  // 7 is Sunday
            (std::vector<std::string>{"2026-01-04T00:00:00.000Z"}));
  EXPECT_EQ(Ticks("5,35 1 * jan,mar *", "UTC", Utc(2026, 1, 31, 2), 2),
            (std::vector<std::string>{"2026-03-01T01:05:00.000Z", "2026-03-01T01:35:00.000Z"}));
}

TEST(CronTest, MonthEndsAndLeapYears) {
  // The 31st skips the months without one.
  EXPECT_EQ(Ticks("0 0 31 * *", "UTC", Utc(2026, 1, 31, 12), 3),
            (std::vector<std::string>{"2026-03-31T00:00:00.000Z", "2026-05-31T00:00:00.000Z",
                                      "2026-07-31T00:00:00.000Z"}));
  // February 29th waits for a leap year.
  EXPECT_EQ(Ticks("0 12 29 2 *", "UTC", Utc(2026, 3, 1), 2),
            (std::vector<std::string>{"2028-02-29T12:00:00.000Z", "2032-02-29T12:00:00.000Z"}));
  // Both day fields restricted: either matches (crontab(5)).
  EXPECT_EQ(Ticks("0 0 13 * fri", "UTC", Utc(2026, 2, 1), 3),
            (std::vector<std::string>{"2026-02-06T00:00:00.000Z", "2026-02-13T00:00:00.000Z",
                                      "2026-02-20T00:00:00.000Z"}));
  // One restricted: both must (Friday the 13th is `0 0 13 * *` and a filter; here
  // day-of-week is '*', so the 13th of each month).
  EXPECT_EQ(Ticks("0 0 13 * *", "UTC", Utc(2026, 2, 1), 2),
            (std::vector<std::string>{"2026-02-13T00:00:00.000Z", "2026-03-13T00:00:00.000Z"}));
}

TEST(CronTest, SpringForwardRunsTheSkippedTimeOnceWhenTheClocksJump) {
  // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
  EXPECT_EQ(Ticks("30 2 * * *", "America/New_York", Utc(2026, 3, 7, 12), 3),
            (std::vector<std::string>{"2026-03-08T07:00:00.000Z",  // the jump: 03:00 EDT
                                      "2026-03-09T06:30:00.000Z",  // 02:30 EDT
                                      "2026-03-10T06:30:00.000Z"}));
  // Every 30 minutes: 01:30 EST, then the jump (02:00 and 02:30 do not exist;
  // 03:00 EDT is the same instant), then 03:30 EDT. Nothing lost, nothing doubled.
  EXPECT_EQ(Ticks("*/30 * * * *", "America/New_York", Utc(2026, 3, 8, 6, 15), 3),
            (std::vector<std::string>{"2026-03-08T06:30:00.000Z", "2026-03-08T07:00:00.000Z",
                                      "2026-03-08T07:30:00.000Z"}));
  // London, 2026-03-29: 01:00 GMT becomes 02:00 BST.
  EXPECT_EQ(Ticks("30 1 * * *", "Europe/London", Utc(2026, 3, 28, 12), 2),
            (std::vector<std::string>{"2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"}));
}

TEST(CronTest, FallBackRunsAFixedTimeOnceAndAnHourlyScheduleInBothHours) {
  // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:xx happens twice.
  EXPECT_EQ(Ticks("30 1 * * *", "America/New_York", Utc(2026, 10, 31, 12), 2),
            (std::vector<std::string>{"2026-11-01T05:30:00.000Z",  // 01:30 EDT, the first
                                      "2026-11-02T06:30:00.000Z"}));
  EXPECT_EQ(Ticks("30 * * * *", "America/New_York", Utc(2026, 11, 1, 4, 0), 4),
            (std::vector<std::string>{"2026-11-01T04:30:00.000Z",     // 00:30 EDT
                                      "2026-11-01T05:30:00.000Z",     // 01:30 EDT
                                      "2026-11-01T06:30:00.000Z",     // 01:30 EST
                                      "2026-11-01T07:30:00.000Z"}));  // 02:30 EST
}

TEST(CronTest, TimeZonesAreFoundOrNamedWithAHint) {
  Result<TimeZone> bad = TimeZone::Find("America/New_Yrok");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("did you mean America/New_York?"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(Zone("America/New_York").OffsetAt(Utc(2026, 7, 1)), -4 * 3600);
  EXPECT_EQ(Zone("America/New_York").FormatLocal(Utc(2026, 3, 8, 7)), "2026-03-08 03:00:00-04:00");
  EXPECT_EQ(TimeZone::Utc().OffsetAt(Utc(2026, 7, 1)), 0);
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<MetadataStore>> md = OpenSqliteMetadata(":memory:", &clock_);
    ASSERT_TRUE(md.ok()) << md.status().message();
    metadata_ = std::move(*md);
  }

  ScheduledAsset Every(const std::string& asset, int64_t seconds, Misfire m = Misfire::kLatest,
                       int cap = 24) {
    ScheduledAsset a;
    a.asset = asset;
    a.spec.kind = ScheduleKind::kEvery;
    a.spec.every_seconds = seconds;
    a.spec.misfire = m;
    a.spec.max_catch_up = cap;
    return a;
  }

  Scheduler Make(std::vector<ScheduledAsset> schedules, const std::string& tz = "UTC") {
    Result<Scheduler> s = Scheduler::Create(std::move(schedules), tz, metadata_.get(), &clock_);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return std::move(*s);
  }

  std::vector<std::string> DueTimes(Scheduler& s) {
    Result<std::vector<TickRecord>> due = s.Due();
    EXPECT_TRUE(due.ok()) << due.status().message();
    std::vector<std::string> out;
    for (const TickRecord& t : *due) out.push_back(t.asset + "@" + Iso(t.at));
    return out;
  }

  std::vector<TickRecord> Skipped(const std::string& asset) {
    return *metadata_->ListTicks(asset, {TickStatus::kSkipped}, 100);
  }

  void Advance(int64_t seconds) { clock_.Advance(seconds * 1000000); }

  FakeClock clock_{Utc(2026, 11, 30, 10, 0, 5)};
  std::unique_ptr<MetadataStore> metadata_;
};

TEST_F(SchedulerTest, IntervalTicksAreAlignedAndEachIsHandedOutOnce) {
  Scheduler s = Make({Every("poll", 20)});
  EXPECT_TRUE(DueTimes(s).empty());  // a new schedule starts at its next tick
  ASSERT_TRUE(s.NextDue().has_value());
  EXPECT_EQ(Iso(*s.NextDue()), "2026-11-30T10:00:20.000Z");
  Advance(15);
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"poll@2026-11-30T10:00:20.000Z"}));
  EXPECT_TRUE(DueTimes(s).empty());  // asked again: nothing new
  Advance(20);
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"poll@2026-11-30T10:00:40.000Z"}));
  EXPECT_TRUE(Skipped("poll").empty());
}

TEST_F(SchedulerTest, MisfiresAfterDowntimeFollowThePolicy) {
  {
    Scheduler s = Make({Every("latest", 60), Every("all", 60, Misfire::kAll, 3),
                        Every("skip", 60, Misfire::kSkip)});
    Advance(60);  // 10:01:05: each has its 10:01 tick
    EXPECT_EQ(DueTimes(s).size(), 3u);
  }
  // Down for ten minutes; a new process (a new Scheduler on the same metadata).
  Advance(600);  // 10:11:05: ten ticks missed (10:02 .. 10:11)
  Scheduler s = Make(
      {Every("latest", 60), Every("all", 60, Misfire::kAll, 3), Every("skip", 60, Misfire::kSkip)});
  std::vector<std::string> due = DueTimes(s);
  EXPECT_EQ(due, (std::vector<std::string>{
                     "all@2026-11-30T10:09:00.000Z", "all@2026-11-30T10:10:00.000Z",
                     "all@2026-11-30T10:11:00.000Z", "latest@2026-11-30T10:11:00.000Z",
                     "skip@2026-11-30T10:11:00.000Z"}));  // 5 s late: within the grace
  ASSERT_EQ(Skipped("latest").size(), 1u);
  EXPECT_EQ(Skipped("latest")[0].note,
            "9 tick(s) from 2026-11-30T10:02:00.000Z to 2026-11-30T10:10:00.000Z missed while "
            "nothing ran; misfire: latest (the newest 1 run)");
  ASSERT_EQ(Skipped("all").size(), 1u);
  EXPECT_EQ(Skipped("all")[0].note,
            "7 tick(s) from 2026-11-30T10:02:00.000Z to 2026-11-30T10:08:00.000Z missed while "
            "nothing ran; misfire: all (the newest 3 run)");
  // Twelve more minutes unattended (10:23:05): the newest tick is 5 s late.
  Advance(720);
  EXPECT_EQ(DueTimes(s).size(), 5u);  // all: 3, latest: 1, skip: 1
}

TEST_F(SchedulerTest, SkipRunsNothingLateAndRecordsTheGap) {
  { Scheduler s = Make({Every("skip", 3600, Misfire::kSkip)}); }
  Advance(3 * 3600);  // 13:00:05; ticks 11:00, 12:00, 13:00 (5 s late: runs)
  Advance(120);       // 13:02:05: the 13:00 tick is 2 minutes late
  Scheduler s = Make({Every("skip", 3600, Misfire::kSkip)});
  EXPECT_TRUE(DueTimes(s).empty());
  ASSERT_EQ(Skipped("skip").size(), 1u);
  EXPECT_EQ(Skipped("skip")[0].note,
            "3 tick(s) from 2026-11-30T11:00:00.000Z to 2026-11-30T13:00:00.000Z missed while "
            "nothing ran; misfire: skip (none run)");
}

TEST_F(SchedulerTest, ATickHandedOutButNotFinishedRunsAgainAfterARestartAndOnlyThen) {
  {
    Scheduler s = Make({Every("poll", 60)});
    Advance(60);
    ASSERT_EQ(DueTimes(s).size(), 1u);
    // The process dies here: the tick was recorded pending, never finished.
  }
  Scheduler s = Make({Every("poll", 60)});
  Result<std::vector<TickRecord>> again = s.Recover();
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(Iso((*again)[0].at), "2026-11-30T10:01:00.000Z");
  EXPECT_EQ((*again)[0].note, "interrupted (the process stopped); run again after a restart");
  EXPECT_TRUE(DueTimes(s).empty());  // and not handed out a second time as due
  TickRecord done = (*again)[0];
  done.status = TickStatus::kDone;
  ASSERT_TRUE(metadata_->UpdateTick(done).ok());
  Scheduler later = Make({Every("poll", 60)});
  EXPECT_TRUE(later.Recover()->empty());
}

// Ticks that could not be committed (another process holds the metadata
// locked past the busy timeout) are neither handed out nor passed over:
// the next call hands them out.
TEST_F(SchedulerTest, AFailedCommitOfTicksLosesNone) {
  const std::string path = ::testing::TempDir() + "sluice_sched_" + std::to_string(::getpid());
  std::filesystem::remove(path);
  Result<std::unique_ptr<MetadataStore>> md = OpenSqliteMetadata(path, &clock_);
  ASSERT_TRUE(md.ok()) << md.status().message();
  metadata_ = std::move(*md);
  Scheduler s = Make({Every("poll", 60)});
  Advance(60);  // 10:01:05: the 10:01 tick is due
  {
    Result<SqliteDb> other = SqliteDb::Open(path, "locker");
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE(other->Exec("BEGIN EXCLUSIVE").ok());
    Result<std::vector<TickRecord>> due = s.Due();
    EXPECT_FALSE(due.ok());
    ASSERT_TRUE(other->Exec("COMMIT").ok());
  }
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"poll@2026-11-30T10:01:00.000Z"}));
  EXPECT_TRUE(Skipped("poll").empty());
  metadata_.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

TickRecord TimeTick(const std::string& asset, Micros at) {
  TickRecord t;
  t.asset = asset;
  t.key = "t:" + std::to_string(at);
  t.at = at;
  return t;
}

std::vector<std::string> Keys(const std::deque<TickRecord>& waiting) {
  std::vector<std::string> out;
  for (const TickRecord& t : waiting) out.push_back(t.asset + "@" + Iso(t.at));
  return out;
}

// Serve's waiting ticks: under `latest` a newer tick takes the place of one
// not started; under `all` each of a downtime's catch-up ticks waits its
// turn (up to max_catch_up); a tick interrupted by a restart is never
// replaced — it runs again.
TEST(WaitingTicks, ReplacedOnlyBeyondWhatMayWaitAndNeverWhenInterrupted) {
  const Micros t0 = Utc(2026, 11, 30, 10, 9);
  const Micros minute = 60 * Micros{1000000};
  ScheduleSpec all;
  all.misfire = Misfire::kAll;
  all.max_catch_up = 3;
  EXPECT_EQ(TicksThatMayWait(all), 3u);
  EXPECT_EQ(TicksThatMayWait(ScheduleSpec{}), 1u);
  std::set<std::pair<std::string, std::string>> kept;

  std::deque<TickRecord> waiting;
  TickRecord other = TimeTick("other", t0);
  EXPECT_FALSE(AddWaitingTick(waiting, other, 1, kept));
  for (int i = 0; i < 3; ++i) {  // one Due() of misfire: all
    EXPECT_FALSE(AddWaitingTick(waiting, TimeTick("all", t0 + i * minute), 3, kept));
  }
  EXPECT_EQ(Keys(waiting), (std::vector<std::string>{
                               "other@2026-11-30T10:09:00.000Z", "all@2026-11-30T10:09:00.000Z",
                               "all@2026-11-30T10:10:00.000Z", "all@2026-11-30T10:11:00.000Z"}));
  // A fourth while three wait: the oldest gives way, the newest runs last.
  std::optional<TickRecord> replaced =
      AddWaitingTick(waiting, TimeTick("all", t0 + 3 * minute), 3, kept);
  ASSERT_TRUE(replaced);
  EXPECT_EQ(Iso(replaced->at), "2026-11-30T10:09:00.000Z");
  EXPECT_EQ(replaced->status, TickStatus::kSkipped);
  EXPECT_EQ(replaced->note,
            "superseded by the tick of 2026-11-30T10:12:00.000Z: 3 ticks of all had not "
            "started yet");
  EXPECT_EQ(Keys(waiting), (std::vector<std::string>{
                               "other@2026-11-30T10:09:00.000Z", "all@2026-11-30T10:10:00.000Z",
                               "all@2026-11-30T10:11:00.000Z", "all@2026-11-30T10:12:00.000Z"}));
  // misfire: latest: the newer tick takes the older one's place in the line.
  replaced = AddWaitingTick(waiting, TimeTick("other", t0 + minute), 1, kept);
  ASSERT_TRUE(replaced);
  EXPECT_EQ(replaced->note,
            "superseded by the tick of 2026-11-30T10:10:00.000Z: the previous tick of other had "
            "not started yet");
  EXPECT_EQ(Keys(waiting).front(), "other@2026-11-30T10:10:00.000Z");

  // A tick interrupted by a restart stays, and the new one waits behind it.
  std::deque<TickRecord> restarted;
  TickRecord interrupted = TimeTick("poll", t0);
  kept.insert({interrupted.asset, interrupted.key});
  EXPECT_FALSE(AddWaitingTick(restarted, interrupted, 1, kept));
  EXPECT_FALSE(AddWaitingTick(restarted, TimeTick("poll", t0 + minute), 1, kept));
  EXPECT_EQ(Keys(restarted), (std::vector<std::string>{"poll@2026-11-30T10:09:00.000Z",
                                                       "poll@2026-11-30T10:10:00.000Z"}));
  // The next replaces the newer one only.
  replaced = AddWaitingTick(restarted, TimeTick("poll", t0 + 2 * minute), 1, kept);
  ASSERT_TRUE(replaced);
  EXPECT_EQ(Iso(replaced->at), "2026-11-30T10:10:00.000Z");
  EXPECT_EQ(Keys(restarted), (std::vector<std::string>{"poll@2026-11-30T10:09:00.000Z",
                                                       "poll@2026-11-30T10:11:00.000Z"}));
}

TEST_F(SchedulerTest, AChangedScheduleStartsAgainFromNow) {
  { Scheduler s = Make({Every("poll", 60)}); }
  Advance(3600);
  Scheduler s = Make({Every("poll", 300)});  // changed while down: no catch-up of the old one
  EXPECT_TRUE(DueTimes(s).empty());
  EXPECT_TRUE(Skipped("poll").empty());
}

TEST_F(SchedulerTest, CronInAZoneAcrossTheAutumnChange) {
  clock_.Advance(Utc(2026, 11, 1, 4, 0) - clock_.Now());
  ScheduledAsset a;
  a.asset = "nightly";
  a.spec.kind = ScheduleKind::kCron;
  a.spec.cron = "30 1 * * *";
  Scheduler s = Make({a}, "America/New_York");
  std::vector<std::string> all;
  for (int i = 0; i < 48 * 4; ++i) {  // two days, every 15 minutes
    Advance(900);
    for (const std::string& d : DueTimes(s)) all.push_back(d);
  }
  EXPECT_EQ(all, (std::vector<std::string>{"nightly@2026-11-01T05:30:00.000Z",
                                           "nightly@2026-11-02T06:30:00.000Z"}));
}

TEST_F(SchedulerTest, AFrequentCronAfterMonthsDownRunsItsNewestTickAtOnce) {
  ScheduledAsset a;
  a.asset = "minutely";
  a.spec.kind = ScheduleKind::kCron;
  a.spec.cron = "* * * * *";
  { Scheduler s = Make({a}); }
  Advance(int64_t{100} * 86400);  // 100 days: 144,000 ticks missed
  Scheduler s = Make({a});
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"minutely@2027-03-10T10:00:00.000Z"}));
  ASSERT_EQ(Skipped("minutely").size(), 1u);
  EXPECT_EQ(Skipped("minutely")[0].note.substr(0, 6), "50399+");  // the last 35 days, counted
}

TEST_F(SchedulerTest, APausedScheduleTicksNothingAndOnResumeFollowsItsMisfirePolicy) {
  Scheduler s = Make({Every("poll", 60), Every("other", 60)});
  ASSERT_TRUE(metadata_->SetPaused("poll", true).ok());
  Advance(60);
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"other@2026-11-30T10:01:00.000Z"}));
  ASSERT_TRUE(s.NextDue().has_value());
  EXPECT_EQ(Iso(*s.NextDue()), "2026-11-30T10:02:00.000Z");  // the paused one does not count
  Advance(300);
  EXPECT_EQ(DueTimes(s).size(), 1u);  // other only
  ASSERT_TRUE(metadata_->SetPaused("poll", false).ok());
  EXPECT_EQ(DueTimes(s), (std::vector<std::string>{"poll@2026-11-30T10:06:00.000Z"}));
  ASSERT_EQ(Skipped("poll").size(), 1u);  // 10:01 .. 10:05 missed while paused
  EXPECT_EQ(Skipped("poll")[0].note.substr(0, 10), "5 tick(s) ");
}

TEST_F(SchedulerTest, AfterTicksOncePerSetOfUpstreamVersions) {
  ScheduledAsset m;
  m.asset = "daily_summary";
  m.spec.kind = ScheduleKind::kAfter;
  m.spec.after = {"stops", "trips"};
  Scheduler s = Make({m});
  Result<std::vector<TickRecord>> t = s.Published({{"stops", "v1"}, {"trips", "v7"}, {"x", "v"}});
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].trigger, "after stops, trips");
  EXPECT_TRUE(s.Published({{"routes", "v2"}})->empty());
  EXPECT_EQ(s.Published({{"stops", "v2"}})->size(), 1u);
  // The same versions again (a rollback and back): recorded once, not handed out twice.
  EXPECT_TRUE(s.Published({{"stops", "v2"}})->empty());
}

TEST_F(SchedulerTest, FileSensorTicksOnceForEachSettledFile) {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("sluice-sensor-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "inbox");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(root / "inbox" / name) << text;
  };
  ScheduledAsset a;
  a.asset = "uploads";
  a.spec.kind = ScheduleKind::kOnFile;
  a.spec.on_file = "inbox/*.csv";
  std::vector<std::string> files;
  {
    Scheduler s = Make({a});
    write("a.csv", "x\n1\n");
    write("notes.txt", "not matched");
    EXPECT_TRUE(s.ScanFiles(root.string())->empty());  // first look: wait until it holds still
    Result<std::vector<TickRecord>> t = s.ScanFiles(root.string());
    ASSERT_EQ(t->size(), 1u);
    EXPECT_EQ((*t)[0].file, "inbox/a.csv");
    EXPECT_EQ((*t)[0].trigger, "on_file inbox/a.csv");
    EXPECT_TRUE(s.ScanFiles(root.string())->empty());  // once
  }
  // After a restart the same file is not ticked again; a new one is.
  Scheduler s = Make({a});
  write("b.csv", "x\n2\n");
  (void)s.ScanFiles(root.string());
  Result<std::vector<TickRecord>> t = s.ScanFiles(root.string());
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].file, "inbox/b.csv");
  // An absolute pattern gives absolute paths.
  ScheduledAsset abs = a;
  abs.asset = "abs_uploads";
  abs.spec.on_file = (root / "inbox" / "*.txt").string();
  Scheduler with_abs = Make({abs});
  (void)with_abs.ScanFiles("/elsewhere");
  Result<std::vector<TickRecord>> at = with_abs.ScanFiles("/elsewhere");
  ASSERT_EQ(at->size(), 1u);
  EXPECT_EQ((*at)[0].file, (root / "inbox" / "notes.txt").string());
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace sluice
