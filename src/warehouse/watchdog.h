// A statement timeout for DuckDB, which has none of its own: while a
// Watchdog is alive and `seconds` pass, the session's running statement is
// interrupted. Destruction stops the wait. One per statement (or task);
// thread-safe.
//
// Every Watchdog of the process shares one timer thread, started at the
// first timeout and kept: a read of a millisecond must not pay for
// starting a thread (the dataset API made one per request).
#pragma once

#include <cstdint>

#include "warehouse/warehouse.h"

namespace sluice {

class Watchdog {
 public:
  // seconds <= 0: no timeout (nothing is registered).
  Watchdog(WarehouseSession* session, int64_t seconds);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // True once the timeout interrupted the session.
  bool fired() const;

 private:
  uint64_t id_ = 0;  // 0: not registered
};

}  // namespace sluice
