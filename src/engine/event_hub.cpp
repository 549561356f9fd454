#include "engine/event_hub.h"

#include <sstream>
#include <utility>

namespace sluice {

EventHub::EventHub() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::ostringstream hex;
  hex << std::hex << std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  boot_ = hex.str();
}

void EventHub::Publish(nlohmann::json event) {
  {
    std::lock_guard lock(mu_);
    event["seq"] = next_++;
    events_.push_back(std::move(event));
    while (events_.size() > kRetained) events_.pop_front();
  }
  cv_.notify_all();
}

EventHub::Batch EventHub::Collect(int64_t after) const {
  Batch batch;
  batch.last = next_ - 1;
  batch.stopped = stopped_;
  if (after == -1) return batch;
  if (after < 0 || after > next_ - 1) {
    batch.missed = true;
    after = 0;
  }
  if (!events_.empty() && events_.front()["seq"].get<int64_t>() > after + 1) batch.missed = true;
  for (const nlohmann::json& e : events_) {
    if (e["seq"].get<int64_t>() > after) batch.events.push_back(e);
  }
  return batch;
}

EventHub::Batch EventHub::Wait(int64_t after, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (after == -1) after = next_ - 1;
  if (after < 0 || after > next_ - 1) return Collect(after);  // an earlier owner's: at once
  cv_.wait_for(lock, timeout, [&] { return stopped_ || next_ - 1 > after; });
  return Collect(after);
}

int64_t EventHub::Last() const {
  std::lock_guard lock(mu_);
  return next_ - 1;
}

void EventHub::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

}  // namespace sluice
