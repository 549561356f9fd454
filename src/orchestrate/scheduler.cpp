#include "orchestrate/scheduler.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <tuple>

#include "core/fs.h"
#include "core/strings.h"

namespace sluice {
namespace {

constexpr int kMaxEnumerated = 1000000;  // missed ticks counted one by one at most
constexpr Micros kRecentWindow = Micros{35} * 86400 * 1000000;

std::string MisfireName(Misfire m) {
  switch (m) {
    case Misfire::kSkip:
      return "skip";
    case Misfire::kLatest:
      return "latest";
    case Misfire::kAll:
      return "all";
  }
  return "latest";
}

}  // namespace

Result<Scheduler> Scheduler::Create(std::vector<ScheduledAsset> schedules,
                                    const std::string& default_timezone, MetadataStore* metadata,
                                    const Clock* clock) {
  Scheduler s(std::move(schedules), metadata, clock);
  ASSIGN_OR_RETURN(std::vector<ScheduleStateRecord> states, metadata->ListScheduleStates());
  std::map<std::string, ScheduleStateRecord> by_asset;
  for (ScheduleStateRecord& st : states) by_asset[st.asset] = std::move(st);
  Micros now = clock->Now();
  std::vector<ScheduleStateRecord> fresh;
  for (size_t i = 0; i < s.schedules_.size(); ++i) {
    const ScheduledAsset& a = s.schedules_[i];
    const ScheduleSpec& spec = a.spec;
    if (spec.kind != ScheduleKind::kCron && spec.kind != ScheduleKind::kEvery) continue;
    Timed t;
    t.index = i;
    auto where = [&](const Status& st) {
      return Status::Invalid(spec.loc.ToString() + ": schedule of " + a.asset + ": " +
                             st.message());
    };
    if (spec.kind == ScheduleKind::kCron) {
      Result<CronExpr> cron = CronExpr::Parse(spec.cron);
      if (!cron.ok()) return where(cron.status());
      t.cron = std::move(*cron);
      std::string zone = spec.timezone.empty() ? default_timezone : spec.timezone;
      Result<TimeZone> tz = TimeZone::Find(zone);
      if (!tz.ok()) return where(tz.status());
      t.zone = *tz;
    }
    // The position survives restarts while the schedule stays as written; a
    // new or changed schedule starts from now.
    std::string text = spec.ToString() + " misfire=" + MisfireName(spec.misfire);
    if (spec.kind == ScheduleKind::kCron) text += " tz=" + t.zone.name();
    auto it = by_asset.find(a.asset);
    if (it != by_asset.end() && it->second.schedule == text) {
      t.state = it->second;
    } else {
      t.state = ScheduleStateRecord{a.asset, text, now, 0};
      fresh.push_back(t.state);
    }
    s.timed_.push_back(std::move(t));
  }
  RETURN_IF_ERROR(metadata->CommitTicks({}, fresh).status());
  // Files already ticked, so a restart does not tick them again.
  for (const ScheduledAsset& a : s.schedules_) {
    if (a.spec.kind != ScheduleKind::kOnFile) continue;
    ASSIGN_OR_RETURN(std::vector<TickRecord> ticks, metadata->ListTicks(a.asset, {}, 1000000));
    for (const TickRecord& t : ticks) s.seen_files_.insert(a.asset + "\n" + t.key);
  }
  return s;
}

TickRecord Scheduler::MakeTick(const std::string& asset, std::string key, Micros at,
                               std::string trigger) const {
  TickRecord t;
  t.asset = asset;
  t.key = std::move(key);
  t.at = at;
  t.trigger = std::move(trigger);
  t.status = TickStatus::kPending;
  t.updated_at = clock_->Now();
  return t;
}

Micros Scheduler::NextTick(const Timed& t, Micros after) const {
  const ScheduleSpec& spec = schedules_[t.index].spec;
  if (t.cron) return t.cron->Next(after, t.zone);
  Micros period = spec.every_seconds * Micros{1000000};
  Micros q = after / period;
  if (after < 0 && after % period != 0) --q;  // floor
  return (q + 1) * period;
}

Result<std::vector<TickRecord>> Scheduler::Recover() {
  ASSIGN_OR_RETURN(std::vector<TickRecord> open,
                   metadata_->ListTicks("", {TickStatus::kPending, TickStatus::kRunning}, 100000));
  std::vector<TickRecord> again;
  for (TickRecord& t : open) {
    // Ticks of schedules that are gone are not run again.
    bool scheduled = std::any_of(schedules_.begin(), schedules_.end(),
                                 [&](const ScheduledAsset& a) { return a.asset == t.asset; });
    TickRecord marked = t;
    marked.status = scheduled ? TickStatus::kPending : TickStatus::kSkipped;
    marked.note = scheduled ? "interrupted (the process stopped); run again after a restart"
                            : "interrupted, and the asset no longer has this schedule";
    RETURN_IF_ERROR(metadata_->UpdateTick(marked));
    if (scheduled) again.push_back(std::move(marked));
  }
  std::reverse(again.begin(), again.end());  // oldest first
  return again;
}

Result<std::vector<TickRecord>> Scheduler::Due() {
  Micros now = clock_->Now();
  ASSIGN_OR_RETURN(auto paused, metadata_->ListPaused());
  paused_.clear();
  for (const auto& [asset, since] : paused) paused_.insert(asset);
  std::vector<TickRecord> run, record;
  std::vector<ScheduleStateRecord> states;
  // Where each schedule moves to, once the ticks are committed: a failed
  // commit hands out and moves nothing, and the next call tries again.
  std::vector<std::pair<Timed*, Micros>> advanced;
  for (Timed& t : timed_) {
    const ScheduledAsset& a = schedules_[t.index];
    const ScheduleSpec& spec = a.spec;
    if (paused_.count(a.asset)) continue;
    Micros from = std::max(t.state.since, t.state.last_tick);
    Micros first = NextTick(t, from);
    if (first > now) continue;
    // The ticks in (from, now]: the newest few kept (and the one before
    // them, the newest that may not run), the rest counted.
    size_t keep = spec.misfire == Misfire::kAll ? static_cast<size_t>(spec.max_catch_up) : 1;
    std::deque<Micros> newest;
    int64_t count = 0;
    bool truncated = false;  // ticks before the recent window were not counted
    if (!t.cron) {
      Micros period = spec.every_seconds * Micros{1000000};
      Micros last = first + (now - first) / period * period;
      count = (last - first) / period + 1;
      for (Micros at = last; newest.size() < keep + 1 && at >= first; at -= period) {
        newest.push_front(at);
      }
    } else {
      auto enumerate = [&](Micros start) {
        newest.clear();
        count = 0;
        for (Micros at = start; at <= now && count < kMaxEnumerated; at = NextTick(t, at)) {
          ++count;
          newest.push_back(at);
          if (newest.size() > keep + 1) newest.pop_front();
        }
      };
      // After long downtime a frequent cron would be walked tick by tick
      // from its last run: look at the last weeks only when they hold all
      // the ticks that may run (the older ones are then only counted as
      // missed, approximately); a sparse cron is walked whole, cheaply.
      if (now - from > kRecentWindow) {
        enumerate(NextTick(t, now - kRecentWindow));
        if (newest.size() > keep) {
          truncated = true;
        } else {
          enumerate(first);
        }
      } else {
        enumerate(first);
      }
    }
    Micros latest = newest.back();
    Micros before_kept = first;  // the newest tick that does not run, when some run
    if (newest.size() > keep) {
      before_kept = newest.front();
      newest.pop_front();
    }
    std::vector<Micros> to_run(newest.begin(), newest.end());
    if (spec.misfire == Misfire::kSkip && now - latest > kGrace) to_run.clear();
    int64_t missed = count - static_cast<int64_t>(to_run.size());
    std::string trigger = spec.ToString();
    for (Micros at : to_run) {
      TickRecord tick = MakeTick(a.asset, "t:" + std::to_string(at), at, trigger);
      run.push_back(tick);
      record.push_back(std::move(tick));
    }
    if (missed > 0) {
      // One record for the ticks not run: a week of 20-second ticks is one row.
      Micros last_missed = to_run.empty() ? latest : before_kept;
      TickRecord skipped =
          MakeTick(a.asset, "missed:" + std::to_string(first) + "-" + std::to_string(last_missed),
                   first, trigger);
      skipped.status = TickStatus::kSkipped;
      skipped.note = std::to_string(missed) + (count >= kMaxEnumerated || truncated ? "+" : "") +
                     " tick(s) from " + FormatTimestamp(first) + " to " +
                     FormatTimestamp(last_missed) +
                     " missed while nothing ran; misfire: " + MisfireName(spec.misfire) +
                     (to_run.empty() ? " (none run)"
                                     : " (the newest " + std::to_string(to_run.size()) + " run)");
      record.push_back(std::move(skipped));
    }
    ScheduleStateRecord state = t.state;
    state.last_tick = latest;
    states.push_back(std::move(state));
    advanced.emplace_back(&t, latest);
  }
  if (!states.empty()) RETURN_IF_ERROR(metadata_->CommitTicks(record, states).status());
  for (const auto& [t, latest] : advanced) t->state.last_tick = latest;
  std::sort(run.begin(), run.end(), [](const TickRecord& x, const TickRecord& y) {
    return std::tie(x.at, x.asset) < std::tie(y.at, y.asset);
  });
  return run;
}

Result<std::vector<TickRecord>> Scheduler::Published(
    const std::vector<std::pair<std::string, std::string>>& published) {
  std::vector<TickRecord> out;
  if (published.empty()) return out;
  Micros now = clock_->Now();
  for (const ScheduledAsset& a : schedules_) {
    if (a.spec.kind != ScheduleKind::kAfter || paused_.count(a.asset)) continue;
    std::vector<std::string> hits;
    for (const auto& [asset, version] : published) {
      if (std::find(a.spec.after.begin(), a.spec.after.end(), asset) != a.spec.after.end()) {
        hits.push_back(asset + "@" + version);
      }
    }
    if (hits.empty()) continue;
    std::sort(hits.begin(), hits.end());
    std::string names;
    for (const std::string& h : hits)
      names += (names.empty() ? "" : ", ") + h.substr(0, h.find('@'));
    out.push_back(MakeTick(a.asset, "after:" + Join(hits, ","), now, "after " + names));
  }
  // A trigger already recorded (the same upstream versions again, as after
  // a rollback and back) is not handed out twice.
  ASSIGN_OR_RETURN(std::vector<bool> fresh, metadata_->CommitTicks(out, {}));
  std::vector<TickRecord> new_ticks;
  for (size_t i = 0; i < out.size(); ++i) {
    if (fresh[i]) new_ticks.push_back(std::move(out[i]));
  }
  return new_ticks;
}

Result<std::vector<TickRecord>> Scheduler::ScanFiles(const std::string& root) {
  std::vector<TickRecord> out;
  Micros now = clock_->Now();
  for (const ScheduledAsset& a : schedules_) {
    if (a.spec.kind != ScheduleKind::kOnFile || paused_.count(a.asset)) continue;
    std::string pattern = JoinPath(root, a.spec.on_file);
    glob_t g{};
    int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> paths;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    std::sort(paths.begin(), paths.end());
    for (const std::string& path : paths) {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      // Relative to the project when inside it (as the source's url takes
      // it); an absolute pattern gives absolute paths.
      std::string prefix = root.back() == '/' ? root : root + "/";
      std::string rel = StartsWith(path, prefix) ? path.substr(prefix.size()) : path;
      int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
      std::string key =
          "file:" + rel + "@" + std::to_string(st.st_size) + ":" + std::to_string(mtime_ns);
      std::string seen_key = a.asset + "\n" + key;
      if (seen_files_.count(seen_key)) continue;
      // A file still being written changes between looks: wait until it holds still.
      std::string& last = settling_[a.asset + "\n" + rel];
      if (last != key) {
        last = key;
        continue;
      }
      TickRecord tick = MakeTick(a.asset, key, now, "on_file " + rel);
      tick.file = rel;
      out.push_back(std::move(tick));
      seen_files_.insert(seen_key);
    }
  }
  if (!out.empty()) RETURN_IF_ERROR(metadata_->CommitTicks(out, {}).status());
  return out;
}

std::optional<Micros> Scheduler::NextDue() const {
  std::optional<Micros> next;
  for (const Timed& t : timed_) {
    if (paused_.count(schedules_[t.index].asset)) continue;
    Micros at = NextTick(t, std::max(t.state.since, t.state.last_tick));
    if (!next || at < *next) next = at;
  }
  return next;
}

Result<std::optional<Micros>> Scheduler::NextTickOf(const ScheduleSpec& spec,
                                                    const std::string& default_timezone,
                                                    Micros after) {
  if (spec.kind == ScheduleKind::kEvery) {
    Micros period = spec.every_seconds * Micros{1000000};
    return std::optional<Micros>((after / period + 1) * period);
  }
  if (spec.kind != ScheduleKind::kCron) return std::optional<Micros>();
  ASSIGN_OR_RETURN(CronExpr cron, CronExpr::Parse(spec.cron));
  ASSIGN_OR_RETURN(TimeZone zone,
                   TimeZone::Find(spec.timezone.empty() ? default_timezone : spec.timezone));
  return std::optional<Micros>(cron.Next(after, zone));
}

bool Scheduler::HasFileSensors() const {
  return std::any_of(schedules_.begin(), schedules_.end(),
                     [](const ScheduledAsset& a) { return a.spec.kind == ScheduleKind::kOnFile; });
}

bool IsTimedTick(const TickRecord& tick) { return StartsWith(tick.key, "t:"); }

size_t TicksThatMayWait(const ScheduleSpec& spec) {
  if (spec.misfire != Misfire::kAll) return 1;
  return static_cast<size_t>(std::max(1, spec.max_catch_up));
}

std::optional<TickRecord> AddWaitingTick(
    std::deque<TickRecord>& waiting, TickRecord tick, size_t may_wait,
    const std::set<std::pair<std::string, std::string>>& kept) {
  if (IsTimedTick(tick)) {
    auto replaceable = [&](const TickRecord& w) {
      return w.asset == tick.asset && IsTimedTick(w) && !kept.count({w.asset, w.key});
    };
    size_t count = static_cast<size_t>(std::count_if(waiting.begin(), waiting.end(), replaceable));
    auto oldest = std::find_if(waiting.begin(), waiting.end(), replaceable);
    if (count >= std::max<size_t>(1, may_wait) && oldest != waiting.end()) {
      TickRecord replaced = std::move(*oldest);
      replaced.status = TickStatus::kSkipped;
      replaced.note = "superseded by the tick of " + FormatTimestamp(tick.at) + ": " +
                      (may_wait > 1 ? std::to_string(may_wait) + " ticks" : "the previous tick") +
                      " of " + tick.asset + " had not started yet";
      if (may_wait > 1) {
        // Each of the rest runs in turn, the newest last.
        waiting.erase(oldest);
        waiting.push_back(std::move(tick));
      } else {
        *oldest = std::move(tick);  // in its place in the line
      }
      return replaced;
    }
  }
  waiting.push_back(std::move(tick));
  return std::nullopt;
}

}  // namespace sluice
