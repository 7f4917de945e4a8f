// A SYN flood: a third stack on the link injects thousands of SYNs from spoofed, unreachable
// sources at a listener (its SYN-ACKs go to the flooder, which drops them) while legitimate
// clients keep connecting. With the SYN queue full, the listener answers with SYN cookies
// (RFC 4987): every legitimate client still connects and exchanges data, and the listener's
// memory and connection count stay bounded however many SYNs arrive.
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "stack/net/checksum.h"
#include "stack/net/ip_rx.h"
#include "tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

namespace {

constexpr uint16_t kPort = 9100;

// An Ethernet + IPv4 + TCP SYN (MSS option) from `src`:`sport` to stack 1.
void inject_syn(Stack& from, Ipv4Addr src, uint16_t sport, uint32_t isn) {
  PacketPtr p = from.alloc_tx();
  BOOST_REQUIRE(p);
  constexpr size_t kLen = 14 + 20 + 24;
  uint8_t* f = p->append(kLen);
  std::memset(f, 0, kLen);
  Harness::mac_of(1).write(f);
  Harness::mac_of(2).write(f + 6);
  store16(f + 12, 0x0800);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  store16(ip + 2, 20 + 24);
  store16(ip + 4, uint16_t(sport));
  ip[8] = 64;
  ip[9] = kProtoTcp;
  src.write(ip + 12);
  Harness::ipv4_of(1).write(ip + 16);
  store16(ip + 10, checksum(ip, 20));
  uint8_t* t = ip + 20;
  store16(t, sport);
  store16(t + 2, kPort);
  store32(t + 4, isn);
  t[12] = uint8_t((24 / 4) << 4);
  t[13] = 0x02;  // SYN
  store16(t + 14, 65535);
  t[20] = 2;  // MSS 1460
  t[21] = 4;
  store16(t + 22, 1460);
  const uint32_t sum = pseudo_header_sum(IpAddr(src), IpAddr(Harness::ipv4_of(1)), kProtoTcp, 24);
  store16(t + 16, checksum_fold(checksum_add(sum, t, 24)));
  from.send_frame(std::move(p));
}

uint64_t counters_containing(const Counters& c, const char* word) {
  uint64_t n = 0;
  for (const auto& e : c.entries()) {
    if (e.name.find(word) != std::string::npos) n += e.counter.value;
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tcp_synflood)

BOOST_AUTO_TEST_CASE(legitimate_clients_connect_through_a_flood_of_spoofed_syns) {
  LinkConfig link;
  link.delay = 100 * kMicro;
  Net n(net_options(3, link));
  // Replies to the spoofed (off-subnet) sources go to the flooder, which drops them.
  n.h.stack(1).set_default_gateway(IpAddr(Harness::ipv4_of(2)));
  const int l = n.listener(1, true, kPort, 128);  // dual-stack listener
  BOOST_REQUIRE(l >= 0);
  Random rnd(99);

  constexpr int kSynsPerMs = 5;
  constexpr int kFloodMs = 2000;  // 10,000 spoofed SYNs
  constexpr int kClients = 40;
  std::vector<int> clients;
  std::vector<int> accepted;
  size_t max_connections = 0, max_memory = 0, memory_at_2000_syns = 0;
  uint64_t syns = 0;
  for (int ms = 0; ms < kFloodMs; ++ms) {
    for (int k = 0; k < kSynsPerMs; ++k) {
      const uint32_t r = uint32_t(rnd.next());
      inject_syn(n.h.stack(2), Ipv4Addr{(198u << 24) | (18u << 16) | (r & 0xffff)}, uint16_t(1024 + (r >> 16) % 60000),
                 uint32_t(rnd.next()));
      ++syns;
    }
    if (ms % (kFloodMs / kClients) == 10) clients.push_back(n.start_connect(0, 1, clients.size() % 2 == 1, kPort));
    n.h.run_for(kMilli);
    int s;
    while ((s = n.api(1).accept(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) accepted.push_back(s);
    max_connections = std::max(max_connections, n.tcp(1).connection_count());
    max_memory = std::max(max_memory, n.tcp(1).memory());
    if (syns == 2000) memory_at_2000_syns = n.tcp(1).memory();
  }
  BOOST_REQUIRE(clients.size() == size_t(kClients));
  // Every legitimate client connected, and its bytes reach the server.
  BOOST_TEST(n.run_until([&] {
    int s;
    while ((s = n.api(1).accept(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) accepted.push_back(s);
    return accepted.size() == clients.size();
  }, 30 * kSecond));
  for (size_t i = 0; i < clients.size(); ++i) {
    BOOST_TEST_CONTEXT("client " << i) {
      BOOST_TEST(clients[i] >= 0);
      BOOST_TEST(n.so_error(0, clients[i]) == 0);
      BOOST_TEST(n.state(0, clients[i]) == kLxEstablished);
      BOOST_TEST(n.send_str(0, clients[i], "hello") == 5);
    }
  }
  n.h.run_for(kSecond);
  size_t got = 0;
  for (int s : accepted) got += n.drain(1, s).size();
  BOOST_TEST(got == 5 * clients.size());
  // Cookies were in use, and the flood did not grow the listener's state with it.
  BOOST_TEST(counters_containing(n.h.stack(1).counters(), "cookie") > 0u, n.h.stack(1).counters().dump());
  BOOST_TEST(max_connections <= size_t(1024));
  BOOST_TEST(max_memory <= memory_at_2000_syns + memory_at_2000_syns / 2 + (256 << 10));
  BOOST_TEST(max_memory <= size_t(32 << 20));
  BOOST_TEST_MESSAGE("peak connections " << max_connections << ", peak TCP memory " << max_memory << " bytes");
  // The half-open entries expire; the accepted connections close cleanly.
  for (int s : accepted) n.api(1).close(s);
  for (int c : clients) n.api(0).close(c);
  n.h.run_for(300 * kSecond);
  BOOST_TEST(n.tcp(1).connection_count() == 0u);
  BOOST_TEST(n.tcp(0).connection_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_flood_at_a_closed_port_leaves_no_state) {
  LinkConfig link;
  link.delay = 100 * kMicro;
  Net n(net_options(3, link));
  n.h.stack(1).set_default_gateway(IpAddr(Harness::ipv4_of(2)));
  Random rnd(5);
  for (int ms = 0; ms < 200; ++ms) {
    for (int k = 0; k < 10; ++k) {
      const uint32_t r = uint32_t(rnd.next());
      inject_syn(n.h.stack(2), Ipv4Addr{(198u << 24) | (18u << 16) | (r & 0xffff)}, uint16_t(1024 + (r >> 16) % 60000),
                 uint32_t(rnd.next()));
    }
    n.h.run_for(kMilli);
    BOOST_TEST_REQUIRE(n.tcp(1).connection_count() == 0u);
  }
  BOOST_TEST(n.tcp(1).memory() < size_t(64 << 10));
}

BOOST_AUTO_TEST_CASE(data_on_the_ack_that_completes_a_cookie_handshake_is_delivered_at_once) {
  // A client that speaks first (HTTP, TLS) may complete a cookie handshake with its first data
  // segment, when its pure ACK was lost or dropped. The new connection must take that data at
  // once within the window the cookie SYN-ACK offered, as Linux does -- not judge it against a
  // window of zero, drop it, and wait for the client's retransmission timeout.
  LinkConfig link;
  link.delay = kMilli;
  Net n(net_options(3, link));
  n.h.stack(1).set_default_gateway(IpAddr(Harness::ipv4_of(2)));
  const int l = n.listener(1, false, kPort, 0);  // a SYN queue of one, an accept queue of one
  BOOST_REQUIRE(l >= 0);
  inject_syn(n.h.stack(2), Ipv4Addr{(198u << 24) | (18u << 16) | 7}, 4000, 12345);  // fills the SYN queue
  n.h.run_for(10 * kMilli);
  // Two clients at once: both SYNs get cookies (the accept queue is still empty); the first
  // ACK fills the accept queue and the second is dropped, though its client is connected.
  const int c1 = n.start_connect(0, 1, false, kPort);
  const int c2 = n.start_connect(0, 1, false, kPort);
  BOOST_REQUIRE(n.wait_events(0, c1, POLLOUT, kSecond));
  BOOST_REQUIRE(n.wait_events(0, c2, POLLOUT, kSecond));
  n.h.run_for(10 * kMilli);
  BOOST_TEST(n.h.stack(1).counters().get("tcp.syncookies_sent") == 2u);
  BOOST_TEST(n.h.stack(1).counters().get("tcp.drop.listen_overflow") == 1u);
  Addr peer;
  peer.len = sizeof peer.ss;
  const int sa = n.api(1).accept(l, peer.sa(), &peer.len, SOCK_NONBLOCK);
  BOOST_REQUIRE(sa >= 0);
  Addr name1;
  name1.len = sizeof name1.ss;
  n.api(0).getsockname(c1, name1.sa(), &name1.len);
  const int b = name1.port() == peer.port() ? c2 : c1;
  // Now B speaks: its request carries the ACK that completes the handshake.
  BOOST_TEST(n.send_str(0, b, "GET / HTTP/1.0\r\n\r\n") == 18);
  n.h.run_for(50 * kMilli);  // far less than any retransmission timeout
  const int sb = n.api(1).accept(l, nullptr, nullptr, SOCK_NONBLOCK);
  BOOST_REQUIRE(sb >= 0);
  BOOST_TEST(n.fionread(1, sb) == 18);
  BOOST_TEST(n.h.stack(1).counters().get("tcp.drop.out_of_window") == 0u);
  BOOST_TEST(n.info(0, b).tcpi_total_retrans == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
