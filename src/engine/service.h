// `sluice serve`: the owner that runs the platform by itself. Its loop asks
// the scheduler (orchestrate/scheduler.h) what is due — cron and interval
// ticks, upstream publications, files in an inbox — and runs each as an
// engine request, like a `sluice run` typed at that moment; runs from other
// processes (`sluice run` while serve owns the environment) queue in the same
// engine.
//
// The project is looked at every second: inotify's count of changes, and
// each file's size and time when it counted one (or every 30 seconds anyway,
// for what inotify cannot see); when they changed, the project is read again and its schedules
// replace the old ones (a project that cannot be used keeps the old ones, and /healthz says why).
//
// One run at a time per asset: a time-based tick that comes while its asset
// still runs waits; if another comes meanwhile, the newer one replaces it and
// the older is recorded as skipped ("still running"). Event ticks (after,
// on_file) all run, in order.
//
// A captured source (`cdc:`) also has its change stream kept open
// (orchestrate/capture_feed.h): its batches ask for runs of the source, one
// waiting at a time, not recorded as ticks (the slot holds what they read).
//
// Thread-safety: Run() is called once, on one thread; Stop() from any thread
// (a signal handler's thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "engine/engine.h"
#include "orchestrate/capture_feed.h"

#include <nlohmann/json.hpp>

namespace sluice {

class Service {
 public:
  Service(Engine* engine, std::string project_root, std::string env, const Clock* clock);

  // Runs schedules until Stop(): loads the project, recovers ticks a dead
  // process left, then ticks. Returns when stopped, after the run in progress
  // finishes; an error when the project's schedules cannot be used.
  Status Run();
  // Asks Run() to return; safe from any thread.
  void Stop();
  // For /healthz, from any thread: {scheduled: [...], disabled: [{asset, why}],
  // waiting: ticks due and not started, running: the asset a tick runs, or null}.
  nlohmann::json Health();

 private:
  struct Queue;
  Engine* engine_;
  std::string root_;
  std::string env_;
  const Clock* clock_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                                 // GUARDED_BY(mu_)
  nlohmann::json health_ = nlohmann::json::object();  // GUARDED_BY(mu_)
  std::shared_ptr<CaptureFeeds> feeds_;               // GUARDED_BY(mu_): while Run() runs
};

}  // namespace sluice
