// Which run builds which (asset, partition) now (DESIGN §5, one executor):
// a task holds its (asset, partition) while it decides, builds and
// publishes, so runs overlap where they touch different assets — a
// 20-second poll does not wait behind a nightly build — and take turns
// where they touch the same one. A task holds one key at a time and waits
// for nothing while it holds it, so holds cannot deadlock. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice {

class AssetHolds {
 public:
  struct Holder {
    int64_t run_id = 0;
    std::string what;  // how a waiting run names it ("`sluice run x` (pid 12, started ...)")
  };
  using Key = std::pair<std::string, std::string>;  // (asset, partition; "" when unpartitioned)

  // Released when destroyed.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&& other) noexcept;
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    friend class AssetHolds;
    Hold(AssetHolds* holds, Key key) : holds_(holds), key_(std::move(key)) {}
    void Release();
    AssetHolds* holds_ = nullptr;
    Key key_;
  };

  // Waits until no one holds key, then holds it for `me`. When it has to
  // wait, `waiting` is told once who holds it. Cancelled when `cancelled`
  // turns true while it waits (checked every 100 ms).
  Result<Hold> Acquire(const Key& key, Holder me, const std::function<void(const Holder&)>& waiting,
                       const std::function<bool()>& cancelled);
  // What is held now, by whom.
  std::vector<std::pair<Key, Holder>> Held() const;

 private:
  void Release(const Key& key);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Holder> held_;  // GUARDED_BY(mu_)
};

}  // namespace sluice
