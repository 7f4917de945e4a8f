// The virtual-time link: an in-memory Ethernet segment joining N ports, one per stack. It is a
// switch that knows every port's MAC: a unicast frame goes to the port that owns its destination,
// broadcast, multicast and unknown destinations are flooded to every other port. Each sending
// port serializes its frames at the link rate, one behind the other; then the frame travels for
// the one-way delay, and seeded impairments (loss, duplication, reordering, corruption) apply.
// Nothing limits what arrives at a port, unless LinkConfig::egress_queue_frames makes the link a
// switch with an egress queue per port: then the frames to a port are serialized onto its
// downlink one after the other at the link rate, and a frame that finds the port's queue full is
// dropped (link.drop.egress_queue), as at a real switch port under incast.
// Events are ordered by (time, insertion sequence), so runs are exactly repeatable.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/core/counters.h"
#include "stack/core/random.h"
#include "stack/driver/device.h"

namespace shunt {

class PcapWriter;
class SimLink;

// Told whenever the harness (or a workload such as UdpPingPong) enters and leaves stack i:
// around every Stack::poll() and socket call. The benchmark counts each side's own work with it.
// Inside such a call, the stack may hand frames to its SimPort: the link's work on them (copy
// onto the wire, scheduling) is the NIC's and the wire's, not the stack's, and is bracketed by
// device_begin()/device_end().
class StackObserver {
 public:
  virtual ~StackObserver() = default;
  virtual void enter(size_t stack) = 0;
  virtual void leave(size_t stack) = 0;
  virtual void device_begin(size_t /*stack*/) {}
  virtual void device_end(size_t /*stack*/) {}
};

// Brackets a call into stack i for an observer (none: does nothing).
struct StackScope {
  StackObserver* o;
  size_t i;
  StackScope(StackObserver* obs, size_t stack) : o(obs), i(stack) {
    if (o) o->enter(i);
  }
  ~StackScope() {
    if (o) o->leave(i);
  }
  StackScope(const StackScope&) = delete;
  StackScope& operator=(const StackScope&) = delete;
};

struct LinkConfig {
  Nanos delay = kMicro;                // one-way propagation delay
  uint64_t rate_bps = 10'000'000'000;  // serialization rate; 0 = frames take no time
  uint32_t mtu = 1500;                 // largest IP packet; longer frames are dropped
  double loss = 0;                     // probability a frame is lost
  double duplicate = 0;                // probability a frame arrives twice
  double reorder = 0;                  // probability a frame is held back by reorder_delay
  double corrupt = 0;                  // probability one random bit of a frame is flipped
  Nanos reorder_delay = 20 * kMicro;   // extra delay of a reordered frame, so others overtake
  uint64_t seed = 1;                   // of the impairments
  size_t max_in_flight = 4096;         // frames on the wire at once; more are dropped
  size_t rx_ring = 1024;               // frames waiting at a port for rx_burst(); more are dropped
  // The switch model: frames waiting at each port's egress, behind the one on its downlink.
  // 0 = no switch (frames to a port arrive however many senders send at once: the aggregate can
  // exceed the link rate). > 0: a frame reaches the switch as its sender starts serializing it
  // (cut-through, so an uncontended frame arrives exactly when it would with 0), waits for the
  // receiver's downlink, is serialized onto it at the link rate and then travels for `delay`;
  // a frame that finds this many frames waiting is dropped (drop-tail). A broadcast or multicast
  // frame goes through each receiver's queue. No effect when rate_bps is 0.
  size_t egress_queue_frames = 0;
  // The ports offer IPv4 header and TCP/UDP checksum offload on send and receive, as a ConnectX
  // does: the port fills in checksums the stack left to it, and marks received frames whose
  // checksums it verified.
  bool checksum_offload = true;
};

// What a real NIC adds around each frame on the wire: preamble and SFD (8), FCS (4) and the
// inter-frame gap (12). Frames shorter than 60 bytes are padded on the wire.
inline constexpr size_t kWireOverhead = 24;
inline constexpr size_t kMinFrame = 60;

// One stack's NIC on the link.
class SimPort final : public Device {
 public:
  SimPort(SimLink& link, size_t index, MacAddr mac, uint32_t mtu);
  const DeviceInfo& info() const override { return info_; }
  size_t rx_burst(PacketPtr* out, size_t max) override;
  size_t tx_burst(PacketPtr* frames, size_t n) override;

  size_t index() const { return index_; }
  // Whether the port fills and verifies checksums itself (LinkConfig::checksum_offload). A NIC
  // model between the port and its stack does that work, so it turns the port's off.
  void set_checksum_offload(bool on) { info_.rx_checksum = info_.tx_checksum = on; }
  // The link's serialization rate (bit/s; 0: frames take no time).
  uint64_t link_rate_bps() const;
  // Frames are waiting for rx_burst().
  bool rx_pending() const { return !rx_.empty(); }
  size_t rx_queued() const { return rx_.count(); }
  // Returns every waiting frame to its pool (before the stack that owns the pool goes away).
  void clear_rx() { rx_.clear(); }

