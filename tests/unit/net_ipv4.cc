// IPv4 receive validation, delivery and output (RFC 791, RFC 1122 3.2.1).
#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "stack/net/igmp.h"
#include "stack/net/ipv4.h"
#include "tests/support/ipv4_frames.h"

using namespace shunt;
using namespace shunt::test;

namespace {

Bytes echo_payload(size_t n = 16) {
  Bytes d(n);
  for (size_t i = 0; i < n; ++i) d[i] = uint8_t(i * 7 + 3);
  return icmp_msg(8, 0, 0x12340001, d);
}

Ip4 icmp_hdr() {
  Ip4 h;
  h.proto = 1;
  return h;
}

// An upper-layer payload in a transmit buffer.
PacketPtr l4_buffer(Stack& s, size_t n, uint8_t fill = 0xab) {
  PacketPtr p = s.alloc_tx();
  uint8_t* d = p->append(n);
  for (size_t i = 0; i < n; ++i) d[i] = uint8_t(fill + i);
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(valid_datagram_is_delivered_to_its_protocol) {
  V4Fixture f;
  f.learn_peer();
  f.inject(ipv4_frame(icmp_hdr(), echo_payload()));
  f.run();
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 1u);
  BOOST_TEST(f.counter("icmp.tx_echo_reply") == 1u);
  BOOST_TEST(f.sent_ipv4().size() == 1u);
}

BOOST_AUTO_TEST_CASE(truncated_at_every_length_is_dropped_and_counted) {
  V4Fixture f;
  f.learn_peer();
  const Bytes full = ipv4_frame(icmp_hdr(), echo_payload());
  size_t tried = 0;
  for (size_t len = 14; len < full.size(); ++len) {
    f.inject(Bytes(full.begin(), full.begin() + long(len)));
    ++tried;
  }
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.truncated") == tried);
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 0u);
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(ethernet_padding_is_trimmed_by_total_length) {
  V4Fixture f;
  f.learn_peer();
  Bytes frame = ipv4_frame(icmp_hdr(), icmp_msg(8, 0, 0x00010001, {}));  // 42 bytes
  frame.resize(60, 0xee);                                               // padded to the minimum
  f.inject(frame);
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(get16(out[0], 16) == 28u);  // 20 + 8: no padding echoed back
  BOOST_TEST(out[0].size() == 42u);
}

BOOST_AUTO_TEST_CASE(header_fields_that_lie_are_dropped_by_reason) {
  V4Fixture f;
  f.learn_peer();
  const Bytes payload = echo_payload();
  Ip4 h = icmp_hdr();

  h.ihl_override = 4;  // IHL < 5
  f.inject(ipv4_frame(h, payload));
  h.ihl_override = 15;  // 60 bytes of header in a 44-byte packet
  f.inject(ipv4_frame(h, payload));
  h = icmp_hdr();
  h.total_len_override = 19;  // shorter than the header
  f.inject(ipv4_frame(h, payload));
  h.total_len_override = 2000;  // longer than the frame
  f.inject(ipv4_frame(h, payload));
  h = icmp_hdr();
  h.version = 6;
  f.inject(ipv4_frame(h, payload));
  h = icmp_hdr();
  h.bad_checksum = true;
  f.inject(ipv4_frame(h, payload));
  f.run();

  BOOST_TEST(f.counter("ipv4.drop.bad_header_len") == 1u);
  BOOST_TEST(f.counter("ipv4.drop.truncated") == 2u);
  BOOST_TEST(f.counter("ipv4.drop.bad_total_len") == 1u);
  BOOST_TEST(f.counter("ipv4.drop.bad_version") == 1u);
  BOOST_TEST(f.counter("ipv4.drop.bad_checksum") == 1u);
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 0u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(options_are_skipped_but_must_fit_the_header) {
  V4Fixture f;
  f.learn_peer();
  Ip4 h = icmp_hdr();
  // NOP, a 6-byte unknown option, NOP: 8 bytes, skipped by IHL.
  h.options = {1, 0x88, 6, 1, 2, 3, 4, 1};
  f.inject(ipv4_frame(h, echo_payload()));
  f.run();
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 1u);
  BOOST_TEST(f.sent_ipv4().size() == 1u);

  h.options = {1, 0x88, 12, 1};  // runs past the header
  f.inject(ipv4_frame(h, echo_payload()));
  h.options = {0x88, 1, 0, 0};  // length < 2 would loop forever
  f.inject(ipv4_frame(h, echo_payload()));
  h.options = {1, 1, 1, 0x88};  // the length octet is missing
  f.inject(ipv4_frame(h, echo_payload()));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.bad_option") == 3u);
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 1u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(sources_that_are_not_one_host_are_dropped) {
  V4Fixture f;
  f.learn_peer();
  for (uint32_t src : {0xe0000005u, 0xffffffffu, 0x0a0000ffu}) {
    Ip4 h = icmp_hdr();
    h.src = Ipv4Addr{src};
    f.inject(ipv4_frame(h, echo_payload()));
  }
  Ip4 h = icmp_hdr();
  h.src = Ipv4Addr{0x7f000001};
  f.inject(ipv4_frame(h, echo_payload()));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.bad_source") == 3u);
  BOOST_TEST(f.counter("ipv4.drop.martian") == 1u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(only_our_addresses_broadcasts_and_joined_groups_are_accepted) {
  V4Fixture f;
  f.learn_peer();
  Ip4 h = icmp_hdr();
  h.dst = Ipv4Addr{0x0a000009};  // someone else's
  f.inject(ipv4_frame(h, echo_payload()));
  h.dst = Ipv4Addr{0xe0010203};  // a group we are not in
  f.inject(ipv4_frame(h, echo_payload(), ipv4_multicast_mac(h.dst)));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.not_for_us") == 2u);

  f.stack->igmp().join(Ipv4Addr{0xe0010203});
  f.clear_sent();  // its IGMP report
  f.inject(ipv4_frame(h, echo_payload(), ipv4_multicast_mac(h.dst)));
  h.dst = Ipv4Addr{0xffffffff};
  f.inject(ipv4_frame(h, echo_payload(), MacAddr::broadcast()));
  h.dst = Ipv4Addr{0x0a0000ff};  // subnet-directed broadcast
  f.inject(ipv4_frame(h, echo_payload(), MacAddr::broadcast()));
  h.dst = Ipv4Addr{0xe0000001};  // all systems: always
  f.inject(ipv4_frame(h, echo_payload(), ipv4_multicast_mac(h.dst)));
  f.run();
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 4u);
  // RFC 1122 3.2.2.6: echo to a group or broadcast is not answered.
  BOOST_TEST(f.counter("icmp.drop.broadcast_echo") == 4u);
  BOOST_TEST(f.sent_ipv4().empty());
}

BOOST_AUTO_TEST_CASE(unicast_datagram_in_link_broadcast_frame_is_dropped) {
  V4Fixture f;
  f.inject(ipv4_frame(icmp_hdr(), echo_payload(), MacAddr::broadcast()));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.unicast_in_link_broadcast") == 1u);
}

BOOST_AUTO_TEST_CASE(low_ttl_is_still_delivered_to_a_host) {
  V4Fixture f;
  f.learn_peer();
  Ip4 h = icmp_hdr();
  h.ttl = 1;
  f.inject(ipv4_frame(h, echo_payload()));
  f.run();
  BOOST_TEST(f.counter("icmp.tx_echo_reply") == 1u);
}

BOOST_AUTO_TEST_CASE(unknown_protocol_gets_protocol_unreachable) {
  V4Fixture f;
  f.learn_peer();
  Ip4 h;
  h.proto = 253;
  f.inject(ipv4_frame(h, Bytes(12, 0x42)));
  f.run();
  BOOST_TEST(f.counter("ipv4.drop.unknown_protocol") == 1u);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0][23] == 1);   // ICMP
  BOOST_TEST(out[0][34] == 3);   // destination unreachable
  BOOST_TEST(out[0][35] == 2);   // protocol
}

BOOST_AUTO_TEST_CASE(output_builds_a_valid_header_and_resolves_the_next_hop) {
  V4Fixture f;
  Ipv4Tx tx;
  tx.dst = kPeerIp;
  tx.proto = 253;
  tx.ttl = 17;
  tx.tos = 0x10;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 100), tx) == 0);
  BOOST_TEST(f.sent_ipv4().empty());  // waiting for ARP
  auto arp = f.sent_arp();
  BOOST_REQUIRE(arp.size() == 1u);
  f.inject(arp_frame(2, kPeerMac, kPeerIp, kOurMac, kOurIp, kOurMac));
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  const Bytes& o = out[0];
  BOOST_TEST(MacAddr::read(o.data()) == kPeerMac);
  BOOST_TEST(MacAddr::read(o.data() + 6) == kOurMac);
  BOOST_TEST(o[14] == 0x45);
  BOOST_TEST(o[15] == 0x10);
  BOOST_TEST(get16(o, 16) == 120u);
  BOOST_TEST(o[22] == 17);
  BOOST_TEST(o[23] == 253);
  BOOST_TEST(get_ip(o, 26) == kOurIp);
  BOOST_TEST(get_ip(o, 30) == kPeerIp);
  BOOST_TEST(checksum(o.data() + 14, 20) == 0);
  BOOST_TEST(o[34] == 0xab);
  // Identification advances per datagram.
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  auto out2 = f.sent_ipv4();
  BOOST_REQUIRE(out2.size() == 1u);
  BOOST_TEST(get16(out2[0], 18) == uint16_t(get16(o, 18) + 1));
}

