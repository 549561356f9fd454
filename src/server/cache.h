// The HTTP API's response cache (DESIGN §4 and the serving issue): answers
// kept in memory under a key that holds the normalised query and the
// publication sequence of every relation it reaches, so a new publication
// changes the key of exactly the answers it changes and a cached answer is
// never stale — there is no TTL. Least recently used entries go first when
// the cache is over its size; an entry larger than an eighth of it is not
// kept. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace sluice {

struct CachedResponse {
  std::string content_type;
  std::string body;
  std::string etag;
  std::string link;  // a Link header (the next page), or ""
};

class ResponseCache {
 public:
  explicit ResponseCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  std::shared_ptr<const CachedResponse> Get(const std::string& key);
  void Put(const std::string& key, std::shared_ptr<const CachedResponse> response);

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;
    size_t entries = 0;
    size_t bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedResponse> response;
    size_t bytes = 0;
  };
  void EvictLocked();

  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // GUARDED_BY(mu_): most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                                                   // GUARDED_BY(mu_)
  int64_t hits_ = 0, misses_ = 0;                                      // GUARDED_BY(mu_)
};

// The cache keys of requests already keyed, while what a key is computed
// from (the state: Engine::DataStateNow) stays the same — so a repeated
// request finds its answer without parsing its query or walking the
// publications again. Entries of another state are never returned; the
// first Put of a new state drops them all, as does a Put past the bounds
// (kMaxEntries, kMaxBytes). Thread-safe.
class KeyMemo {
 public:
  static constexpr size_t kMaxEntries = 20000;
  static constexpr size_t kMaxBytes = 16u << 20;
  struct State {
    uint64_t a = 0, b = 0;
    bool operator==(const State&) const = default;
  };
  struct Keyed {
    std::string key;
    bool cacheable = false;
  };
  std::optional<Keyed> Get(const std::string& request, State state) const;
  void Put(const std::string& request, State state, Keyed keyed);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  State state_;                                     // GUARDED_BY(mu_)
  std::unordered_map<std::string, Keyed> entries_;  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                                // GUARDED_BY(mu_)
};

}  // namespace sluice
