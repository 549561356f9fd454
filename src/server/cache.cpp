#include "server/cache.h"

#include <utility>

namespace sluice {

std::shared_ptr<const CachedResponse> ResponseCache::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->response;
}

void ResponseCache::Put(const std::string& key, std::shared_ptr<const CachedResponse> response) {
  size_t bytes = key.size() * 2 + response->body.size() + response->etag.size() +
                 response->content_type.size() + response->link.size() + 128;
  if (max_bytes_ == 0 || bytes > max_bytes_ / 8) return;
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(Entry{key, std::move(response), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
  EvictLocked();
}

void ResponseCache::EvictLocked() {
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    Entry& last = lru_.back();
    bytes_ -= last.bytes;
    index_.erase(last.key);
    lru_.pop_back();
  }
}

ResponseCache::Stats ResponseCache::stats() const {
  std::lock_guard lock(mu_);
  return Stats{hits_, misses_, index_.size(), bytes_};
}

std::optional<KeyMemo::Keyed> KeyMemo::Get(const std::string& request, State state) const {
  std::lock_guard lock(mu_);
  if (!(state == state_)) return std::nullopt;
  auto it = entries_.find(request);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void KeyMemo::Put(const std::string& request, State state, Keyed keyed) {
  const size_t bytes = request.size() + keyed.key.size() + 64;
  std::lock_guard lock(mu_);
  if (!(state == state_) || entries_.size() >= kMaxEntries || bytes_ + bytes > kMaxBytes) {
    entries_.clear();
    bytes_ = 0;
    state_ = state;
  }
  if (bytes > kMaxBytes) return;
  auto [it, added] = entries_.try_emplace(request, std::move(keyed));
  if (added) bytes_ += bytes;
}

size_t KeyMemo::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace sluice
