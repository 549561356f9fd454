#include "warehouse/watchdog.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;

// The deadlines of every live Watchdog, served by one thread. A session is
// interrupted under the lock, so a Watchdog that unregisters (taking the
// lock) knows its session is no longer touched.
class Deadlines {
 public:
  static Deadlines& Get() {
    // Never destroyed: a Watchdog may outlive static destruction order.
    static Deadlines* deadlines = new Deadlines();
    return *deadlines;
  }

  uint64_t Add(WarehouseSession* session, Clock::time_point at) {
    std::lock_guard lock(mu_);
    if (!started_) {
      std::thread([this] { Loop(); }).detach();
      started_ = true;
    }
    uint64_t id = ++next_id_;
    live_.emplace(id, Entry{session, at});
    queue_.emplace(at, id);
    cv_.notify_one();
    return id;
  }

  void Remove(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return;
    queue_.erase({it->second.at, id});
    live_.erase(it);
    fired_.erase(id);
  }

  bool Fired(uint64_t id) {
    std::lock_guard lock(mu_);
    return fired_.count(id) > 0;
  }

 private:
  struct Entry {
    WarehouseSession* session;
    Clock::time_point at;
  };

  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto [at, id] = *queue_.begin();
      if (cv_.wait_until(lock, at) != std::cv_status::timeout && Clock::now() < at) continue;
      auto first = queue_.begin();
      if (first == queue_.end() || first->second != id) continue;  // changed meanwhile
      queue_.erase(first);
      fired_.insert(id);
      try {
        live_.at(id).session->Interrupt();
      } catch (const std::exception& e) {
        LogLine(LogLevel::kWarn, "watchdog",
                std::string("interrupting a statement failed: ") + e.what());
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Entry> live_;
  std::set<std::pair<Clock::time_point, uint64_t>> queue_;
  std::set<uint64_t> fired_;
};

}  // namespace

Watchdog::Watchdog(WarehouseSession* session, int64_t seconds) {
  if (seconds <= 0) return;
  id_ = Deadlines::Get().Add(session, Clock::now() + std::chrono::seconds(seconds));
}

Watchdog::~Watchdog() {
  if (id_ != 0) Deadlines::Get().Remove(id_);
}

bool Watchdog::fired() const { return id_ != 0 && Deadlines::Get().Fired(id_); }

}  // namespace sluice
