// IGMPv3 host (RFC 3376): state-change reports, query responses, malformed queries.
#include <boost/test/unit_test.hpp>

#include "stack/net/igmp.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

const Ipv4Addr kGroupA{0xef010101};  // 239.1.1.1
const Ipv4Addr kGroupB{0xef020202};  // 239.2.2.2
const Ipv4Addr kAllSystems{0xe0000001};
const Ipv4Addr kRouter{0x0a0000fe};

struct Report {
  std::vector<std::pair<uint8_t, Ipv4Addr>> records;
};

// Checks the IP envelope of an IGMPv3 report (RFC 3376 4.2) and returns its records.
Report parse_report(const Bytes& f) {
  Report r;
  BOOST_TEST(MacAddr::read(f.data()) == ipv4_multicast_mac(Ipv4Addr{0xe0000016}));
  BOOST_TEST(f[14] == 0x46);  // IHL 6: Router Alert
  BOOST_TEST(f[15] == 0xc0);
  BOOST_TEST(f[22] == 1);     // TTL 1
  BOOST_TEST(f[23] == 2);
  BOOST_TEST(get_ip(f, 30) == Ipv4Addr{0xe0000016});
  BOOST_TEST(f[34] == 148);
  BOOST_TEST(f[35] == 4);
  BOOST_TEST(checksum(f.data() + 14, 24) == 0);
  const uint8_t* m = f.data() + 38;
  const size_t len = f.size() - 38;
  BOOST_TEST(m[0] == 0x22);
  BOOST_TEST(checksum(m, len) == 0);
  const size_t n = load16(m + 6);
  BOOST_REQUIRE(len == 8 + 8 * n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* rec = m + 8 + 8 * i;
    BOOST_TEST(rec[1] == 0);
    BOOST_TEST(load16(rec + 2) == 0u);
    r.records.push_back({rec[0], Ipv4Addr::read(rec + 4)});
  }
  return r;
}

Bytes query(Ipv4Addr group, uint8_t max_resp_code, size_t nsrc = 0, int version = 3, uint8_t qrv = 2) {
  Bytes m(version == 3 ? 12 + 4 * nsrc : 8);
  m[0] = 0x11;
  m[1] = max_resp_code;
  group.write(m.data() + 4);
  if (version == 3) {
    m[8] = qrv;
    m[9] = 125;
    put16(m, 10, uint16_t(nsrc));
    for (size_t i = 0; i < nsrc; ++i) Ipv4Addr{0x0a000063u + uint32_t(i)}.write(m.data() + 12 + 4 * i);
  }
  put16(m, 2, checksum(m.data(), m.size()));
  return m;
}

Bytes query_frame(const Bytes& igmp, Ipv4Addr dst = kAllSystems) {
  Ip4 h;
  h.src = kRouter;
  h.dst = dst;
  h.proto = 2;
  h.ttl = 1;
  h.options = {148, 4, 0, 0};
  return ipv4_frame(h, igmp, ipv4_multicast_mac(dst));
}

}  // namespace

BOOST_AUTO_TEST_CASE(join_sends_to_exclude_reports_robustness_times) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  BOOST_TEST(f.stack->igmp().is_member(kGroupA));
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  Report r = parse_report(out[0]);
  BOOST_REQUIRE(r.records.size() == 1u);
  BOOST_TEST(r.records[0].first == 4);  // CHANGE_TO_EXCLUDE_MODE
  BOOST_TEST(r.records[0].second == kGroupA);
  BOOST_TEST(get_ip(out[0], 26) == kOurIp);
  f.advance(1 * kSecond);  // the Unsolicited Report Interval
  out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(parse_report(out[0]).records[0].first == 4);
  f.advance(10 * kSecond);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(membership_is_reference_counted_and_the_last_leave_reports_to_include) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.stack->igmp().join(kGroupA);
  f.advance(2 * kSecond);
  BOOST_TEST(f.sent_ipv4().size() == 2u);  // one join's worth
  f.stack->igmp().leave(kGroupA);
  BOOST_TEST(f.stack->igmp().is_member(kGroupA));
  BOOST_TEST(f.sent_ipv4().empty());
  f.stack->igmp().leave(kGroupA);
  BOOST_TEST(!f.stack->igmp().is_member(kGroupA));
  f.advance(2 * kSecond);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 2u);
  for (const auto& o : out) {
    Report r = parse_report(o);
    BOOST_REQUIRE(r.records.size() == 1u);
    BOOST_TEST(r.records[0].first == 3);  // CHANGE_TO_INCLUDE_MODE
    BOOST_TEST(r.records[0].second == kGroupA);
  }
  f.stack->igmp().leave(kGroupA);  // one leave too many: nothing
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(all_systems_group_is_always_joined_and_never_reported) {
  V4Fixture f;
  BOOST_TEST(f.stack->igmp().is_member(kAllSystems));
  f.stack->igmp().join(kAllSystems);
  f.stack->igmp().leave(kAllSystems);
  f.advance(2 * kSecond);
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.stack->igmp().is_member(kAllSystems));
}

