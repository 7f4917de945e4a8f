// Named counters, registered once at setup and bumped on the hot path through a reference.
// The stats tool enumerates them by name.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace shunt {

struct Counter {
  uint64_t value = 0;
  void inc(uint64_t n = 1) { value += n; }
  Counter& operator++() {
    ++value;
    return *this;
  }
};

class Counters {
 public:
  // Returns the counter called `name`, creating it at zero. References stay valid for the
  // life of this object. Names are dotted: "<layer>.<what>", drops are "<layer>.drop.<reason>".
  Counter& add(std::string_view name);
  // The value of `name`, or 0 if no such counter.
  uint64_t get(std::string_view name) const;
  // Sum of every counter whose name starts with `prefix`.
  uint64_t sum(std::string_view prefix) const;

  struct Entry {
    std::string name;
    Counter counter;
  };
  // Registration order.
  const std::deque<Entry>& entries() const { return entries_; }
  std::string dump(bool nonzero_only = true) const;

 private:
  std::deque<Entry> entries_;  // deque: stable references
};

}  // namespace shunt
