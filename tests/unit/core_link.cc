// The harness link on its own: ports fed with raw frames, no stacks.
#include <algorithm>
#include <bit>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <vector>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/harness/sim_link.h"
#include "stack/net/ethernet.h"

using namespace shunt;

namespace {
MacAddr mac(uint8_t n) { return MacAddr{{0x02, 0, 0, 0, 0, n}}; }

struct LinkFixture {
  explicit LinkFixture(const LinkConfig& cfg, size_t ports = 2, size_t buffers = 256)
      : link(clock, cfg) {
    for (size_t i = 0; i < ports; ++i) {
      pools.push_back(std::make_unique<BufferPool>(buffers));
      SimPort& p = link.add_port(mac(uint8_t(i + 1)));
      p.attach(*pools.back());
    }
  }
  ~LinkFixture() {
    for (size_t i = 0; i < link.port_count(); ++i) link.port(i).clear_rx();
  }
  // Sends one frame of `len` bytes from port `from` to `dst`, tagged with `seq`.
  size_t send(size_t from, MacAddr dst, size_t len, uint32_t seq) {
    PacketPtr f = pools[from]->alloc(0);
    uint8_t* p = f->append(len);
    std::memset(p, 0, len);
    EthRepr::emit(p, dst, mac(uint8_t(from + 1)), 0x88b5);
    if (len >= 18) store32(p + 14, seq);
    return link.port(from).tx_burst(&f, 1);
  }
  // Runs the link until nothing is in flight; returns the frames port `to` received.
  std::vector<std::vector<uint8_t>> drain(size_t to) {
    while (link.next_event() != kNever) {
      clock.advance_to(link.next_event());
      link.deliver_due();
    }
    return take(to);
  }
  std::vector<std::vector<uint8_t>> take(size_t to) {
    std::vector<std::vector<uint8_t>> out;
    PacketPtr rx[32];
    size_t n;
    while ((n = link.port(to).rx_burst(rx, 32)) > 0) {
      for (size_t i = 0; i < n; ++i) {
        BOOST_TEST(rx[i]->pool() == pools[to].get());  // receive buffers come from the port's pool
        out.emplace_back(rx[i]->data(), rx[i]->data() + rx[i]->size());
        rx[i].reset();
      }
    }
    return out;
  }
  uint64_t counter(const char* name) const { return link.counters().get(name); }

  VirtualClock clock;
  SimLink link;
  std::vector<std::unique_ptr<BufferPool>> pools;
};

uint32_t seq_of(const std::vector<uint8_t>& f) { return load32(f.data() + 14); }

// Sends `n` frames one at a time, letting each arrive; returns the sequence numbers received.
std::vector<uint32_t> send_many(const LinkConfig& cfg, uint32_t n) {
  LinkFixture f(cfg);
  std::vector<uint32_t> got;
  for (uint32_t i = 0; i < n; ++i) {
    f.send(0, mac(2), 100, i);
    for (auto& frame : f.drain(1)) got.push_back(seq_of(frame));
  }
  return got;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_frame_arrives_after_serialization_and_delay) {
  LinkConfig cfg;
  cfg.delay = 5 * kMicro;
  cfg.rate_bps = 1'000'000'000;
  LinkFixture f(cfg);
  // 100 bytes + 24 of preamble, FCS and gap = 992 bits = 992 ns at 1 Gbit/s.
  BOOST_TEST(f.link.serialization_time(100) == 992);
  BOOST_TEST(f.link.serialization_time(10) == (60 + 24) * 8);  // padded to the minimum frame
  BOOST_TEST(f.send(0, mac(2), 100, 1) == 1u);
  BOOST_TEST(f.send(0, mac(2), 100, 2) == 1u);  // queues behind the first
  BOOST_TEST(f.link.next_event() == 992 + 5000);
  f.clock.advance_to(992 + 5000);
  f.link.deliver_due();
  auto first = f.take(1);
  BOOST_TEST_REQUIRE(first.size() == 1u);
  BOOST_TEST(seq_of(first[0]) == 1u);
  BOOST_TEST(f.link.next_event() == 2 * 992 + 5000);
  auto second = f.drain(1);
  BOOST_TEST_REQUIRE(second.size() == 1u);
  BOOST_TEST(seq_of(second[0]) == 2u);
  BOOST_TEST(f.link.next_event() == kNever);
  BOOST_TEST(f.counter("link.tx_frames") == 2u);
  BOOST_TEST(f.counter("link.rx_bytes") == 200u);
}

BOOST_AUTO_TEST_CASE(unicast_goes_to_its_owner_and_broadcast_to_every_other_port) {
  LinkConfig cfg;
  LinkFixture f(cfg, 3);
  f.send(0, mac(3), 64, 7);
  BOOST_TEST(f.drain(1).empty());
  BOOST_TEST(f.take(2).size() == 1u);
  f.send(0, MacAddr::broadcast(), 64, 8);
  BOOST_TEST(f.drain(1).size() == 1u);
  BOOST_TEST(f.take(2).size() == 1u);
  BOOST_TEST(f.take(0).empty());  // never back to the sender
  f.send(1, mac(9), 64, 9);       // unknown destination: flooded
  BOOST_TEST(f.drain(0).size() == 1u);
  BOOST_TEST(f.take(2).size() == 1u);
}

BOOST_AUTO_TEST_CASE(frames_longer_than_the_mtu_are_dropped_and_counted) {
  LinkConfig cfg;
  cfg.mtu = 1000;
  LinkFixture f(cfg);
  BOOST_TEST(f.send(0, mac(2), 1014, 1) == 1u);  // exactly MTU + Ethernet header
  BOOST_TEST(f.send(0, mac(2), 1015, 2) == 0u);
  BOOST_TEST(f.counter("link.drop.mtu") == 1u);
  auto got = f.drain(1);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(seq_of(got[0]) == 1u);
  BOOST_TEST(f.link.port(0).info().mtu == 1000u);
}

BOOST_AUTO_TEST_CASE(loss_follows_its_probability_and_its_seed) {
  LinkConfig cfg;
  cfg.loss = 0.3;
  cfg.seed = 42;
  auto a = send_many(cfg, 5000);
  auto b = send_many(cfg, 5000);
  BOOST_TEST(a == b);  // same seed, same frames lost
  BOOST_TEST(a.size() > 3200u);
  BOOST_TEST(a.size() < 3800u);
  cfg.seed = 43;
  auto c = send_many(cfg, 5000);
  BOOST_TEST(a != c);
  cfg.loss = 0;
  BOOST_TEST(send_many(cfg, 1000).size() == 1000u);
  cfg.loss = 1;
  BOOST_TEST(send_many(cfg, 1000).empty());
}

BOOST_AUTO_TEST_CASE(duplication_delivers_a_frame_twice) {
  LinkConfig cfg;
  cfg.duplicate = 1;
  LinkFixture f(cfg);
  f.send(0, mac(2), 100, 5);
  auto got = f.drain(1);
  BOOST_TEST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0] == got[1]);
  BOOST_TEST(f.counter("link.duplicated") == 1u);
}

