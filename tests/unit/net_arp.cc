// ARP (RFC 826) and address conflict detection (RFC 5227).
#include <boost/test/unit_test.hpp>

#include "stack/net/arp.h"
#include "stack/net/ipv4.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

struct ArpView {
  uint16_t op;
  MacAddr sha;
  Ipv4Addr spa;
  MacAddr tha;
  Ipv4Addr tpa;
  MacAddr eth_dst;
};

ArpView view(const Bytes& f) {
  const uint8_t* a = f.data() + 14;
  return {load16(a + 6), MacAddr::read(a + 8), Ipv4Addr::read(a + 14), MacAddr::read(a + 18),
          Ipv4Addr::read(a + 24), MacAddr::read(f.data())};
}

int send_to(V4Fixture& f, Ipv4Addr dst, uint8_t tag = 0) {
  PacketPtr p = f.stack->alloc_tx();
  p->append(8)[0] = tag;
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = dst;
  return f.stack->ipv4().output(std::move(p), tx);
}

const MacAddr kOtherMac{{0x02, 0, 0, 0, 0, 9}};

}  // namespace

BOOST_AUTO_TEST_CASE(request_for_our_address_gets_a_unicast_reply_and_teaches_us_the_sender) {
  V4Fixture f;
  f.inject(arp_frame(1, kPeerMac, kPeerIp, MacAddr{}, kOurIp));
  f.run();
  auto out = f.sent_arp();
  BOOST_REQUIRE(out.size() == 1u);
  ArpView a = view(out[0]);
  BOOST_TEST(a.op == 2u);
  BOOST_TEST(a.sha == kOurMac);
  BOOST_TEST(a.spa == kOurIp);
  BOOST_TEST(a.tha == kPeerMac);
  BOOST_TEST(a.tpa == kPeerIp);
  BOOST_TEST(a.eth_dst == kPeerMac);
  BOOST_TEST(f.stack->arp().lookup(kPeerIp).value() == kPeerMac);
}

BOOST_AUTO_TEST_CASE(request_for_someone_else_is_not_answered_or_learned) {
  V4Fixture f;
  f.inject(arp_frame(1, kPeerMac, kPeerIp, MacAddr{}, Ipv4Addr{0x0a000003}));
  f.run();
  BOOST_TEST(f.sent_arp().empty());
  BOOST_TEST(!f.stack->arp().lookup(kPeerIp));
  BOOST_TEST(f.stack->arp().cache_size() == 0u);
}

BOOST_AUTO_TEST_CASE(known_neighbour_is_updated_by_any_arp_it_sends) {
  V4Fixture f;
  f.learn_peer();
  // A gratuitous ARP from the peer with a new MAC (RFC 826 merge).
  f.inject(arp_frame(1, kOtherMac, kPeerIp, MacAddr{}, kPeerIp));
  f.run();
  BOOST_TEST(f.stack->arp().lookup(kPeerIp).value() == kOtherMac);
  BOOST_TEST(f.sent_arp().empty());
}

BOOST_AUTO_TEST_CASE(resolution_queues_a_bounded_number_of_packets_and_sends_them_on_reply) {
  Config c = V4Fixture::base_config();
  c.arp_queue = 4;
  V4Fixture f(c);
  for (uint8_t i = 0; i < 6; ++i) BOOST_TEST(send_to(f, kPeerIp, i) == 0);
  auto req = f.sent_arp();
  BOOST_REQUIRE(req.size() == 1u);  // one request, not one per packet
  ArpView a = view(req[0]);
  BOOST_TEST(a.op == 1u);
  BOOST_TEST(a.eth_dst.is_broadcast());
  BOOST_TEST(a.spa == kOurIp);
  BOOST_TEST(a.tpa == kPeerIp);
  BOOST_TEST(f.counter("arp.drop.queue_full") == 2u);
  BOOST_TEST(f.sent_ipv4().empty());

  f.inject(arp_frame(2, kPeerMac, kPeerIp, kOurMac, kOurIp, kOurMac));
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 4u);
  for (size_t i = 0; i < 4; ++i) {
    BOOST_TEST(MacAddr::read(out[i].data()) == kPeerMac);
    BOOST_TEST(out[i][34] == i + 2);  // the newest four, in order
  }
  // Resolved: the next packet goes at once.
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
  BOOST_TEST(f.sent_arp().empty());
}

