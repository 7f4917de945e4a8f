// MLDv2 host behaviour (RFC 3810).
#include <boost/test/unit_test.hpp>
#include <set>

#include "net_v6_support.h"

using namespace shunt;
using namespace shunt::v6test;

namespace {

const Ipv6Addr kGroup = A("ff12::1234");
const Ipv6Addr kAllMldRouters = A("ff02::16");

struct Record {
  uint8_t type;
  Ipv6Addr group;
};

std::vector<Record> records_of(const Sent& s) {
  std::vector<Record> out;
  BOOST_TEST_REQUIRE(s.icmp_type() == kIcmp6MldV2Report);
  const uint16_t n = load16(s.l4p() + 6);
  size_t off = 8;
  for (uint16_t i = 0; i < n; ++i) {
    BOOST_TEST_REQUIRE(off + kMldV2RecordLen <= s.l4_len());
    out.push_back(Record{s.l4p()[off], Ipv6Addr::read(s.l4p() + off + 4)});
    off += kMldV2RecordLen;
  }
  return out;
}

std::vector<Sent> reports(const std::vector<Sent>& v) {
  std::vector<Sent> out;
  for (const auto& s : v) {
    if (s.l4 == kProtoIcmpv6 && s.icmp_type() == kIcmp6MldV2Report) out.push_back(s);
  }
  return out;
}

Bytes query(const Ipv6Addr& group, uint16_t max_resp_code, uint8_t hop = 1, const Ipv6Addr& src = kPeerLl,
            const Ipv6Addr& dst = kAllNodes) {
  Bytes b;
  put16(b, max_resp_code);
  put16(b, 0);
  put_addr(b, group);
  b.push_back(2);  // QRV
  b.push_back(125);
  put16(b, 0);
  // Hop-by-hop router alert in front, as a router sends it.
  Bytes payload{kProtoIcmpv6, 0, kOptRouterAlert, 2, 0, 0, kOptPadN, 0};
  append(payload, icmp6_msg(src, dst, kIcmp6MldQuery, 0, b));
  return ip6_frame(src, dst, kNextHopByHop, payload, hop);
}

}  // namespace