 private:
  friend class SimLink;
  SimLink& link_;
  size_t index_;
  DeviceInfo info_;
  PacketQueue rx_;        // buffers from the attached pool, waiting for rx_burst()
  Nanos tx_free_at_ = 0;  // when the port finishes serializing what it has queued
  // The switch's egress queue to this port (LinkConfig::egress_queue_frames > 0): when its
  // downlink is free, and a ring of the start times of the frames waiting for the downlink
  // (sized when the port is added; a frame leaves the ring once its start time has come).
  Nanos down_free_at_ = 0;
  std::vector<Nanos> egress_waiting_;
  size_t egress_head_ = 0;
  size_t egress_count_ = 0;
};

class SimLink {
 public:
  SimLink(VirtualClock& clock, const LinkConfig& config);
  ~SimLink();
  SimLink(const SimLink&) = delete;
  SimLink& operator=(const SimLink&) = delete;

  // Adds a port; its reference stays valid for the life of the link.
  SimPort& add_port(MacAddr mac);
  size_t port_count() const { return ports_.size(); }
  SimPort& port(size_t i) { return *ports_[i]; }

  // The time of the next delivery, or kNever.
  Nanos next_event() const { return events_.empty() ? kNever : events_.front().at; }
  // Delivers every frame due at or before the clock's now; returns how many events ran.
  size_t deliver_due();
  size_t in_flight() const { return events_.size(); }
  // Grows with every frame handed to the link and every delivery: a measure of progress.
  uint64_t activity() const { return activity_; }

  // Records every frame a port hands to the link, stamped with the time it was handed over
  // (before impairments: the pcap shows what the stacks sent).
  void set_pcap(PcapWriter* w) { pcap_ = w; }
  void set_observer(StackObserver* o) { observer_ = o; }
  const LinkConfig& config() const { return config_; }
  // Loss probability from now on: a test cuts the link (1) or heals it mid-run.
  void set_loss(double p) { config_.loss = p; }
  VirtualClock& clock() { return clock_; }
  // "link.*" counters: tx_frames/tx_bytes (handed to the link), rx_frames/rx_bytes (delivered to
  // a port), drop.<reason>, duplicated, reordered, corrupted.
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }

  // Serialization time of a frame of `len` bytes at the link rate.
  Nanos serialization_time(size_t len) const;

 private:
  friend class SimPort;
  struct Event {
    Nanos at;
    uint64_t seq;
    PacketBuf* frame;  // from pool_, owned by the event
    uint32_t from;
    uint32_t to;  // with a switch: the port it is delivered to, or kAtSwitch (its arrival there)
  };
  static constexpr uint32_t kAtSwitch = UINT32_MAX;
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  // Takes a frame from `from`; false if it never got onto the wire (MTU, no room).
  bool transmit(SimPort& from, const PacketBuf& frame);
  void schedule(Nanos at, PacketBuf* frame, uint32_t from, uint32_t to = kAtSwitch);
  void deliver(PacketBuf& frame, uint32_t from);
  // The switch model: `frame` (owned) reached the switch now; it goes into the egress queue of
  // each port it is for, or is dropped there.
  void switch_frame(PacketBuf* frame, uint32_t from);
  // Whether `to`'s egress queue has room for one more frame at `now` (forgets frames that have
  // started out on the downlink).
  bool egress_has_room(SimPort& to, Nanos now);
  // Queues `frame` (owned) behind what `to`'s downlink already carries; schedules its delivery.
  void egress_enqueue(SimPort& to, PacketBuf* frame, uint32_t from, Nanos now);
  void deliver_to(SimPort& to, const PacketBuf& frame);

  VirtualClock& clock_;
  LinkConfig config_;
  Random random_;
  BufferPool pool_;  // frames in flight
  std::vector<std::unique_ptr<SimPort>> ports_;
  std::vector<Event> events_;  // a heap by Later
  uint64_t seq_ = 0;
  uint64_t activity_ = 0;
  PcapWriter* pcap_ = nullptr;
  StackObserver* observer_ = nullptr;
  Counters counters_;
  Counter& tx_frames_;
  Counter& tx_bytes_;
  Counter& rx_frames_;
  Counter& rx_bytes_;
  Counter& drop_mtu_;
  Counter& drop_oversize_;
  Counter& drop_loss_;
  Counter& drop_in_flight_;
  Counter& drop_rx_no_buffer_;
  Counter& drop_rx_ring_full_;
  Counter& drop_egress_queue_;
  Counter& duplicated_;
  Counter& reordered_;
  Counter& corrupted_;
};

}  // namespace shunt