BOOST_AUTO_TEST_CASE(unanswered_resolution_retries_then_drops_what_was_queued) {
  V4Fixture f;  // 3 requests, 1 s apart
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(f.sent_arp().size() == 1u);
  f.advance(999 * kMilli);
  BOOST_TEST(f.sent_arp().empty());
  f.advance(1 * kMilli);
  BOOST_TEST(f.sent_arp().size() == 1u);
  f.advance(1 * kSecond);
  BOOST_TEST(f.sent_arp().size() == 1u);
  BOOST_TEST(f.counter("arp.drop.unresolved") == 0u);
  f.advance(1 * kSecond);
  BOOST_TEST(f.sent_arp().empty());
  BOOST_TEST(f.counter("arp.drop.unresolved") == 2u);
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.stack->arp().cache_size() == 0u);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
  // A later packet starts over.
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(f.sent_arp().size() == 1u);
}

BOOST_AUTO_TEST_CASE(cache_entries_time_out) {
  V4Fixture f;  // 60 s
  f.learn_peer();
  f.advance(59 * kSecond);
  BOOST_TEST(f.stack->arp().lookup(kPeerIp).has_value());
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
  f.advance(1 * kSecond);
  BOOST_TEST(!f.stack->arp().lookup(kPeerIp).has_value());
  BOOST_TEST(send_to(f, kPeerIp) == 0);
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.sent_arp().size() == 1u);  // resolved again
}

BOOST_AUTO_TEST_CASE(adding_an_address_announces_it_twice) {
  V4Fixture f;
  const Ipv4Addr extra{0x0a000105};
  f.stack->add_address(IpAddr(extra), 24);
  auto out = f.sent_arp();
  BOOST_REQUIRE(out.size() == 1u);
  ArpView a = view(out[0]);
  BOOST_TEST(a.op == 1u);  // RFC 5227 3: a request with sender = target = the address
  BOOST_TEST(a.spa == extra);
  BOOST_TEST(a.tpa == extra);
  BOOST_TEST(a.sha == kOurMac);
  BOOST_TEST(a.tha == MacAddr{});
  BOOST_TEST(a.eth_dst.is_broadcast());
  f.advance(2 * kSecond);
  out = f.sent_arp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(view(out[0]).spa == extra);
  f.advance(10 * kSecond);
  BOOST_TEST(f.sent_arp().empty());
}

BOOST_AUTO_TEST_CASE(conflict_is_counted_and_defended_at_most_once_per_10_seconds) {
  V4Fixture f;
  f.advance(3 * kSecond);  // past the second announcement
  f.clear_sent();
  f.inject(arp_frame(1, kOtherMac, kOurIp, MacAddr{}, kOurIp));  // someone announces our address
  f.run();
  BOOST_TEST(f.counter("arp.conflicts") == 1u);
  BOOST_TEST(f.counter("arp.defended") == 1u);
  auto out = f.sent_arp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(view(out[0]).spa == kOurIp);
  BOOST_TEST(view(out[0]).tpa == kOurIp);

  f.advance(5 * kSecond);
  f.inject(arp_frame(2, kOtherMac, kOurIp, kOurMac, kPeerIp, kOurMac));
  f.run();
  BOOST_TEST(f.counter("arp.conflicts") == 2u);
  BOOST_TEST(f.counter("arp.defended") == 1u);
  BOOST_TEST(f.sent_arp().empty());
  BOOST_TEST(!f.stack->arp().lookup(kOurIp).has_value());  // never learned

  f.advance(5 * kSecond);
  f.inject(arp_frame(1, kOtherMac, kOurIp, MacAddr{}, kOurIp));
  f.run();
  BOOST_TEST(f.counter("arp.defended") == 2u);
  BOOST_TEST(f.sent_arp().size() == 1u);
}

