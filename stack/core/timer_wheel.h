// A hashed timer wheel with intrusive timers: arming and cancelling are O(1) and never allocate.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "stack/core/clock.h"

namespace shunt {

class TimerWheel;

// A timer owned by whoever embeds it. The callback is set once, at construction.
class Timer {
 public:
  using Callback = std::function<void(Nanos now)>;
  Timer() = default;
  explicit Timer(Callback cb) : cb_(std::move(cb)) {}
  ~Timer() { cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void set_callback(Callback cb) { cb_ = std::move(cb); }
  bool armed() const { return wheel_ != nullptr; }
  Nanos deadline() const { return deadline_; }
  void cancel();

 private:
  friend class TimerWheel;
  Callback cb_;
  TimerWheel* wheel_ = nullptr;
  Timer* prev_ = nullptr;  // in its slot
  Timer* next_ = nullptr;
  Timer* armed_prev_ = nullptr;  // among all armed timers of the wheel
  Timer* armed_next_ = nullptr;
  Nanos deadline_ = kNever;
};

class TimerWheel {
 public:
  // `tick` is the slot width; timers fire exactly at their deadline or at the first advance()
  // after it, never early.
  explicit TimerWheel(Nanos tick = 100 * kMicro, size_t slots = 1024);
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms (or re-arms) `t` to fire at `deadline`.
  void arm(Timer& t, Nanos deadline);
  // Fires every timer whose deadline is <= now, in deadline order within a slot walk.
  void advance(Nanos now);
  // The earliest armed deadline, or kNever.
  Nanos next_deadline() const;
  size_t armed_count() const { return count_; }

 private:
  friend class Timer;
  void unlink(Timer& t);
  size_t slot_of(Nanos deadline) const { return size_t((deadline / tick_) % Nanos(slots_.size())); }

  Nanos tick_;
  std::vector<Timer*> slots_;
  Nanos last_ = 0;  // time of the last advance()
  size_t count_ = 0;
  // Every armed timer, so that finding the earliest after the earliest was cancelled or moved
  // (a TCP retransmit timer re-armed on each ACK) walks count_ timers, not every slot.
  Timer* armed_ = nullptr;
  mutable Nanos cached_next_ = kNever;
  mutable bool cache_valid_ = true;
};

}  // namespace shunt
