// Checksum offload as a NIC does it: the stack leaves checksums to the device, the device fills
// them in on send and reports which ones it verified on receive.
#include <boost/test/unit_test.hpp>

#include <cstring>

#include "stack/core/buffer.h"
#include "stack/driver/checksum_offload.h"
#include "stack/net/checksum.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

using namespace shunt;

namespace {

// An Ethernet + IPv4 + UDP frame with every checksum zero (left to the NIC).
PacketPtr udp4_frame(BufferPool& pool, size_t payload, uint16_t frag_field = 0) {
  PacketPtr p = pool.alloc(0);
  uint8_t* f = p->append(14 + 20 + 8 + payload);
  EthRepr::emit(f, MacAddr{{2, 0, 0, 0, 0, 2}}, MacAddr{{2, 0, 0, 0, 0, 1}}, kEtherTypeIpv4);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  ip[1] = 0;
  store16(ip + 2, uint16_t(20 + 8 + payload));
  store16(ip + 4, 7);
  store16(ip + 6, frag_field);
  ip[8] = 64;
  ip[9] = kProtoUdp;
  store16(ip + 10, 0);
  store32(ip + 12, 0x0a000001);
  store32(ip + 16, 0x0a000002);
  uint8_t* u = ip + 20;
  store16(u, 1234);
  store16(u + 2, 5678);
  store16(u + 4, uint16_t(8 + payload));
  store16(u + 6, 0);
  for (size_t i = 0; i < payload; ++i) u[8 + i] = uint8_t(i * 7 + 1);
  return p;
}

PacketPtr udp6_frame(BufferPool& pool, size_t payload) {
  PacketPtr p = pool.alloc(0);
  uint8_t* f = p->append(14 + 40 + 8 + payload);
  EthRepr::emit(f, MacAddr{{2, 0, 0, 0, 0, 2}}, MacAddr{{2, 0, 0, 0, 0, 1}}, kEtherTypeIpv6);
  uint8_t* ip = f + 14;
  std::memset(ip, 0, 40);
  ip[0] = 0x60;
  store16(ip + 4, uint16_t(8 + payload));
  ip[6] = kProtoUdp;
  ip[7] = 64;
  ip[8] = 0xfd;
  ip[23] = 1;
  ip[24] = 0xfd;
  ip[39] = 2;
  uint8_t* u = ip + 40;
  store16(u, 1234);
  store16(u + 2, 5678);
  store16(u + 4, uint16_t(8 + payload));
  store16(u + 6, 0);
  for (size_t i = 0; i < payload; ++i) u[8 + i] = uint8_t(i * 3 + 5);
  return p;
}

constexpr uint32_t kBoth = PacketBuf::kRxL3ChecksumOk | PacketBuf::kRxL4ChecksumOk;

}  // namespace

BOOST_AUTO_TEST_CASE(filled_checksums_verify_for_every_small_length) {
  BufferPool pool(4);
  for (size_t n = 0; n <= 70; ++n) {
    PacketPtr f = udp4_frame(pool, n);
    BOOST_TEST(verify_checksums(*f) == 0u);  // nothing filled in yet
    fill_offloaded_checksums(*f, PacketBuf::kTxChecksumMask);
    BOOST_TEST(verify_checksums(*f) == kBoth);
    // The stack's own software check agrees.
    BOOST_TEST(checksum(f->data() + 14, 20) == 0);
    PacketPtr g = udp6_frame(pool, n);
    fill_offloaded_checksums(*g, PacketBuf::kTxL4Checksum);
    BOOST_TEST(verify_checksums(*g) == PacketBuf::kRxL4ChecksumOk);
    BOOST_TEST(load16(g->data() + 14 + 40 + 6) != 0);  // IPv6 UDP never carries zero
  }
}

BOOST_AUTO_TEST_CASE(only_the_requested_checksums_are_filled) {
  BufferPool pool(2);
  PacketPtr f = udp4_frame(pool, 16);
  fill_offloaded_checksums(*f, PacketBuf::kTxIpv4Checksum);
  BOOST_TEST(load16(f->data() + 14 + 20 + 6) == 0);  // UDP left alone
  BOOST_TEST(verify_checksums(*f) == PacketBuf::kRxL3ChecksumOk);
}

BOOST_AUTO_TEST_CASE(any_flipped_bit_loses_the_ok_flag) {
  BufferPool pool(2);
  PacketPtr f = udp4_frame(pool, 32);
  fill_offloaded_checksums(*f, PacketBuf::kTxChecksumMask);
  const size_t len = f->size();
  for (size_t bit = (14 + 20) * 8; bit < len * 8; ++bit) {  // every bit of UDP header and payload
    f->data()[bit / 8] ^= uint8_t(1u << (bit % 8));
    const uint32_t ok = verify_checksums(*f);
    // Flipping a bit of the checksum field to make it zero means "no checksum": left to the stack.
    BOOST_TEST(!(ok & PacketBuf::kRxL4ChecksumOk));
    f->data()[bit / 8] ^= uint8_t(1u << (bit % 8));
  }
  for (size_t bit = 14 * 8; bit < (14 + 20) * 8; ++bit) {
    f->data()[bit / 8] ^= uint8_t(1u << (bit % 8));
    BOOST_TEST(!(verify_checksums(*f) & PacketBuf::kRxL3ChecksumOk));
    f->data()[bit / 8] ^= uint8_t(1u << (bit % 8));
  }
  BOOST_TEST(verify_checksums(*f) == kBoth);
}

BOOST_AUTO_TEST_CASE(fragments_and_malformed_frames_are_not_vouched_for) {
  BufferPool pool(4);
  PacketPtr frag = udp4_frame(pool, 24, 0x2000);  // MF set: the L4 checksum spans fragments
  fill_offloaded_checksums(*frag, PacketBuf::kTxChecksumMask);
  BOOST_TEST(verify_checksums(*frag) == PacketBuf::kRxL3ChecksumOk);
  PacketPtr f = udp4_frame(pool, 24);
  fill_offloaded_checksums(*f, PacketBuf::kTxChecksumMask);
  for (size_t n = 0; n < f->size(); ++n) {  // truncated at every length: no flag, no crash
    PacketPtr t = pool.alloc(0);
    t->append(std::span<const uint8_t>(f->data(), n));
    BOOST_TEST(!(verify_checksums(*t) & PacketBuf::kRxL4ChecksumOk));
    fill_offloaded_checksums(*t, PacketBuf::kTxChecksumMask);
  }
  store16(f->data() + 14 + 2, 2000);  // total length that lies
  BOOST_TEST(verify_checksums(*f) == 0u);
}
