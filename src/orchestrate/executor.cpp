#include "orchestrate/executor.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <thread>
#include <utility>

#include "core/log.h"
#include "core/strings.h"

namespace sluice {

namespace {

struct StatusName {
  TaskStatus status;
  const char* name;
};

constexpr StatusName kStatusNames[] = {
    {TaskStatus::kPlanned, "planned"},
    {TaskStatus::kSuccess, "success"},
    {TaskStatus::kSkipped, "skipped"},
    {TaskStatus::kPassed, "passed"},
    {TaskStatus::kFailed, "failed"},
    {TaskStatus::kCheckFailed, "check_failed"},
    {TaskStatus::kUpstreamFailed, "upstream_failed"},
    {TaskStatus::kCancelled, "cancelled"},
    {TaskStatus::kInterrupted, "interrupted"},
};

}  // namespace

const char* TaskStatusName(TaskStatus status) {
  for (const StatusName& s : kStatusNames) {
    if (s.status == status) return s.name;
  }
  return "unknown";
}

std::optional<TaskStatus> ParseTaskStatus(std::string_view name) {
  for (const StatusName& s : kStatusNames) {
    if (name == s.name) return s.status;
  }
  return std::nullopt;
}

bool EndedBadly(TaskStatus status) {
  switch (status) {
    case TaskStatus::kFailed:
    case TaskStatus::kCheckFailed:
    case TaskStatus::kUpstreamFailed:
    case TaskStatus::kCancelled:
    case TaskStatus::kInterrupted:
      return true;
    default:
      return false;
  }
}

std::string PoolOfSource(const SourceSpec& source) {
  if (!source.pool.empty()) return source.pool;
  if (source.command) return "";
  const std::string& url = source.fetch.url;
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  std::string lower = ToLower(url.substr(0, scheme));
  if (lower != "http" && lower != "https") return "";
  size_t begin = scheme + 3;
  size_t end = url.find_first_of("/?#", begin);
  std::string authority =
      url.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  // user:password@ never names the pool (nor reaches a log through it).
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  if (authority.empty()) return "";
  return "host:" + ToLower(authority);
}

// ---- ConcurrencyLimits ------------------------------------------------------

void ConcurrencyLimits::Configure(const ConcurrencySpec& spec) {
  {
    std::lock_guard lock(mu_);
    spec_ = spec;
    limited_ = true;
  }
  cv_.notify_all();
}

int ConcurrencyLimits::LimitLocked(const std::string& pool) const {
  if (!limited_) return 0;
  if (pool.empty()) return spec_.tasks;
  if (pool.rfind("host:", 0) == 0) return spec_.per_host;
  auto it = spec_.pools.find(pool);
  return it == spec_.pools.end() ? 0 : it->second;
}

int ConcurrencyLimits::LimitOf(const std::string& pool) const {
  std::lock_guard lock(mu_);
  return LimitLocked(pool);
}

int ConcurrencyLimits::InUse(const std::string& pool) const {
  std::lock_guard lock(mu_);
  if (pool.empty()) return global_in_use_;
  auto it = in_use_.find(pool);
  return it == in_use_.end() ? 0 : it->second;
}

ConcurrencyLimits::Slot ConcurrencyLimits::TryAcquireLocked(const std::string& pool) {
  int global = LimitLocked("");
  if (global > 0 && global_in_use_ >= global) return Slot();
  if (!pool.empty()) {
    int limit = LimitLocked(pool);
    int& used = in_use_[pool];
    if (limit > 0 && used >= limit) {
      if (used == 0) in_use_.erase(pool);
      return Slot();
    }
    ++used;
  }
  ++global_in_use_;
  return Slot(this, pool);
}

ConcurrencyLimits::Slot ConcurrencyLimits::TryAcquire(const std::string& pool) {
  std::lock_guard lock(mu_);
  return TryAcquireLocked(pool);
}

std::vector<ConcurrencyLimits::Slot> ConcurrencyLimits::TryAcquireUpTo(const std::string& pool,
                                                                       size_t n) {
  std::vector<Slot> slots;
  std::lock_guard lock(mu_);
  while (slots.size() < n) {
    Slot slot = TryAcquireLocked(pool);
    if (!slot) break;
    slots.push_back(std::move(slot));
  }
  return slots;
}

void ConcurrencyLimits::Release(const std::string& pool) {
  {
    std::lock_guard lock(mu_);
    --global_in_use_;
    if (!pool.empty()) {
      auto it = in_use_.find(pool);
      if (it != in_use_.end() && --it->second <= 0) in_use_.erase(it);
    }
  }
  cv_.notify_all();
}

ConcurrencyLimits::Slot::Slot(Slot&& other) noexcept
    : limits_(other.limits_), pool_(std::move(other.pool_)) {
  other.limits_ = nullptr;
}

ConcurrencyLimits::Slot& ConcurrencyLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    limits_ = other.limits_;
    pool_ = std::move(other.pool_);
    other.limits_ = nullptr;
  }
  return *this;
}

