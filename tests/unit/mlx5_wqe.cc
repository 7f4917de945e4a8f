// Golden tests of the mlx5 send WQE encoding and CQE decoding against rdma-core's mlx5dv.h
// layout: exact bytes of every segment, big-endian fields, ds and WQEBB counts, padding, a WQE
// wrapping around the ring end, and the owner-bit rule across laps.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <ostream>
#include <vector>

#include "stack/driver/mlx5/mlx5_wqe.h"
#include "support/mlx5_fake_binding.h"

using namespace shunt;
using shunt::test::aligned_bytes;

namespace shunt {
std::ostream& operator<<(std::ostream& os, Mlx5SendPlan::Verdict v) { return os << int(v); }
}  // namespace shunt

namespace {

constexpr uint32_t kQpn = 0x01a2b3;
constexpr uint32_t kLkey = 0x00c0ffee;

// A frame whose byte i is uint8_t(seed + i).
PacketPtr make_frame(BufferPool& pool, size_t n, uint8_t seed = 1) {
  PacketPtr p = pool.alloc(0);
  uint8_t* d = p->append(n);
  for (size_t i = 0; i < n; ++i) d[i] = uint8_t(seed + i);
  return p;
}

Mlx5Registered registered(const BufferPool& pool) {
  Mlx5Registered r;
  r.begin = reinterpret_cast<uintptr_t>(pool.memory());
  r.end = r.begin + pool.memory_size();
  r.lkey = kLkey;
  return r;
}

std::vector<uint8_t> be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}
std::vector<uint8_t> be64(uint64_t v) {
  auto hi = be32(uint32_t(v >> 32)), lo = be32(uint32_t(v));
  hi.insert(hi.end(), lo.begin(), lo.end());
  return hi;
}
void append(std::vector<uint8_t>& v, const std::vector<uint8_t>& more) {
  v.insert(v.end(), more.begin(), more.end());
}

// The 48 bytes of control + Ethernet segment we expect.
std::vector<uint8_t> expected_head(uint16_t index, uint32_t ds, uint8_t fm_ce_se, uint8_t cs_flags,
                                   const uint8_t* first18) {
  std::vector<uint8_t> v;
  append(v, {0x00, uint8_t(index >> 8), uint8_t(index),
             MLX5_OPCODE_SEND});            // opmod 0, wqe index, opcode
  append(v, be32((kQpn << 8) | ds));        // qpn_ds
  append(v, {0x00, 0x00, 0x00, fm_ce_se});  // signature, stream id, fm_ce_se
  append(v, {0, 0, 0, 0});                  // imm
  append(v, {0, 0, 0, 0, cs_flags, 0, 0, 0, 0, 0, 0, 0, 0x00,
             18});                           // rsvd0, cs_flags, rsvd1, mss, rsvd2, inline_hdr_sz
  v.insert(v.end(), first18, first18 + 18);  // inline_hdr_start + inline_hdr
  return v;
}

