// The runner: turns a selection of assets into tasks and executes them in
// dependency order, independent ones in parallel. Each task computes its
// version id; an unchanged asset is skipped, a changed one is built into a
// staged relation, audited by its checks and published atomically. A failed
// task marks its downstream upstream_failed while the rest continue.
// One Runner per request; thread-safe internally.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/project.h"
#include "core/clock.h"
#include "core/events.h"
#include "graph/asset_graph.h"
#include "lake/raw_archive.h"
#include "metadata/metadata_store.h"
#include "orchestrate/executor.h"
#include "orchestrate/holds.h"
#include "orchestrate/planner.h"
#include "quality/checks.h"
#include "transform/publication.h"
#include "warehouse/warehouse.h"

namespace sluice {

class CaptureFeeds;

struct EnvResources {
  const EnvironmentSpec* env = nullptr;
  Warehouse* warehouse = nullptr;
  MetadataStore* metadata = nullptr;
  RawArchive* archive = nullptr;
  const Clock* clock = nullptr;
  // The owner's current publications (null: read from the warehouse). A run
  // starts from them and leaves its own in their place.
  CurrentPublications* current = nullptr;
  // The owner's shared publisher, which keeps `current` up to date at each
  // commit, and the holds that let runs overlap (DESIGN §5). Null: the run
  // is alone (it loads its own publisher and sets `current` when it ends).
  SharedPublisher* publisher = nullptr;
  AssetHolds* holds = nullptr;
  // The owner's limits on tasks at once, shared by its runs (null: the
  // project's `concurrency:` for this run alone).
  ConcurrencyLimits* limits = nullptr;
  // `serve`'s resident change readers (null: every run reads its slots).
  CaptureFeeds* feeds = nullptr;
};

enum class RunMode { kRun, kPlan, kTest };

// Stops a run from another thread (`sluice cancel`): tasks not started yet
// end as cancelled, the warehouse statements of running tasks are
// interrupted, command programs are stopped (their process group).
// Thread-safe.
class RunControl {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  const std::atomic<bool>* flag() const { return &cancelled_; }
  // While a Scope lives, Cancel() interrupts its session. control may be null.
  class Scope {
   public:
    Scope(RunControl* control, WarehouseSession* session);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    RunControl* control_;
    WarehouseSession* session_;
  };

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::set<WarehouseSession*> sessions_;  // GUARDED_BY(mu_)
};

struct TaskOutcome;

struct RunOptions {
  RunMode mode = RunMode::kRun;
  std::vector<std::string> select;
  bool full_refresh = false;
  std::string partition;  // "A" or "A..B" for partitioned sources; "" = the current one
  int threads = 4;
  std::string command = "run";
  std::string trigger;  // what started it ("every 20s", "after stops"); "" = a person
  // The schedule tick it runs ("asset|key"; ""): recorded with the run, so
  // that a tick whose run finished is not run again after a restart.
  std::string tick;
  nlohmann::json vars = nlohmann::json::object();  // the trigger's variables, for the record
  int64_t run_id = 0;  // a run recorded as queued when it was submitted; 0: record a new one
  std::shared_ptr<RunControl> control;  // null: the run cannot be cancelled
  // How a run waiting for an asset this one builds names it.
  std::string description;
  // The event types whoever follows the run shows (none: all); the others
  // are not built (a plan of 10,000 assets has 20,000 task events).
  std::optional<std::set<std::string, std::less<>>> event_types;
  // Work that follows the graph in a run that was not cancelled (the
  // engine's exports): given the tasks' outcomes, it returns its own,
  // recorded and reported with the run's tasks, a failed one failing the run.
  std::function<std::vector<TaskOutcome>(const std::vector<TaskOutcome>& tasks)> after;
};

struct TaskOutcome {
  std::string asset;
  std::string kind;  // source | seed | model | export
  TaskAction action = TaskAction::kBuild;
  TaskStatus status = TaskStatus::kPlanned;
  std::string reason;
  std::string version_id;
  std::string previous_version;
  int64_t rows = -1;
  int64_t ms = 0;
  int attempts = 0;
  int64_t bad_rows = 0;  // rows a source left out under bad_rows: skip
  std::string error;
  std::vector<CheckOutcome> checks;
  nlohmann::json drift;  // null, or {added, removed, changed[, partition]}
  nlohmann::json
      partitions;  // null, or [{partition, action, status, reason, version, rows, error}]
  std::vector<std::string> notes;  // for the user: encoding fallbacks, rows set aside
  // Where the task's time went, in order: fetch (download, or copy + hash
  // into the lake), load (decode and load, or the model's SQL), inspect (row
  // count and schema), checks, publish, metadata, prune. Milliseconds.
  std::vector<std::pair<std::string, int64_t>> timings;
};

struct RunReport {
  int64_t run_id = 0;
  std::string mode;
  std::vector<TaskOutcome> tasks;
  std::vector<std::string> repairs;  // public views restored before the run, and why
  int exit_code = 0;
  int64_t ms = 0;
  // Each task's fields at their default values (no error, no checks, no
  // rows counted, ...) are left out: a plan of 10,000 unchanged assets is
  // mostly defaults. FillTaskDefaults puts them back.
  nlohmann::json ToJson() const;
  // Adds to each task of a report what ToJson left out, at its default.
  static void FillTaskDefaults(nlohmann::json& report);
};

Result<RunReport> ExecuteRun(const Project& project, const AssetGraph& graph,
                             const EnvResources& resources, const RunOptions& options,
                             const EventSink& events);

}  // namespace sluice
