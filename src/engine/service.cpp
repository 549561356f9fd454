#include "engine/service.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "config/template.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/test_hooks.h"
#include "engine/workspace.h"
#include "ingest/cdc.h"
#include "orchestrate/check_file.h"
#include "orchestrate/scheduler.h"

namespace sluice {
namespace {

// How often the loop looks at the clock and at file sensors when nothing is due sooner.
constexpr std::chrono::milliseconds kIdle{1000};
// How often the project is looked at for changes (a reload): inotify's
// count each time, every file's stat when it counted one, and every file's
// stat anyway at the longer interval (an edit made on another machine to a
// network file system, which inotify does not see). A stat of each of
// 10,000 files every second cost serve 15% of a core while idle.
constexpr int64_t kReloadEveryMs = 1000;
constexpr int64_t kStatEveryMs = 30000;

// Ticks run side by side, of different assets.
constexpr int kTickWorkers = 4;

// A run a change stream asked for: not a scheduled tick, never recorded.
bool IsCapture(const TickRecord& t) { return t.key == "c:"; }
// How a run names the tick it runs (RunOptions::tick).
std::string TickId(const TickRecord& t) { return t.asset + "|" + t.key; }
// Runs looked through at a restart for those of interrupted ticks.
constexpr int kRecoveredRunsLooked = 1000;

using Versions = std::vector<std::pair<std::string, std::string>>;  // (asset, version)

// What a tick's run published as after: schedules name it: each asset it
// built, and the tick's source when one of its tables published. In order,
// so that a restart handing out a run's triggers again (PublishedBy) makes
// the same keys as the run did.
Versions AsTriggers(const std::string& tick_asset, Versions published) {
  std::sort(published.begin(), published.end());
  if (!published.empty() && std::none_of(published.begin(), published.end(),
                                         [&](const auto& p) { return p.first == tick_asset; })) {
    std::string versions;
    for (const auto& p : published) versions += p.second.substr(0, 8);
    published.emplace_back(tick_asset, versions);
  }
  return published;
}

// The versions a finished run built and published, from its task records
// (an audit of checks alone publishes none: the version it names was built
// by an earlier run).
Result<Versions> PublishedBy(MetadataStore& metadata, int64_t run_id) {
  ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, metadata.ListTasks(run_id));
  Versions out;
  for (const TaskRecord& t : tasks) {
    if (t.status != "success" || t.version_id.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<AssetVersionRecord> versions,
                     metadata.ListVersions(t.asset, t.partition));
    for (const AssetVersionRecord& v : versions) {
      if (v.version_id == t.version_id && v.run_id == run_id && v.published_at > 0) {
        out.emplace_back(t.asset, t.version_id);
        break;
      }
    }
  }
  return out;
}

// The schedules the project declares (LoadWorkspace checked their names).
std::vector<ScheduledAsset> SchedulesOf(const Workspace& ws) {
  std::vector<ScheduledAsset> out;
  for (const SourceSpec& s : ws.project.sources) {
    if (s.schedule.kind != ScheduleKind::kNone) out.push_back({s.name, s.schedule});
  }
  for (const ModelSpec& m : ws.project.models) {
    if (m.schedule.kind != ScheduleKind::kNone) out.push_back({m.name, m.schedule});
  }
  return out;
}

}  // namespace

Service::Service(Engine* engine, std::string project_root, std::string env, const Clock* clock)
    : engine_(engine), root_(std::move(project_root)), env_(std::move(env)), clock_(clock) {}

void Service::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
}

nlohmann::json Service::Health() {
  std::shared_ptr<CaptureFeeds> feeds;
  nlohmann::json out;
  {
    std::lock_guard lock(mu_);
    // Until the project is loaded and the schedules are known.
    if (health_.empty()) return {{"status", "starting"}};
    out = health_;
    feeds = feeds_;
  }
  if (feeds) {
    nlohmann::json capture = feeds->Health();
    if (!capture.empty()) out["capture"] = std::move(capture);
  }
  return out;
}

