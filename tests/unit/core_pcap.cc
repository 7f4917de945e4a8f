#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "stack/core/clock.h"
#include "stack/harness/pcap.h"
#include "support/test_device.h"

using namespace shunt;

namespace {
std::string temp_path(const char* name) {
  return "/tmp/shunt_test_" + std::to_string(getpid()) + "_" + name + ".pcap";
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
uint32_t le32(const std::vector<uint8_t>& b, size_t off) {
  return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
         uint32_t(b[off + 3]) << 24;
}
uint16_t le16(const std::vector<uint8_t>& b, size_t off) {
  return uint16_t(b[off] | b[off + 1] << 8);
}

struct Record {
  uint32_t sec, nsec, incl, orig;
  std::vector<uint8_t> data;
};
std::vector<Record> records(const std::vector<uint8_t>& f) {
  std::vector<Record> out;
  size_t off = kPcapFileHeaderLen;
  while (off + kPcapRecordHeaderLen <= f.size()) {
    Record r{le32(f, off), le32(f, off + 4), le32(f, off + 8), le32(f, off + 12), {}};
    off += kPcapRecordHeaderLen;
    BOOST_REQUIRE(off + r.incl <= f.size());
    r.data.assign(f.begin() + long(off), f.begin() + long(off + r.incl));
    off += r.incl;
    out.push_back(std::move(r));
  }
  BOOST_TEST(off == f.size());
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(the_file_header_is_nanosecond_pcap_for_ethernet) {
  std::string path = temp_path("header");
  {
    PcapWriter w;
    BOOST_TEST_REQUIRE(w.open(path, 9000));
  }
  auto f = read_file(path);
  BOOST_TEST_REQUIRE(f.size() == kPcapFileHeaderLen);
  BOOST_TEST(le32(f, 0) == 0xa1b23c4du);
  BOOST_TEST(f[0] == 0x4d);  // little-endian on every host
  BOOST_TEST(le16(f, 4) == 2);
  BOOST_TEST(le16(f, 6) == 4);
  BOOST_TEST(le32(f, 8) == 0u);
  BOOST_TEST(le32(f, 12) == 0u);
  BOOST_TEST(le32(f, 16) == 9000u);
  BOOST_TEST(le32(f, 20) == 1u);  // LINKTYPE_ETHERNET
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(records_carry_time_and_lengths_and_are_cut_at_the_snap_length) {
  std::string path = temp_path("records");
  {
    PcapWriter w;
    BOOST_TEST_REQUIRE(w.open(path, 100));
    std::vector<uint8_t> a(60, 0xaa), b(150, 0xbb);
    w.write(3 * kSecond + 250, a.data(), a.size());
    w.write(-5, b.data(), b.size());  // before the epoch: written as 0
    BOOST_TEST(w.records() == 2u);
  }
  auto recs = records(read_file(path));
  BOOST_TEST_REQUIRE(recs.size() == 2u);
  BOOST_TEST(recs[0].sec == 3u);
  BOOST_TEST(recs[0].nsec == 250u);
  BOOST_TEST(recs[0].incl == 60u);
  BOOST_TEST(recs[0].orig == 60u);
  BOOST_TEST(recs[0].data == std::vector<uint8_t>(60, 0xaa));
  BOOST_TEST(recs[1].sec == 0u);
  BOOST_TEST(recs[1].nsec == 0u);
  BOOST_TEST(recs[1].incl == 100u);
  BOOST_TEST(recs[1].orig == 150u);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(a_chained_frame_is_one_record) {
  std::string path = temp_path("chain");
  BufferPool pool(2);
  {
    PcapWriter w;
    BOOST_TEST_REQUIRE(w.open(path));
    PacketPtr head = pool.alloc(0);
    head->append(std::vector<uint8_t>(40, 1));
    PacketPtr tail = pool.alloc(0);
    tail->append(std::vector<uint8_t>(30, 2));
    head->chain = tail.release();
    w.write(kMilli, *head);
  }
  auto recs = records(read_file(path));
  BOOST_TEST_REQUIRE(recs.size() == 1u);
  BOOST_TEST(recs[0].incl == 70u);
  BOOST_TEST(recs[0].nsec == uint32_t(kMilli));
  BOOST_TEST(recs[0].data[39] == 1);
  BOOST_TEST(recs[0].data[40] == 2);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(opening_an_impossible_path_fails_with_a_reason) {
  PcapWriter w;
  BOOST_TEST(!w.open("/nonexistent-dir/x.pcap"));
  BOOST_TEST(!w.is_open());
  BOOST_TEST(w.error().find("/nonexistent-dir/x.pcap") != std::string::npos);
  w.write(0, nullptr, 0);  // harmless when closed
}

BOOST_AUTO_TEST_CASE(pcap_device_records_what_is_received_and_sent) {
  std::string path = temp_path("device");
  test::TestDevice inner;
  VirtualClock clock(5 * kSecond);
  BufferPool pool(8);
  {
    PcapWriter w;
    BOOST_TEST_REQUIRE(w.open(path));
    PcapDevice dev(inner, clock, w);
    dev.attach(pool);
    BOOST_TEST((dev.info().mac == inner.info().mac));
    inner.inject(test::Bytes(64, 0x11));
    PacketPtr rx[4];
    BOOST_TEST(dev.rx_burst(rx, 4) == 1u);
    BOOST_TEST(rx[0]->pool() == &pool);
    clock.advance(7);
    PacketPtr tx = pool.alloc(0);
    tx->append(std::vector<uint8_t>(80, 0x22));
    BOOST_TEST(dev.tx_burst(&tx, 1) == 1u);
    BOOST_TEST(inner.sent.size() == 1u);
  }
  auto recs = records(read_file(path));
  BOOST_TEST_REQUIRE(recs.size() == 2u);
  BOOST_TEST(recs[0].sec == 5u);
  BOOST_TEST(recs[0].incl == 64u);
  BOOST_TEST(recs[1].nsec == 7u);
  BOOST_TEST(recs[1].data == std::vector<uint8_t>(80, 0x22));
  std::remove(path.c_str());
}