BOOST_AUTO_TEST_CASE(reordered_frames_are_overtaken_but_all_arrive) {
  LinkConfig cfg;
  cfg.reorder = 0.3;
  cfg.reorder_delay = 50 * kMicro;
  cfg.seed = 7;
  LinkFixture f(cfg);
  for (uint32_t i = 0; i < 100; ++i) f.send(0, mac(2), 100, i);
  auto got = f.drain(1);
  BOOST_TEST_REQUIRE(got.size() == 100u);
  std::vector<uint32_t> seqs;
  for (auto& g : got) seqs.push_back(seq_of(g));
  BOOST_TEST(!std::is_sorted(seqs.begin(), seqs.end()));
  std::sort(seqs.begin(), seqs.end());
  for (uint32_t i = 0; i < 100; ++i) BOOST_TEST(seqs[i] == i);
  BOOST_TEST(f.counter("link.reordered") > 10u);
}

BOOST_AUTO_TEST_CASE(corruption_flips_exactly_one_bit) {
  LinkConfig cfg;
  cfg.corrupt = 1;
  LinkFixture f(cfg);
  std::vector<uint8_t> sent(100, 0);
  EthRepr::emit(sent.data(), mac(2), mac(1), 0x88b5);
  store32(sent.data() + 14, 3);
  for (int i = 0; i < 20; ++i) {
    f.send(0, mac(2), 100, 3);
    while (f.link.next_event() != kNever) {
      f.clock.advance_to(f.link.next_event());
      f.link.deliver_due();
    }
    // A flipped destination bit may send the frame elsewhere; collect from every port.
    auto got = f.take(1);
    auto elsewhere = f.take(0);
    got.insert(got.end(), elsewhere.begin(), elsewhere.end());
    BOOST_TEST_REQUIRE(!got.empty());
    int bits = 0;
    for (size_t k = 0; k < 100; ++k) bits += std::popcount(unsigned(got[0][k] ^ sent[k]));
    BOOST_TEST(bits == 1);
  }
  BOOST_TEST(f.counter("link.corrupted") == 20u);
}