BOOST_AUTO_TEST_CASE(general_query_gets_current_state_of_every_group_within_max_resp_time) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.stack->igmp().join(kGroupB);
  f.advance(3 * kSecond);
  f.clear_sent();
  f.inject(query_frame(query(Ipv4Addr{}, 50)));  // 5 s
  f.run();
  BOOST_TEST(f.counter("igmp.rx_queries") == 1u);
  f.advance(5 * kSecond);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  Report r = parse_report(out[0]);
  BOOST_REQUIRE(r.records.size() == 2u);
  BOOST_TEST(r.records[0].first == 2);  // MODE_IS_EXCLUDE
  BOOST_TEST(r.records[1].first == 2);
  BOOST_TEST(r.records[0].second == kGroupA);
  BOOST_TEST(r.records[1].second == kGroupB);
  f.advance(30 * kSecond);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(group_specific_query_is_answered_only_for_our_groups) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.advance(3 * kSecond);
  f.clear_sent();
  f.inject(query_frame(query(kGroupB, 10), kGroupB));  // not ours: not even received
  f.inject(query_frame(query(kGroupA, 10), kGroupA));
  f.run();
  f.advance(1 * kSecond);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  Report r = parse_report(out[0]);
  BOOST_REQUIRE(r.records.size() == 1u);
  BOOST_TEST(r.records[0].first == 2);
  BOOST_TEST(r.records[0].second == kGroupA);
  // A group-and-source-specific query, to 224.0.0.1 this time; and a v2 query.
  f.inject(query_frame(query(kGroupA, 10, 3)));
  f.run();
  f.advance(1 * kSecond);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
  f.inject(query_frame(query(Ipv4Addr{}, 10, 0, 2)));
  f.run();
  f.advance(1 * kSecond);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
}

BOOST_AUTO_TEST_CASE(no_report_without_groups) {
  V4Fixture f;
  f.inject(query_frame(query(Ipv4Addr{}, 10)));
  f.run();
  f.advance(2 * kSecond);
  BOOST_TEST(f.counter("igmp.rx_queries") == 1u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(malformed_queries_are_dropped_by_reason) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.advance(3 * kSecond);
  f.clear_sent();
  const Bytes good = query(Ipv4Addr{}, 10, 2);  // 20 bytes
  for (size_t len = 0; len < 8; ++len) f.inject(query_frame(Bytes(good.begin(), good.begin() + long(len))));
  for (size_t len = 9; len < 12; ++len) {  // RFC 3376 7.1: ignored
    Bytes m(good.begin(), good.begin() + long(len));
    put16(m, 2, 0);
    put16(m, 2, checksum(m.data(), m.size()));
    f.inject(query_frame(m));
  }
  for (size_t len = 12; len < good.size(); ++len) {  // sources run past the end
    Bytes m(good.begin(), good.begin() + long(len));
    put16(m, 2, 0);
    put16(m, 2, checksum(m.data(), m.size()));
    f.inject(query_frame(m));
  }
  Bytes bad = good;
  bad[2] ^= 1;
  f.inject(query_frame(bad));
  f.inject(query_frame(query(Ipv4Addr{0x0a000001}, 10)));  // not a group
  f.run();
  BOOST_TEST(f.counter("igmp.drop.truncated") == 8u + 8u);
  BOOST_TEST(f.counter("igmp.drop.bad_length") == 3u);
  BOOST_TEST(f.counter("igmp.drop.bad_checksum") == 1u);
  BOOST_TEST(f.counter("igmp.drop.bad_group") == 1u);
  f.advance(20 * kSecond);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(reports_of_other_hosts_are_ignored) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.advance(3 * kSecond);
  f.clear_sent();
  Bytes m(8);
  m[0] = 0x16;  // v2 report
  kGroupA.write(m.data() + 4);
  put16(m, 2, checksum(m.data(), m.size()));
  f.inject(query_frame(m, kGroupA));
  f.run();
  BOOST_TEST(f.counter("igmp.rx_ignored") == 1u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(max_resp_code_floating_point_form_is_decoded) {
  V4Fixture f;
  f.stack->igmp().join(kGroupA);
  f.advance(3 * kSecond);
  f.clear_sent();
  // 0x8f: exp 0, mant 15 -> (15 | 16) << 3 = 248 tenths = 24.8 s
  f.inject(query_frame(query(Ipv4Addr{}, 0x8f)));
  f.run();
  f.advance(24800 * kMilli);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
}
