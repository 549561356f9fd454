// The engine API: every command that touches an environment is a JSON
// request handled here, whether it arrives in-process, over the owner's
// socket, or (later) over HTTP. The engine opens the environment's warehouse,
// metadata and lake once, on first use, and reconciles metadata from the
// warehouse's publications (the commit point) before serving anything.
// Thread-safe: queries run concurrently, and so do runs: each task holds its
// (asset, partition) while it builds (AssetHolds), so runs touching the same
// asset take turns on it; a rollback waits until no run is in flight.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/loader.h"
#include "config/project.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/metrics.h"
#include "core/tree_watch.h"
#include "engine/event_hub.h"
#include "engine/workspace.h"
#include "lake/object_store.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "notify/openlineage.h"
#include "orchestrate/runner.h"
#include "warehouse/warehouse.h"

namespace sluice {

class Engine {
 public:
  Engine(std::string project_root, std::string env_name);
  ~Engine();

  // Requests: {"cmd": "run"|"submit"|"plan"|"test"|"query"|"runs"|"run_detail"|"ping", ...}.
  // Responses: {"ok": bool, "exit_code": int, "error": text, "code": kind, "result": ...};
  // "code" (a StatusCodeName: invalid, not_found, busy, ...) says what kind of
  // error it is, for transports that map it (HTTP statuses).
  nlohmann::json Handle(const nlohmann::json& request, const EventSink& events);
  // Closes the warehouse, metadata and lake (the next request opens them
  // again), after the runs started by "submit" have finished. The owner
  // calls it before it releases its lease.
  void Close();
  // Starts again the runs that were submitted but had not started when the
  // previous owner died (still 'queued' in metadata). Returns how many.
  Result<int> ResubmitQueuedRuns();
  // From now on no submitted run starts (they stay queued for the next
  // owner); the one running finishes. Serve calls it as it begins to stop.
  void BeginShutdown();
  // The environment's metadata store (opened on first use); for the
  // scheduler of `sluice serve`. Valid until Close().
  Result<MetadataStore*> Metadata();
  // Every run's run and task events, as they happen (queued, started, each
  // task's start and end, the end), for live readers (GET /api/v1/events).
  // Stopped by BeginShutdown.
  EventHub& RunEvents() { return run_events_; }
  // `serve`'s resident change readers, handed to every run from now on
  // (null: none; runs read their slots themselves).
  void SetCaptureFeeds(std::shared_ptr<CaptureFeeds> feeds);
  // `serve`: told of each `sluice pause` and `resume` once it is recorded,
  // before the command answers, so that no waiting tick of a paused asset
  // starts after the answer (null: none). Not called while it is replaced.
  using PauseListener = std::function<void(const std::string& asset, bool paused)>;
  void SetPauseListener(PauseListener listener);
  // What a "data" request's cache key is computed from (the environment
  // opened, the project as published from, the current publications)
  // changes only when this does: a key computed after reading state S
  // holds while DataStateNow() still returns S. nullopt while the
  // environment is not open or is opening (the caller then asks).
  struct DataState {
    uint64_t engine = 0;
    uint64_t publications = 0;
    bool operator==(const DataState&) const = default;
  };
  std::optional<DataState> DataStateNow();
  // `serve`: runs, plans and tests reuse the project loaded before while
  // none of its files changed (core/tree_watch.h), instead of reading them
  // all again. Without inotify here, nothing is kept.
  void KeepWorkspace();
  // Drops the kept project (serve's own look at the files found them
  // changed: an edit inotify cannot see, on a network file system).
  void ForgetWorkspace();
  // The count of changes inotify saw under the project's files so far
  // (TreeWatcher::Changes); none when nothing watches them.
  std::optional<uint64_t> ProjectChanges();

