// Neighbor Discovery (RFC 4861) and duplicate address detection (RFC 4862).
#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "net_v6_support.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

const Ipv6Addr kNew = A("2001:db8::3");
const MacAddr kNewMac{{0x02, 0, 0, 0, 0, 3}};

Ipv6Interface::State state_of_addr(Stack& s, const Ipv6Addr& a) {
  for (const auto& i : s.ipv6_addresses()) {
    if (i.addr == a) return i.state;
  }
  BOOST_FAIL("no such address");
  return Ipv6Interface::State::kDuplicate;
}

std::vector<Sent> of_type(const std::vector<Sent>& v, uint8_t type) {
  std::vector<Sent> out;
  for (const auto& s : v) {
    if (s.l4 == kProtoIcmpv6 && s.icmp_type() == type) out.push_back(s);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(solicitation_for_our_address_gets_a_solicited_advertisement) {
  V6Fixture f;
  f.inject(ns_frame(kPeer, kOurGlobal.solicited_node(), kOurGlobal, kPeerMac));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  const Sent& na = sent[0];
  BOOST_TEST(na.icmp_type() == kIcmp6NeighborAdvert);
  BOOST_TEST(na.hop == 255);
  BOOST_TEST(na.src == kOurGlobal);
  BOOST_TEST(na.dst == kPeer);
  BOOST_TEST(na.dst_mac == kPeerMac);  // learned from the source link-layer option
  BOOST_TEST(icmp6_checksum_ok(na));
  BOOST_TEST((load32(na.l4p() + 4) & (kNaFlagSolicited | kNaFlagOverride)) == (kNaFlagSolicited | kNaFlagOverride));
  BOOST_TEST(Ipv6Addr::read(na.l4p() + 8) == kOurGlobal);
  BOOST_TEST(na.l4p()[24] == kNdpOptTargetLla);
  BOOST_TEST(MacAddr::read(na.l4p() + 26) == kOurMac);
  // The solicitor went into the cache as STALE, then DELAY because we sent to it.
  BOOST_TEST((f.stack.ndp().state_of(kPeer) == NeighborState::kDelay));
}

BOOST_AUTO_TEST_CASE(invalid_solicitations_are_dropped) {
  V6Fixture f;
  const uint64_t before = f.counter("ndp.drop.invalid");
  f.inject(ns_frame(kPeer, kOurGlobal.solicited_node(), kOurGlobal, kPeerMac, 64));  // hop limit
  f.inject(ns_frame(kPeer, kOurGlobal.solicited_node(), A("ff02::1"), kPeerMac));    // multicast target
  // From :: with a source link-layer option, and from :: to a unicast destination.
  f.inject(ns_frame(A("::"), kOurGlobal.solicited_node(), kOurGlobal, kPeerMac));
  f.inject(ns_frame(A("::"), kOurGlobal, kOurGlobal, std::nullopt));
  // Code not 0.
  Bytes body = ns_body(kOurGlobal, kPeerMac);
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6NeighborSolicit, 1, body), 255));
  // Too short.
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6NeighborSolicit, 0, Bytes(8, 0)), 255));
  BOOST_TEST(f.counter("ndp.drop.invalid") == before + 6);
  // An option of length zero.
  body = ns_body(kOurGlobal, std::nullopt);
  append(body, Bytes{1, 0, 0, 0, 0, 0, 0, 0});
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6NeighborSolicit, 0, body), 255));
  // An option running past the message.
  body = ns_body(kOurGlobal, std::nullopt);
  append(body, Bytes{1, 3, 0, 0, 0, 0, 0, 0});
  f.inject(ip6_frame(kPeer, kOurGlobal, kProtoIcmpv6, icmp6_msg(kPeer, kOurGlobal, kIcmp6NeighborSolicit, 0, body), 255));
  BOOST_TEST(f.counter("ndp.drop.bad_option") == 2u);
  // For someone else's address.
  f.inject(ns_frame(kPeer, A("2001:db8::77").solicited_node(), A("2001:db8::77"), kPeerMac));
  BOOST_TEST(f.counter("ipv6.drop.not_for_us") + f.counter("ndp.drop.not_our_target") >= 1u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(resolution_queues_then_sends_on_the_advertisement) {
  V6Fixture f;
  f.inject(echo_request_frame(kNew, kOurGlobal, 1));
  f.inject(echo_request_frame(kNew, kOurGlobal, 2));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);  // one solicitation, both replies queued
  BOOST_TEST(sent[0].icmp_type() == kIcmp6NeighborSolicit);
  BOOST_TEST(sent[0].dst == kNew.solicited_node());
  BOOST_TEST(sent[0].dst_mac == kNew.solicited_node().multicast_mac());
  BOOST_TEST(sent[0].src == kOurGlobal);
  BOOST_TEST(sent[0].l4p()[24] == kNdpOptSourceLla);
  BOOST_TEST(f.stack.ndp().pending_count(kNew) == 2u);
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kIncomplete));
  f.inject(na_frame(kNew, kOurGlobal, kNew, kNaFlagSolicited | kNaFlagOverride, kNewMac));
  sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 2u);
  for (const auto& s : sent) {
    BOOST_TEST(s.icmp_type() == kIcmp6EchoReply);
    BOOST_TEST(s.dst_mac == kNewMac);
  }
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kReachable));
  BOOST_TEST((f.stack.ndp().lookup(kNew) == kNewMac));
}

