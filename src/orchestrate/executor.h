// The executor's core (DESIGN §5, one executor in the owner), without
// DuckDB: a task graph run in dependency order by a few worker threads, each
// ready task waiting in a ReadyQueue for room in the owner's concurrency
// limits — a global one over every run in the owner, and its pool's (by
// default one pool per HTTP source host; or a pool named in
// `concurrency: pools:`). What a task does is the runner's (runner.h); what
// it ends as is a TaskStatus.
//
// Every run in the owner shares one ConcurrencyLimits, so runs together
// never exceed the limits, and a backfill of an API's partitions never
// opens more than `per_host` connections to it at once. Slots go out in the
// order tasks became ready, across every run: each ready task takes a
// ticket from the limits, and a freed slot goes to the oldest waiting task
// that fits (a task whose pool is full lets younger ones in other pools
// pass), whichever run it belongs to — so a 20-second poll's task waits
// only for tasks that were ready before it, never behind a whole backfill.
// A partitioned task's helpers take only room no waiting task claims, and
// keep it until the task's last partition.
//
// Thread-safety: ConcurrencyLimits, its slots and the queues are
// thread-safe; the queues of every run share the limits' one lock (tasks
// last milliseconds to hours; the lock is held for microseconds).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/project.h"

namespace sluice {

// How a task ended (or, in `plan`, what it would do). Stored by name.
enum class TaskStatus {
  kPlanned,         // plan: would run
  kSuccess,         // built and published
  kSkipped,         // unchanged (its checks may still have run)
  kPassed,          // test: its checks passed
  kFailed,          // an error
  kCheckFailed,     // an error-severity check failed; the last good version stays
  kUpstreamFailed,  // not run: an upstream failed
  kCancelled,       // `sluice cancel`
  kInterrupted,     // the owner died while it ran (metadata, after a restart)
};
const char* TaskStatusName(TaskStatus status);
std::optional<TaskStatus> ParseTaskStatus(std::string_view name);
// Failed, check failed, upstream failed, cancelled or interrupted: counts as
// a failure of its run, and `--rerun` runs it again.
bool EndedBadly(TaskStatus status);

// The pool an asset's task joins: its own `pool:`, else "host:<host>" for an
// HTTP source (the host as written in its URL), else "" (no pool: only the
// global limit).
std::string PoolOfSource(const SourceSpec& source);

class ConcurrencyLimits {
 public:
  ConcurrencyLimits() = default;  // no limits
  explicit ConcurrencyLimits(const ConcurrencySpec& spec) { Configure(spec); }
  ConcurrencyLimits(const ConcurrencyLimits&) = delete;
  ConcurrencyLimits& operator=(const ConcurrencyLimits&) = delete;

  // New limits (a project reload); slots held stay held, and what waits
  // re-reads them.
  void Configure(const ConcurrencySpec& spec);

  // One task's (or one partition's) room in the global limit and its pool's;
  // given back when destroyed. Movable.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    explicit operator bool() const { return limits_ != nullptr; }

   private:
    friend class ConcurrencyLimits;
    Slot(ConcurrencyLimits* limits, std::string pool) : limits_(limits), pool_(std::move(pool)) {}
    void Release();
    ConcurrencyLimits* limits_ = nullptr;
    std::string pool_;
  };

  // A slot now, or an empty one when the global limit or the pool's is reached.
  Slot TryAcquire(const std::string& pool);
  // Up to n slots at once, as many as there is room for (a partitioned
  // task's helper threads: they start only with room, so they never wait
  // for a slot while their task holds one).
  std::vector<Slot> TryAcquireUpTo(const std::string& pool, size_t n);
  // The pool's limit (0: none); "" is the global one.
  int LimitOf(const std::string& pool) const;
  // Slots held now in the pool; "" counts every slot.
  int InUse(const std::string& pool) const;
  // Workers waiting in a ready queue's Pop() now, across every queue that
  // shares these limits.
  int WaitingWorkers();

  // The lock and condition the ready queues wait on: notified when a slot
  // is given back or the limits change.
  std::mutex& mu() { return mu_; }
  std::condition_variable& cv() { return cv_; }

  // The line of ready tasks across every queue that shares these limits
  // (executor.cpp's ready queues join it while they live). With mu() held.
  struct Line;
  uint64_t NextTicketLocked() { return ++tickets_; }
  void JoinLocked(Line* line) { lines_.push_back(line); }
  void LeaveLocked(Line* line);
  // The slot for `line`'s oldest task that may start now, given the older
  // tasks of other lines with a worker waiting for them; its index in the
  // line in *taken. Empty when none may start.
  Slot TakeInTurnLocked(Line* line, size_t* taken);

 private:
  int LimitLocked(const std::string& pool) const;
  // Room for one more in `pool` beyond what is held and `claimed` (the
  // global count under "").
  bool FitsLocked(const std::string& pool, const std::map<std::string, int>& claimed) const;
  // Walks the waiting tasks of every line oldest first, claiming room for
  // each that fits, until `line`'s first fitting task (its index in
  // *found) or the end. `line` null: claims for every line.
  std::map<std::string, int> ClaimLocked(const Line* line, size_t* found) const;
  Slot AcquireLocked(const std::string& pool);
  void Release(const std::string& pool);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  ConcurrencySpec spec_;               // GUARDED_BY(mu_)
  int global_in_use_ = 0;              // GUARDED_BY(mu_)
  std::map<std::string, int> in_use_;  // GUARDED_BY(mu_)
  bool limited_ = false;               // GUARDED_BY(mu_): Configure was called
  uint64_t tickets_ = 0;               // GUARDED_BY(mu_)
  std::vector<Line*> lines_;           // GUARDED_BY(mu_)
};

// Tasks whose upstreams are done, waiting for a worker and for room in their
// pool. In memory while the warehouse is DuckDB (only the owner can write
// it); a later PostgreSQL warehouse serves the same interface to workers on
// other machines (SELECT … FOR UPDATE SKIP LOCKED).
class ReadyQueue {
 public:
  virtual ~ReadyQueue() = default;
  virtual void Push(size_t task, const std::string& pool) = 0;
  struct Leased {
    size_t task = 0;
    ConcurrencyLimits::Slot slot;
  };
  // The oldest ready task that may start now, its slot taken; waits while
  // none may. nullopt once closed.
  virtual std::optional<Leased> Pop() = 0;
  // Wakes every Pop() to answer nullopt from now on.
  virtual void Close() = 0;
};

// A queue in memory under `limits` (which must outlive it). While `bypass`
// (may be null; checked at least every 200 ms) says so — the run was
// cancelled — tasks leave without a slot: they only record that they did
// not run, and must not wait behind other runs for room to do so.
std::unique_ptr<ReadyQueue> NewInMemoryReadyQueue(ConcurrencyLimits* limits,
                                                  std::function<bool()> bypass = nullptr);

struct GraphTask {
  std::string pool;                // "" = only the global limit
  std::vector<size_t> downstream;  // indexes of the tasks that wait for this one
  int upstream = 0;                // how many tasks it waits for
};

// Runs run(i) for every task once each task it waits for has run, on
// `threads` workers, each task within the queue's limits. A task's failure
// is run()'s business (the runner marks downstream tasks upstream_failed);
// an exception from run() is logged and counts as the task having run.
// Returns when every task has run.
void ExecuteGraph(const std::vector<GraphTask>& tasks, int threads, ReadyQueue& queue,
                  const std::function<void(size_t)>& run);

}  // namespace sluice
