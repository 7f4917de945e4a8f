#include "stack/harness/harness.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

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

namespace {

std::mutex& nic_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, HarnessNicFactory>& nic_kinds() {
  static std::map<std::string, HarnessNicFactory> k;
  return k;
}

HarnessNicFactory nic_factory(const std::string& kind) {
  std::lock_guard lock(nic_mutex());
  auto it = nic_kinds().find(kind);
  return it == nic_kinds().end() ? HarnessNicFactory() : it->second;
}

}  // namespace

void register_harness_nic(const std::string& kind, HarnessNicFactory factory) {
  std::lock_guard lock(nic_mutex());
  nic_kinds()[kind] = std::move(factory);
}

std::string default_harness_nic() {
  const char* env = std::getenv("SHUNT_DEVICE");
  if (!env || !*env) return "sim";
  // An unknown kind is not quietly replaced by "sim": the Harness constructor refuses it, so a
  // run meant to go over a model never silently goes without one.
  return env;
}

Harness::Harness(const HarnessOptions& options) {
  link_ = std::make_unique<SimLink>(clock_, options.link);
  if (!options.config.pcap.empty() && !open_pcap(options.config.pcap)) {
    SHUNT_WARN("SHUNT_PCAP: %s", pcap_.error().c_str());
  }
  HarnessNicFactory factory;
  if (options.nic != "sim") {
    factory = nic_factory(options.nic);
    if (!factory) {
      throw std::invalid_argument("harness: unknown NIC kind '" + options.nic +
                                  "' (SHUNT_DEVICE in the virtual-time harness: sim or mlx5sim)");
    }
  }
  for (size_t i = 0; i < options.stacks; ++i) {
    SimPort& port = link_->add_port(mac_of(i));
    Config c = options.config;
    c.seed = options.config.seed + int64_t(i);
    Device* device = &port;
    nics_.emplace_back();
    if (factory) {
      std::string error;
      nics_.back() = factory(port, clock_, c, error);
      if (!nics_.back()) throw std::runtime_error("harness: " + options.nic + " for stack " + std::to_string(i) + ": " + error);
      device = &nics_.back()->device();
    }
    stacks_.push_back(std::make_unique<Stack>(*device, clock_, c));
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
  nics_.clear();
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
    Nanos d = deadline_[i];
    if (nics_[i]) {
      d = std::min(d, nics_[i]->next_event());
    } else if (link_->port(i).rx_pending()) {
      d = clock_.now();
    }
    next = std::min(next, d);
  }
  if (next > limit) return false;
  clock_.advance_to(next);
  const Nanos now = clock_.now();
  link_->deliver_due();
  for (size_t i = 0; i < stacks_.size(); ++i) {
    bool nic_ran = false;
    if (nics_[i] && nics_[i]->next_event() <= now) {
      // The NIC's work is the device's, not the stack's.
      if (observer_) observer_->device_begin(i);
      nic_ran = nics_[i]->run_due(now);
      if (observer_) observer_->device_end(i);
    }
    if (deadline_[i] <= now || nic_ran || (!nics_[i] && link_->port(i).rx_pending())) poll(i);
  }
  return true;
}

bool Harness::wire_idle() const {
  if (link_->in_flight() != 0) return false;
  for (size_t i = 0; i < nics_.size(); ++i) {
    if (nics_[i] && nics_[i]->next_event() != kNever) return false;
  }
  return true;
}

uint64_t Harness::activity() const {
  uint64_t a = link_->activity();
  for (const auto& n : nics_) {
    if (n) a += n->activity();
  }
  return a;
}

bool Harness::progressed(Nanos before, uint64_t& activity, uint64_t& idle) {
  const uint64_t now_activity = this->activity();
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
  uint64_t activity = this->activity(), idle = 0;
  while (true) {
    Nanos before = clock_.now();
    if (!step(t)) break;
    if (!progressed(before, activity, idle)) return;
  }
  clock_.advance_to(t);
}

bool Harness::run_until(const std::function<bool()>& done, Nanos timeout) {
  const Nanos limit = timeout >= kNever - clock_.now() ? kNever : clock_.now() + timeout;
  uint64_t activity = this->activity(), idle = 0;
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
