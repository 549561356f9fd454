// The scheduler: which assets are due, when, and why. Logic only, over a
// Clock and the metadata store; it builds nothing (engine/service.h runs what
// it returns) and needs no warehouse, so it is tested with a fake clock.
//
// Four kinds of schedule (config/project.h ScheduleSpec):
//   cron     a crontab line or macro, on the wall clock of a time zone
//            (the schedule's, else the project's `timezone:`, else UTC);
//   every    ticks at whole multiples of the period since the epoch (UTC), so
//            a tick's time is the same whoever computes it;
//   after    when an asset it names publishes a new version;
//   on_file  once for each file matching a pattern, when the file has stopped
//            changing (same size and mtime on two looks).
//
// Exactly once: a tick is recorded (metadata, one transaction with the
// schedule's position) before it is handed out, keyed by what triggered it —
// a scheduled time, the upstream versions, a file's identity — so the same
// trigger never gives two ticks, and a tick handed out but not finished when
// the process died is found again by Recover().
//
// Time-based schedules start at their first tick after they are first seen
// (or changed). After downtime, the ticks missed follow the misfire policy:
// `skip` runs none of them (the newest runs only if it is at most a minute
// late), `latest` (the default) runs the newest, `all` runs each, up to
// max_catch_up (newest kept); those not run are recorded as one skipped tick
// whose note says how many and from when to when.
//
// A paused schedule (`sluice pause`, metadata schedule_pauses) gives no ticks;
// when resumed, the ticks it missed follow its misfire policy, as after
// downtime. Files that arrive while it is paused are ticked on resume.
// (Ticks handed out before the pause wait in serve's queue until then.)
//
// Not thread-safe: one thread (the service's loop) drives it.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/project.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/status.h"
#include "metadata/metadata_store.h"

namespace sluice {

struct ScheduledAsset {
  std::string asset;  // what a tick runs: a source's or a model's name
  ScheduleSpec spec;
};

class Scheduler {
 public:
  // A tick is late (a misfire) beyond this.
  static constexpr Micros kGrace = 60 * Micros{1000000};

  // Compiles each schedule; an error names the asset and its file:line.
  static Result<Scheduler> Create(std::vector<ScheduledAsset> schedules,
                                  const std::string& default_timezone, MetadataStore* metadata,
                                  const Clock* clock);

  // Ticks left pending or running by a process that died: marked interrupted
  // (the note says so) and returned again as pending, to run now. Call once,
  // before anything else.
  Result<std::vector<TickRecord>> Recover();

  // Time-based ticks due now, recorded as pending before they are returned.
  Result<std::vector<TickRecord>> Due();

  // `after:` ticks for the assets that published in one run: (asset, version).
  Result<std::vector<TickRecord>> Published(
      const std::vector<std::pair<std::string, std::string>>& published);

  // on_file ticks for files that appeared (or changed) and have settled since
  // the last look; patterns are relative to `root`.
  Result<std::vector<TickRecord>> ScanFiles(const std::string& root);

  // When Due() next returns something; nullopt without time-based schedules.
  std::optional<Micros> NextDue() const;
  // The first tick of a time-based schedule after `after` (for listings);
  // nullopt for after/on_file schedules.
  static Result<std::optional<Micros>> NextTickOf(const ScheduleSpec& spec,
                                                  const std::string& default_timezone,
                                                  Micros after);
  bool HasFileSensors() const;

  const std::vector<ScheduledAsset>& schedules() const { return schedules_; }

 private:
  struct Timed {
    size_t index;  // into schedules_
    std::optional<CronExpr> cron;
    TimeZone zone = TimeZone::Utc();
    ScheduleStateRecord state;
  };
  Scheduler(std::vector<ScheduledAsset> schedules, MetadataStore* metadata, const Clock* clock)
      : schedules_(std::move(schedules)), metadata_(metadata), clock_(clock) {}
  Micros NextTick(const Timed& t, Micros after) const;
  TickRecord MakeTick(const std::string& asset, std::string key, Micros at,
                      std::string trigger) const;

  std::vector<ScheduledAsset> schedules_;
  MetadataStore* metadata_;
  const Clock* clock_;
  std::vector<Timed> timed_;
  // on_file: the identity each file had at the last look, and the keys of
  // files already ticked.
  std::map<std::string, std::string> settling_;
  std::set<std::string> seen_files_;
  std::set<std::string> paused_;  // as of the last Due()
};

// A tick of a time-based schedule (its key "t:<micros>").
bool IsTimedTick(const TickRecord& tick);

// How many time ticks of `spec`'s asset may wait to run at once in serve:
// each of up to max_catch_up under `misfire: all`, else one (a newer tick
// replaces it).
size_t TicksThatMayWait(const ScheduleSpec& spec);

// Adds tick to serve's waiting ticks. A time tick that finds `may_wait` of
// its asset's time ticks waiting replaces the oldest of them — never one in
// `kept` (interrupted by a restart: it runs again) — which it returns,
// marked skipped with why, for the record.
std::optional<TickRecord> AddWaitingTick(std::deque<TickRecord>& waiting, TickRecord tick,
                                         size_t may_wait,
                                         const std::set<std::pair<std::string, std::string>>& kept);

}  // namespace sluice
