// Recovery with byte-exact integrity: 10 MB through the socket API (TcpBulk: every byte is a
// seeded function of its offset and is checked in order on arrival, and both ends' hashes must
// agree) over a link that loses 1% or 5% of frames, reorders or duplicates them, across many
// seeds, alternating IPv4 and IPv6. The 20% loss cases and both directions at once live in
// tcp_harness_heavy_loss.cc.
#include <boost/test/unit_test.hpp>

#include "stack/harness/tcp_bulk.h"
#include "tcp_integrity_support.h"

using namespace shunt;
using namespace shunt::tcptest;

BOOST_AUTO_TEST_SUITE(tcp_integrity)

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_over_a_clean_link) {
  BulkCase c;
  c.seeds = 2;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_one_percent_loss) {
  BulkCase c;
  c.link.loss = 0.01;
  c.seeds = 16;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_five_percent_loss) {
  BulkCase c;
  c.link.loss = 0.05;
  c.seeds = 16;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_reordering) {
  BulkCase c;
  c.link.reorder = 0.05;
  c.link.reorder_delay = 300 * kMicro;  // overtaken by many segments
  c.seeds = 12;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_duplication) {
  BulkCase c;
  c.link.duplicate = 0.05;
  c.seeds = 12;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_loss_reordering_and_duplication_together) {
  BulkCase c;
  c.link.loss = 0.02;
  c.link.reorder = 0.03;
  c.link.duplicate = 0.02;
  c.seeds = 12;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_SUITE_END()