BOOST_AUTO_TEST_CASE(a_full_receive_ring_or_an_empty_pool_drops_and_counts) {
  LinkConfig cfg;
  cfg.rx_ring = 4;
  LinkFixture f(cfg, 2, 8);
  for (uint32_t i = 0; i < 6; ++i) f.send(0, mac(2), 100, i);
  auto got = f.drain(1);
  BOOST_TEST(got.size() == 4u);
  BOOST_TEST(f.counter("link.drop.rx_ring_full") == 2u);

  // Port 1's pool lent out: deliveries find no buffer.
  std::vector<PacketPtr> held;
  while (PacketPtr p = f.pools[1]->alloc()) held.push_back(std::move(p));
  f.send(0, mac(2), 100, 9);
  BOOST_TEST(f.drain(1).empty());
  BOOST_TEST(f.counter("link.drop.rx_no_buffer") == 1u);
}

BOOST_AUTO_TEST_CASE(frames_in_flight_are_bounded) {
  LinkConfig cfg;
  cfg.max_in_flight = 3;
  cfg.rate_bps = 1'000'000;  // slow: everything stays in flight
  LinkFixture f(cfg);
  size_t sent = 0;
  for (uint32_t i = 0; i < 5; ++i) sent += f.send(0, mac(2), 100, i);
  BOOST_TEST(sent == 3u);
  BOOST_TEST(f.counter("link.drop.in_flight_limit") == 2u);
  BOOST_TEST(f.drain(1).size() == 3u);
  BOOST_TEST(f.send(0, mac(2), 100, 9) == 1u);  // room again
}

BOOST_AUTO_TEST_CASE(simultaneous_arrivals_keep_their_sending_order) {
  LinkConfig cfg;
  cfg.rate_bps = 0;  // no serialization time: every frame is due at the same instant
  LinkFixture f(cfg, 3);
  for (uint32_t i = 0; i < 10; ++i) f.send(i % 2, mac(3), 64, i);
  auto got = f.drain(2);
  BOOST_TEST_REQUIRE(got.size() == 10u);
  for (uint32_t i = 0; i < 10; ++i) BOOST_TEST(seq_of(got[i]) == i);
}

// ----- The switch model (LinkConfig::egress_queue_frames)

namespace {
struct Arrival {
  Nanos at;
  size_t port;
  uint32_t seq;
  bool operator==(const Arrival&) const = default;
};

// Runs the link event by event until nothing is in flight; every frame any port received, with
// the time it arrived.
std::vector<Arrival> arrivals(LinkFixture& f) {
  std::vector<Arrival> out;
  while (f.link.next_event() != kNever) {
    f.clock.advance_to(f.link.next_event());
    f.link.deliver_due();
    for (size_t p = 0; p < f.link.port_count(); ++p) {
      for (auto& frame : f.take(p)) out.push_back({f.clock.now(), p, seq_of(frame)});
    }
  }
  return out;
}

LinkConfig switched(size_t queue) {
  LinkConfig cfg;
  cfg.delay = 5 * kMicro;
  cfg.rate_bps = 1'000'000'000;
  cfg.egress_queue_frames = queue;
  return cfg;
}
}  // namespace

BOOST_AUTO_TEST_CASE(through_a_switch_an_uncontended_frame_arrives_as_on_the_plain_segment) {
  auto run = [](size_t queue) {
    LinkFixture f(switched(queue), 3);
    for (uint32_t i = 0; i < 20; ++i) f.send(0, mac(2), 100 + 50 * i, i);  // a burst, sizes vary
    auto got = arrivals(f);
    f.send(1, mac(1), 64, 99);  // later, from another port to the broadcast's sender
    f.send(0, MacAddr::broadcast(), 64, 100);
    auto later = arrivals(f);
    got.insert(got.end(), later.begin(), later.end());
    return got;
  };
  auto plain = run(0);
  BOOST_TEST_REQUIRE(plain.size() == 23u);
  BOOST_TEST(plain[0].at == 5000 + 992);  // serialization + delay, as before
  BOOST_TEST((run(64) == plain));
  BOOST_TEST((run(1) == plain));
}