BOOST_AUTO_TEST_CASE(probe_for_our_address_is_answered_without_learning_0_0_0_0) {
  V4Fixture f;
  f.inject(arp_frame(1, kOtherMac, Ipv4Addr{}, MacAddr{}, kOurIp));
  f.run();
  auto out = f.sent_arp();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(view(out[0]).op == 2u);
  BOOST_TEST(view(out[0]).eth_dst == kOtherMac);
  BOOST_TEST(f.stack->arp().cache_size() == 0u);
  BOOST_TEST(f.counter("arp.conflicts") == 0u);
}

BOOST_AUTO_TEST_CASE(malformed_arp_is_dropped_by_reason) {
  V4Fixture f;
  const Bytes good = arp_packet(1, kPeerMac, kPeerIp, MacAddr{}, kOurIp);
  for (size_t len = 0; len < good.size(); ++len) {
    f.inject(eth_frame(MacAddr::broadcast(), kPeerMac, 0x0806, Bytes(good.begin(), good.begin() + long(len))));
  }
  Bytes bad = good;
  put16(bad, 0, 6);  // not Ethernet
  f.inject(eth_frame(MacAddr::broadcast(), kPeerMac, 0x0806, bad));
  bad = good;
  bad[5] = 16;  // protocol address length
  f.inject(eth_frame(MacAddr::broadcast(), kPeerMac, 0x0806, bad));
  bad = good;
  put16(bad, 6, 3);  // RARP op
  f.inject(eth_frame(MacAddr::broadcast(), kPeerMac, 0x0806, bad));
  f.inject(arp_frame(1, MacAddr::broadcast(), kPeerIp, MacAddr{}, kOurIp));
  f.inject(arp_frame(1, kPeerMac, Ipv4Addr{0xe0000001}, MacAddr{}, kOurIp));
  f.inject(arp_frame(1, kPeerMac, Ipv4Addr{0x0a0000ff}, MacAddr{}, kOurIp));
  f.inject(arp_frame(1, kOurMac, kPeerIp, MacAddr{}, kOurIp));  // our own, reflected
  f.run();
  BOOST_TEST(f.counter("arp.drop.truncated") == good.size());
  BOOST_TEST(f.counter("arp.drop.unsupported") == 2u);
  BOOST_TEST(f.counter("arp.drop.bad_op") == 1u);
  BOOST_TEST(f.counter("arp.drop.bad_sender") == 3u);
  BOOST_TEST(f.counter("arp.drop.own") == 1u);
  BOOST_TEST(f.sent_arp().empty());
  BOOST_TEST(f.stack->arp().cache_size() == 0u);
}

BOOST_AUTO_TEST_CASE(cache_size_is_bounded_under_a_flood_of_senders) {
  V4Fixture f;
  f.stack->add_address(IpAddr(Ipv4Addr{0x0a100001}), 12);  // a /12: room for many neighbours
  f.clear_sent();
  for (uint32_t i = 0; i < Arp::kMaxEntries + 100; ++i) {
    MacAddr m{{0x02, 0, 0, 1, uint8_t(i >> 8), uint8_t(i)}};
    f.inject(arp_frame(1, m, Ipv4Addr{0x0a100100 + i}, MacAddr{}, Ipv4Addr{0x0a100001}));
    if (i % 16 == 0) f.run();
  }
  f.run();
  BOOST_TEST(f.stack->arp().cache_size() == Arp::kMaxEntries);
  BOOST_TEST(f.counter("arp.tx_replies") == Arp::kMaxEntries + 100);
  // The newest are there; the oldest went.
  BOOST_TEST(f.stack->arp().lookup(Ipv4Addr{0x0a100100 + Arp::kMaxEntries + 99}).has_value());
  BOOST_TEST(!f.stack->arp().lookup(Ipv4Addr{0x0a100100}).has_value());
}