ConcurrencyLimits::Slot::~Slot() { Release(); }

void ConcurrencyLimits::Slot::Release() {
  if (limits_ == nullptr) return;
  limits_->Release(pool_);
  limits_ = nullptr;
}

// ---- the in-memory ready queue ----------------------------------------------

namespace {

class InMemoryReadyQueue : public ReadyQueue {
 public:
  InMemoryReadyQueue(ConcurrencyLimits* limits, std::function<bool()> bypass)
      : limits_(limits), bypass_(std::move(bypass)) {}

  void Push(size_t task, const std::string& pool) override {
    {
      std::lock_guard lock(limits_->mu());
      ready_.push_back({task, pool});
    }
    limits_->cv().notify_all();
  }

  std::optional<Leased> Pop() override {
    std::unique_lock lock(limits_->mu());
    while (true) {
      if (closed_) return std::nullopt;
      if (bypass_ && !ready_.empty() && bypass_()) {
        Leased leased{ready_.front().first, ConcurrencyLimits::Slot()};
        ready_.pop_front();
        return leased;
      }
      // The oldest task with room; a task whose pool is full lets the ones
      // behind it in other pools go first.
      for (auto it = ready_.begin(); it != ready_.end(); ++it) {
        ConcurrencyLimits::Slot slot = limits_->TryAcquireLocked(it->second);
        if (!slot) continue;
        Leased leased{it->first, std::move(slot)};
        ready_.erase(it);
        return leased;
      }
      if (bypass_) {
        limits_->cv().wait_for(lock, std::chrono::milliseconds(200));
      } else {
        limits_->cv().wait(lock);
      }
    }
  }

  void Close() override {
    {
      std::lock_guard lock(limits_->mu());
      closed_ = true;
    }
    limits_->cv().notify_all();
  }

 private:
  ConcurrencyLimits* limits_;
  std::function<bool()> bypass_;
  std::deque<std::pair<size_t, std::string>> ready_;  // GUARDED_BY(limits_->mu())
  bool closed_ = false;                               // GUARDED_BY(limits_->mu())
};

}  // namespace

std::unique_ptr<ReadyQueue> NewInMemoryReadyQueue(ConcurrencyLimits* limits,
                                                  std::function<bool()> bypass) {
  return std::make_unique<InMemoryReadyQueue>(limits, std::move(bypass));
}

// ---- ExecuteGraph -----------------------------------------------------------

void ExecuteGraph(const std::vector<GraphTask>& tasks, int threads, ReadyQueue& queue,
                  const std::function<void(size_t)>& run) {
  if (tasks.empty()) return;
  std::mutex mu;
  std::vector<int> waiting(tasks.size());
  size_t done = 0;  // GUARDED_BY(mu)
  for (size_t i = 0; i < tasks.size(); ++i) {
    waiting[i] = tasks[i].upstream;
    if (waiting[i] == 0) queue.Push(i, tasks[i].pool);
  }
  auto worker = [&] {
    while (true) {
      std::optional<ReadyQueue::Leased> leased = queue.Pop();
      if (!leased) return;
      size_t i = leased->task;
      try {  // a thread boundary: the task's exception is its own
        run(i);
      } catch (const std::exception& e) {
        LOG_ERROR("executor", "task {} ended with an exception: {}", i, e.what());
      } catch (...) {
        LOG_ERROR("executor", "task {} ended with an unknown exception", i);
      }
      leased->slot = ConcurrencyLimits::Slot();  // its room goes before its downstream asks
      std::vector<size_t> now_ready;
      bool all_done = false;
      {
        std::lock_guard lock(mu);
        for (size_t down : tasks[i].downstream) {
          if (--waiting[down] == 0) now_ready.push_back(down);
        }
        all_done = ++done == tasks.size();
      }
      for (size_t down : now_ready) queue.Push(down, tasks[down].pool);
      if (all_done) queue.Close();
    }
  };
  int n = std::max(1, std::min<int>(threads, static_cast<int>(tasks.size())));
  std::vector<std::thread> pool;
  pool.reserve(n - 1);
  for (int w = 1; w < n; ++w) pool.emplace_back(worker);
  worker();  // this thread is one of them
  for (std::thread& t : pool) t.join();
}

}  // namespace sluice