BOOST_AUTO_TEST_CASE(unanswered_resolution_retries_then_drops_the_queue) {
  V6Fixture f;
  f.inject(echo_request_frame(kNew, kOurGlobal, 1));
  f.run_for(10 * kSecond);
  auto ns = of_type(sent_v6(f.dev), kIcmp6NeighborSolicit);
  BOOST_TEST(ns.size() == size_t(f.cfg.arp_retries));
  BOOST_TEST(f.counter("ndp.drop.unresolved") == 1u);
  BOOST_TEST(!f.stack.ndp().state_of(kNew).has_value());
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(the_pending_queue_is_bounded) {
  Config c = v6_config();
  c.arp_queue = 2;
  V6Fixture f(c);
  for (uint16_t i = 0; i < 5; ++i) f.inject(echo_request_frame(kNew, kOurGlobal, i));
  BOOST_TEST(f.stack.ndp().pending_count(kNew) == 2u);
  BOOST_TEST(f.counter("ndp.drop.queue_full") == 3u);
  f.run_for(10 * kSecond);
  BOOST_TEST(f.stack.pool().available() == f.stack.pool().capacity());
}

BOOST_AUTO_TEST_CASE(unreachability_detection_walks_reachable_stale_delay_probe) {
  Config c = v6_config();
  c.ndp_reachable_ms = 10'000;
  V6Fixture f(c);
  f.inject(echo_request_frame(kNew, kOurGlobal, 1));
  f.inject(na_frame(kNew, kOurGlobal, kNew, kNaFlagSolicited | kNaFlagOverride, kNewMac));
  f.dev.take_sent();
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kReachable));
  f.run_for(16 * kSecond);  // ReachableTime is at most 1.5 x base
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kStale));
  f.inject(echo_request_frame(kNew, kOurGlobal, 2));  // sending to a STALE entry
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kDelay));
  f.dev.take_sent();
  f.run_for(5 * kSecond + 10 * kMilli);
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kProbe));
  auto ns = of_type(sent_v6(f.dev), kIcmp6NeighborSolicit);
  BOOST_TEST_REQUIRE(ns.size() == 1u);
  BOOST_TEST(ns[0].dst == kNew);  // a unicast probe
  BOOST_TEST(ns[0].dst_mac == kNewMac);
  // A solicited advertisement confirms it.
  f.inject(na_frame(kNew, kOurGlobal, kNew, kNaFlagSolicited, std::nullopt));
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kReachable));
  // Let it go stale again, then unanswered probes remove it.
  f.run_for(16 * kSecond);
  f.inject(echo_request_frame(kNew, kOurGlobal, 3));
  f.run_for(15 * kSecond);
  BOOST_TEST(!f.stack.ndp().state_of(kNew).has_value());
  BOOST_TEST(f.counter("ndp.unreachable") >= 1u);
}