 private:
  struct Opened;
  Result<Opened*> Open(const Project& project);
  // Opens the environment, loading the project first when it is not open yet.
  Result<Opened*> OpenForRequest();
  nlohmann::json HandleRun(const nlohmann::json& request, const EventSink& events);
  // "submit" {select, full_refresh, partition, vars, trigger}: records the run
  // as queued, starts it in the background and answers {id, status} at once.
  nlohmann::json HandleSubmit(const nlohmann::json& request);
  // Lists the tables of schema-wide database sources again before a run or
  // plan loads the project (orchestrate/catalog.h); what changed is logged
  // and, with `events`, said; returned too. When there is none to list, the
  // listing changed nothing: *unchanged gets the project as read, for the
  // workspace to be built from without reading every file again.
  std::vector<std::string> ListSchemas(const nlohmann::json& vars, const EventSink& events,
                                       std::optional<LoadedProject>* unchanged = nullptr);
  // The workspace a run (plan, test) reads: the kept one while nothing it
  // came from changed, else loaded (after listing schema sources when
  // list_schemas; *listed gets what listing said).
  std::shared_ptr<const Workspace> WorkspaceForRun(const nlohmann::json& vars, bool list_schemas,
                                                   const EventSink& events,
                                                   std::vector<std::string>* listed);
  // A run request with "rerun": ID becomes a run of that run's tasks that did
  // not end well (failed, check_failed, upstream_failed, cancelled,
  // interrupted), with its full_refresh, partition and vars unless given.
  Result<nlohmann::json> ResolveRerun(const nlohmann::json& request);
  // "cancel" {id}: a queued run is cancelled at once; a running one stops
  // (its tasks not started are cancelled, statements and programs stopped).
  nlohmann::json HandleCancel(const nlohmann::json& request);
  // Queues a submitted run for the background worker (one, in order); Busy
  // when the owner is stopping (the run stays queued in metadata).
  Status StartBackground(int64_t run_id, nlohmann::json request);
  // One submitted run; one that fails before it starts (a broken project) is
  // recorded as failed, never left queued.
  void RunSubmitted(int64_t run_id, const nlohmann::json& request);
  // Stops the worker after the run it is on; what waits stays queued.
  void WaitForBackground();
  nlohmann::json HandleQuery(const nlohmann::json& request);
  // "data" {table, params, timeout, stream_after}: the dataset API's read
  // of one published table (engine/dataset.h), answered as {content_type,
  // body, rows, next, key, cacheable}; with "key_only", only {key,
  // cacheable}, from memory: the query's normalised text and the
  // publication sequence of every relation the table reaches
  // (engine/data.cpp). With stream_after N and an event sink, an answer
  // that grows past N bytes goes out as it is rendered: a data_head event
  // {content_type, key, cacheable}, data_chunk events {data}, then the
  // answer with "streamed" and no body.
  nlohmann::json HandleData(const nlohmann::json& request, const EventSink& events);
  // "assets", "asset" {name}, "lineage", "issues" {asset, severity,
  // issue_type, limit}, "fetches" {source, limit}: the catalog the HTTP API
  // serves (engine/catalog.cpp).
  nlohmann::json HandleCatalog(const nlohmann::json& request);
  // "check" {source, upload | url, filename, timeout, memory_limit}: a
  // file through a source's decoding, phases and checks in a scratch
  // warehouse (orchestrate/check_file.h), touching no project state.
  nlohmann::json HandleCheck(const nlohmann::json& request);
  // "export" {names}: writes the named exports (all when none) from what
  // is published now, whether or not it changed (`sluice export`).
  nlohmann::json HandleExport(const nlohmann::json& request);
  // The project's exports whose inputs' publications changed since they
  // were written (or, with `force`, those in `only`; empty: all), written
  // under the environment's publish folder as one new version (engine/exports.cpp).
  // An outcome per export written or failed; `ran`: the assets of the run
  // this follows (an export that cannot be written for want of a
  // publication is reported only when it reads one of them, or is forced).
  std::vector<TaskOutcome> WriteExports(Opened* env, const Workspace& ws,
                                        const std::set<std::string>& only, bool force,
                                        const std::set<std::string>& ran);
  std::mutex export_mu_;  // one export at a time (they share the publish folder)
  // The workspace of the latest run (its asset graph: keys, materializations),
  // or the project loaded now when no run has loaded one.
  std::shared_ptr<const Workspace> LatestWorkspace();
  nlohmann::json HandleRuns(const nlohmann::json& request);
  nlohmann::json HandleRunDetail(const nlohmann::json& request);
  nlohmann::json HandleLogs(const nlohmann::json& request);
  nlohmann::json HandleRollback(const nlohmann::json& request);
  // "schedules": each schedule, paused or not, its last tick and next one;
  // "pause"/"resume" {asset}.
  nlohmann::json HandleSchedules(const nlohmann::json& request);
  // Sends the run's notifications in the background (Close waits for them).
  void Notify(const Project& project, MetadataStore* metadata, const nlohmann::json& report);
  void WaitForNotifications();