BOOST_AUTO_TEST_CASE(output_errors) {
  V4Fixture f;
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = Ipv4Addr{0xc0a80101};  // off-link, no gateway
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == -ENETUNREACH);
  tx.dst = Ipv4Addr{0xffffffff};
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == -EACCES);
  tx.dst = Ipv4Addr{0x0a0000ff};
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == -EACCES);
  tx.dst = kPeerIp;
  tx.dont_fragment = true;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 1481), tx) == -EMSGSIZE);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(output_via_gateway_resolves_the_gateway) {
  V4Fixture f;
  f.stack->set_default_gateway(IpAddr(kGateway));
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = Ipv4Addr{0xc0a80101};
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  auto arp = f.sent_arp();
  BOOST_REQUIRE(arp.size() == 1u);
  BOOST_TEST(get_ip(arp[0], 14 + 24) == kGateway);
}

BOOST_AUTO_TEST_CASE(broadcast_with_so_broadcast_goes_to_the_broadcast_mac) {
  V4Fixture f;
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = Ipv4Addr{0xffffffff};
  tx.allow_broadcast = true;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(MacAddr::read(out[0].data()).is_broadcast());
}

BOOST_AUTO_TEST_CASE(multicast_goes_to_the_group_mac_and_loops_back_to_members) {
  V4Fixture f;
  const Ipv4Addr g{0xef010203};  // 239.1.2.3
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = g;
  tx.ttl = 1;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  f.run();
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(MacAddr::read(out[0].data()) == ipv4_multicast_mac(g));
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 0u);  // not a member: no copy

  f.stack->igmp().join(g);
  f.clear_sent();
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  f.run();
  BOOST_TEST(f.sent_ipv4().size() == 1u);
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 1u);  // our copy

  tx.multicast_loop = false;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  f.run();
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 1u);
  BOOST_TEST(f.sent_ipv4().size() == 1u);

  // TTL 0: for this host only.
  tx.multicast_loop = true;
  tx.ttl = 0;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 10), tx) == 0);
  f.run();
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.counter("ipv4.rx_delivered") == 2u);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(traffic_to_our_own_address_loops_back_without_touching_the_wire) {
  V4Fixture f;
  Ipv4Tx tx;
  tx.proto = 1;
  tx.dst = kOurIp;
  PacketPtr p = f.stack->alloc_tx();
  Bytes echo = echo_payload();
  p->append(echo);
  BOOST_TEST(f.stack->ipv4().output(std::move(p), tx) == 0);
  f.run();
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.sent_arp().empty());
  BOOST_TEST(f.counter("icmp.rx_echo_request") == 1u);
  BOOST_TEST(f.counter("icmp.rx_echo_reply") == 1u);  // the reply came back to us too
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(large_datagram_is_fragmented_on_8_byte_boundaries) {
  V4Fixture f;
  f.learn_peer();
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = kPeerIp;
  BOOST_TEST(f.stack->ipv4().output(l4_buffer(*f.stack, 1900), tx) == 0);
  // And one from a chain of buffers, bigger than one buffer.
  PacketPtr head = l4_buffer(*f.stack, 1500, 0);
  PacketPtr tail = l4_buffer(*f.stack, 1500, uint8_t(1500 % 256));
  head->chain = tail.release();
  BOOST_TEST(f.stack->ipv4().output(std::move(head), tx) == 0);
  auto out = f.sent_ipv4();
  BOOST_REQUIRE(out.size() == 5u);  // 1480 + 420, then 1480 + 1480 + 40
  const size_t expect_len[] = {1500, 440, 1500, 1500, 60};
  const uint16_t expect_off[] = {0, 1480, 0, 1480, 2960};
  for (size_t i = 0; i < out.size(); ++i) {
    BOOST_TEST(get16(out[i], 16) == expect_len[i]);
    BOOST_TEST((get16(out[i], 20) & 0x1fff) * 8 == expect_off[i]);
    const bool mf = get16(out[i], 20) & 0x2000;
    BOOST_TEST(mf == (i == 0 || i == 2 || i == 3));
    BOOST_TEST(checksum(out[i].data() + 14, 20) == 0);
  }
  BOOST_TEST(get16(out[0], 18) == get16(out[1], 18));
  BOOST_TEST(get16(out[2], 18) != get16(out[0], 18));
  // The chained payload continues across the fragment boundary.
  bool ok = true;
  for (size_t i = 0; i < 3000; ++i) {
    const Bytes& frag = out[2 + i / 1480];
    if (frag[34 + i % 1480] != uint8_t(i)) ok = false;
  }
  BOOST_TEST(ok);
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}

BOOST_AUTO_TEST_CASE(datagram_over_65535_bytes_is_refused) {
  V4Fixture f;
  f.learn_peer();
  PacketPtr head;
  PacketBuf* tail = nullptr;
  for (int i = 0; i < 35; ++i) {  // 35 * 1900 > 65535
    PacketPtr b = l4_buffer(*f.stack, 1900);
    if (!head) {
      head = std::move(b);
      tail = head.get();
    } else {
      tail->chain = b.release();
      tail = tail->chain;
    }
  }
  Ipv4Tx tx;
  tx.proto = 253;
  tx.dst = kPeerIp;
  BOOST_TEST(f.stack->ipv4().output(std::move(head), tx) == -EMSGSIZE);
  BOOST_TEST(f.sent_ipv4().empty());
  BOOST_TEST(f.stack->pool().available() == f.stack->pool().capacity());
}
