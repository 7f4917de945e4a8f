// Injected time. No code in stack/ reads the system clock except MonotonicClock.
#pragma once
#include <cstdint>
#include <limits>

namespace shunt {

// Nanoseconds since an arbitrary epoch.
using Nanos = int64_t;
inline constexpr Nanos kNever = std::numeric_limits<Nanos>::max();
inline constexpr Nanos kMicro = 1'000;
inline constexpr Nanos kMilli = 1'000'000;
inline constexpr Nanos kSecond = 1'000'000'000;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Nanos now() const = 0;
};

// Test and simulation time: moves only when told to.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(Nanos start = 0) : now_(start) {}
  Nanos now() const override { return now_; }
  void advance(Nanos d) { now_ += d; }
  // Time never goes backwards; an earlier value is ignored.
  void advance_to(Nanos t) {
    if (t > now_) now_ = t;
  }

 private:
  Nanos now_;
};

// Real time from CLOCK_MONOTONIC.
class MonotonicClock final : public Clock {
 public:
  Nanos now() const override;
};

}  // namespace shunt
