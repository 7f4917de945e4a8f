// Recovery under heavy loss and with both directions at once, byte-exact (see
// tcp_integrity.cc): 10 MB through a link losing 20% of frames in each direction (data and
// ACKs alike), over many seeds and both families; 10 MB each way at the same time, clean and
// lossy.
#include <boost/test/unit_test.hpp>

#include "stack/harness/tcp_bulk.h"
#include "tcp_integrity_support.h"

using namespace shunt;
using namespace shunt::tcptest;

BOOST_AUTO_TEST_SUITE(tcp_harness_heavy_loss)

BOOST_AUTO_TEST_CASE(ten_megabytes_arrive_intact_with_twenty_percent_loss) {
  BulkCase c;
  c.link.loss = 0.20;
  c.seeds = 16;
  c.timeout = 4 * 3600 * kSecond;  // retransmission timeouts dominate: hours of virtual time
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_each_way_at_once_over_a_clean_link) {
  BulkCase c;
  c.s2c = 10 << 20;
  c.seeds = 2;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_CASE(ten_megabytes_each_way_at_once_with_five_percent_loss) {
  BulkCase c;
  c.s2c = 10 << 20;
  c.link.loss = 0.05;
  c.link.reorder = 0.01;
  c.seeds = 12;
  run_bulk_case(c);
}

BOOST_AUTO_TEST_SUITE_END()
