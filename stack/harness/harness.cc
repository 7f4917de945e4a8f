#include "stack/harness/harness.h"

#include <algorithm>

#include "stack/core/log.h"
#include "stack/net/stack.h"

namespace shunt {

MacAddr Harness::mac_of(size_t i) {
  return MacAddr{{0x02, 0, 0, 0, uint8_t((i + 1) >> 8), uint8_t(i + 1)}};
}

Ipv4Addr Harness::ipv4_of(size_t i) { return Ipv4Addr{(10u << 24) | uint32_t(i + 1)}; }

Ipv6Addr Harness::ipv6_of(size_t i) {
  Ipv6Addr a;
  a.b[0] = 0xfd;
  a.b[14] = uint8_t((i + 1) >> 8);
  a.b[15] = uint8_t(i + 1);
  return a;
}

Harness::Harness(const HarnessOptions& options) {
  link_ = std::make_unique<SimLink>(clock_, options.link);
  if (!options.config.pcap.empty() && !open_pcap(options.config.pcap)) {
    SHUNT_WARN("SHUNT_PCAP: %s", pcap_.error().c_str());
  }
  for (size_t i = 0; i < options.stacks; ++i) {
    SimPort& port = link_->add_port(mac_of(i));
    Config c = options.config;
    c.seed = options.config.seed + int64_t(i);
    stacks_.push_back(std::make_unique<Stack>(port, clock_, c));
    deadline_.push_back(clock_.now());
  }
  if (options.add_addresses) {
    for (size_t i = 0; i < stacks_.size(); ++i) {
      stacks_[i]->add_address(ipv4_of(i), 24);
      stacks_[i]->add_address(ipv6_of(i), 64);
    }
  }
}

Harness::~Harness() {
  // Frames waiting at a port belong to that stack's pool: return them while the pools exist.
  for (size_t i = 0; i < link_->port_count(); ++i) link_->port(i).clear_rx();
  stacks_.clear();
  link_.reset();
  pcap_.close();
}

bool Harness::open_pcap(const std::string& path) {
  if (!pcap_.open(path)) return false;
  link_->set_pcap(&pcap_);
  return true;
}

void Harness::poll(size_t i) {
  if (observer_) observer_->enter(i);
  deadline_[i] = stacks_[i]->poll();
  if (observer_) observer_->leave(i);
  ++polls_;
}

void Harness::poll_all() {
  for (size_t i = 0; i < stacks_.size(); ++i) poll(i);
}

bool Harness::step(Nanos limit) {
  Nanos next = link_->next_event();
  for (size_t i = 0; i < stacks_.size(); ++i) {
    // Code outside the loop (the caller, a done() predicate) may have used the stack since its
    // last poll: armed timers, or looped frames back to itself.
    deadline_[i] = std::min(deadline_[i], stacks_[i]->timers().next_deadline());
    if (stacks_[i]->loopback_pending()) deadline_[i] = clock_.now();
    Nanos d = link_->port(i).rx_pending() ? clock_.now() : deadline_[i];
    next = std::min(next, d);
  }
  if (next > limit) return false;
  clock_.advance_to(next);
  const Nanos now = clock_.now();
  link_->deliver_due();
  for (size_t i = 0; i < stacks_.size(); ++i) {
    if (deadline_[i] <= now || link_->port(i).rx_pending()) poll(i);
  }
  return true;
}

bool Harness::progressed(Nanos before, uint64_t& activity, uint64_t& idle) {
  const uint64_t now_activity = link_->activity();
  if (clock_.now() != before || now_activity != activity) {
    activity = now_activity;
    idle = 0;
    return true;
  }
  if (++idle < kMaxStepsWithoutProgress) return true;
  ++stalls_;
  SHUNT_WARN("harness: %llu steps at t=%lld ns moved neither time nor frames; giving up",
             (unsigned long long)idle, (long long)clock_.now());
  return false;
}

void Harness::run_until(Nanos t) {
  uint64_t activity = link_->activity(), idle = 0;
  while (true) {
    Nanos before = clock_.now();
    if (!step(t)) break;
    if (!progressed(before, activity, idle)) return;
  }
  clock_.advance_to(t);
}

bool Harness::run_until(const std::function<bool()>& done, Nanos timeout) {
  const Nanos limit = timeout >= kNever - clock_.now() ? kNever : clock_.now() + timeout;
  uint64_t activity = link_->activity(), idle = 0;
  while (!done()) {
    Nanos before = clock_.now();
    if (!step(limit)) {
      if (limit != kNever) clock_.advance_to(limit);
      return done();
    }
    if (!progressed(before, activity, idle)) return done();
  }
  return true;
}

}  // namespace shunt
