// Tests of the executor's core (orchestrate/executor.h), without DuckDB:
// dependency order, the global and per-pool limits (shared by two graphs
// run at once, as two runs in one owner), a full pool letting other pools'
// tasks pass, helper slots, slots handed out in turn across runs, a
// throwing task, task statuses and the pool of a source.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "orchestrate/executor.h"

namespace sluice {
namespace {

// Counts tasks running at once. Each stays until every task has entered
// or 200 ms have passed: with the limit kept, the tasks go through in
// groups of the limit (each waiting out the 200 ms); with it broken, more
// than the limit are inside together. The time is never a pass condition.
class Concurrency {
 public:
  explicit Concurrency(int total) : total_(total) {}
  void Enter() {
    std::unique_lock lock(mu_);
    peak_ = std::max(peak_, ++running_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return entered_ >= total_; });
  }
  void Leave() {
    std::lock_guard lock(mu_);
    --running_;
  }
  int peak() {
    std::lock_guard lock(mu_);
    return peak_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int total_;
  int running_ = 0;
  int entered_ = 0;
  int peak_ = 0;
};

TEST(Executor, RunsEachTaskAfterItsUpstreams) {
  // 0 -> {1, 2} -> 3, and 4 alone.
  std::vector<GraphTask> tasks(5);
  tasks[0].downstream = {1, 2};
  tasks[1].upstream = 1;
  tasks[2].upstream = 1;
  tasks[1].downstream = {3};
  tasks[2].downstream = {3};
  tasks[3].upstream = 2;
  ConcurrencyLimits limits;
  auto queue = NewInMemoryReadyQueue(&limits);
  std::mutex mu;
  std::vector<size_t> order;
  ExecuteGraph(tasks, 3, *queue, [&](size_t i) {
    std::lock_guard lock(mu);
    order.push_back(i);
  });
  ASSERT_EQ(order.size(), 5u);
  auto pos = [&](size_t i) { return std::find(order.begin(), order.end(), i) - order.begin(); };
  EXPECT_LT(pos(0), pos(1));
  EXPECT_LT(pos(0), pos(2));
  EXPECT_LT(pos(1), pos(3));
  EXPECT_LT(pos(2), pos(3));
  EXPECT_EQ(limits.InUse(""), 0);
}

TEST(Executor, APoolLimitHoldsWithMoreWorkers) {
  ConcurrencySpec spec;
  spec.per_host = 2;
  ConcurrencyLimits limits(spec);
  std::vector<GraphTask> tasks(8);
  for (GraphTask& t : tasks) t.pool = "host:api.example.org";
  Concurrency seen(8);
  auto queue = NewInMemoryReadyQueue(&limits);
  ExecuteGraph(tasks, 8, *queue, [&](size_t) {
    seen.Enter();
    seen.Leave();
  });
  EXPECT_EQ(seen.peak(), 2);
  EXPECT_EQ(limits.InUse("host:api.example.org"), 0);
}

TEST(Executor, TheGlobalLimitSpansGraphsRunAtOnce) {
  ConcurrencySpec spec;
  spec.tasks = 3;
  ConcurrencyLimits limits(spec);
  Concurrency seen(12);
  auto run_one = [&] {
    std::vector<GraphTask> tasks(6);
    auto queue = NewInMemoryReadyQueue(&limits);
    ExecuteGraph(tasks, 4, *queue, [&](size_t) {
      seen.Enter();
      seen.Leave();
    });
  };
  std::thread a(run_one), b(run_one);
  a.join();
  b.join();
  EXPECT_EQ(seen.peak(), 3);  // 8 workers in all, 3 tasks at once
  EXPECT_EQ(limits.InUse(""), 0);
}

TEST(Executor, AFullPoolLetsOtherPoolsPass) {
  ConcurrencySpec spec;
  spec.pools = {{"slow", 1}};
  ConcurrencyLimits limits(spec);
  // Queue order: slow 0 (waits until task 2 ran), slow 1, then 2 in no pool.
  // A strict first-in-first-out queue would leave task 2 behind task 1,
  // which waits for task 0's slot: task 0 would give up waiting.
  std::vector<GraphTask> tasks(3);
  tasks[0].pool = "slow";
  tasks[1].pool = "slow";
  std::mutex mu;
  std::condition_variable cv;
  bool two_ran = false;
  std::atomic<bool> zero_saw_two{false};
  auto queue = NewInMemoryReadyQueue(&limits);
  ExecuteGraph(tasks, 2, *queue, [&](size_t i) {
    std::unique_lock lock(mu);
    if (i == 0) {
      zero_saw_two = cv.wait_for(lock, std::chrono::seconds(10), [&] { return two_ran; });
    } else if (i == 2) {
      two_ran = true;
      cv.notify_all();
    }
  });
  EXPECT_TRUE(zero_saw_two.load());
}

TEST(Executor, HelperSlotsTakeOnlyTheRoomThereIs) {
  ConcurrencySpec spec;
  spec.per_host = 4;
  spec.tasks = 10;
  ConcurrencyLimits limits(spec);
  ConcurrencyLimits::Slot task = limits.TryAcquire("host:a");
  ASSERT_TRUE(task);
  std::vector<ConcurrencyLimits::Slot> helpers = limits.TryAcquireUpTo("host:a", 7);
  EXPECT_EQ(helpers.size(), 3u);
  EXPECT_FALSE(limits.TryAcquire("host:a"));
  EXPECT_TRUE(limits.TryAcquire("host:b"));  // released at once
  EXPECT_EQ(limits.InUse(""), 4);
  helpers.clear();
  EXPECT_EQ(limits.InUse("host:a"), 1);
  // A reload that lowers the limit keeps what is held and gives no more.
  spec.per_host = 1;
  limits.Configure(spec);
  EXPECT_FALSE(limits.TryAcquire("host:a"));
  task = ConcurrencyLimits::Slot();
  EXPECT_TRUE(limits.TryAcquire("host:a"));
  EXPECT_EQ(limits.InUse(""), 0);
}

TEST(Executor, ACancelledRunsTasksLeaveWithoutWaitingForRoom) {
  ConcurrencySpec spec;
  spec.tasks = 1;
  ConcurrencyLimits limits(spec);
  ConcurrencyLimits::Slot other_run = limits.TryAcquire("");  // the owner is full
  ASSERT_TRUE(other_run);
  std::atomic<bool> cancelled{false};
  auto queue = NewInMemoryReadyQueue(&limits, [&] { return cancelled.load(); });
  std::vector<GraphTask> tasks(3);
  std::atomic<int> ran{0};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancelled = true;  // no slot frees: the queue must notice by itself
  });
  ExecuteGraph(tasks, 2, *queue, [&](size_t) { ++ran; });
  canceller.join();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(limits.InUse(""), 1);  // only the other run's
}

