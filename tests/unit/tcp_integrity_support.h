// Shared by the bulk-integrity tests: one case is a link configuration run with TcpBulk across
// a number of seeds (link impairments and stacks seeded alike), alternating IPv4 and IPv6.
#pragma once
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>

#include "stack/harness/harness.h"
#include "stack/harness/tcp_bulk.h"
#include "stack/net/stack.h"
#include "stack/net/tcp/tcp.h"

namespace shunt::tcptest {

struct BulkCase {
  LinkConfig link = [] {
    LinkConfig l;
    l.rate_bps = 1'000'000'000;  // 1 Gb/s, 1 ms round trip: ~86 segments in flight
    l.delay = 500 * kMicro;
    return l;
  }();
  uint64_t c2s = 10 << 20;
  uint64_t s2c = 0;
  int seeds = 8;
  uint64_t first_seed = 1;
  Nanos timeout = 3600 * kSecond;  // virtual
  bool both_families = true;       // odd seeds over IPv6
};

inline TcpBulkResult run_bulk_once(const BulkCase& c, uint64_t seed, bool ipv6) {
  HarnessOptions o;
  o.link = c.link;
  o.link.seed = seed;
  o.config.dad_transmits = 0;
  o.config.seed = int64_t(seed * 1000);
  o.config.buffers = 8192;
  Harness h(o);
  h.run_for(10 * kMilli);
  TcpBulkOptions b;
  b.ipv6 = ipv6;
  b.client_to_server = c.c2s;
  b.server_to_client = c.s2c;
  b.seed = seed;
  b.timeout = c.timeout;
  b.linger = 0;
  TcpBulk bulk(h, b);
  TcpBulkResult r = bulk.run();
  // Nothing is left behind in either stack once both sides closed after a clean exchange.
  h.run_for(200 * kSecond);
  BOOST_TEST(h.stack(0).tcp().connection_count() == 0u, "seed " << seed << ": client connections left");
  BOOST_TEST(h.stack(1).tcp().connection_count() == 0u, "seed " << seed << ": server connections left");
  return r;
}

inline void run_bulk_case(const BulkCase& c) {
  for (int i = 0; i < c.seeds; ++i) {
    const uint64_t seed = c.first_seed + uint64_t(i);
    const bool ipv6 = c.both_families && (seed % 2 == 1);
    const TcpBulkResult r = run_bulk_once(c, seed, ipv6);
    BOOST_TEST_CONTEXT("seed " << seed << (ipv6 ? " IPv6" : " IPv4")) {
      BOOST_TEST(r.error == "");
      BOOST_TEST(r.ok());
      BOOST_TEST(r.received_c2s == c.c2s);
      BOOST_TEST(r.received_s2c == c.s2c);
      BOOST_TEST(r.mismatch_c2s == UINT64_MAX);
      BOOST_TEST(r.mismatch_s2c == UINT64_MAX);
      BOOST_TEST(r.hash_received_c2s == r.hash_sent_c2s);
      BOOST_TEST(r.hash_received_s2c == r.hash_sent_s2c);
      BOOST_TEST(r.eof_at_server);
      BOOST_TEST(r.eof_at_client);
    }
    BOOST_TEST_MESSAGE("seed " << seed << (ipv6 ? " v6" : " v4") << ": " << (r.finished - r.connected) / kMilli
                               << " ms virtual, " << r.goodput_bps() / 1e6 << " Mb/s");
  }
}

}  // namespace shunt::tcptest