std::vector<uint8_t> ring_bytes(const uint8_t* ring, uint32_t wqe_cnt, uint32_t first_wqebb,
                                size_t n) {
  std::vector<uint8_t> v(n);
  const size_t total = size_t(wqe_cnt) * 64;
  for (size_t i = 0; i < n; ++i) v[i] = ring[(size_t(first_wqebb) * 64 + i) % total];
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(layout_constants_match_mlx5dv) {
  BOOST_TEST(kMlx5InlineHeaderSize == 18u);
  BOOST_TEST(kMlx5MaxInlineFrame == 974u);  // 18 + 60 units * 16 - 4
  BOOST_TEST(kMlx5MaxDataSegs == 60u);
  BOOST_TEST(kMlx5CqSetCi == 0u);
  BOOST_TEST(int(MLX5_OPCODE_SEND) == 0x0a);
  BOOST_TEST(uint32_t(MLX5_INLINE_SEG) == 0x80000000u);
  BOOST_TEST(int(MLX5_WQE_CTRL_CQ_UPDATE) == 0x08);
  BOOST_TEST(int(MLX5_ETH_WQE_L3_CSUM) == 0x40);
  BOOST_TEST(int(MLX5_ETH_WQE_L4_CSUM) == 0x80);
  BOOST_TEST(int(MLX5_SND_DBR) == 1);
  BOOST_TEST(int(MLX5_RCV_DBR) == 0);
}

BOOST_AUTO_TEST_CASE(inline_frame_is_ctrl_eth_and_padded_inline_segment) {
  BufferPool pool(4);
  PacketPtr f = make_frame(pool, 60);
  f->flags = PacketBuf::kTxIpv4Checksum | PacketBuf::kTxL4Checksum;
  const Mlx5SendPlan plan = mlx5_plan_send(*f, 204, 204, registered(pool));
  BOOST_TEST(plan.verdict == Mlx5SendPlan::Verdict::kOk);
  BOOST_TEST(plan.all_inline);
  BOOST_TEST(plan.frame_bytes == 60u);
  BOOST_TEST(plan.ds == 6u);  // 3 + ceil((4 + 42) / 16)
  BOOST_TEST(plan.wqebbs == 2u);

  auto ring = aligned_bytes(8 * 64, 0xee);
  auto* ctrl =
      mlx5_write_send_wqe(ring.get(), 8, 0x10005, kQpn, plan, *f, kLkey, MLX5_WQE_CTRL_CQ_UPDATE);
  BOOST_TEST(reinterpret_cast<uint8_t*>(ctrl) == ring.get() + 5 * 64);

  std::vector<uint8_t> want = expected_head(0x0005, 6, 0x08, 0xc0, f->data());
  append(want, be32(0x80000000u | 42));
  want.insert(want.end(), f->data() + 18, f->data() + 60);
  append(want, {0, 0});  // 4 + 42 = 46 bytes padded to 48
  BOOST_TEST(want.size() == 96u);
  const auto got = ring_bytes(ring.get(), 8, 5, 128);
  BOOST_TEST(std::vector<uint8_t>(got.begin(), got.begin() + 96) == want,
             boost::test_tools::per_element());
  // Past ds * 16 the WQEBB is left alone; other WQEBBs are untouched.
  for (size_t i = 96; i < 128; ++i) BOOST_TEST(got[i] == 0xee);
  for (size_t i = 0; i < 5 * 64; ++i) BOOST_TEST_REQUIRE(ring[i] == 0xee);
}

BOOST_AUTO_TEST_CASE(checksum_flags_map_to_cs_flags) {
  BOOST_TEST(mlx5_cs_flags(0) == 0);
  BOOST_TEST(mlx5_cs_flags(PacketBuf::kTxIpv4Checksum) == MLX5_ETH_WQE_L3_CSUM);
  BOOST_TEST(mlx5_cs_flags(PacketBuf::kTxL4Checksum) == MLX5_ETH_WQE_L4_CSUM);
  BOOST_TEST(mlx5_cs_flags(PacketBuf::kTxChecksumMask) ==
             (MLX5_ETH_WQE_L3_CSUM | MLX5_ETH_WQE_L4_CSUM));
}

BOOST_AUTO_TEST_CASE(frame_of_exactly_the_inline_header_has_no_inline_segment) {
  BufferPool pool(2);
  PacketPtr f = make_frame(pool, 18);
  const Mlx5SendPlan plan = mlx5_plan_send(*f, 204, 204, registered(pool));
  BOOST_TEST(plan.all_inline);
  BOOST_TEST(plan.ds == 3u);
  BOOST_TEST(plan.wqebbs == 1u);
  auto ring = aligned_bytes(4 * 64, 0xee);
  mlx5_write_send_wqe(ring.get(), 4, 0, kQpn, plan, *f, kLkey, 0);
  const auto got = ring_bytes(ring.get(), 4, 0, 64);
  BOOST_TEST(
      std::vector<uint8_t>(got.begin(), got.begin() + 48) == expected_head(0, 3, 0, 0, f->data()),
      boost::test_tools::per_element());
  for (size_t i = 48; i < 64; ++i) BOOST_TEST(got[i] == 0xee);
}

BOOST_AUTO_TEST_CASE(inline_threshold_is_inclusive) {
  BufferPool pool(2);
  PacketPtr at = make_frame(pool, 204);
  PacketPtr over = make_frame(pool, 205);
  const auto reg = registered(pool);
  BOOST_TEST(mlx5_plan_send(*at, 204, 204, reg).all_inline);
  const Mlx5SendPlan p = mlx5_plan_send(*over, 204, 204, reg);
  BOOST_TEST(!p.all_inline);
  BOOST_TEST(p.ds == 4u);
  BOOST_TEST(p.wqebbs == 1u);
  // 204 bytes: 18 + 4 + 186 = 190 -> 12 units after ctrl+eth: 15 units, 4 WQEBBs.
  BOOST_TEST(mlx5_plan_send(*at, 204, 204, reg).ds == 15u);
  BOOST_TEST(mlx5_plan_send(*at, 204, 204, reg).wqebbs == 4u);
  // Threshold 0: every frame by data segment, still with its 18 header bytes inline.
  BOOST_TEST(!mlx5_plan_send(*at, 0, 0, reg).all_inline);
}

BOOST_AUTO_TEST_CASE(large_frame_is_one_data_segment_after_the_inline_header) {
  BufferPool pool(2);
  PacketPtr f = make_frame(pool, 1000, 7);
  f->flags = PacketBuf::kTxL4Checksum;
  const Mlx5SendPlan plan = mlx5_plan_send(*f, 204, 204, registered(pool));
  BOOST_TEST(!plan.all_inline);
  BOOST_TEST(plan.ds == 4u);
  auto ring = aligned_bytes(4 * 64, 0xee);
  mlx5_write_send_wqe(ring.get(), 4, 0xffff, kQpn, plan, *f, kLkey, 0);
  std::vector<uint8_t> want = expected_head(0xffff, 4, 0, 0x80, f->data());
  append(want, be32(982));
  append(want, be32(kLkey));
  append(want, be64(reinterpret_cast<uintptr_t>(f->data() + 18)));
  BOOST_TEST(ring_bytes(ring.get(), 4, 3, 64) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(chain_gives_one_data_segment_per_buffer) {
  BufferPool pool(4);
  PacketPtr head = make_frame(pool, 1500, 1);
  PacketPtr mid = make_frame(pool, 1500, 2);
  PacketPtr tail = make_frame(pool, 500, 3);
  PacketBuf* m = mid.release();
  PacketBuf* t = tail.release();
  head->chain = m;
  m->chain = t;
  const Mlx5SendPlan plan = mlx5_plan_send(*head, 204, 204, registered(pool));
  BOOST_TEST(plan.frame_bytes == 3500u);
  BOOST_TEST(plan.ds == 6u);
  BOOST_TEST(plan.wqebbs == 2u);
  auto ring = aligned_bytes(4 * 64, 0xee);
  mlx5_write_send_wqe(ring.get(), 4, 1, kQpn, plan, *head, kLkey, 0);
  std::vector<uint8_t> want = expected_head(1, 6, 0, 0, head->data());
  append(want, be32(1482));
  append(want, be32(kLkey));
  append(want, be64(reinterpret_cast<uintptr_t>(head->data() + 18)));
  for (PacketBuf* b : {m, t}) {
    append(want, be32(uint32_t(b->size())));
    append(want, be32(kLkey));
    append(want, be64(reinterpret_cast<uintptr_t>(b->data())));
  }
  BOOST_TEST(ring_bytes(ring.get(), 4, 1, 96) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(inline_header_is_gathered_across_short_buffers) {
  BufferPool pool(4);
  PacketPtr head = make_frame(pool, 10, 100);
  PacketPtr rest = make_frame(pool, 1000, 110);  // continues the byte pattern
  head->chain = rest.release();
  const Mlx5SendPlan plan = mlx5_plan_send(*head, 204, 204, registered(pool));
  BOOST_TEST(plan.ds == 4u);  // the first buffer is all header: one data segment
  auto ring = aligned_bytes(4 * 64, 0xee);
  mlx5_write_send_wqe(ring.get(), 4, 0, kQpn, plan, *head, kLkey, 0);
  uint8_t first18[18];
  for (int i = 0; i < 18; ++i) first18[i] = uint8_t(100 + i);
  std::vector<uint8_t> want = expected_head(0, 4, 0, 0, first18);
  append(want, be32(992));
  append(want, be32(kLkey));
  append(want, be64(reinterpret_cast<uintptr_t>(head->chain->data() + 8)));
  BOOST_TEST(ring_bytes(ring.get(), 4, 0, 64) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(inline_wqe_wraps_around_the_ring_end) {
  BufferPool pool(2);
  PacketPtr f = make_frame(pool, 200, 9);
  const Mlx5SendPlan plan = mlx5_plan_send(*f, 204, 204, registered(pool));
  BOOST_TEST(plan.ds == 15u);  // 3 + ceil((4 + 182) / 16)
  BOOST_TEST(plan.wqebbs == 4u);
  auto ring = aligned_bytes(4 * 64, 0xee);
  // WQE index 7 is the ring's last WQEBB (3): it continues at 0, 1, 2.
  auto* ctrl = mlx5_write_send_wqe(ring.get(), 4, 7, kQpn, plan, *f, kLkey, 0);
  BOOST_TEST(reinterpret_cast<uint8_t*>(ctrl) == ring.get() + 3 * 64);
  std::vector<uint8_t> want = expected_head(7, 15, 0, 0, f->data());
  append(want, be32(0x80000000u | 182));
  want.insert(want.end(), f->data() + 18, f->data() + 200);
  append(want, std::vector<uint8_t>(6, 0));  // 186 -> 192
  BOOST_TEST(want.size() == 240u);
  BOOST_TEST(ring_bytes(ring.get(), 4, 3, 240) == want, boost::test_tools::per_element());
  // The part after the wrap sits at the ring's start.
  BOOST_TEST(ring[0] == f->data()[18 + 12]);
}

BOOST_AUTO_TEST_CASE(data_segments_wrap_around_the_ring_end) {
  BufferPool pool(8);
  PacketPtr head = make_frame(pool, 300, 1);
  PacketBuf* prev = head.get();
  for (int i = 0; i < 5; ++i) {
    PacketBuf* b = make_frame(pool, 100 + i, uint8_t(i)).release();
    prev->chain = b;
    prev = b;
  }
  const Mlx5SendPlan plan = mlx5_plan_send(*head, 204, 204, registered(pool));
  BOOST_TEST(plan.ds == 9u);
  BOOST_TEST(plan.wqebbs == 3u);
  auto ring = aligned_bytes(4 * 64, 0xee);
  mlx5_write_send_wqe(ring.get(), 4, 3, kQpn, plan, *head, kLkey, 0);
  std::vector<uint8_t> want = expected_head(3, 9, 0, 0, head->data());
  append(want, be32(282));
  append(want, be32(kLkey));
  append(want, be64(reinterpret_cast<uintptr_t>(head->data() + 18)));
  for (PacketBuf* b = head->chain; b; b = b->chain) {
    append(want, be32(uint32_t(b->size())));
    append(want, be32(kLkey));
    append(want, be64(reinterpret_cast<uintptr_t>(b->data())));
  }
  BOOST_TEST(ring_bytes(ring.get(), 4, 3, 144) == want, boost::test_tools::per_element());
  // The first data segment is the last 16 bytes of WQEBB 3, the second starts the ring.
  BOOST_TEST(std::memcmp(ring.get(), want.data() + 64, 16) == 0);
}

BOOST_AUTO_TEST_CASE(plan_rejects_runts_long_chains_and_unregistered_buffers) {
  BufferPool pool(70);
  BufferPool other(2);
  const auto reg = registered(pool);
  PacketPtr runt = make_frame(pool, 17);
  BOOST_TEST(mlx5_plan_send(*runt, 204, 204, reg).verdict == Mlx5SendPlan::Verdict::kRunt);

  PacketPtr head = make_frame(pool, 100);
  PacketBuf* prev = head.get();
  for (int i = 0; i < 60; ++i) {
    PacketBuf* b = make_frame(pool, 10).release();
    prev->chain = b;
    prev = b;
  }
  BOOST_TEST(mlx5_plan_send(*head, 204, 204, reg).verdict ==
             Mlx5SendPlan::Verdict::kTooManySegments);
  PacketPtr drop_last(head->chain);  // 60 buffers after removing one: 60 segments fit
  head->chain = drop_last->chain;
  drop_last->chain = nullptr;
  const Mlx5SendPlan fits = mlx5_plan_send(*head, 204, 204, reg);
  BOOST_TEST(fits.verdict == Mlx5SendPlan::Verdict::kOk);
  BOOST_TEST(fits.ds == 63u);
  BOOST_TEST(fits.wqebbs == 16u);

  // A buffer outside registered memory: inline when it fits the QP's inline limit, else refused.
  PacketPtr small = make_frame(other, 300);
  PacketPtr big = make_frame(other, 1000);
  const Mlx5SendPlan s = mlx5_plan_send(*small, 204, 400, reg);
  BOOST_TEST(s.verdict == Mlx5SendPlan::Verdict::kOk);
  BOOST_TEST(s.all_inline);
  BOOST_TEST(mlx5_plan_send(*big, 204, 400, reg).verdict == Mlx5SendPlan::Verdict::kUnregistered);
  BOOST_TEST(mlx5_plan_send(*big, 204, 400, Mlx5Registered{}).verdict ==
             Mlx5SendPlan::Verdict::kUnregistered);
}

// --- CQEs --------------------------------------------------------------------------------------

namespace {

void write_cqe(uint8_t* cq, uint32_t cnt, uint32_t pi, uint8_t opcode, const mlx5_cqe64& c) {
  Mlx5Rings::CompletionQueue q{cq, nullptr, cnt, 64, 0};
  shunt::test::FakeMlx5Binding::write_cqe(q, pi, c, opcode);
}

}  // namespace

BOOST_AUTO_TEST_CASE(cqe_ownership_follows_the_lap_parity) {
  constexpr uint32_t kCnt = 4;
  auto cq = aligned_bytes(kCnt * 64, 0);
  for (uint32_t i = 0; i < kCnt; ++i) cq[i * 64 + 63] = MLX5_CQE_INVALID << 4;  // as created
  for (uint32_t ci = 0; ci < 3 * kCnt; ++ci) BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, ci) == 0xff);

  mlx5_cqe64 c{};
  c.wqe_counter = htobe16(0x1234);
  c.byte_cnt = htobe32(1514);
  write_cqe(cq.get(), kCnt, 0, MLX5_CQE_RESP_SEND, c);
  BOOST_TEST(cq[63] == ((MLX5_CQE_RESP_SEND << 4) | 0));  // first lap: owner bit 0
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, 0) == ((MLX5_CQE_RESP_SEND << 4) | 0));
  // The same slot one lap later is stale until the device writes it with owner bit 1.
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, kCnt) == 0xff);
  write_cqe(cq.get(), kCnt, kCnt, MLX5_CQE_REQ, c);
  BOOST_TEST(cq[63] == ((MLX5_CQE_REQ << 4) | 1));
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, kCnt) == ((MLX5_CQE_REQ << 4) | 1));
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, 0) == 0xff);
  // Third lap expects owner 0 again: the second-lap CQE is stale there.
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, 2 * kCnt) == 0xff);
  write_cqe(cq.get(), kCnt, 2 * kCnt, MLX5_CQE_REQ, c);
  BOOST_TEST(mlx5_cqe_ready(cq.get(), kCnt, 2 * kCnt) != 0xff);

  const mlx5_cqe64* got = mlx5_cqe_at(cq.get(), kCnt, 2 * kCnt);
  BOOST_TEST(reinterpret_cast<const uint8_t*>(got) == cq.get());
  BOOST_TEST(mlx5_cqe_opcode(got->op_own) == MLX5_CQE_REQ);
  BOOST_TEST(be16toh(got->wqe_counter) == 0x1234);
  BOOST_TEST(be32toh(got->byte_cnt) == 1514u);
  // Big-endian on the wire: byte_cnt at offset 44, wqe_counter at 60.
  BOOST_TEST(cq[44] == 0x00);
  BOOST_TEST(cq[46] == 0x05);
  BOOST_TEST(cq[47] == 0xea);
  BOOST_TEST(cq[60] == 0x12);
  BOOST_TEST(cq[61] == 0x34);
}