BOOST_AUTO_TEST_CASE(join_sends_change_to_exclude_robustness_times) {
  V6Fixture f;
  f.stack.mld().join(kGroup);
  BOOST_TEST(f.stack.mld().is_member(kGroup));
  f.run_for(1100 * kMilli);
  auto r = reports(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(r.size() == 2u);
  for (const auto& s : r) {
    BOOST_TEST(s.dst == kAllMldRouters);
    BOOST_TEST(s.hop == 1);
    BOOST_TEST(s.router_alert);
    BOOST_TEST(s.src == kOurLl);
    BOOST_TEST(icmp6_checksum_ok(s));
    auto recs = records_of(s);
    BOOST_TEST_REQUIRE(recs.size() == 1u);
    BOOST_TEST(recs[0].type == kMldChangeToExclude);
    BOOST_TEST(recs[0].group == kGroup);
  }
  // Delivered to us now.
  f.learn_peer();
  f.inject(echo_request_frame(kPeerLl, kGroup));
  BOOST_TEST(f.counter("icmp6.tx_echo_reply") == 1u);
}

BOOST_AUTO_TEST_CASE(joins_are_counted_and_the_last_leave_sends_change_to_include) {
  V6Fixture f;
  f.stack.mld().join(kGroup);
  f.stack.mld().join(kGroup);
  f.run_for(2 * kSecond);
  f.dev.take_sent();
  f.stack.mld().leave(kGroup);
  BOOST_TEST(f.stack.mld().is_member(kGroup));
  BOOST_TEST(reports(sent_v6(f.dev)).empty());
  f.stack.mld().leave(kGroup);
  BOOST_TEST(!f.stack.mld().is_member(kGroup));
  f.run_for(1100 * kMilli);
  auto r = reports(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(r.size() == 2u);
  for (const auto& s : r) {
    auto recs = records_of(s);
    BOOST_TEST_REQUIRE(recs.size() == 1u);
    BOOST_TEST(recs[0].type == kMldChangeToInclude);
  }
  f.stack.mld().leave(kGroup);  // one leave too many: harmless
  f.inject(echo_request_frame(kPeerLl, kGroup));
  BOOST_TEST(f.counter("ipv6.drop.not_for_us") == 1u);
}

BOOST_AUTO_TEST_CASE(all_nodes_is_never_reported) {
  V6Fixture f;
  f.stack.mld().join(kAllNodes);
  f.stack.mld().join(A("ff01::5"));  // interface-local
  f.run_for(2 * kSecond);
  BOOST_TEST(reports(sent_v6(f.dev)).empty());
}

BOOST_AUTO_TEST_CASE(general_query_is_answered_with_current_state_within_the_delay) {
  V6Fixture f;
  f.stack.mld().join(kGroup);
  f.stack.mld().join(kAllNodes);
  f.run_for(2 * kSecond);
  f.dev.take_sent();
  f.inject(query(A("::"), 1000));  // 1 s
  f.run_for(1000 * kMilli);
  auto r = reports(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(r.size() == 1u);
  std::set<Ipv6Addr> groups;
  for (const auto& rec : records_of(r[0])) {
    BOOST_TEST(rec.type == kMldModeIsExclude);
    groups.insert(rec.group);
  }
  // The group, and the solicited-node groups of both our addresses; never ff02::1.
  BOOST_TEST(groups.count(kGroup) == 1u);
  BOOST_TEST(groups.count(kOurLl.solicited_node()) == 1u);
  BOOST_TEST(groups.count(kOurGlobal.solicited_node()) == 1u);
  BOOST_TEST(groups.count(kAllNodes) == 0u);
}

BOOST_AUTO_TEST_CASE(address_specific_query_is_answered_for_that_group_only) {
  V6Fixture f;
  f.stack.mld().join(kGroup);
  f.run_for(2 * kSecond);
  f.dev.take_sent();
  f.inject(query(kGroup, 500, 1, kPeerLl, kGroup));
  f.inject(query(A("ff12::9999"), 500, 1, kPeerLl, kGroup));  // not ours: no answer
  f.run_for(600 * kMilli);
  auto r = reports(sent_v6(f.dev));
  BOOST_TEST_REQUIRE(r.size() == 1u);
  auto recs = records_of(r[0]);
  BOOST_TEST_REQUIRE(recs.size() == 1u);
  BOOST_TEST(recs[0].group == kGroup);
  BOOST_TEST(recs[0].type == kMldModeIsExclude);
}

BOOST_AUTO_TEST_CASE(invalid_queries_are_dropped) {
  V6Fixture f;
  f.inject(query(A("::"), 100, 64));              // hop limit not 1
  f.inject(query(A("::"), 100, 1, kPeer));        // not a link-local source
  f.inject(query(A("2001:db8::1"), 100, 1));      // not a multicast address
  BOOST_TEST(f.counter("mld.drop.invalid") == 3u);
  f.run_for(1 * kSecond);
  BOOST_TEST(reports(sent_v6(f.dev)).empty());
}

BOOST_AUTO_TEST_CASE(reports_before_the_link_local_address_is_ready_come_from_unspecified) {
  VirtualClock clock;
  test::TestDevice dev(kOurMac);
  Config c = v6_config();
  Stack stack(dev, clock, c);
  auto r = reports(sent_v6(dev));
  BOOST_TEST_REQUIRE(r.size() >= 1u);
  BOOST_TEST(r[0].src == A("::"));
  BOOST_TEST(icmp6_checksum_ok(r[0]));
}

BOOST_AUTO_TEST_CASE(maximum_response_code_decodes_both_forms) {
  BOOST_TEST(mld_max_response_ms(1000) == 1000u);
  BOOST_TEST(mld_max_response_ms(0x8000) == (0x1000u << 3));
  BOOST_TEST(mld_max_response_ms(0xffff) == ((0x0fffu | 0x1000u) << 10));
}