TEST(Executor, ATaskThatThrowsStillLetsItsDownstreamGo) {
  std::vector<GraphTask> tasks(2);
  tasks[0].downstream = {1};
  tasks[1].upstream = 1;
  ConcurrencyLimits limits;
  auto queue = NewInMemoryReadyQueue(&limits);
  std::atomic<bool> second{false};
  ExecuteGraph(tasks, 2, *queue, [&](size_t i) {
    if (i == 0) throw std::runtime_error("boom");
    second = true;
  });
  EXPECT_TRUE(second.load());
  EXPECT_EQ(limits.InUse(""), 0);
}

// Forwards to a queue, counting what was pushed into it.
class CountingQueue : public ReadyQueue {
 public:
  explicit CountingQueue(std::unique_ptr<ReadyQueue> inner) : inner_(std::move(inner)) {}
  void Push(size_t task, const std::string& pool) override {
    inner_->Push(task, pool);
    std::lock_guard lock(mu_);
    ++pushed_;
    cv_.notify_all();
  }
  std::optional<Leased> Pop() override { return inner_->Pop(); }
  void Close() override { inner_->Close(); }
  bool WaitPushed(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return pushed_ >= n; });
  }

 private:
  std::unique_ptr<ReadyQueue> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  int pushed_ = 0;
};