BOOST_AUTO_TEST_CASE(invalid_opcode_is_never_ready_whatever_the_owner_bit) {
  auto cq = aligned_bytes(2 * 64, 0);
  cq[63] = uint8_t((MLX5_CQE_INVALID << 4) | 1);
  cq[127] = uint8_t(MLX5_CQE_INVALID << 4);
  for (uint32_t ci = 0; ci < 8; ++ci) BOOST_TEST(mlx5_cqe_ready(cq.get(), 2, ci) == 0xff);
}

BOOST_AUTO_TEST_CASE(receive_checksum_flags_only_for_ipv4_and_tcp_udp) {
  auto flags = [](uint8_t ok, uint8_t l3, uint8_t l4) {
    mlx5_cqe64 c{};
    c.hds_ip_ext = ok;
    c.l4_hdr_type_etc = uint8_t((l4 << 4) | (l3 << 2));
    return mlx5_rx_checksum_flags(c);
  };
  const uint8_t both = MLX5_CQE_L3_OK | MLX5_CQE_L4_OK;
  const uint32_t l3ok = PacketBuf::kRxL3ChecksumOk, l4ok = PacketBuf::kRxL4ChecksumOk;
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeTcp) == (l3ok | l4ok));
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeUdp) == (l3ok | l4ok));
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeTcpAck) == (l3ok | l4ok));
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeNone) ==
             l3ok);  // ICMP, fragments
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_IPV6, kMlx5CqeL4HdrTypeUdp) ==
             l4ok);  // no IPv6 header checksum
  BOOST_TEST(flags(both, MLX5_CQE_L3_HDR_TYPE_NONE, kMlx5CqeL4HdrTypeUdp) ==
             0u);  // ARP and the like
  BOOST_TEST(flags(MLX5_CQE_L3_OK, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeTcp) ==
             l3ok);  // bad L4 checksum
  BOOST_TEST(flags(MLX5_CQE_L4_OK, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeTcp) == l4ok);
  BOOST_TEST(flags(0, MLX5_CQE_L3_HDR_TYPE_IPV4, kMlx5CqeL4HdrTypeTcp) == 0u);
  BOOST_TEST(flags(both | MLX5_CQE_L2_OK, MLX5_CQE_L3_HDR_TYPE_IPV4, 7) ==
             l3ok);  // unknown L4 type
}

