// The verbs driver's bookkeeping: the bounded peer table (MAC -> GID, QPN, address handle) and
// the rings of outstanding work requests with their generations.
#include <boost/test/unit_test.hpp>
#include <map>

#include "stack/core/buffer.h"
#include "stack/driver/verbs/peer_table.h"
#include "stack/driver/verbs/work_ring.h"
#include "tests/support/verbs_print.h"

namespace shunt::verbs {
namespace {

Gid gid_of(uint32_t host) { return ipv4_mapped_gid(Ipv4Addr{0x0a000000 | host}); }

BOOST_AUTO_TEST_CASE(the_table_learns_peers_finds_them_and_notices_a_changed_address) {
  PeerTable t(8);
  const MacAddr m = ud_mac(gid_of(2), 17);
  PeerTable::Learned l = t.learn(m, gid_of(2), 17);
  BOOST_TEST(l.inserted);
  BOOST_TEST(t.size() == 1u);
  BOOST_REQUIRE(t.find(m));
  BOOST_TEST(t.find(m)->qpn == 17u);
  int ah = 0;
  t.find(m)->ah = &ah;
  l = t.learn(m, gid_of(2), 17);  // again: nothing changes, the handle stays
  BOOST_TEST(!l.inserted);
  BOOST_TEST(!l.changed);
  BOOST_TEST(t.find(m)->ah == &ah);
  l = t.learn(m, gid_of(3), 17);  // same MAC, another GID: the old handle is retired
  BOOST_TEST(l.changed);
  BOOST_TEST(l.retired_ah == &ah);
  BOOST_TEST(t.find(m)->ah == nullptr);
  BOOST_TEST(t.find(m)->gid == gid_of(3));
  BOOST_TEST(!t.find(ud_mac(gid_of(9), 17)));
}

BOOST_AUTO_TEST_CASE(the_table_never_holds_more_than_its_capacity_and_evicts_the_least_recently_used) {
  PeerTable t(4);
  int ahs[4];
  for (uint32_t i = 0; i < 4; ++i) {
    t.learn(ud_mac(gid_of(i), 100 + i), gid_of(i), 100 + i);
    t.find(ud_mac(gid_of(i), 100 + i))->ah = &ahs[i];
  }
  t.find(ud_mac(gid_of(0), 100));  // 0 used again: 1 is now the oldest
  PeerTable::Learned l = t.learn(ud_mac(gid_of(7), 107), gid_of(7), 107);
  BOOST_TEST(l.evicted);
  BOOST_TEST(l.retired_ah == &ahs[1]);
  BOOST_TEST(t.size() == 4u);
  BOOST_TEST(!t.find(ud_mac(gid_of(1), 101)));
  BOOST_TEST(t.find(ud_mac(gid_of(0), 100)));
  BOOST_TEST(t.find(ud_mac(gid_of(7), 107)));
  for (uint32_t i = 0; i < 1000; ++i) t.learn(ud_mac(gid_of(i % 300), i), gid_of(i % 300), i);
  BOOST_TEST(t.size() == 4u);
}

BOOST_AUTO_TEST_CASE(lookups_agree_with_a_reference_map_through_many_evictions) {
  PeerTable t(16);
  std::map<uint32_t, uint64_t> last_use;  // qpn -> tick, the reference LRU
  uint64_t tick = 0;
  uint32_t seed = 7;
  for (int step = 0; step < 20000; ++step) {
    seed = seed * 1664525 + 1013904223;
    const uint32_t qpn = (seed >> 8) % 64;
    const MacAddr mac = ud_mac(gid_of(1), qpn);
    if (seed & 1) {
      const bool had = last_use.count(qpn) != 0;
      PeerTable::Learned l = t.learn(mac, gid_of(1), qpn);
      BOOST_REQUIRE(l.inserted == !had);
      if (!had && last_use.size() == 16) {
        auto oldest = last_use.begin();
        for (auto it = last_use.begin(); it != last_use.end(); ++it)
          if (it->second < oldest->second) oldest = it;
        BOOST_REQUIRE(l.evicted);
        BOOST_REQUIRE(!t.find(ud_mac(gid_of(1), oldest->first)));
        last_use.erase(oldest);
      }
      last_use[qpn] = ++tick;
    } else {
      Peer* p = t.find(mac);
      BOOST_REQUIRE((p != nullptr) == (last_use.count(qpn) != 0));
      if (p) {
        BOOST_REQUIRE(p->qpn == qpn);
        last_use[qpn] = ++tick;
      }
    }
    BOOST_REQUIRE(t.size() == last_use.size());
  }
}

BOOST_AUTO_TEST_CASE(completions_return_their_buffers_once_and_stale_ones_are_recognised) {
  BufferPool pool(8);
  WorkRing ring(4);
  PacketBuf* a = pool.alloc().release();
  PacketBuf* b = pool.alloc().release();
  const uint64_t ida = ring.post(a), idb = ring.post(b);
  BOOST_TEST(ring.outstanding() == 2u);
  BOOST_TEST(ring.complete(idb) == b);
  BOOST_TEST(ring.complete(idb) == nullptr);  // twice: unknown
  BOOST_TEST(ring.complete(0xdead00000001ull) == nullptr);
  pool.release(b);
  int reclaimed = 0;
  ring.reclaim_all([&](PacketBuf* x) {
    ++reclaimed;
    pool.release(x);
  });
  BOOST_TEST(reclaimed == 1);
  BOOST_TEST(ring.outstanding() == 0u);
  BOOST_TEST(ring.complete(ida) == nullptr);  // the old generation's completion arrives late
  for (int i = 0; i < 4; ++i) ring.post(pool.alloc().release());
  BOOST_TEST(ring.full());
  ring.reclaim_all([&](PacketBuf* x) { pool.release(x); });
  BOOST_TEST(pool.available() == pool.capacity());
}

}  // namespace
}  // namespace shunt::verbs
