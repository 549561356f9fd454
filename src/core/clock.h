// Time behind an interface so the scheduler, freshness and retries can be
// tested with a fake clock. Timestamps are UTC, microseconds since the epoch.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace sluice {

using Micros = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Micros Now() const override;
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Micros start) : now_(start) {}
  Micros Now() const override { return now_.load(); }
  void Advance(Micros delta) { now_ += delta; }

 private:
  std::atomic<Micros> now_;
};

// "2026-01-02T03:04:05.678Z"
std::string FormatTimestamp(Micros t);
// "2026-01-02"
std::string FormatDate(Micros t);
// Monotonic milliseconds, for durations.
int64_t MonotonicMillis();

}  // namespace sluice
