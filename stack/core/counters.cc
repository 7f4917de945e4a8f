#include "stack/core/counters.h"

namespace shunt {

Counter& Counters::add(std::string_view name) {
  for (auto& e : entries_) {
    if (e.name == name) return e.counter;
  }
  entries_.push_back(Entry{std::string(name), Counter{}});
  return entries_.back().counter;
}

uint64_t Counters::get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return e.counter.value;
  }
  return 0;
}

uint64_t Counters::sum(std::string_view prefix) const {
  uint64_t s = 0;
  for (const auto& e : entries_) {
    if (std::string_view(e.name).substr(0, prefix.size()) == prefix) s += e.counter.value;
  }
  return s;
}

std::string Counters::dump(bool nonzero_only) const {
  std::string out;
  for (const auto& e : entries_) {
    if (nonzero_only && e.counter.value == 0) continue;
    out += e.name;
    out += ' ';
    out += std::to_string(e.counter.value);
    out += '\n';
  }
  return out;
}

}  // namespace shunt
