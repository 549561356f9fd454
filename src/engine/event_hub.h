// Run and task events for live readers (the API's server-sent events, the
// web UI): each run's events are published here as they happen, numbered,
// and the newest kRetained are kept, so a reader that reconnects with the
// last number it saw misses nothing (or learns that it did).
//
// Thread-safe: runs publish from their threads, readers wait on theirs.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

class EventHub {
 public:
  static constexpr size_t kRetained = 2000;
  // An `after` for a reader whose last event came from an earlier owner.
  static constexpr int64_t kEarlierOwner = -2;

  EventHub();
  // Tells this owner's numbers from an earlier one's (its start, in hex).
  const std::string& boot() const { return boot_; }

  // Numbers `event` (adds "seq") and wakes the readers.
  void Publish(nlohmann::json event);

  struct Batch {
    std::vector<nlohmann::json> events;  // seq > after, oldest first
    int64_t last = 0;                    // the newest seq published (0: none yet)
    bool missed = false;                 // events after `after` were already dropped
    bool stopped = false;                // Stop() was called
  };
  // The events after `after`; waits up to `timeout` for one when there are
  // none yet. after == -1: none of the past, only what comes next. An
  // `after` of kEarlierOwner, or beyond the newest, is `missed`: every
  // event kept comes back.
  Batch Wait(int64_t after, std::chrono::milliseconds timeout);
  // The newest number published (0: none yet).
  int64_t Last() const;

  // Wakes every reader for good (the owner is stopping).
  void Stop();

 private:
  Batch Collect(int64_t after) const;  // with mu_ held

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<nlohmann::json> events_;  // GUARDED_BY(mu_)
  int64_t next_ = 1;                   // GUARDED_BY(mu_)
  bool stopped_ = false;               // GUARDED_BY(mu_)
  std::string boot_;
};

}  // namespace sluice