  std::string project_root_;
  std::string env_name_;
  // Runs, tasks, checks and rows since this owner started (/metrics).
  MetricsRegistry metrics_;
  void CountRun(const RunReport& report);
  std::mutex workspace_mu_;
  std::shared_ptr<const Workspace> latest_workspace_;  // GUARDED_BY(workspace_mu_)
  SystemClock clock_;
  std::mutex open_mu_;
  std::unique_ptr<Opened> opened_;  // GUARDED_BY(open_mu_) until set
  // Counted after opened_ or latest_workspace_ changes (DataStateNow).
  std::atomic<uint64_t> data_state_{0};
  // KeepWorkspace: the project kept between runs, valid while the
  // watcher's count is the one read before it was loaded.
  struct KeptWorkspace {
    std::shared_ptr<const Workspace> ws;  // loaded without the secrets files' check
    uint64_t changes = 0;
  };
  std::mutex kept_mu_;
  std::unique_ptr<TreeWatcher> watcher_;  // GUARDED_BY(kept_mu_)
  std::optional<KeptWorkspace> kept_;     // GUARDED_BY(kept_mu_)
  uint64_t forgotten_ = 0;                // GUARDED_BY(kept_mu_): ForgetWorkspace calls
  // Runs hold it shared; what must have no run in flight (a rollback, which
  // writes _sluice_v behind the shared publisher's back; Close) exclusively.
  std::shared_timed_mutex runs_mu_;
  // What waits for runs_mu_ exclusively holds new runs back (else runs that
  // keep overlapping would starve it): RunsExcluded.
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  int exclusive_waiting_ = 0;  // GUARDED_BY(gate_mu_)
  // Waits until no run is in flight, admitting none meanwhile, for at most
  // `patience` (none: as long as it takes); released when destroyed.
  class RunsExcluded {
   public:
    explicit RunsExcluded(Engine* engine,
                          std::optional<std::chrono::milliseconds> patience = std::nullopt);
    ~RunsExcluded();
    RunsExcluded(const RunsExcluded&) = delete;
    RunsExcluded& operator=(const RunsExcluded&) = delete;
    bool acquired() const { return lock_.owns_lock(); }

   private:
    std::unique_lock<std::shared_timed_mutex> lock_;
  };
  EventHub run_events_;
  std::mutex controls_mu_;
  std::map<int64_t, std::shared_ptr<RunControl>> controls_;  // GUARDED_BY(controls_mu_): running
  std::mutex background_mu_;
  std::condition_variable background_cv_;
  std::deque<std::pair<int64_t, nlohmann::json>> background_queue_;  // GUARDED_BY(background_mu_)
  std::thread background_worker_;                                    // GUARDED_BY(background_mu_)
  bool closing_ = false;                                             // GUARDED_BY(background_mu_)
  std::mutex feeds_mu_;
  std::shared_ptr<CaptureFeeds> feeds_;  // GUARDED_BY(feeds_mu_)
  std::mutex pause_listener_mu_;
  PauseListener pause_listener_;  // GUARDED_BY(pause_listener_mu_)
  std::mutex notify_mu_;
  std::vector<std::future<void>> deliveries_;  // GUARDED_BY(notify_mu_)
  // OpenLineage events (openlineage: in sluice.yaml): the sender for the
  // spec the latest run had, made on first use; Close() flushes it.
  std::shared_ptr<OpenLineageSender> LineageSender(const Project& project);
  std::shared_ptr<OpenLineageSender> lineage_;  // GUARDED_BY(notify_mu_)
  std::string lineage_config_;                  // GUARDED_BY(notify_mu_): what it was made from
};

// {"ok": false, "exit_code": code, "error": message}
nlohmann::json ErrorResponse(const std::string& message, int exit_code = 2);
// The same for a Status: exit code 2 for invalid input, else 1; "code" its kind.
nlohmann::json ErrorResponse(const Status& status);
// The fields a run, plan, test or submit request shares, by type: select (a
// list of strings), full_refresh (a boolean), partition and trigger
// (strings), vars (an object). Invalid names the field and what it takes.
Status CheckRunFields(const nlohmann::json& request);

}  // namespace sluice
