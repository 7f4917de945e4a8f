#include <boost/test/unit_test.hpp>
#include <memory>
#include <vector>

#include "stack/core/timer_wheel.h"

using namespace shunt;

BOOST_AUTO_TEST_CASE(timers_fire_in_deadline_order_and_never_early) {
  TimerWheel w(kMilli, 8);
  std::vector<int> fired;
  Timer a([&](Nanos) { fired.push_back(1); });
  Timer b([&](Nanos) { fired.push_back(2); });
  Timer c([&](Nanos) { fired.push_back(3); });
  w.arm(a, 5 * kMilli);
  w.arm(b, 2 * kMilli);
  w.arm(c, 50 * kMilli);  // beyond one turn of the wheel
  BOOST_TEST(w.next_deadline() == 2 * kMilli);
  w.advance(2 * kMilli - 1);
  BOOST_TEST(fired.empty());
  w.advance(2 * kMilli);
  BOOST_TEST(fired == std::vector<int>({2}));
  w.advance(10 * kMilli);
  BOOST_TEST(fired == std::vector<int>({2, 1}));
  BOOST_TEST(w.next_deadline() == 50 * kMilli);
  w.advance(49 * kMilli);
  BOOST_TEST(fired.size() == 2u);
  w.advance(50 * kMilli);
  BOOST_TEST(fired == std::vector<int>({2, 1, 3}));
  BOOST_TEST(w.next_deadline() == kNever);
}

BOOST_AUTO_TEST_CASE(cancelled_and_rearmed_timers) {
  TimerWheel w(kMilli, 16);
  int n = 0;
  Timer a([&](Nanos) { ++n; });
  w.arm(a, 3 * kMilli);
  a.cancel();
  BOOST_TEST(!a.armed());
  BOOST_TEST(w.next_deadline() == kNever);
  w.arm(a, 4 * kMilli);
  w.arm(a, 7 * kMilli);
  w.advance(5 * kMilli);
  BOOST_TEST(n == 0);
  w.advance(7 * kMilli);
  BOOST_TEST(n == 1);
}

BOOST_AUTO_TEST_CASE(callback_may_rearm_itself) {
  TimerWheel w(kMilli, 4);
  int n = 0;
  Timer a;
  a.set_callback([&](Nanos now) {
    if (++n < 3) w.arm(a, now + 10 * kMilli);
  });
  w.arm(a, kMilli);
  for (Nanos t = 0; t <= 100 * kMilli; t += kMilli) w.advance(t);
  BOOST_TEST(n == 3);
}

BOOST_AUTO_TEST_CASE(a_timer_armed_in_the_past_fires_at_the_next_advance) {
  TimerWheel w(kMilli, 8);
  w.advance(100 * kMilli);
  int n = 0;
  Timer a([&](Nanos) { ++n; });
  w.arm(a, 10 * kMilli);
  w.advance(100 * kMilli);
  BOOST_TEST(n == 1);
  BOOST_TEST(!a.armed());
}

BOOST_AUTO_TEST_CASE(a_destroyed_timer_is_cancelled) {
  TimerWheel w(kMilli, 8);
  int n = 0;
  {
    Timer a([&](Nanos) { ++n; });
    w.arm(a, 3 * kMilli);
    BOOST_TEST(w.armed_count() == 1u);
  }
  BOOST_TEST(w.armed_count() == 0u);
  BOOST_TEST(w.next_deadline() == kNever);
  w.advance(10 * kMilli);
  BOOST_TEST(n == 0);
}

BOOST_AUTO_TEST_CASE(timers_in_one_slot_but_different_turns_fire_on_their_own_turn) {
  TimerWheel w(kMilli, 4);
  std::vector<Nanos> fired;
  Timer a([&](Nanos now) { fired.push_back(now); });
  Timer b([&](Nanos now) { fired.push_back(now); });
  w.arm(a, 1 * kMilli);
  w.arm(b, 9 * kMilli);  // same slot, two turns later
  w.advance(1 * kMilli);
  BOOST_TEST(fired.size() == 1u);
  BOOST_TEST(w.next_deadline() == 9 * kMilli);
  w.advance(8 * kMilli);
  BOOST_TEST(fired.size() == 1u);
  w.advance(9 * kMilli);
  BOOST_TEST(fired.size() == 2u);
}

BOOST_AUTO_TEST_CASE(many_timers_fire_exactly_once_each_after_a_long_jump) {
  TimerWheel w(100 * kMicro, 64);
  std::vector<int> count(500, 0);
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < 500; ++i) {
    timers.push_back(std::make_unique<Timer>([&count, i](Nanos) { ++count[size_t(i)]; }));
    w.arm(*timers.back(), Nanos(i) * 37 * kMicro + kMicro);
  }
  BOOST_TEST(w.armed_count() == 500u);
  w.advance(kSecond);
  BOOST_TEST(w.armed_count() == 0u);
  for (int c : count) BOOST_TEST(c == 1);
}
