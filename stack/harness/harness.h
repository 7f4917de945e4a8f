// The virtual-time harness: N stacks on one SimLink, driven by one VirtualClock. Tests, the demo
// and the benchmark use it. The loop repeatedly finds the earliest of (the next delivery on the
// link, each stack's next poll deadline), moves the clock there, delivers due frames and polls
// the stacks that have work. When nothing is pending it jumps straight to the limit: it never
// spins.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/harness/pcap.h"
#include "stack/harness/sim_link.h"
#include "stack/net/addr.h"

namespace shunt {

class Stack;

// A NIC between a stack and its SimLink port that has timed work of its own: the simulated
// ConnectX (nicmodel/) behind the mlx5 driver. The stack drives device(); the NIC drains the
// port's arrivals and sends onto it from run_due(), which the harness calls at next_event().
class HarnessNic {
 public:
  virtual ~HarnessNic() = default;
  virtual Device& device() = 0;
  // The earliest time the NIC has work (arrivals waiting at the port count as now); kNever: none.
  virtual Nanos next_event() const = 0;
  // Does everything due at or before `now`; true if the stack has something new to look at
  // (a completion was written), so the harness polls it.
  virtual bool run_due(Nanos now) = 0;
  // Grows with every piece of work done (the harness's progress measure).
  virtual uint64_t activity() const = 0;
};

// Makes a HarnessNic for a stack on `port`; null with `error` set when it cannot.
using HarnessNicFactory = std::function<std::unique_ptr<HarnessNic>(SimPort& port, VirtualClock& clock,
                                                                     const Config& config, std::string& error)>;
// Registers the NIC kind `kind` for HarnessOptions::nic (nicmodel/ registers "mlx5sim").
void register_harness_nic(const std::string& kind, HarnessNicFactory factory);
// SHUNT_DEVICE, or "sim" when it is unset (so SHUNT_DEVICE=mlx5sim runs any harness-based test
// or workload over the modelled NICs). The Harness refuses a kind nobody registered.
std::string default_harness_nic();

struct HarnessOptions {
  size_t stacks = 2;
  LinkConfig link;
  // Every stack's configuration; stack i gets seed config.seed + i. config.pcap (SHUNT_PCAP)
  // records the link.
  Config config;
  // Give stack i (counting from 1 as N) 10.0.0.N/24 and fd00::N/64.
  bool add_addresses = true;
  // What each stack drives: "sim" (its SimPort directly) or a registered HarnessNic kind.
  std::string nic = default_harness_nic();
};

class Harness {
 public:
  explicit Harness(const HarnessOptions& options = HarnessOptions{});
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  VirtualClock& clock() { return clock_; }
  Nanos now() const { return clock_.now(); }
  SimLink& link() { return *link_; }
  size_t size() const { return stacks_.size(); }
  Stack& stack(size_t i) { return *stacks_[i]; }
  SimPort& port(size_t i) { return link_->port(i); }
  // Stack i's NIC between it and its port, or null when the stack drives the port directly.
  HarnessNic* nic(size_t i) { return nics_[i].get(); }

  // The defaults given to stack i (0-based): 02:00:00:00:00:NN, 10.0.0.N, fd00::N with N = i + 1.
  static MacAddr mac_of(size_t i);
  static Ipv4Addr ipv4_of(size_t i);
  static Ipv6Addr ipv6_of(size_t i);

  // No frame is on the link and no NIC between a stack and the link has work pending: whatever
  // the stacks sent has arrived.
  bool wire_idle() const;

  // Runs until virtual time `t` (the clock ends at t, or stays if it is already later).
  void run_until(Nanos t);
  void run_for(Nanos d) { run_until(now() + d); }
  // Runs until `done()` holds (checked before and after every step) or `timeout` of virtual
  // time has passed; returns done().
  bool run_until(const std::function<bool()>& done, Nanos timeout);
  // Polls every stack once at the current time (after code outside the loop used a stack).
  void poll_all();

  // The link's pcap, if config.pcap named a file (or open_pcap() was called).
  PcapWriter& pcap() { return pcap_; }
  bool open_pcap(const std::string& path);

  // Tells `o` (or nobody, with nullptr) about every entry into a stack; see StackObserver.
  void set_observer(StackObserver* o) {
    observer_ = o;
    link_->set_observer(o);
  }
  StackObserver* observer() const { return observer_; }
  // Steps in a row that moved neither the clock nor any frame before the loop gives up (a
  // stack that keeps asking to be polled now); counted in stalls(). A link without delay or
  // rate makes progress without time passing: frames moving count as progress.
  static constexpr uint64_t kMaxStepsWithoutProgress = 1'000'000;
  uint64_t stalls() const { return stalls_; }
  uint64_t polls() const { return polls_; }

 private:
  // Runs the earliest pending work at or before `limit`; false if there is none.
  bool step(Nanos limit);
  // After a step: false (and a stall counted) when too many steps in a row did nothing.
  bool progressed(Nanos before, uint64_t& activity, uint64_t& idle);
  uint64_t activity() const;
  void poll(size_t i);

  VirtualClock clock_;
  PcapWriter pcap_;
  std::unique_ptr<SimLink> link_;
  std::vector<std::unique_ptr<HarnessNic>> nics_;  // one per stack; null: the SimPort itself
  std::vector<std::unique_ptr<Stack>> stacks_;
  std::vector<Nanos> deadline_;  // each stack's next poll time
  StackObserver* observer_ = nullptr;
  uint64_t stalls_ = 0;
  uint64_t polls_ = 0;
};

}  // namespace shunt
