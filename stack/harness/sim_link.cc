#include "stack/harness/sim_link.h"

#include <algorithm>
#include <cstring>

#include "stack/driver/checksum_offload.h"
#include "stack/harness/pcap.h"
#include "stack/net/ethernet.h"

namespace shunt {

SimPort::SimPort(SimLink& link, size_t index, MacAddr mac, uint32_t mtu)
    : link_(link), index_(index) {
  info_.name = "sim" + std::to_string(index);
  info_.mac = mac;
  info_.mtu = mtu;
  info_.rx_checksum = info_.tx_checksum = link.config().checksum_offload;
}

size_t SimPort::rx_burst(PacketPtr* out, size_t max) {
  size_t n = 0;
  while (n < max && !rx_.empty()) out[n++] = rx_.pop();
  return n;
}

uint64_t SimPort::link_rate_bps() const { return link_.config().rate_bps; }

size_t SimPort::tx_burst(PacketPtr* frames, size_t n) {
  StackObserver* o = link_.observer_;
  if (o) o->device_begin(index_);
  size_t sent = 0;
  for (size_t i = 0; i < n; ++i) {
    if (frames[i] && link_.transmit(*this, *frames[i])) ++sent;
  }
  if (o) o->device_end(index_);
  return sent;
}

SimLink::SimLink(VirtualClock& clock, const LinkConfig& config)
    : clock_(clock),
      config_(config),
      random_(config.seed),
      pool_(std::max<size_t>(config.max_in_flight, 1)),
      tx_frames_(counters_.add("link.tx_frames")),
      tx_bytes_(counters_.add("link.tx_bytes")),
      rx_frames_(counters_.add("link.rx_frames")),
      rx_bytes_(counters_.add("link.rx_bytes")),
      drop_mtu_(counters_.add("link.drop.mtu")),
      drop_oversize_(counters_.add("link.drop.oversize")),
      drop_loss_(counters_.add("link.drop.loss")),
      drop_in_flight_(counters_.add("link.drop.in_flight_limit")),
      drop_rx_no_buffer_(counters_.add("link.drop.rx_no_buffer")),
      drop_rx_ring_full_(counters_.add("link.drop.rx_ring_full")),
      drop_egress_queue_(counters_.add("link.drop.egress_queue")),
      duplicated_(counters_.add("link.duplicated")),
      reordered_(counters_.add("link.reordered")),
      corrupted_(counters_.add("link.corrupted")) {
  events_.reserve(pool_.capacity());
}

SimLink::~SimLink() {
  for (auto& e : events_) pool_.release(e.frame);
  events_.clear();
  ports_.clear();  // their rx queues hold buffers of the stacks' pools, released here
}

SimPort& SimLink::add_port(MacAddr mac) {
  ports_.push_back(std::make_unique<SimPort>(*this, ports_.size(), mac, config_.mtu));
  SimPort& p = *ports_.back();
  // Every waiting frame holds one of pool_'s buffers, so no more than that can ever wait.
  if (config_.egress_queue_frames > 0) {
    p.egress_waiting_.assign(std::min(config_.egress_queue_frames, pool_.capacity()), 0);
  }
  return p;
}

Nanos SimLink::serialization_time(size_t len) const {
  if (config_.rate_bps == 0) return 0;
  uint64_t bits = uint64_t(std::max(len, kMinFrame) + kWireOverhead) * 8;
  // Rounded up: a frame never arrives before its last bit could have.
  return Nanos((bits * uint64_t(kSecond) + config_.rate_bps - 1) / config_.rate_bps);
}

bool SimLink::transmit(SimPort& from, const PacketBuf& frame) {
  const Nanos now = clock_.now();
  const size_t len = frame.chain_size();
  ++activity_;
  // The MTU counts the IP packet; the Ethernet header (and any VLAN tags) come on top.
  size_t limit = config_.mtu + kEthHeaderLen;
  if (frame.size() >= 14) {
    uint16_t type = load16(frame.data() + 12);
    if (type == kEtherTypeVlan || type == kEtherTypeQinQ) limit += 4;
  }
  if (len > limit) {
    ++drop_mtu_;
    return false;
  }
  if (len > PacketBuf::kCapacity) {
    ++drop_oversize_;
    return false;
  }
  PacketPtr copy = pool_.alloc(0);
  if (!copy) {
    ++drop_in_flight_;
    return false;
  }
  for (const PacketBuf* b = &frame; b; b = b->chain) copy->append(b->bytes());
  if (frame.flags & PacketBuf::kTxChecksumMask) fill_offloaded_checksums(*copy, frame.flags);
  ++tx_frames_;
  tx_bytes_.inc(len);
  if (pcap_) pcap_->write(now, *copy);

  // Frames from one port leave one after the other at the link rate.
  Nanos start = std::max(now, from.tx_free_at_);
  from.tx_free_at_ = start + serialization_time(len);
  // Through a switch, the frame reaches it as its first bit does (cut-through); its serialization
  // onto the receiver's downlink and the delay are added there.
  Nanos arrival = config_.egress_queue_frames > 0 ? start : from.tx_free_at_ + config_.delay;

  // Impairments, drawn in a fixed order per frame so a seed gives one outcome.
  if (random_.chance(config_.loss)) {
    ++drop_loss_;
    return true;  // it left the port; the wire lost it
  }
  if (random_.chance(config_.corrupt) && copy->size()) {
    uint64_t bit = random_.below(copy->size() * 8);
    copy->data()[bit / 8] ^= uint8_t(1u << (bit % 8));
    ++corrupted_;
  }
  bool dup = random_.chance(config_.duplicate);
  if (random_.chance(config_.reorder)) {
    arrival += config_.reorder_delay;
    ++reordered_;
  }
  if (dup) {
    PacketPtr twin = pool_.clone(*copy);
    if (twin) {
      ++duplicated_;
      schedule(arrival, copy.release(), uint32_t(from.index_));
      schedule(arrival, twin.release(), uint32_t(from.index_));
      return true;
    }
    ++drop_in_flight_;
  }
  schedule(arrival, copy.release(), uint32_t(from.index_));
  return true;
}

void SimLink::schedule(Nanos at, PacketBuf* frame, uint32_t from, uint32_t to) {
  events_.push_back(Event{at, seq_++, frame, from, to});
  std::push_heap(events_.begin(), events_.end(), Later{});
}

size_t SimLink::deliver_due() {
  const Nanos now = clock_.now();
  size_t n = 0;
  while (!events_.empty() && events_.front().at <= now) {
    std::pop_heap(events_.begin(), events_.end(), Later{});
    Event e = events_.back();
    events_.pop_back();
    if (config_.egress_queue_frames == 0) {
      deliver(*e.frame, e.from);
      pool_.release(e.frame);
    } else if (e.to == kAtSwitch) {
      switch_frame(e.frame, e.from);  // may schedule deliveries due now: this loop runs them
    } else {
      deliver_to(*ports_[e.to], *e.frame);
      pool_.release(e.frame);
    }
    ++n;
    ++activity_;
  }
  return n;
}

void SimLink::deliver(PacketBuf& frame, uint32_t from) {
  if (frame.size() >= 6) {
    MacAddr dst = MacAddr::read(frame.data());
    if (!dst.is_multicast()) {
      for (auto& p : ports_) {
        if (p->info_.mac == dst) {
          if (p->index_ != from) deliver_to(*p, frame);
          return;
        }
      }
    }
  }
  // Broadcast, multicast, unknown unicast (and runts): flooded; stacks drop what is not theirs.
  for (auto& p : ports_) {
    if (p->index_ != from) deliver_to(*p, frame);
  }
}

void SimLink::switch_frame(PacketBuf* frame, uint32_t from) {
  const Nanos now = clock_.now();
  if (frame->size() >= 6) {
    MacAddr dst = MacAddr::read(frame->data());
    if (!dst.is_multicast()) {
      for (auto& p : ports_) {
        if (p->info_.mac == dst) {
          if (p->index_ == from) {
            pool_.release(frame);
          } else if (!egress_has_room(*p, now)) {
            ++drop_egress_queue_;
            pool_.release(frame);
          } else {
            egress_enqueue(*p, frame, from, now);
          }
          return;
        }
      }
    }
  }
  // Flooded (as deliver()) into each other port's queue: a copy for every receiver but the last,
  // which takes the frame itself.
  SimPort* last = nullptr;
  for (auto& p : ports_) {
    if (p->index_ == from) continue;
    if (!egress_has_room(*p, now)) {
      ++drop_egress_queue_;
      continue;
    }
    if (last) {
      if (PacketPtr copy = pool_.clone(*frame)) {
        egress_enqueue(*last, copy.release(), from, now);
      } else {
        ++drop_in_flight_;
      }
    }
    last = p.get();
  }
  if (last) {
    egress_enqueue(*last, frame, from, now);
  } else {
    pool_.release(frame);
  }
}

bool SimLink::egress_has_room(SimPort& to, Nanos now) {
  const size_t ring = to.egress_waiting_.size();
  // Waiting frames start in order: those whose start has come are on the downlink or gone.
  while (to.egress_count_ > 0 && to.egress_waiting_[to.egress_head_] <= now) {
    to.egress_head_ = (to.egress_head_ + 1) % ring;
    --to.egress_count_;
  }
  return to.egress_count_ < ring;
}

void SimLink::egress_enqueue(SimPort& to, PacketBuf* frame, uint32_t from, Nanos now) {
  // One frame after the other on the downlink, each at the link rate.
  const Nanos start = std::max(now, to.down_free_at_);
  to.down_free_at_ = start + serialization_time(frame->size());
  if (start > now) {  // it waits (egress_has_room() made room for it)
    const size_t ring = to.egress_waiting_.size();
    to.egress_waiting_[(to.egress_head_ + to.egress_count_) % ring] = start;
    ++to.egress_count_;
  }
  schedule(to.down_free_at_ + config_.delay, frame, from, uint32_t(to.index_));
}

void SimLink::deliver_to(SimPort& to, const PacketBuf& frame) {
  if (to.rx_.count() >= config_.rx_ring) {
    ++drop_rx_ring_full_;
    return;
  }
  BufferPool* pool = to.pool_;
  PacketPtr p = pool ? pool->alloc(0) : PacketPtr();
  if (!p) {
    ++drop_rx_no_buffer_;
    return;
  }
  p->append(frame.bytes());
  if (to.info_.rx_checksum) p->flags = verify_checksums(*p);
  ++rx_frames_;
  rx_bytes_.inc(frame.size());
  to.rx_.push(std::move(p));
}

}  // namespace shunt
