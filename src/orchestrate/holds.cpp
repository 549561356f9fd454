#include "orchestrate/holds.h"

#include <chrono>

namespace sluice {

AssetHolds::Hold::Hold(Hold&& other) noexcept
    : holds_(std::exchange(other.holds_, nullptr)), key_(std::move(other.key_)) {}

AssetHolds::Hold& AssetHolds::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    holds_ = std::exchange(other.holds_, nullptr);
    key_ = std::move(other.key_);
  }
  return *this;
}

AssetHolds::Hold::~Hold() { Release(); }

void AssetHolds::Hold::Release() {
  if (holds_) std::exchange(holds_, nullptr)->Release(key_);
}

Result<AssetHolds::Hold> AssetHolds::Acquire(const Key& key, Holder me,
                                             const std::function<void(const Holder&)>& waiting,
                                             const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  bool told = false;
  while (true) {
    auto it = held_.find(key);
    if (it == held_.end()) break;
    if (!told && waiting) {
      Holder holder = it->second;
      told = true;
      lock.unlock();
      waiting(holder);  // may emit an event: never under the lock
      lock.lock();
      continue;
    }
    if (cancelled && cancelled()) return Status::Cancelled("the run was cancelled while it waited");
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  held_.emplace(key, std::move(me));
  return Hold(this, key);
}

void AssetHolds::Release(const Key& key) {
  {
    std::lock_guard lock(mu_);
    held_.erase(key);
  }
  cv_.notify_all();
}

std::vector<std::pair<AssetHolds::Key, AssetHolds::Holder>> AssetHolds::Held() const {
  std::lock_guard lock(mu_);
  return {held_.begin(), held_.end()};
}

}  // namespace sluice