BOOST_AUTO_TEST_CASE(error_cqe_fields_and_syndrome_names) {
  auto cq = aligned_bytes(64, 0);
  mlx5_cqe64 c{};
  auto* e = reinterpret_cast<mlx5_err_cqe*>(&c);
  e->syndrome = MLX5_CQE_SYNDROME_LOCAL_PROT_ERR;
  e->vendor_err_synd = 0x9a;
  e->wqe_counter = htobe16(0x0102);
  write_cqe(cq.get(), 1, 0, MLX5_CQE_REQ_ERR, c);
  BOOST_TEST(mlx5_cqe_opcode(mlx5_cqe_ready(cq.get(), 1, 0)) == MLX5_CQE_REQ_ERR);
  BOOST_TEST(cq[54] == 0x9a);
  BOOST_TEST(cq[55] == MLX5_CQE_SYNDROME_LOCAL_PROT_ERR);
  BOOST_TEST(cq[60] == 0x01);
  BOOST_TEST(cq[61] == 0x02);
  BOOST_TEST(cq[63] == (MLX5_CQE_REQ_ERR << 4));
  BOOST_TEST(std::string(mlx5_syndrome_name(MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR)) == "local_length");
  BOOST_TEST(std::string(mlx5_syndrome_name(MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR)) == "local_qp_op");
  BOOST_TEST(std::string(mlx5_syndrome_name(MLX5_CQE_SYNDROME_LOCAL_PROT_ERR)) == "local_prot");
  BOOST_TEST(std::string(mlx5_syndrome_name(MLX5_CQE_SYNDROME_WR_FLUSH_ERR)) == "wr_flush");
  BOOST_TEST(std::string(mlx5_syndrome_name(MLX5_CQE_SYNDROME_REMOTE_ABORTED_ERR)) == "other");
}
