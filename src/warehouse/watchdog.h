// A statement timeout for DuckDB, which has none of its own: while a
// Watchdog is alive, a thread waits `seconds` and then interrupts the
// session's running statement. Destruction stops the wait. One per statement
// (or task); thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "warehouse/warehouse.h"

namespace sluice {

class Watchdog {
 public:
  // seconds <= 0: no timeout (no thread is started).
  Watchdog(WarehouseSession* session, int64_t seconds) {
    if (seconds <= 0) return;
    thread_ = std::thread([this, session, seconds] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
        fired_ = true;
        session->Interrupt();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // True once the timeout interrupted the session.
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace sluice
