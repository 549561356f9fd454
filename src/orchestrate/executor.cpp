#include "orchestrate/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
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

struct ConcurrencyLimits::Line {
  struct Entry {
    uint64_t ticket = 0;
    size_t task = 0;
    std::string pool;
  };
  std::deque<Entry> ready;  // oldest first (tickets rise)
  int waiting = 0;          // workers in Pop()
  bool cancelled = false;   // its tasks leave without slots: it claims none
};

int ConcurrencyLimits::WaitingWorkers() {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const Line* line : lines_) n += line->waiting;
  return n;
}

void ConcurrencyLimits::LeaveLocked(Line* line) {
  lines_.erase(std::remove(lines_.begin(), lines_.end(), line), lines_.end());
}

bool ConcurrencyLimits::FitsLocked(const std::string& pool,
                                   const std::map<std::string, int>& claimed) const {
  auto claims = [&](const std::string& name) {
    auto it = claimed.find(name);
    return it == claimed.end() ? 0 : it->second;
  };
  int global = LimitLocked("");
  if (global > 0 && global_in_use_ + claims("") >= global) return false;
  if (pool.empty()) return true;
  int limit = LimitLocked(pool);
  if (limit <= 0) return true;
  auto used = in_use_.find(pool);
  return (used == in_use_.end() ? 0 : used->second) + claims(pool) < limit;
}

std::map<std::string, int> ConcurrencyLimits::ClaimLocked(const Line* line, size_t* found) const {
  std::map<std::string, int> claimed;
  if (found != nullptr) *found = SIZE_MAX;
  struct Cursor {
    const Line* line;
    size_t at;
    int takers;  // workers of that line still to serve
  };
  std::vector<Cursor> cursors;
  for (const Line* l : lines_) {
    if (l == line) {
      cursors.push_back({l, 0, 1});
    } else if (l->waiting > 0 && !l->cancelled && !l->ready.empty()) {
      cursors.push_back({l, 0, l->waiting});
    }
  }
  int global = LimitLocked("");
  while (true) {
    Cursor* next = nullptr;  // the oldest task not yet looked at
    for (Cursor& c : cursors) {
      if (c.takers <= 0 || c.at >= c.line->ready.size()) continue;
      if (next == nullptr || c.line->ready[c.at].ticket < next->line->ready[next->at].ticket) {
        next = &c;
      }
    }
    if (next == nullptr) return claimed;
    const Line::Entry& entry = next->line->ready[next->at];
    if (FitsLocked(entry.pool, claimed)) {
      if (next->line == line) {
        *found = next->at;
        return claimed;
      }
      ++claimed[""];
      if (!entry.pool.empty()) ++claimed[entry.pool];
      --next->takers;
      if (global > 0 && global_in_use_ + claimed[""] >= global) return claimed;  // no room left
    }
    ++next->at;
  }
}

ConcurrencyLimits::Slot ConcurrencyLimits::AcquireLocked(const std::string& pool) {
  if (!pool.empty()) ++in_use_[pool];
  ++global_in_use_;
  return Slot(this, pool);
}

ConcurrencyLimits::Slot ConcurrencyLimits::TakeInTurnLocked(Line* line, size_t* taken) {
  ClaimLocked(line, taken);
  if (*taken == SIZE_MAX) return Slot();
  return AcquireLocked(line->ready[*taken].pool);
}

ConcurrencyLimits::Slot ConcurrencyLimits::TryAcquire(const std::string& pool) {
  std::lock_guard lock(mu_);
  if (!FitsLocked(pool, ClaimLocked(nullptr, nullptr))) return Slot();
  return AcquireLocked(pool);
}

std::vector<ConcurrencyLimits::Slot> ConcurrencyLimits::TryAcquireUpTo(const std::string& pool,
                                                                       size_t n) {
  std::vector<Slot> slots;
  std::lock_guard lock(mu_);
  std::map<std::string, int> claimed = ClaimLocked(nullptr, nullptr);  // waiting tasks go first
  while (slots.size() < n && FitsLocked(pool, claimed)) slots.push_back(AcquireLocked(pool));
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
      : limits_(limits), bypass_(std::move(bypass)) {
    std::lock_guard lock(limits_->mu());
    limits_->JoinLocked(&line_);
  }
  ~InMemoryReadyQueue() override {
    {
      std::lock_guard lock(limits_->mu());
      limits_->LeaveLocked(&line_);
    }
    limits_->cv().notify_all();  // what it claimed is free for the others
  }

  void Push(size_t task, const std::string& pool) override {
    {
      std::lock_guard lock(limits_->mu());
      line_.ready.push_back({limits_->NextTicketLocked(), task, pool});
    }
    limits_->cv().notify_all();
  }

  std::optional<Leased> Pop() override {
    std::unique_lock lock(limits_->mu());
    ++line_.waiting;
    struct Waiting {
      int& count;
      ~Waiting() { --count; }
    } waiting{line_.waiting};
    while (true) {
      if (closed_) return std::nullopt;
      if (bypass_ && !line_.ready.empty() && (line_.cancelled || bypass_())) {
        if (!line_.cancelled) {
          line_.cancelled = true;  // for good: its tasks claim no room from now on
          limits_->cv().notify_all();
        }
        Leased leased{line_.ready.front().task, ConcurrencyLimits::Slot()};
        line_.ready.pop_front();
        return leased;
      }
      // In turn across every run: the oldest task that fits, here or in
      // another run, goes first.
      size_t taken = 0;
      ConcurrencyLimits::Slot slot = limits_->TakeInTurnLocked(&line_, &taken);
      if (slot) {
        Leased leased{line_.ready[taken].task, std::move(slot)};
        line_.ready.erase(line_.ready.begin() + static_cast<std::ptrdiff_t>(taken));
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
  ConcurrencyLimits::Line line_;  // GUARDED_BY(limits_->mu())
  bool closed_ = false;           // GUARDED_BY(limits_->mu())
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
