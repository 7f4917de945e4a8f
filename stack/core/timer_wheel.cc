#include "stack/core/timer_wheel.h"

#include <algorithm>

namespace shunt {

void Timer::cancel() {
  if (wheel_) wheel_->unlink(*this);
}

TimerWheel::TimerWheel(Nanos tick, size_t slots) : tick_(tick > 0 ? tick : 1), slots_(slots ? slots : 1, nullptr) {}

TimerWheel::~TimerWheel() {
  for (auto& head : slots_) {
    while (head) unlink(*head);
  }
}

void TimerWheel::unlink(Timer& t) {
  if (t.prev_) {
    t.prev_->next_ = t.next_;
  } else {
    slots_[slot_of(t.deadline_)] = t.next_;
  }
  if (t.next_) t.next_->prev_ = t.prev_;
  t.prev_ = t.next_ = nullptr;
  if (t.armed_prev_) {
    t.armed_prev_->armed_next_ = t.armed_next_;
  } else {
    armed_ = t.armed_next_;
  }
  if (t.armed_next_) t.armed_next_->armed_prev_ = t.armed_prev_;
  t.armed_prev_ = t.armed_next_ = nullptr;
  t.wheel_ = nullptr;
  --count_;
  if (t.deadline_ <= cached_next_) cache_valid_ = false;
}

void TimerWheel::arm(Timer& t, Nanos deadline) {
  if (t.wheel_) unlink(t);
  if (deadline < 0) deadline = 0;
  // A deadline already past goes in the current slot, so the next advance() fires it (a slot
  // behind the walk would never be visited, and next_deadline() would keep reporting it).
  if (deadline < last_) deadline = last_;
  t.deadline_ = deadline;
  t.wheel_ = this;
  Timer*& head = slots_[slot_of(deadline)];
  t.prev_ = nullptr;
  t.next_ = head;
  if (head) head->prev_ = &t;
  head = &t;
  t.armed_prev_ = nullptr;
  t.armed_next_ = armed_;
  if (armed_) armed_->armed_prev_ = &t;
  armed_ = &t;
  ++count_;
  if (cache_valid_ && deadline < cached_next_) cached_next_ = deadline;
}

void TimerWheel::advance(Nanos now) {
  if (now < last_) now = last_;
  const Nanos first_tick = last_ / tick_;
  const Nanos last_tick = now / tick_;
  const Nanos n = Nanos(slots_.size());
  const Nanos span = std::min(last_tick - first_tick + 1, n);
  last_ = now;
  if (count_ == 0 || next_deadline() > now) return;
  for (Nanos i = 0; i < span; ++i) {
    Timer*& head = slots_[size_t((first_tick + i) % n)];
    // Restart the walk after each callback: it may arm or cancel any timer.
    for (bool fired = true; fired;) {
      fired = false;
      for (Timer* t = head; t; t = t->next_) {
        if (t->deadline_ <= now) {
          unlink(*t);
          if (t->cb_) t->cb_(now);
          fired = true;
          break;
        }
      }
    }
  }
}

Nanos TimerWheel::next_deadline() const {
  if (count_ == 0) return kNever;
  if (cache_valid_) return cached_next_;
  Nanos best = kNever;
  for (Timer* t = armed_; t; t = t->armed_next_) best = std::min(best, t->deadline_);
  cached_next_ = best;
  cache_valid_ = true;
  return best;
}

}  // namespace shunt
