// Sending behaviour as an application sees it through the socket API: Nagle and TCP_NODELAY,
// TCP_CORK and MSG_MORE holding partial segments, writability returning (POLLOUT and the
// readiness hook) when the send buffer drains, and a full accept queue holding clients back
// until accept() makes room.
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

namespace {

HarnessOptions ten_ms_apart() {
  LinkConfig l;
  l.delay = 10 * kMilli;
  return net_options(2, l);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tcp_socket_sending)

BOOST_AUTO_TEST_CASE(nagle_holds_a_second_small_segment_until_the_ack_and_nodelay_does_not) {
  for (bool nodelay : {false, true}) {
    Net n(ten_ms_apart());
    Net::Conn c = n.connect_pair(0, 1, false, 9200);
    BOOST_REQUIRE(c.ok());
    n.h.run_for(kSecond);  // no ACK pending either way
    if (nodelay) BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_NODELAY, 1) == 0);
    BOOST_TEST(n.send_str(0, c.client, "a") == 1);
    BOOST_TEST(n.send_str(0, c.client, "b") == 1);
    n.h.run_for(15 * kMilli);  // one way is 10 ms
    BOOST_TEST(n.fionread(1, c.server) == (nodelay ? 2 : 1));
    n.h.run_for(200 * kMilli);
    BOOST_TEST(n.fionread(1, c.server) == 2);
    BOOST_TEST(n.drain(1, c.server) == "ab");
  }
}

BOOST_AUTO_TEST_CASE(msg_more_holds_a_partial_segment_until_the_last_piece) {
  Net n(ten_ms_apart());
  Net::Conn c = n.connect_pair(0, 1, true, 9201);
  BOOST_REQUIRE(c.ok());
  n.h.run_for(kSecond);
  BOOST_TEST(n.send_str(0, c.client, std::string(100, 'm'), MSG_MORE | MSG_NOSIGNAL) == 100);
  n.h.run_for(15 * kMilli);
  BOOST_TEST(n.fionread(1, c.server) == 0);
  BOOST_TEST(n.send_str(0, c.client, std::string(100, 'n')) == 100);
  n.h.run_for(15 * kMilli);
  BOOST_TEST(n.fionread(1, c.server) == 200);
}

BOOST_AUTO_TEST_CASE(tcp_cork_sends_full_segments_and_holds_the_rest_until_uncorked) {
  Net n(ten_ms_apart());
  Net::Conn c = n.connect_pair(0, 1, false, 9202);
  BOOST_REQUIRE(c.ok());
  n.h.run_for(kSecond);
  BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_CORK, 1) == 0);
  const int mss = int(n.info(0, c.client).tcpi_snd_mss);
  BOOST_REQUIRE(mss > 0);
  BOOST_TEST(n.send_str(0, c.client, std::string(100, 'c')) == 100);
  n.h.run_for(15 * kMilli);
  BOOST_TEST(n.fionread(1, c.server) == 0);
  BOOST_TEST(n.send_str(0, c.client, std::string(size_t(2 * mss), 'd')) == 2 * mss);
  n.h.run_for(15 * kMilli);
  BOOST_TEST(n.fionread(1, c.server) == 2 * mss);  // full segments go; the 100-byte tail waits
  // Uncorking pushes the tail (once Nagle allows: when the full segments are acknowledged).
  BOOST_TEST(n.set_int(0, c.client, IPPROTO_TCP, TCP_CORK, 0) == 0);
  n.h.run_for(100 * kMilli);
  BOOST_TEST(n.fionread(1, c.server) == 2 * mss + 100);
}

BOOST_AUTO_TEST_CASE(writability_returns_when_the_peer_reads_and_the_hook_says_so) {
  Net n;
  n.record_hooks = true;
  const int l = n.listener(1, false, 9203);
  n.set_int(1, l, SOL_SOCKET, SO_RCVBUF, 16 * 1024);
  Net::Conn c = n.connect_pair(0, 1, false, 9203, l);
  BOOST_REQUIRE(c.ok());
  n.set_int(0, c.client, SOL_SOCKET, SO_SNDBUF, 16 * 1024);
  const std::string chunk(8192, 'w');
  n.run_until([&] {
    while (n.send_str(0, c.client, chunk) > 0) {
    }
    return n.h.wire_idle();
  }, 10 * kSecond);
  BOOST_TEST(n.send_str(0, c.client, chunk) == -EAGAIN);
  BOOST_TEST(!(n.api(0).poll_events(c.client) & POLLOUT));
  int outq = 0;
  n.api(0).ioctl(c.client, TIOCOUTQ, &outq);
  BOOST_TEST(outq > 0);
  n.hooks[0].clear();
  const size_t got = n.drain(1, c.server).size();
  BOOST_TEST(got > 0u);
  BOOST_REQUIRE(n.wait_events(0, c.client, POLLOUT, 10 * kSecond));
  BOOST_TEST(std::count(n.hooks[0].begin(), n.hooks[0].end(), c.client) >= 1);
  BOOST_TEST(n.send_str(0, c.client, chunk) > 0);
}

BOOST_AUTO_TEST_CASE(a_full_accept_queue_holds_clients_back_until_accept_makes_room) {
  Net n;
  const int l = n.listener(1, false, 9204, 2);
  BOOST_REQUIRE(l >= 0);
  // Six clients connect at once and speak first. With the SYN queue (the backlog, 2) full the
  // listener answers with cookies; with the accept queue full (backlog + 1, as Linux) it drops
  // the handshake's last ACK, so some clients believe they are connected before the server
  // has them: their first data segment, retransmitted, completes the cookie handshake once
  // accept() has made room.
  std::vector<int> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(n.start_connect(0, 1, false, 9204));
  std::vector<bool> said(clients.size(), false);
  auto speak = [&] {
    for (size_t i = 0; i < clients.size(); ++i) {
      if (!said[i] && n.send_str(0, clients[i], "x") == 1) said[i] = true;
    }
  };
  n.run_until([&] {
    speak();
    return false;
  }, 2 * kSecond);
  std::vector<int> servers;
  int s;
  while ((s = n.api(1).accept(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) servers.push_back(s);
  BOOST_TEST(servers.size() >= 1u);
  BOOST_TEST(servers.size() <= 3u);
  const bool all = n.run_until([&] {
    speak();
    int t;
    while ((t = n.api(1).accept(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) servers.push_back(t);
    return servers.size() == clients.size();
  }, 120 * kSecond);
  if (!all) {
    for (int c : clients) BOOST_TEST_MESSAGE("client " << c << " state " << n.state(0, c) << " so_error " << n.so_error(0, c));
    BOOST_TEST_MESSAGE("server: " << servers.size() << " accepted\n" << n.h.stack(1).counters().dump());
  }
  BOOST_REQUIRE(all);
  size_t total = 0;
  n.run_until([&] {
    for (int t : servers) total += n.drain(1, t).size();
    return total >= clients.size();
  }, 300 * kSecond);
  BOOST_TEST(total == clients.size());
}

BOOST_AUTO_TEST_SUITE_END()
