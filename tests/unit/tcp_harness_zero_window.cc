// Zero window and persist through the socket API: a receiver that stops reading closes the
// window; the sender keeps probing at a bounded rate (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17)
// without giving up or flooding; when the reader resumes, everything arrives intact, also when
// the window updates themselves are lost.
#include <boost/test/unit_test.hpp>

#include "stack/harness/tcp_bulk.h"
#include "tcp_integrity_support.h"
#include "tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

namespace {

LinkConfig gigabit() {
  LinkConfig l;
  l.rate_bps = 1'000'000'000;
  l.delay = 500 * kMicro;
  return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tcp_harness_zero_window)

BOOST_AUTO_TEST_CASE(a_stalled_reader_closes_the_window_and_the_sender_probes_until_it_reopens) {
  for (bool ipv6 : {false, true}) {
    Net n(net_options(2, gigabit()));
    const int l = n.listener(1, ipv6, 9000);
    BOOST_REQUIRE(l >= 0);
    BOOST_TEST(n.set_int(1, l, SOL_SOCKET, SO_RCVBUF, 32 * 1024) == 0);  // inherited
    Net::Conn c = n.connect_pair(0, 1, ipv6, 9000, l);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(n.set_int(0, c.client, SOL_SOCKET, SO_SNDBUF, 32 * 1024) == 0);
    constexpr uint64_t kTotal = 4 << 20;
    const uint64_t seed = ipv6 ? 2 : 1;
    std::vector<uint8_t> buf(64 * 1024);
    uint64_t sent = 0;
    auto pump_send = [&] {
      while (sent < kTotal) {
        const size_t len = size_t(std::min<uint64_t>(buf.size(), kTotal - sent));
        tcp_bulk_pattern(seed, sent, buf.data(), len);
        const ssize_t w = n.api(0).send(c.client, buf.data(), len, MSG_NOSIGNAL);
        if (w <= 0) return w;
        sent += uint64_t(w);
      }
      return ssize_t(0);
    };
    // Fill the pipe while the server does not read: the window closes.
    n.run_until([&] { return pump_send() == -EAGAIN && n.h.wire_idle(); }, 10 * kSecond);
    n.h.run_for(kSecond);
    const int queued = n.fionread(1, c.server);
    BOOST_TEST(queued > 0);
    BOOST_TEST(queued <= 64 * 1024);  // bounded by the receive buffer
    BOOST_TEST(!(n.api(0).poll_events(c.client) & POLLOUT));
    // A minute of zero window: probes, few of them, and the connection stays up.
    const uint64_t frames0 = n.h.link().counters().get("link.tx_frames");
    n.h.run_for(60 * kSecond);
    const uint64_t frames = n.h.link().counters().get("link.tx_frames") - frames0;
    BOOST_TEST(frames >= 2u);
    BOOST_TEST(frames <= 200u);
    BOOST_TEST(n.state(0, c.client) == kLxEstablished);
    BOOST_TEST(n.fionread(1, c.server) == queued);  // nothing beyond the window
    // The reader resumes: everything arrives in order.
    uint64_t received = 0;
    uint64_t bad = UINT64_MAX;
    std::vector<uint8_t> in(64 * 1024), expect(64 * 1024);
    BOOST_REQUIRE(n.run_until([&] {
      pump_send();
      while (true) {
        const ssize_t r = n.api(1).recv(c.server, in.data(), in.size(), 0);
        if (r <= 0) break;
        tcp_bulk_pattern(seed, received, expect.data(), size_t(r));
        if (bad == UINT64_MAX && std::memcmp(in.data(), expect.data(), size_t(r)) != 0) bad = received;
        received += uint64_t(r);
      }
      return received == kTotal;
    }, 600 * kSecond));
    BOOST_TEST(bad == UINT64_MAX);
    BOOST_TEST(received == kTotal);
  }
}

BOOST_AUTO_TEST_CASE(reader_pauses_under_loss_never_deadlock) {
  // The reader stops for 20 s after 1 MB with a small buffer; lost window updates must be
  // recovered by the sender's probes, not wait forever.
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    HarnessOptions o;
    o.link = gigabit();
    o.link.loss = 0.05;
    o.link.seed = seed;
    o.config.dad_transmits = 0;
    o.config.seed = int64_t(seed);
    Harness h(o);
    h.run_for(10 * kMilli);
    TcpBulkOptions b;
    b.ipv6 = seed % 2 == 0;
    b.client_to_server = 3 << 20;
    b.seed = seed;
    b.rcvbuf = 32 * 1024;
    b.sndbuf = 64 * 1024;
    b.reader_pause_at = 1 << 20;
    b.reader_pause = 20 * kSecond;
    b.timeout = 3600 * kSecond;
    TcpBulk bulk(h, b);
    const TcpBulkResult& r = bulk.run();
    BOOST_TEST_CONTEXT("seed " << seed) {
      BOOST_TEST(r.error == "");
      BOOST_TEST(r.ok());
      BOOST_TEST(r.received_c2s == b.client_to_server);
      // The pause really happened: the transfer took at least its length.
      BOOST_TEST(r.finished - r.connected >= 20 * kSecond);
    }
  }
}

BOOST_AUTO_TEST_CASE(small_buffers_both_ways_with_loss) {
  // Send and receive buffers of a few segments make the window the bottleneck throughout.
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    HarnessOptions o;
    o.link = gigabit();
    o.link.loss = 0.02;
    o.link.seed = seed;
    o.config.dad_transmits = 0;
    o.config.seed = int64_t(seed);
    Harness h(o);
    h.run_for(10 * kMilli);
    TcpBulkOptions b;
    b.ipv6 = seed % 2 == 1;
    b.client_to_server = 2 << 20;
    b.server_to_client = 2 << 20;
    b.seed = seed;
    b.rcvbuf = 8 * 1024;
    b.sndbuf = 8 * 1024;
    b.chunk = 3000;
    b.timeout = 3600 * kSecond;
    TcpBulk bulk(h, b);
    const TcpBulkResult& r = bulk.run();
    BOOST_TEST_CONTEXT("seed " << seed) {
      BOOST_TEST(r.error == "");
      BOOST_TEST(r.ok());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
