#include <boost/test/unit_test.hpp>

#include "stack/core/counters.h"

using namespace shunt;

BOOST_AUTO_TEST_CASE(a_counter_is_registered_once_and_its_reference_stays_valid) {
  Counters c;
  Counter& a = c.add("ipv4.drop.bad_checksum");
  for (int i = 0; i < 100; ++i) c.add("other." + std::to_string(i));  // growth must not move `a`
  Counter& again = c.add("ipv4.drop.bad_checksum");
  BOOST_TEST(&a == &again);
  ++a;
  a.inc(4);
  BOOST_TEST(c.get("ipv4.drop.bad_checksum") == 5u);
  BOOST_TEST(c.get("no.such") == 0u);
  BOOST_TEST(c.entries().size() == 101u);
  BOOST_TEST(c.entries().front().name == "ipv4.drop.bad_checksum");
}

BOOST_AUTO_TEST_CASE(sum_adds_a_prefix_and_dump_lists_nonzero_in_registration_order) {
  Counters c;
  c.add("udp.drop.no_port").inc(2);
  c.add("udp.rx").inc(10);
  c.add("udp.drop.bad_checksum").inc(3);
  c.add("ipv4.drop.ttl");
  BOOST_TEST(c.sum("udp.drop.") == 5u);
  BOOST_TEST(c.sum("udp.") == 15u);
  BOOST_TEST(c.sum("") == 15u);
  BOOST_TEST(c.dump() == "udp.drop.no_port 2\nudp.rx 10\nudp.drop.bad_checksum 3\n");
  BOOST_TEST(c.dump(false).find("ipv4.drop.ttl 0") != std::string::npos);
}