BOOST_AUTO_TEST_CASE(two_senders_into_one_port_share_its_downlink_at_the_link_rate) {
  const Nanos ser = 8 * (1000 + 24);  // a 1000-byte frame at 1 Gbit/s
  auto run = [](LinkFixture& f) {
    for (uint32_t i = 0; i < 20; ++i) f.send(0, mac(3), 1000, i);
    for (uint32_t i = 0; i < 20; ++i) f.send(1, mac(3), 1000, 100 + i);
    return arrivals(f);
  };
  // No switch: each sender's port serializes on its own, so port 2 receives at twice the rate.
  LinkFixture plain(switched(0), 3);
  auto fast = run(plain);
  BOOST_TEST_REQUIRE(fast.size() == 40u);
  BOOST_TEST(fast.back().at == 5000 + 20 * ser);

  LinkFixture f(switched(64), 3);
  auto got = run(f);
  BOOST_TEST_REQUIRE(got.size() == 40u);  // 39 waiting at most: the queue holds them all
  BOOST_TEST(f.counter("link.drop.egress_queue") == 0u);
  // Back to back on the downlink, one serialization time apart: the link rate, never more.
  for (size_t k = 0; k < got.size(); ++k) {
    BOOST_TEST(got[k].at == Nanos(5000 + (k + 1) * ser));
    BOOST_TEST(got[k].port == 2u);
  }
  const double bits = 40.0 * 1000 * 8;
  const double seconds = double(got.back().at - 5000) / 1e9;
  BOOST_TEST(bits / seconds <= 1e9);
  // Each sender's frames keep their order; the senders alternate (equal start times: sending
  // order).
  std::vector<uint32_t> from0, from1;
  for (auto& a : got) (a.seq < 100 ? from0 : from1).push_back(a.seq);
  BOOST_TEST(from0.size() == 20u);
  BOOST_TEST(from1.size() == 20u);
  BOOST_TEST(std::is_sorted(from0.begin(), from0.end()));
  BOOST_TEST(std::is_sorted(from1.begin(), from1.end()));
  BOOST_TEST(got[0].seq == 0u);
  BOOST_TEST(got[1].seq == 100u);
  BOOST_TEST(got[2].seq == 1u);
}

BOOST_AUTO_TEST_CASE(a_full_egress_queue_drops_the_arriving_frame_and_counts_it) {
  LinkFixture f(switched(4), 3);
  for (uint32_t i = 0; i < 10; ++i) f.send(0, mac(3), 1000, i);
  for (uint32_t i = 0; i < 10; ++i) f.send(1, mac(3), 1000, 100 + i);
  auto got = arrivals(f);
  // Two frames come in per serialization time and one goes out: after four rounds the queue holds
  // four, and from then on the second arrival of each round (port 1's) finds it full (drop-tail).
  BOOST_TEST(f.counter("link.drop.egress_queue") == 6u);
  BOOST_TEST(f.link.counters().sum("link.drop.") == 6u);
  BOOST_TEST_REQUIRE(got.size() == 14u);
  std::vector<uint32_t> seqs;
  for (auto& a : got) seqs.push_back(a.seq);
  std::vector<uint32_t> expect = {0, 100, 1, 101, 2, 102, 3, 103, 4, 5, 6, 7, 8, 9};
  BOOST_TEST(seqs == expect, boost::test_tools::per_element());
  BOOST_TEST(f.link.in_flight() == 0u);
  // Drained: the queue takes frames again.
  f.send(1, mac(3), 1000, 200);
  auto again = arrivals(f);
  BOOST_TEST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].seq == 200u);
}

BOOST_AUTO_TEST_CASE(broadcast_goes_through_each_receivers_egress_queue) {
  LinkFixture f(switched(1), 4);
  f.send(1, mac(4), 1000, 1);  // on port 3's downlink
  f.send(2, mac(4), 1000, 2);  // waits: port 3's queue is full
  f.send(0, MacAddr::broadcast(), 1000, 3);
  auto got = arrivals(f);
  BOOST_TEST(f.counter("link.drop.egress_queue") == 1u);  // the broadcast's copy to port 3
  const Nanos ser = 8 * (1000 + 24);
  std::vector<Arrival> expect = {
      {5000 + ser, 1, 3}, {5000 + ser, 2, 3}, {5000 + ser, 3, 1}, {5000 + 2 * ser, 3, 2}};
  std::sort(got.begin(), got.end(), [](const Arrival& a, const Arrival& b) {
    return a.at != b.at ? a.at < b.at : a.port < b.port;
  });
  BOOST_TEST_REQUIRE(got.size() == expect.size());
  for (size_t k = 0; k < got.size(); ++k) {
    BOOST_TEST(got[k].at == expect[k].at);
    BOOST_TEST(got[k].port == expect[k].port);
    BOOST_TEST(got[k].seq == expect[k].seq);
  }
  BOOST_TEST(f.link.in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(the_switch_is_deterministic_and_keeps_impairments_seeded) {
  auto run = [] {
    LinkConfig cfg = switched(8);
    cfg.loss = 0.05;
    cfg.duplicate = 0.05;
    cfg.reorder = 0.05;
    cfg.seed = 11;
    LinkFixture f(cfg, 4);
    for (uint32_t i = 0; i < 200; ++i) f.send(i % 3, mac(4), 200 + (i * 37) % 1200, i);
    auto got = arrivals(f);
    return std::make_pair(got, f.counter("link.drop.egress_queue"));
  };
  auto a = run();
  auto b = run();
  BOOST_TEST((a.first == b.first));
  BOOST_TEST(a.second == b.second);
  BOOST_TEST(a.second > 0u);
  // Arrivals at port 3 are at least one minimum serialization apart: one downlink.
  for (size_t k = 1; k < a.first.size(); ++k) BOOST_TEST(a.first[k].at > a.first[k - 1].at);
}