TEST(Executor, SlotsGoInTurnAcrossRuns) {
  // One slot in the owner. A long run's chain a0 -> a1 -> a2 and a poll's
  // single task b0, ready after a0 but before a1: the poll goes second,
  // not after the whole chain (a worker that frees the slot and at once
  // asks again must not win it back).
  ConcurrencySpec spec;
  spec.tasks = 1;
  ConcurrencyLimits limits(spec);
  ConcurrencyLimits::Slot blocker = limits.TryAcquire("");
  ASSERT_TRUE(blocker);
  std::mutex mu;
  std::vector<std::string> order;
  auto ran = [&](const std::string& name) {
    std::lock_guard lock(mu);
    order.push_back(name);
  };
  std::vector<GraphTask> chain(3);
  chain[0].downstream = {1};
  chain[1].upstream = 1;
  chain[1].downstream = {2};
  chain[2].upstream = 1;
  CountingQueue queue_a(NewInMemoryReadyQueue(&limits));
  std::thread a(
      [&] { ExecuteGraph(chain, 2, queue_a, [&](size_t i) { ran("a" + std::to_string(i)); }); });
  ASSERT_TRUE(queue_a.WaitPushed(1));
  std::vector<GraphTask> poll(1);
  CountingQueue queue_b(NewInMemoryReadyQueue(&limits));
  std::thread b([&] { ExecuteGraph(poll, 1, queue_b, [&](size_t) { ran("b0"); }); });
  ASSERT_TRUE(queue_b.WaitPushed(1));
  // b0's worker waits for the slot (with a's two) before a0 may start:
  // pushed is not yet waiting, and a worker not waiting has no turn.
  for (int i = 0; i < 10000 && limits.WaitingWorkers() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(limits.WaitingWorkers(), 3);
  blocker = ConcurrencyLimits::Slot();
  a.join();
  b.join();
  EXPECT_EQ(order, (std::vector<std::string>{"a0", "b0", "a1", "a2"}));
  EXPECT_EQ(limits.InUse(""), 0);
}

TEST(Executor, TaskStatusNamesRoundTrip) {
  for (TaskStatus s :
       {TaskStatus::kPlanned, TaskStatus::kSuccess, TaskStatus::kSkipped, TaskStatus::kPassed,
        TaskStatus::kFailed, TaskStatus::kCheckFailed, TaskStatus::kUpstreamFailed,
        TaskStatus::kCancelled, TaskStatus::kInterrupted}) {
    std::optional<TaskStatus> back = ParseTaskStatus(TaskStatusName(s));
    ASSERT_TRUE(back.has_value()) << TaskStatusName(s);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(ParseTaskStatus("succes").has_value());
  EXPECT_TRUE(EndedBadly(TaskStatus::kUpstreamFailed));
  EXPECT_TRUE(EndedBadly(TaskStatus::kInterrupted));
  EXPECT_FALSE(EndedBadly(TaskStatus::kSkipped));
}

TEST(Executor, ASourcesPoolIsItsHostUnlessNamed) {
  SourceSpec s;
  s.fetch.url = "https://user:${secret:PW}@API.Example.org:8443/v1/{{ partition }}?k=1";
  EXPECT_EQ(PoolOfSource(s), "host:api.example.org:8443");
  s.fetch.url = "file://data/a.csv";
  EXPECT_EQ(PoolOfSource(s), "");
  s.fetch.url = "http://127.0.0.1:9/x";
  EXPECT_EQ(PoolOfSource(s), "host:127.0.0.1:9");
  s.pool = "slow";
  EXPECT_EQ(PoolOfSource(s), "slow");
}

}  // namespace
}  // namespace sluice