namespace {

// What the project says to schedule, with the schedules a broken file
// disables. Invalid when the project cannot be used at all (sluice.yaml).
struct LoadedSchedules {
  std::vector<ScheduledAsset> schedules;
  nlohmann::json disabled = nlohmann::json::array();  // [{asset, why}]
  std::set<std::string> sources;                      // a source's tick runs all its tables
  std::map<std::string, int64_t> captured;            // streamed sources: publish_every, ms
  std::string timezone;
};

Result<LoadedSchedules> LoadSchedules(const std::string& root, const std::string& env) {
  Workspace ws = LoadWorkspace(root, env);
  LoadedSchedules out;
  out.schedules = SchedulesOf(ws);
  out.timezone = ws.project.timezone;
  for (const SourceSpec& s : ws.project.sources) {
    out.sources.insert(s.name);
    if (!s.database || !s.database->cdc || !s.database->cdc->stream || s.tables.empty()) continue;
    // Only a database with a stream (PostgreSQL, MariaDB): a URL that
    // cannot be resolved now is tried by the run the stream asks for,
    // which says why.
    TemplateContext ctx;
    ctx.vars = ws.project.vars;
    ctx.env = env;
    Result<DbRequest> db = DatabaseRequestOf(ws.project, s, s.tables.front(), ctx);
    if (db.ok() && !CdcStreamSupported(db->url)) continue;
    out.captured[s.name] = s.database->cdc->publish_every_seconds * 1000;
  }
  if (ws.ok()) return out;
  // A broken file disables its assets and what reads them; the rest runs.
  Breakage broken = BrokenAssets(ws);
  if (!broken.global.empty()) return Status::Invalid(ws.ErrorText());
  for (const ConfigError& e : ws.errors) LOG_ERROR("serve", "{}", e.ToString());
  auto disabled = [&](const std::string& asset) -> std::string {
    std::vector<std::string> names = {asset};
    for (const AssetNode& n : ws.graph.nodes) {
      if (n.source == asset) names.push_back(n.name);
    }
    for (const std::string& n : names) {
      if (broken.assets.count(n)) return "its file has errors";
      if (broken.downstream.count(n)) return "it reads an asset whose file has errors";
    }
    return "";
  };
  std::vector<ScheduledAsset> kept;
  for (ScheduledAsset& a : out.schedules) {
    std::string why = disabled(a.asset);
    if (why.empty()) {
      kept.push_back(std::move(a));
    } else {
      LOG_ERROR("serve", "{}: schedule disabled: {} (sluice validate)", a.asset, why);
      out.disabled.push_back({{"asset", a.asset}, {"why", why}});
    }
  }
  out.schedules = std::move(kept);
  return out;
}

// A fingerprint of the project's files (names, sizes, mtimes): when it
// changes, serve reads the project again. Cheap: stat calls only.
std::string ProjectStamp(const std::string& root) {
  namespace fs = std::filesystem;
  std::string text;
  // One stat(2) a file (serve looks every second; a project of 10,000
  // models took ~200 ms a look with three calls a file through <filesystem>).
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    text += p.native();
    text += '\t';
    text += std::to_string(st.st_size);
    text += '\t';
    text +=
        std::to_string(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
    text += '\t';
    text += std::to_string(st.st_ino);
    text += '\n';
  };
  for (const char* file : {"sluice.yaml", "fields.yaml"}) add(fs::path(root) / file);
  for (const char* dir : {"sources", "models", "seeds"}) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(fs::path(root) / dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) add(f);
  }
  return Sha256Hex(text);
}

}  // namespace

