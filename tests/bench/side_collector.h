// Per-side instruction counts for the benchmarks: callgrind collects exactly while inside the
// chosen stack, except while the simulated NIC and wire work on frames the stack handed over.
#pragma once
#include <cstddef>
#include <cstdint>

#include "stack/harness/sim_link.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define SHUNT_HAVE_CALLGRIND 1
#else
#define CALLGRIND_TOGGLE_COLLECT
#define SHUNT_HAVE_CALLGRIND 0
#endif

namespace shunt {

// Calls do not nest across stacks, but nesting within one is guarded anyway. Counts how often
// it switched collection on: each switch costs a few instructions of its own, which the
// calibration run measures and the run scripts subtract.
class SideCollector final : public StackObserver {
 public:
  explicit SideCollector(size_t side) : side_(side) {}
  void enter(size_t stack) override {
    if (stack == side_ && depth_++ == 0) on();
  }
  void leave(size_t stack) override {
    if (stack == side_ && --depth_ == 0) CALLGRIND_TOGGLE_COLLECT;
  }
  void device_begin(size_t stack) override {
    if (stack == side_ && depth_ > 0) CALLGRIND_TOGGLE_COLLECT;
  }
  void device_end(size_t stack) override {
    if (stack == side_ && depth_ > 0) on();
  }
  uint64_t switches() const { return switches_; }

 private:
  void on() {
    ++switches_;
    CALLGRIND_TOGGLE_COLLECT;
  }
  size_t side_;
  int depth_ = 0;
  uint64_t switches_ = 0;
};

}  // namespace shunt