BOOST_AUTO_TEST_CASE(advertisement_flags_decide_whether_the_address_changes) {
  V6Fixture f;
  f.inject(echo_request_frame(kNew, kOurGlobal, 1));
  f.inject(na_frame(kNew, kOurGlobal, kNew, kNaFlagSolicited | kNaFlagOverride, kNewMac));
  const MacAddr other{{0x02, 0, 0, 0, 0, 9}};
  // Unsolicited, no override, a different address: ignored, but REACHABLE turns STALE.
  f.inject(na_frame(kNew, kAllNodes, kNew, 0, other));
  BOOST_TEST((f.stack.ndp().lookup(kNew) == kNewMac));
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kStale));
  // Unsolicited with override: the new address is taken, STALE.
  f.inject(na_frame(kNew, kAllNodes, kNew, kNaFlagOverride, other));
  BOOST_TEST((f.stack.ndp().lookup(kNew) == other));
  BOOST_TEST((f.stack.ndp().state_of(kNew) == NeighborState::kStale));
  // Solicited to a multicast destination is invalid.
  const uint64_t before = f.counter("ndp.drop.invalid");
  f.inject(na_frame(kNew, kAllNodes, kNew, kNaFlagSolicited | kNaFlagOverride, kNewMac));
  BOOST_TEST(f.counter("ndp.drop.invalid") == before + 1);
  // An advertisement for an unknown neighbour creates nothing.
  f.inject(na_frame(A("2001:db8::44"), kAllNodes, A("2001:db8::44"), kNaFlagOverride, other));
  BOOST_TEST(!f.stack.ndp().state_of(A("2001:db8::44")).has_value());
}

BOOST_AUTO_TEST_CASE(dad_probes_from_unspecified_and_then_prefers_the_address) {
  V6Fixture f;
  const Ipv6Addr a = A("2001:db8::5");
  f.stack.add_address(IpAddr(a), 64);
  BOOST_TEST((state_of_addr(f.stack, a) == Ipv6Interface::State::kTentative));
  auto ns = of_type(sent_v6(f.dev), kIcmp6NeighborSolicit);
  BOOST_TEST_REQUIRE(ns.size() == 1u);
  BOOST_TEST(ns[0].src == A("::"));
  BOOST_TEST(ns[0].dst == a.solicited_node());
  BOOST_TEST(ns[0].l4_len() == kNdpNsNaLen);  // no source link-layer option from ::
  BOOST_TEST(icmp6_checksum_ok(ns[0]));
  // Traffic to a tentative address is not delivered.
  f.inject(echo_request_frame(kPeer, a));
  BOOST_TEST(f.counter("ipv6.drop.tentative_dst") == 1u);
  f.run_for(1100 * kMilli);
  BOOST_TEST((state_of_addr(f.stack, a) == Ipv6Interface::State::kPreferred));
  BOOST_TEST(f.stack.is_local_v6(a));
}

BOOST_AUTO_TEST_CASE(dad_fails_on_an_advertisement_for_the_tentative_address) {
  V6Fixture f;
  const Ipv6Addr a = A("2001:db8::6");
  f.stack.add_address(IpAddr(a), 64);
  f.inject(na_frame(kPeer, kAllNodes, a, kNaFlagOverride, kPeerMac));
  BOOST_TEST((state_of_addr(f.stack, a) == Ipv6Interface::State::kDuplicate));
  BOOST_TEST(f.counter("ndp.dad_duplicate") == 1u);
  f.run_for(2 * kSecond);
  BOOST_TEST((state_of_addr(f.stack, a) == Ipv6Interface::State::kDuplicate));
  BOOST_TEST(!f.stack.is_local_v6(a));
}

BOOST_AUTO_TEST_CASE(dad_fails_when_another_node_probes_the_same_address) {
  V6Fixture f;
  const Ipv6Addr a = A("2001:db8::7");
  f.stack.add_address(IpAddr(a), 64);
  f.dev.take_sent();
  f.inject(ns_frame(A("::"), a.solicited_node(), a, std::nullopt));
  BOOST_TEST((state_of_addr(f.stack, a) == Ipv6Interface::State::kDuplicate));
  BOOST_TEST(f.counter("ndp.dad_duplicate") == 1u);
}