Status Service::Run() {
  // Read before the files are: a change while they are counts at the next look.
  std::optional<uint64_t> seen_changes = engine_->ProjectChanges();
  std::string stamp = ProjectStamp(root_);
  ASSIGN_OR_RETURN(LoadedSchedules loaded, LoadSchedules(root_, env_));
  std::set<std::string> sources = loaded.sources;  // GUARDED_BY(mu_)
  ASSIGN_OR_RETURN(MetadataStore * metadata, engine_->Metadata());
  std::optional<Scheduler> scheduler;  // GUARDED_BY(mu_): replaced when the project changes
  {
    ASSIGN_OR_RETURN(Scheduler created,
                     Scheduler::Create(loaded.schedules, loaded.timezone, metadata, clock_));
    scheduler.emplace(std::move(created));
  }
  ASSIGN_OR_RETURN(std::vector<TickRecord> recovered, scheduler->Recover());
  for (const ScheduledAsset& a : scheduler->schedules()) {
    LOG_INFO("serve", "{}: {}", a.asset, a.spec.ToString());
  }

  std::deque<TickRecord> queue;  // GUARDED_BY(mu_)
  int reloads = 0;               // GUARDED_BY(mu_)
  // Paused assets: their waiting ticks (catch-up, recovered, triggered
  // before the pause) stay waiting until resumed, and none starts once
  // `sluice pause` has answered (the engine tells before it answers).
  std::set<std::string> paused;  // GUARDED_BY(mu_)
  {
    ASSIGN_OR_RETURN(auto listed, metadata->ListPaused());
    for (const auto& [asset, since] : listed) paused.insert(asset);
  }
  engine_->SetPauseListener([&](const std::string& asset, bool pause) {
    {
      std::lock_guard lock(mu_);
      if (pause) {
        paused.insert(asset);
      } else {
        paused.erase(asset);
      }
      health_["paused"] = paused;
    }
    wake_.notify_all();
  });
  struct ForgetListener {
    Engine* engine;
    ~ForgetListener() { engine->SetPauseListener(nullptr); }
  } forget_listener{engine_};
  {
    std::lock_guard lock(mu_);
    nlohmann::json scheduled = nlohmann::json::array();
    for (const ScheduledAsset& a : scheduler->schedules()) {
      scheduled.push_back({{"asset", a.asset}, {"schedule", a.spec.ToString()}});
    }
    health_ = {{"scheduled", scheduled},
               {"disabled", loaded.disabled},
               {"waiting", 0},
               {"paused", paused},
               {"running", nlohmann::json::array()}};
  }
  // Ticks interrupted when the process ended: they run again, never
  // replaced by a newer tick (Recover), as (asset, key).
  std::set<std::pair<std::string, std::string>> interrupted;  // GUARDED_BY(mu_)
  auto may_wait = [&](const std::string& asset) {             // REQUIRES(mu_)
    for (const ScheduledAsset& a : scheduler->schedules()) {
      if (a.asset == asset) return TicksThatMayWait(a.spec);
    }
    return size_t{1};
  };
  // Adds a tick (scheduler.h: a newer time tick may replace one waiting).
  auto add = [&](TickRecord tick) {  // REQUIRES(mu_)
    LOG_INFO("serve", "{}: due ({})", tick.asset, tick.trigger);
    const std::string asset = tick.asset;
    std::optional<TickRecord> replaced =
        AddWaitingTick(queue, std::move(tick), may_wait(asset), interrupted);
    if (replaced) {
      Status st = metadata->UpdateTick(*replaced);
      if (!st.ok()) LOG_WARN("serve", "recording a skipped tick: {}", st.message());
    }
  };
  {
    // A tick whose run had finished when the process died (before the tick
    // was recorded done) is not run again: its run's outcome is its own.
    std::vector<RunRecord> runs;
    if (!recovered.empty()) {
      Result<std::vector<RunRecord>> listed = metadata->ListRuns(kRecoveredRunsLooked);
      if (listed.ok()) {
        runs = std::move(*listed);
      } else {
        LOG_WARN("serve", "reading recent runs: {}", listed.status().message());
      }
    }
    std::map<std::string, const RunRecord*> finished;  // by TickId
    for (const RunRecord& r : runs) {
      std::string tick = r.args.is_object() ? r.args.value("tick", "") : "";
      if (!tick.empty() && (r.status == RunStatus::kSuccess || r.status == RunStatus::kFailed ||
                            r.status == RunStatus::kCancelled)) {
        finished.emplace(tick, &r);
      }
    }
    std::lock_guard lock(mu_);
    Versions published;  // by the finished runs: their after: triggers
    for (TickRecord& t : recovered) {
      auto done = finished.find(TickId(t));
      if (done != finished.end()) {
        t.run_id = done->second->id;
        t.status =
            done->second->status == RunStatus::kSuccess ? TickStatus::kDone : TickStatus::kFailed;
        t.note = "its run " + std::to_string(t.run_id) +
                 " had finished when the process stopped; not run again";
        LOG_INFO("serve", "{}: {}", t.asset, t.note);
        Status st = metadata->UpdateTick(t);
        if (!st.ok()) LOG_WARN("serve", "recording a tick: {}", st.message());
        Result<Versions> by_run = PublishedBy(*metadata, t.run_id);
        if (!by_run.ok()) {
          LOG_WARN("serve", "what run {} published: {}", t.run_id, by_run.status().message());
        } else {
          for (auto& p : AsTriggers(t.asset, std::move(*by_run))) published.push_back(std::move(p));
        }
        continue;
      }
      interrupted.insert({t.asset, t.key});
      add(std::move(t));
    }
    // The process may have stopped before they were handed out; one
    // already recorded is not handed out again (Scheduler::Published).
    Result<std::vector<TickRecord>> after = scheduler->Published(published);
    if (!after.ok()) {
      LOG_WARN("serve", "after-triggers of the runs that had finished: {}",
               after.status().message());
    } else {
      for (TickRecord& t : *after) add(std::move(t));
    }
  }
  // Resident change readers: a stream's batches ask for a run of their
  // source; one waits at a time (a run takes every batch stored by then).
  auto feeds = std::make_shared<CaptureFeeds>([this, &queue](const std::string& source) {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (const TickRecord& t : queue) {
      if (t.asset == source && IsCapture(t)) return;
    }
    TickRecord tick;
    tick.asset = source;
    tick.key = "c:";
    tick.trigger = "capture";
    tick.at = clock_->Now();
    queue.push_back(std::move(tick));
    health_["waiting"] = queue.size();
    wake_.notify_all();
  });
  feeds->Keep(loaded.captured);
  engine_->SetCaptureFeeds(feeds);
  {
    std::lock_guard lock(mu_);
    feeds_ = feeds;
  }

  // The workers: ticks of different assets run side by side (a 20-second
  // poll does not wait behind a nightly build; the engine's holds keep two
  // runs off one asset), a tick of an asset already running waits its turn.
  auto record = [&](const TickRecord& tick) {
    if (IsCapture(tick)) return;
    Status st = metadata->UpdateTick(tick);
    if (!st.ok()) LOG_WARN("serve", "recording a tick: {}", st.message());
  };
  auto work_one = [&](TickRecord tick) {
    tick.status = TickStatus::kRunning;
    record(tick);
    std::string selector;
    {
      std::lock_guard lock(mu_);
      selector = sources.count(tick.asset) ? "source:" + tick.asset : tick.asset;
    }
    nlohmann::json request = {{"cmd", "run"}, {"select", {selector}}, {"trigger", tick.trigger}};
    if (!IsCapture(tick)) request["tick"] = TickId(tick);
    if (!tick.file.empty()) request["vars"] = {{"file", tick.file}};
    nlohmann::json response = engine_->Handle(request, nullptr);
    nlohmann::json result = response.value("result", nlohmann::json::object());
    tick.run_id = result.is_object() ? result.value("run_id", int64_t{0}) : 0;
    bool ok = response.value("ok", false) && response.value("exit_code", 1) == 0;
    tick.status = ok ? TickStatus::kDone : TickStatus::kFailed;
    tick.note = ok ? "" : response.value("error", "");
    Versions published;
    if (result.is_object() && result.contains("tasks")) {
      for (const auto& t : result["tasks"]) {
        // A new version published (an audit of checks alone publishes none).
        if (t.value("status", "") != "success" || t.value("action", "") != "build") continue;
        published.emplace_back(t.value("asset", ""), t.value("version", ""));
      }
      for (const auto& t : result["tasks"]) {
        std::string status = t.value("status", "");
        if (!ok && tick.note.empty() && status != "success" && status != "skipped") {
          tick.note = t.value("asset", "") + " " + status + ": " + t.value("error", "");
        }
      }
    }
    published = AsTriggers(tick.asset, std::move(published));
    LOG_INFO("serve", "{}: run {} {}{}", tick.asset, tick.run_id, TickStatusName(tick.status),
             tick.note.empty() ? "" : ": " + tick.note);
    MaybeCrash("tick_ran", tick.asset);  // the run recorded, its tick not yet
    {
      // Its after: triggers before the tick is recorded done: a restart in
      // between finds the tick's run finished and hands out what that run
      // published (those already recorded are not handed out twice).
      std::lock_guard lock(mu_);
      Result<std::vector<TickRecord>> after = scheduler->Published(published);
      if (!after.ok()) {
        LOG_WARN("serve", "after-triggers of run {}: {}", tick.run_id, after.status().message());
      } else {
        for (TickRecord& t : *after) add(std::move(t));
      }
    }
    record(tick);
  };
  std::multiset<std::string> running;  // GUARDED_BY(mu_): assets whose tick runs now
  auto show_running = [&] {            // REQUIRES(mu_)
    health_["waiting"] = queue.size();
    health_["running"] = std::set<std::string>(running.begin(), running.end());
  };
  auto work = [&] {
    while (true) {
      TickRecord tick;
      {
        std::unique_lock lock(mu_);
        auto next = queue.end();
        wake_.wait(lock, [&] {
          next = std::find_if(queue.begin(), queue.end(), [&](const TickRecord& t) {
            return !running.count(t.asset) && !paused.count(t.asset);
          });
          return stop_ || next != queue.end();
        });
        if (stop_) return;  // waiting ticks stay pending: the next serve runs them
        tick = std::move(*next);
        queue.erase(next);
        running.insert(tick.asset);
        show_running();
      }
      // A thread boundary: one run's exception is that tick's failure, not
      // the end of serve.
      std::string failure;
      try {
        work_one(tick);
      } catch (const std::exception& e) {
        failure = e.what();
      } catch (...) {
        failure = "an unknown exception";
      }
      if (!failure.empty()) {
        LOG_ERROR("serve", "{}: run failed: {}", tick.asset, failure);
        tick.status = TickStatus::kFailed;
        tick.note = "internal error (please report it): " + failure;
        record(tick);
      }
      {
        std::lock_guard lock(mu_);
        running.erase(running.find(tick.asset));
        show_running();
      }
      wake_.notify_all();
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < kTickWorkers; ++i) workers.emplace_back(work);

  // Project reload: a changed project (an edit, a git pull) is read again and,
  // unless sluice.yaml itself is broken, its schedules replace the old ones
  // between ticks; runs read the project when they start anyway.
  int64_t last_stat = MonotonicMillis();
  auto reload = [&]() {  // REQUIRES(mu_)
    std::optional<uint64_t> changes_now = engine_->ProjectChanges();
    if (changes_now && changes_now == seen_changes &&
        MonotonicMillis() - last_stat < kStatEveryMs) {
      return;  // inotify saw nothing, and a look at every file is not due
    }
    seen_changes = changes_now;
    last_stat = MonotonicMillis();
    std::string now_stamp = ProjectStamp(root_);
    if (now_stamp == stamp) return;
    stamp = now_stamp;
    // What inotify may not have seen (a network file system): the kept
    // project is read again too.
    engine_->ForgetWorkspace();
    Result<LoadedSchedules> fresh = LoadSchedules(root_, env_);
    if (!fresh.ok()) {
      LOG_ERROR("serve",
                "project changed but cannot be used; keeping the schedules loaded before: {}",
                fresh.status().message());
      health_["reload_error"] = fresh.status().message();
      return;
    }
    Result<Scheduler> next = Scheduler::Create(fresh->schedules, fresh->timezone, metadata, clock_);
    if (!next.ok()) {
      LOG_ERROR("serve", "project changed; its schedules cannot be used, keeping the old ones: {}",
                next.status().message());
      health_["reload_error"] = next.status().message();
      return;
    }
    std::map<std::string, std::string> before, after;
    for (const ScheduledAsset& a : scheduler->schedules()) before[a.asset] = a.spec.ToString();
    for (const ScheduledAsset& a : next->schedules()) after[a.asset] = a.spec.ToString();
    std::vector<std::string> changes;
    for (const auto& [asset, spec] : after) {
      auto it = before.find(asset);
      if (it == before.end())
        changes.push_back("+" + asset + " (" + spec + ")");
      else if (it->second != spec)
        changes.push_back("~" + asset + " (" + spec + ")");
    }
    for (const auto& [asset, spec] : before) {
      if (!after.count(asset)) changes.push_back("-" + asset);
    }
    scheduler.emplace(std::move(next).value());
    sources = fresh->sources;
    feeds->Keep(fresh->captured);
    nlohmann::json scheduled = nlohmann::json::array();
    for (const ScheduledAsset& a : scheduler->schedules()) {
      scheduled.push_back({{"asset", a.asset}, {"schedule", a.spec.ToString()}});
    }
    health_["scheduled"] = scheduled;
    health_["disabled"] = fresh->disabled;
    health_.erase("reload_error");
    ++reloads;
    health_["reloads"] = reloads;
    LOG_WARN("serve", "project reloaded: {} schedules{}", scheduler->schedules().size(),
             changes.empty() ? std::string() : " (" + Join(changes, ", ") + ")");
  };
  const int64_t checkpoint_every_ms = TestHookSeconds("CHECKPOINT_EVERY", 300) * 1000;
  int64_t last_checkpoint = MonotonicMillis();
  std::unique_lock lock(mu_);
  int64_t last_look = MonotonicMillis();
  while (!stop_) {
    try {
      if (MonotonicMillis() - last_look >= kReloadEveryMs) {
        last_look = MonotonicMillis();
        reload();
      }
      if (MonotonicMillis() - last_checkpoint >= checkpoint_every_ms) {
        last_checkpoint = MonotonicMillis();
        lock.unlock();  // a checkpoint may take a while; ticks keep coming
        nlohmann::json done = engine_->Handle({{"cmd", "checkpoint"}}, nullptr);
        lock.lock();
        if (!done.value("ok", false)) {
          LOG_DEBUG("serve", "checkpoint: {} (tried again later)", done.value("error", ""));
        } else {
          LOG_DEBUG("serve", "checkpoint done");
        }
      }
      Result<std::vector<TickRecord>> due = scheduler->Due();
      if (!due.ok()) LOG_WARN("serve", "schedules: {}", due.status().message());
      if (due.ok()) {
        for (TickRecord& t : *due) add(std::move(t));
      }
      if (scheduler->HasFileSensors()) {
        Result<std::vector<TickRecord>> files = scheduler->ScanFiles(root_);
        if (!files.ok()) LOG_WARN("serve", "file sensors: {}", files.status().message());
        if (files.ok()) {
          for (TickRecord& t : *files) add(std::move(t));
        }
      }
    } catch (const std::exception& e) {
      LOG_ERROR("serve", "scheduler: {}", e.what());
    } catch (...) {
      LOG_ERROR("serve", "scheduler: an unknown exception");
    }
    health_["waiting"] = queue.size();
    if (!queue.empty()) wake_.notify_all();
    auto wait = kIdle;
    if (std::optional<Micros> next = scheduler->NextDue()) {
      Micros in = *next - clock_->Now();
      wait = std::min(wait, std::chrono::milliseconds(std::max<Micros>(0, in / 1000 + 1)));
    }
    wake_.wait_for(lock, wait);
  }
  feeds_.reset();
  lock.unlock();
  wake_.notify_all();
  // Streams close first: what they stored and no run applied stays in the
  // slot (the next serve reads it again).
  engine_->SetCaptureFeeds(nullptr);
  feeds->Stop();
  for (std::thread& w : workers) w.join();
  return Status::Ok();
}

}  // namespace sluice