BOOST_AUTO_TEST_CASE(a_dad_probe_for_our_address_is_answered_to_all_nodes) {
  V6Fixture f;
  f.inject(ns_frame(A("::"), kOurGlobal.solicited_node(), kOurGlobal, std::nullopt));
  auto sent = sent_v6(f.dev);
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].icmp_type() == kIcmp6NeighborAdvert);
  BOOST_TEST(sent[0].dst == kAllNodes);
  BOOST_TEST((load32(sent[0].l4p() + 4) & kNaFlagSolicited) == 0u);
}

BOOST_AUTO_TEST_CASE(router_messages_are_ignored_without_harm) {
  V6Fixture f;
  // A router advertisement with a prefix option, and a redirect, both well formed enough.
  Bytes ra{64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
  append(ra, Bytes{3, 4, 64, 0xc0});
  ra.resize(ra.size() + 28, 0);
  f.inject(ip6_frame(kPeerLl, kAllNodes, kProtoIcmpv6, icmp6_msg(kPeerLl, kAllNodes, kIcmp6RouterAdvert, 0, ra), 255));
  f.inject(ip6_frame(kPeerLl, kOurLl, kProtoIcmpv6, icmp6_msg(kPeerLl, kOurLl, kIcmp6Redirect, 0, Bytes(36, 0)), 255));
  f.inject(ip6_frame(kPeerLl, kOurLl, kProtoIcmpv6, icmp6_msg(kPeerLl, kOurLl, kIcmp6RouterSolicit, 0, Bytes(4, 0)), 255));
  BOOST_TEST(f.counter("ndp.ignored_router_messages") == 3u);
  BOOST_TEST(sent_v6(f.dev).empty());
}

namespace {

// Everything written to stderr (the log) while `fn` runs.
template <class F>
std::string stderr_of(F fn) {
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  std::rewind(tmp);
  for (int c; (c = std::fgetc(tmp)) != EOF;) out += char(c);
  std::fclose(tmp);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(solicitations_for_a_tentative_or_duplicate_target_are_counted_drops) {
  V6Fixture f;
  const Ipv6Addr tentative = A("2001:db8::8");
  f.stack.add_address(IpAddr(tentative), 64);
  f.dev.take_sent();
  const uint64_t before = f.counter("ndp.drop.not_our_target");
  // RFC 4862 5.4.3: address resolution for a tentative address is silently discarded.
  f.inject(ns_frame(kPeer, tentative.solicited_node(), tentative, kPeerMac));
  BOOST_TEST(f.counter("ndp.drop.not_our_target") == before + 1);
  BOOST_TEST(sent_v6(f.dev).empty());
  BOOST_TEST((state_of_addr(f.stack, tentative) == Ipv6Interface::State::kTentative));
  // Once it is a duplicate, nobody gets an answer for it either (the solicited-node group stays
  // joined for another address that shares it).
  f.stack.add_address(IpAddr(A("2001:db8:1::8")), 64);
  f.inject(ns_frame(A("::"), tentative.solicited_node(), tentative, std::nullopt));
  BOOST_TEST((state_of_addr(f.stack, tentative) == Ipv6Interface::State::kDuplicate));
  f.run_for(3 * kSecond);
  f.dev.take_sent();
  f.inject(ns_frame(kPeer, tentative.solicited_node(), tentative, kPeerMac));
  BOOST_TEST(f.counter("ndp.drop.not_our_target") == before + 2);
  BOOST_TEST(sent_v6(f.dev).empty());
}

BOOST_AUTO_TEST_CASE(a_peer_repeating_a_claim_on_our_address_does_not_flood_the_log) {
  V6Fixture f;
  const std::string log = stderr_of([&] {
    for (int i = 0; i < 1000; ++i) {
      f.inject(na_frame(kPeer, kAllNodes, kOurGlobal, kNaFlagOverride, kPeerMac));
    }
  });
  BOOST_TEST(f.counter("ndp.address_conflict") == 1000u);
  // Claims 1, 2, 4, ..., 512: ten lines, not a thousand.
  BOOST_TEST(std::count(log.begin(), log.end(), '\n') == 10);
  BOOST_TEST(log.find("claims our address 2001:db8::1") != std::string::npos);
  BOOST_TEST(f.stack.is_local_v6(kOurGlobal));  // the address is kept (RFC 4861 7.2.5)
}
