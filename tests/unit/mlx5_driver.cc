// The mlx5 driver against a fake binding that plays the NIC: it reads the WQEs the driver
// writes, writes CQEs in mlx5dv.h layout, and delivers frames into posted receive buffers.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <vector>

#include "stack/driver/mlx5/mlx5_driver.h"
#include "support/mlx5_fake_binding.h"

using namespace shunt;
using shunt::test::FakeMlx5Binding;
using shunt::test::FakeSentWqe;
using Bytes = std::vector<uint8_t>;

namespace {

Mlx5DriverOptions small_options() {
  Mlx5DriverOptions o;
  o.sizes.sq_wqebbs = 64;
  o.sizes.rq_wqes = 16;
  o.sizes.send_cqes = 64;
  o.sizes.recv_cqes = 16;
  o.inline_threshold = 204;
  o.sizes.max_inline = 204;
  o.signal_every = 4;
  return o;
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + i * 7);
  return b;
}

// A frame in one buffer, or chained over buffers of at most 2048 bytes.
PacketPtr make_frame(BufferPool& pool, const Bytes& bytes, uint32_t flags = 0) {
  PacketPtr head;
  PacketBuf* tail = nullptr;
  for (size_t off = 0; off < bytes.size() || !head;) {
    PacketPtr b = pool.alloc(0);
    BOOST_REQUIRE(b);
    const size_t n = std::min(bytes.size() - off, PacketBuf::kCapacity);
    b->append(std::span<const uint8_t>(bytes.data() + off, n));
    off += n;
    if (!head) {
      head = std::move(b);
      tail = head.get();
    } else {
      tail->chain = b.release();
      tail = tail->chain;
    }
  }
  head->flags = flags;
  return head;
}

struct Rig {
  FakeMlx5Binding nic;
  BufferPool pool;
  std::unique_ptr<Mlx5Driver> drv;
  Mlx5DriverOptions options;

  explicit Rig(size_t buffers = 256, Mlx5DriverOptions o = small_options())
      : pool(buffers), options(o) {}
  // Opens the driver (after the test has set up `nic`) and attaches the pool.
  Mlx5Driver& start() {
    drv = std::make_unique<Mlx5Driver>(nic, options);
    drv->attach(pool);
    return *drv;
  }
  uint64_t count(const char* name) const { return drv->counters().get(name); }
  size_t send(std::vector<PacketPtr>& frames) {
    return drv->tx_burst(frames.data(), frames.size());
  }
  size_t send_one(PacketPtr p) { return drv->tx_burst(&p, 1); }
  std::vector<PacketPtr> receive(size_t max = 64) {
    std::vector<PacketPtr> out(max);
    out.resize(drv->rx_burst(out.data(), max));
    return out;
  }
};

Bytes bytes_of(const PacketBuf& p) { return Bytes(p.data(), p.data() + p.size()); }

}  // namespace

BOOST_AUTO_TEST_CASE(opens_power_of_two_queues_and_attach_posts_the_receive_queue_full) {
  Mlx5DriverOptions o = small_options();
  o.sizes.sq_wqebbs = 100;
  o.sizes.rq_wqes = 20;
  o.sizes.send_cqes = 1;
  o.sizes.recv_cqes = 1;
  Rig rig(256, o);
  Mlx5Driver& drv = rig.start();
  BOOST_TEST_REQUIRE(drv.ok());
  BOOST_TEST(drv.error().empty());
  BOOST_TEST(rig.nic.asked.sq_wqebbs == 128u);
  BOOST_TEST(rig.nic.asked.rq_wqes == 32u);
  BOOST_TEST(rig.nic.asked.send_cqes == 128u);  // at least one per WQEBB
  BOOST_TEST(rig.nic.asked.recv_cqes == 32u);
  BOOST_TEST(rig.nic.asked.max_inline == 204u);

  BOOST_TEST(drv.rx_posted() == 32u);
  BOOST_TEST(rig.pool.available() == 256u - 32u);
  BOOST_TEST(rig.nic.rcv_dbr() == 32u);
  BOOST_TEST(rig.nic.snd_dbr() == 0u);
  BOOST_TEST(rig.nic.send_cq_ci() == 0u);
  BOOST_TEST(rig.nic.recv_cq_ci() == 0u);
  const auto* mem = static_cast<const uint8_t*>(rig.pool.memory());
  for (uint32_t i = 0; i < 32; ++i) {
    const auto* seg = reinterpret_cast<const mlx5_wqe_data_seg*>(rig.nic.rq_wqe(i));
    BOOST_TEST(be32toh(seg->byte_count) == PacketBuf::kCapacity);
    BOOST_TEST(be32toh(seg->lkey) == *rig.nic.lkey);
    const auto* addr = reinterpret_cast<const uint8_t*>(be64toh(seg->addr));
    BOOST_TEST((addr >= mem && addr + PacketBuf::kCapacity <= mem + rig.pool.memory_size()));
  }
  // Every CQE starts invalid, as libmlx5 creates a CQ.
  for (uint32_t i = 0; i < 128; ++i)
    BOOST_TEST_REQUIRE(rig.nic.rings.send_cq.buf[i * 64 + 63] == (MLX5_CQE_INVALID << 4));
  BOOST_TEST(drv.info().name == "fake-mlx5");
  BOOST_TEST(drv.info().rx_checksum);
  BOOST_TEST(drv.info().tx_checksum);
  BOOST_TEST(drv.wait_fd() == -1);
  BOOST_TEST(drv.service(0) == kNever);
}

BOOST_AUTO_TEST_CASE(receive_wqe_wider_than_a_segment_ends_with_an_invalid_lkey_segment) {
  Rig rig;
  rig.nic.rq_stride = 32;
  rig.start();
  for (uint32_t i = 0; i < 16; ++i) {
    const auto* seg = reinterpret_cast<const mlx5_wqe_data_seg*>(rig.nic.rq_wqe(i));
    BOOST_TEST(be32toh(seg[0].byte_count) == PacketBuf::kCapacity);
    BOOST_TEST(seg[1].byte_count == 0u);
    BOOST_TEST(be32toh(seg[1].lkey) == uint32_t(MLX5_INVALID_LKEY));
    BOOST_TEST(seg[1].addr == 0u);
  }
  rig.nic.deliver(pattern(64, 1));
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(bytes_of(*got[0]) == pattern(64, 1));
}

BOOST_AUTO_TEST_CASE(open_failure_gives_one_line_and_a_driver_that_drops) {
  Rig rig(32);
  rig.nic.open_error = "mlx5: no RDMA device found";
  Mlx5Driver& drv = rig.start();
  BOOST_TEST(!drv.ok());
  BOOST_TEST(drv.error() == "mlx5: no RDMA device found");
  BOOST_TEST(rig.pool.available() == 32u);  // nothing posted
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(make_frame(rig.pool, pattern(100, 1)));
  BOOST_TEST(rig.send(frames) == 0u);
  BOOST_TEST(rig.count("mlx5.tx.drop.not_ready") == 3u);
  BOOST_TEST(rig.pool.available() == 32u);
  BOOST_TEST(rig.receive().empty());
  BOOST_TEST(rig.nic.doorbells.empty());
}

BOOST_AUTO_TEST_CASE(registration_failure_and_unusable_rings_are_reported) {
  {
    Rig rig(32);
    rig.nic.lkey.reset();
    rig.nic.register_error = "ibv_reg_mr: Cannot allocate memory";
    Mlx5Driver& drv = rig.start();
    BOOST_TEST(!drv.ok());
    BOOST_TEST(
        drv.error() ==
        "mlx5: cannot register the packet buffer pool for DMA: ibv_reg_mr: Cannot allocate memory");
    BOOST_TEST(rig.pool.available() == 32u);
  }
  {
    Rig rig(32);
    rig.nic.tweak_rings = [](Mlx5Rings& r) { r.recv_cq.cqe_size = 128; };
    Mlx5Driver& drv = rig.start();
    BOOST_TEST(!drv.ok());
    BOOST_TEST(drv.error() ==
               "mlx5: the binding's rings are unusable: receive CQE size 128 (need 64)");
    BOOST_TEST(drv.error().find('\n') == std::string::npos);
  }
  {
    Rig rig(32);
    rig.nic.tweak_rings = [](Mlx5Rings& r) { r.sq.wqe_cnt = 96; };
    BOOST_TEST(!rig.start().ok());
  }
}

BOOST_AUTO_TEST_CASE(
    moderation_signals_every_nth_wqe_and_a_completion_frees_exactly_up_to_its_wqe_counter) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  std::vector<Bytes> sent;
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 10; ++i) {
    sent.push_back(pattern(1000 + i, uint8_t(i)));
    frames.push_back(make_frame(rig.pool, sent.back()));
  }
  BOOST_TEST(rig.send(frames) == 10u);
  BOOST_TEST(drv.tx_outstanding() == 10u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 10u);
  // One doorbell for the burst, after the record says 10, with the last WQE's control segment.
  BOOST_TEST_REQUIRE(rig.nic.doorbells.size() == 1u);
  BOOST_TEST(rig.nic.doorbells[0].snd_dbr == 10u);
  BOOST_TEST(rig.nic.doorbells[0].wqe == rig.nic.sq_wqebb(9));
  BOOST_TEST(rig.nic.doorbells[0].bf_bytes == 0u);

  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 10u);
  for (size_t i = 0; i < 10; ++i) {
    BOOST_TEST(wqes[i].index == i);
    BOOST_TEST(wqes[i].opcode == MLX5_OPCODE_SEND);
    BOOST_TEST(wqes[i].qpn == rig.nic.qpn);
    BOOST_TEST(wqes[i].ds == 4u);
    BOOST_TEST(wqes[i].inline_hdr_sz == 18u);
    BOOST_TEST(!wqes[i].all_inline);
    BOOST_TEST(!wqes[i].bad_address);
    BOOST_TEST(wqes[i].signalled() == (i == 3 || i == 7));
    BOOST_TEST(wqes[i].frame == sent[i]);
  }
  rig.nic.complete_send(3);
  rig.receive();  // reaps send completions too
  BOOST_TEST(drv.tx_outstanding() == 6u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 6u);
  BOOST_TEST(rig.nic.send_cq_ci() == 1u);
  rig.nic.complete_send(7);
  rig.send(frames);  // an empty burst reaps as well
  BOOST_TEST(drv.tx_outstanding() == 2u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 2u);
  BOOST_TEST(rig.count("mlx5.tx.completions") == 2u);
  BOOST_TEST(rig.count("mlx5.tx.frames") == 10u);
  // A wqe_counter for no outstanding WQE frees nothing and is counted.
  rig.nic.complete_send(40);
  rig.receive();
  BOOST_TEST(drv.tx_outstanding() == 2u);
  BOOST_TEST(rig.count("mlx5.tx.bad_wqe_counter") == 1u);
}

BOOST_AUTO_TEST_CASE(more_than_half_full_send_queue_signals_every_wqe) {
  Mlx5DriverOptions o = small_options();
  o.signal_every = 256;
  Rig rig(256, o);
  rig.start();
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 40; ++i) frames.push_back(make_frame(rig.pool, pattern(500, 1)));
  BOOST_TEST(rig.send(frames) == 40u);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 40u);
  for (size_t i = 0; i < 40; ++i) BOOST_TEST(wqes[i].signalled() == (i >= 32));
}

BOOST_AUTO_TEST_CASE(full_send_queue_reaps_then_drops_and_counts) {
  Mlx5DriverOptions o = small_options();
  o.signal_every = 256;
  Rig rig(256, o);
  Mlx5Driver& drv = rig.start();
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 70; ++i) frames.push_back(make_frame(rig.pool, pattern(500, uint8_t(i))));
  BOOST_TEST(rig.send(frames) == 64u);
  BOOST_TEST(rig.count("mlx5.tx.drop.sq_full") == 6u);
  BOOST_TEST(drv.tx_outstanding() == 64u);
  // The doorbell rang once, when the queue filled, before the reap: nothing more to ring.
  BOOST_TEST_REQUIRE(rig.nic.doorbells.size() == 1u);
  BOOST_TEST(rig.nic.doorbells[0].snd_dbr == 64u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 64u);

  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST(wqes.size() == 64u);
  rig.nic.complete_send(wqes[40].index);  // the NIC finished 41 of them
  BOOST_TEST(rig.send_one(make_frame(rig.pool, pattern(500, 1))) == 1u);
  BOOST_TEST(drv.tx_outstanding() == 64u - 41u + 1u);
  BOOST_TEST(rig.nic.fetch_sends().at(0).index == 64u);  // the ring wrapped
}

BOOST_AUTO_TEST_CASE(inline_frames_go_back_to_the_pool_at_once) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 5; ++i)
    frames.push_back(make_frame(rig.pool, pattern(60 + i * 30, uint8_t(i))));
  BOOST_TEST(rig.send(frames) == 5u);
  BOOST_TEST(rig.pool.available() == 256u - 16u);
  BOOST_TEST(drv.tx_outstanding() == 5u);
  BOOST_TEST(rig.count("mlx5.tx.inline") == 5u);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 5u);
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(wqes[i].all_inline);
    BOOST_TEST(wqes[i].data_segs == 0u);
    BOOST_TEST(wqes[i].frame == pattern(60 + i * 30, uint8_t(i)));
  }
}

BOOST_AUTO_TEST_CASE(blueflame_copies_only_a_single_unwrapped_wqe_that_fits) {
  Mlx5DriverOptions o = small_options();
  o.blueflame = true;
  Rig rig(256, o);
  rig.nic.bf_size = 256;
  rig.start();
  rig.send_one(make_frame(rig.pool, pattern(60, 1)));  // 2 WQEBBs
  BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 128u);
  rig.send_one(make_frame(rig.pool, pattern(204, 1)));  // 4 WQEBBs
  BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 256u);
  rig.send_one(make_frame(rig.pool, pattern(1000, 1)));  // 1 WQEBB, data segment
  BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 64u);
  std::vector<PacketPtr> two;
  two.push_back(make_frame(rig.pool, pattern(60, 1)));
  two.push_back(make_frame(rig.pool, pattern(60, 2)));
  rig.send(two);
  BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 0u);
  BOOST_TEST(rig.count("mlx5.tx.blueflame") == 3u);
  // pi is now 11: fill to 63 with 1-WQEBB WQEs, then a 2-WQEBB WQE wraps: no BlueFlame.
  rig.nic.complete_send(rig.nic.fetch_sends().back().index);
  rig.send(two);  // reaps
  std::vector<PacketPtr> fill;
  for (int i = 0; i < 52; ++i) fill.push_back(make_frame(rig.pool, pattern(1000, 1)));
  BOOST_TEST(rig.send(fill) == 52u);
  BOOST_TEST(rig.nic.doorbells.back().snd_dbr == 63u);
  rig.send_one(make_frame(rig.pool, pattern(60, 3)));
  BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 0u);
  BOOST_TEST(rig.nic.doorbells.back().snd_dbr == 65u);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST(wqes.back().frame == pattern(60, 3));
}

BOOST_AUTO_TEST_CASE(blueflame_off_or_too_small_register_means_a_plain_doorbell) {
  {
    Rig rig;
    rig.start();
    rig.send_one(make_frame(rig.pool, pattern(60, 1)));
    BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 0u);
  }
  {
    Mlx5DriverOptions o = small_options();
    o.blueflame = true;
    Rig rig(256, o);
    rig.nic.bf_size = 128;
    rig.start();
    rig.send_one(make_frame(rig.pool, pattern(204, 1)));
    BOOST_TEST(rig.nic.doorbells.back().bf_bytes == 0u);
  }
}

BOOST_AUTO_TEST_CASE(checksum_offload_flags_go_out_in_cs_flags_and_come_back_from_cqes) {
  Rig rig;
  rig.start();
  std::vector<PacketPtr> frames;
  frames.push_back(
      make_frame(rig.pool, pattern(100, 1), PacketBuf::kTxIpv4Checksum | PacketBuf::kTxL4Checksum));
  frames.push_back(make_frame(rig.pool, pattern(1000, 1), PacketBuf::kTxL4Checksum));
  frames.push_back(make_frame(rig.pool, pattern(1000, 1), 0));
  rig.send(frames);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 3u);
  BOOST_TEST(wqes[0].cs_flags == (MLX5_ETH_WQE_L3_CSUM | MLX5_ETH_WQE_L4_CSUM));
  BOOST_TEST(wqes[1].cs_flags == MLX5_ETH_WQE_L4_CSUM);
  BOOST_TEST(wqes[2].cs_flags == 0);

  const uint8_t ok = MLX5_CQE_L3_OK | MLX5_CQE_L4_OK;
  rig.nic.deliver(pattern(80, 1), ok,
                  uint8_t((kMlx5CqeL4HdrTypeUdp << 4) | (MLX5_CQE_L3_HDR_TYPE_IPV4 << 2)));
  rig.nic.deliver(pattern(80, 2), ok,
                  uint8_t((kMlx5CqeL4HdrTypeTcp << 4) | (MLX5_CQE_L3_HDR_TYPE_IPV6 << 2)));
  rig.nic.deliver(pattern(80, 3), MLX5_CQE_L3_OK,
                  uint8_t((kMlx5CqeL4HdrTypeTcp << 4) | (MLX5_CQE_L3_HDR_TYPE_IPV4 << 2)));
  rig.nic.deliver(pattern(80, 4), 0, 0);
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 4u);
  BOOST_TEST(got[0]->flags == (PacketBuf::kRxL3ChecksumOk | PacketBuf::kRxL4ChecksumOk));
  BOOST_TEST(got[1]->flags == PacketBuf::kRxL4ChecksumOk);
  BOOST_TEST(got[2]->flags == PacketBuf::kRxL3ChecksumOk);
  BOOST_TEST(got[3]->flags == 0u);
}

BOOST_AUTO_TEST_CASE(received_frames_come_in_order_and_each_buffer_is_reposted) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  for (int i = 0; i < 5; ++i) BOOST_TEST(rig.nic.deliver(pattern(60 + i * 300, uint8_t(i))));
  auto first = rig.receive(2);
  BOOST_TEST_REQUIRE(first.size() == 2u);
  BOOST_TEST(rig.nic.recv_cq_ci() == 2u);
  BOOST_TEST(rig.nic.rcv_dbr() == 18u);
  auto rest = rig.receive();
  BOOST_TEST_REQUIRE(rest.size() == 3u);
  for (auto& p : rest) first.push_back(std::move(p));
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(first[i]->headroom() == 0u);
    BOOST_TEST(bytes_of(*first[i]) == pattern(60 + i * 300, uint8_t(i)));
  }
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.nic.rcv_dbr() == 21u);
  BOOST_TEST(rig.nic.recv_cq_ci() == 5u);
  BOOST_TEST(rig.count("mlx5.rx.frames") == 5u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 5u);
  BOOST_TEST(rig.receive().empty());
}

BOOST_AUTO_TEST_CASE(bad_byte_count_wqe_counter_and_opcode_are_counted_and_dropped) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  rig.nic.raw_recv_cqe(PacketBuf::kCapacity + 1, uint16_t(rig.nic.rq_consumed));
  rig.nic.raw_recv_cqe(13, uint16_t(rig.nic.rq_consumed));
  rig.nic.raw_recv_cqe(100, uint16_t(rig.nic.rq_consumed + 5));
  rig.nic.raw_recv_cqe(0xffffffffu, uint16_t(rig.nic.rq_consumed));
  // An opcode a receive CQ never holds: consumes no buffer.
  FakeMlx5Binding::write_cqe(rig.nic.rings.recv_cq, rig.nic.rcq_pi, mlx5_cqe64{}, MLX5_CQE_REQ);
  BOOST_TEST(rig.nic.deliver(pattern(200, 9)));
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(bytes_of(*got[0]) == pattern(200, 9));
  BOOST_TEST(rig.count("mlx5.rx.drop.oversize") == 2u);
  BOOST_TEST(rig.count("mlx5.rx.drop.runt") == 1u);
  BOOST_TEST(rig.count("mlx5.rx.drop.bad_wqe_counter") == 1u);
  BOOST_TEST(rig.count("mlx5.rx.drop.bad_opcode") == 1u);
  BOOST_TEST(rig.count("mlx5.rx.frames") == 1u);
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 1u);
}

BOOST_AUTO_TEST_CASE(completion_for_an_empty_receive_queue_is_counted_not_read) {
  Rig rig(17);
  Mlx5Driver& drv = rig.start();
  BOOST_TEST(drv.rx_posted() == 16u);
  for (int i = 0; i < 16; ++i) BOOST_TEST(rig.nic.deliver(pattern(100, 1)));
  auto got = rig.receive();
  BOOST_TEST(got.size() == 16u);
  BOOST_TEST(drv.rx_posted() == 1u);
  BOOST_TEST(rig.nic.deliver(pattern(100, 2)));
  auto last = rig.receive();
  BOOST_TEST(last.size() == 1u);
  BOOST_TEST(drv.rx_posted() == 0u);
  rig.nic.raw_recv_cqe(100, uint16_t(rig.nic.rq_consumed));  // a device that ignores its RQ
  BOOST_TEST(rig.receive().empty());
  BOOST_TEST(rig.count("mlx5.rx.drop.bad_wqe_counter") == 1u);
}

BOOST_AUTO_TEST_CASE(pool_exhaustion_leaves_the_nic_fewer_buffers_until_buffers_come_back) {
  Rig rig(20);
  Mlx5Driver& drv = rig.start();
  BOOST_TEST(drv.rx_posted() == 16u);
  for (int i = 0; i < 16; ++i) BOOST_TEST(rig.nic.deliver(pattern(100, uint8_t(i))));
  auto held = rig.receive();
  BOOST_TEST(held.size() == 16u);
  BOOST_TEST(drv.rx_posted() == 4u);  // the pool had 4 to give
  BOOST_TEST(rig.count("mlx5.rx.no_buffer") == 12u);
  BOOST_TEST(rig.pool.available() == 0u);
  BOOST_TEST(rig.nic.rq_available() == 4u);
  for (int i = 0; i < 4; ++i) BOOST_TEST(rig.nic.deliver(pattern(100, uint8_t(i))));
  BOOST_TEST(!rig.nic.deliver(pattern(100, 1)));  // the NIC has nowhere to put it
  auto more = rig.receive();
  BOOST_TEST(more.size() == 4u);
  BOOST_TEST(drv.rx_posted() == 0u);
  BOOST_TEST(rig.count("mlx5.rx.no_buffer") == 16u);
  BOOST_TEST(rig.receive().empty());  // polling with an empty pool changes nothing
  BOOST_TEST(rig.count("mlx5.rx.no_buffer") == 16u);

  held.clear();
  BOOST_TEST(rig.receive().empty());
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.nic.rq_available() == 16u);
  more.clear();
  BOOST_TEST(rig.pool.available() == 4u);
  BOOST_TEST(rig.nic.deliver(pattern(300, 5)));
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(bytes_of(*got[0]) == pattern(300, 5));
  BOOST_TEST(drv.rx_posted() == 16u);
}

BOOST_AUTO_TEST_CASE(send_error_cqe_is_counted_and_the_queue_recovered_with_every_buffer_back) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 10; ++i) frames.push_back(make_frame(rig.pool, pattern(1000, uint8_t(i))));
  rig.send(frames);
  rig.nic.fetch_sends();
  BOOST_TEST(rig.nic.deliver(pattern(100, 1)));  // a received frame lost to the reset
  rig.nic.send_error(MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, 0x33, 3);
  rig.nic.send_error(MLX5_CQE_SYNDROME_WR_FLUSH_ERR, 0, 7);  // the flush of the rest
  rig.nic.send_error(MLX5_CQE_SYNDROME_WR_FLUSH_ERR, 0, 9);
  BOOST_TEST(rig.receive().empty());
  BOOST_TEST(drv.ok());
  BOOST_TEST(rig.nic.recovers == 1);
  BOOST_TEST(rig.count("mlx5.err.local_length") == 1u);
  BOOST_TEST(rig.count("mlx5.err.wr_flush") == 0u);  // drained with the old queue
  BOOST_TEST(rig.count("mlx5.recoveries") == 1u);
  BOOST_TEST(rig.count("mlx5.tx.flushed") == 10u);
  BOOST_TEST(drv.tx_outstanding() == 0u);
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.pool.available() == 256u - 16u);
  BOOST_TEST(rig.nic.snd_dbr() == 0u);
  BOOST_TEST(rig.nic.rcv_dbr() == 16u);
  BOOST_TEST(rig.nic.send_cq_ci() == 3u);  // CQs go on
  BOOST_TEST(rig.nic.recv_cq_ci() == 1u);

  // The queue works again from index 0.
  BOOST_TEST(rig.send_one(make_frame(rig.pool, pattern(1000, 42))) == 1u);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 1u);
  BOOST_TEST(wqes[0].index == 0u);
  BOOST_TEST(wqes[0].frame == pattern(1000, 42));
  BOOST_TEST(rig.nic.deliver(pattern(120, 3)));
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(bytes_of(*got[0]) == pattern(120, 3));
}

BOOST_AUTO_TEST_CASE(receive_error_cqe_keeps_the_frames_before_it_and_recovers) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  BOOST_TEST(rig.nic.deliver(pattern(100, 1)));
  BOOST_TEST(rig.nic.deliver(pattern(100, 2)));
  rig.nic.recv_error(MLX5_CQE_SYNDROME_LOCAL_PROT_ERR);
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 2u);
  BOOST_TEST(bytes_of(*got[1]) == pattern(100, 2));
  BOOST_TEST(rig.count("mlx5.err.local_prot") == 1u);
  BOOST_TEST(rig.nic.recovers == 1);
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.pool.available() == 256u - 16u - 2u);
  got.clear();
  for (uint8_t s : {MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, MLX5_CQE_SYNDROME_REMOTE_ABORTED_ERR}) {
    rig.nic.recv_error(s);
    rig.receive();
  }
  BOOST_TEST(rig.count("mlx5.err.local_qp_op") == 1u);
  BOOST_TEST(rig.count("mlx5.err.other") == 1u);
  BOOST_TEST(rig.count("mlx5.recoveries") == 3u);
  BOOST_TEST(rig.pool.available() == 256u - 16u);
}

BOOST_AUTO_TEST_CASE(failed_recovery_stops_the_driver_with_every_buffer_back) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  rig.nic.recover_ok = false;
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(make_frame(rig.pool, pattern(1000, uint8_t(i))));
  rig.send(frames);
  rig.nic.send_error(MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR);
  BOOST_TEST(rig.send_one(make_frame(rig.pool, pattern(1000, 1))) == 0u);
  BOOST_TEST(!drv.ok());
  BOOST_TEST(drv.error() == "mlx5: the queue pair could not be recovered after a completion error");
  BOOST_TEST(rig.count("mlx5.recover_failed") == 1u);
  BOOST_TEST(rig.count("mlx5.tx.drop.not_ready") == 1u);
  BOOST_TEST(rig.pool.available() == 256u);
  BOOST_TEST(rig.receive().empty());
}

BOOST_AUTO_TEST_CASE(detach_resets_the_queue_pair_and_returns_every_buffer) {
  Rig rig;
  Mlx5Driver& drv = rig.start();
  std::vector<PacketPtr> frames;
  for (int i = 0; i < 10; ++i) frames.push_back(make_frame(rig.pool, pattern(1000, uint8_t(i))));
  rig.send(frames);
  BOOST_TEST(rig.nic.deliver(pattern(100, 1)));  // never polled
  BOOST_TEST(rig.pool.available() < 256u - 16u);
  drv.detach();
  BOOST_TEST(rig.nic.recovers == 1);  // the NIC forgets the WQEs that point into the pool
  BOOST_TEST(rig.pool.available() == 256u);
  BOOST_TEST(drv.tx_outstanding() == 0u);
  BOOST_TEST(drv.rx_posted() == 0u);
  BOOST_TEST(rig.nic.recv_cq_ci() == 1u);
  BOOST_TEST(rig.nic.rcv_dbr() == 0u);
  BOOST_TEST(drv.ok());
  BOOST_TEST(rig.receive().empty());
  // Attached again, it works from index 0.
  drv.attach(rig.pool);
  BOOST_TEST(drv.rx_posted() == 16u);
  BOOST_TEST(rig.nic.deliver(pattern(100, 2)));
  auto got = rig.receive();
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(bytes_of(*got[0]) == pattern(100, 2));
  got.clear();
  drv.detach();
  rig.drv.reset();  // nothing left to return
  BOOST_TEST(rig.pool.available() == 256u);
}

BOOST_AUTO_TEST_CASE(buffers_outside_registered_memory_go_inline_or_are_dropped) {
  Mlx5DriverOptions o = small_options();
  o.inline_threshold = 64;
  o.sizes.max_inline = 256;
  Rig rig(256, o);
  BufferPool other(8);
  rig.start();
  BOOST_TEST(rig.send_one(make_frame(other, pattern(200, 1))) == 1u);
  BOOST_TEST(rig.send_one(make_frame(other, pattern(1000, 2))) == 0u);
  BOOST_TEST(rig.send_one(make_frame(other, pattern(2500, 3))) == 0u);  // a chain of two
  BOOST_TEST(rig.send_one(make_frame(rig.pool, pattern(1000, 5))) == 1u);
  BOOST_TEST(rig.send_one(make_frame(rig.pool, pattern(10, 6))) == 0u);
  BOOST_TEST(rig.count("mlx5.tx.drop.unregistered") == 2u);
  BOOST_TEST(rig.count("mlx5.tx.drop.runt") == 1u);
  BOOST_TEST(other.available() == 8u);
  const auto wqes = rig.nic.fetch_sends();
  BOOST_TEST_REQUIRE(wqes.size() == 2u);
  BOOST_TEST(wqes[0].all_inline);
  BOOST_TEST(wqes[0].frame == pattern(200, 1));
  BOOST_TEST(!wqes[1].all_inline);
  BOOST_TEST(!wqes[1].bad_address);
  BOOST_TEST(wqes[1].frame == pattern(1000, 5));
}

// Many laps of every ring: the SQ and RQ 16-bit counters wrap too. The fake NIC rebuilds each
// frame from its WQE and checks it; received frames are checked byte for byte.
BOOST_AUTO_TEST_CASE(rings_wrap_over_many_laps_without_losing_or_leaking_a_buffer) {
  Mlx5DriverOptions o = small_options();
  o.signal_every = 3;
  auto rig = std::make_unique<Rig>(512, o);
  Mlx5Driver& drv = rig->start();
  uint32_t lcg = 12345;
  auto next = [&lcg](uint32_t mod) {
    lcg = lcg * 1103515245u + 12345u;
    return (lcg >> 8) % mod;
  };
  uint64_t sent_frames = 0, received = 0, wqebbs = 0;
  for (int iter = 0; iter < 25000; ++iter) {
    const uint32_t k = 1 + next(5);
    std::vector<Bytes> want;
    std::vector<PacketPtr> frames;
    for (uint32_t i = 0; i < k; ++i) {
      want.push_back(pattern(20 + next(4000), uint8_t(iter + i)));
      frames.push_back(make_frame(rig->pool, want.back(), next(4) << 2));  // kTx* flags
    }
    BOOST_TEST_REQUIRE(rig->send(frames) == k);
    const auto wqes = rig->nic.fetch_sends();
    BOOST_TEST_REQUIRE(wqes.size() == k);
    for (uint32_t i = 0; i < k; ++i) {
      BOOST_TEST_REQUIRE(wqes[i].frame == want[i]);
      BOOST_TEST_REQUIRE(!wqes[i].bad_address);
      wqebbs += wqes[i].wqebbs;
    }
    rig->nic.complete_signalled(wqes);
    sent_frames += k;

    const uint32_t r = 1 + next(5);
    std::vector<Bytes> in;
    for (uint32_t i = 0; i < r; ++i) {
      in.push_back(pattern(14 + next(2034), uint8_t(iter * 3 + i)));
      BOOST_TEST_REQUIRE(rig->nic.deliver(in.back()));
    }
    auto got = rig->receive();
    BOOST_TEST_REQUIRE(got.size() == r);
    for (uint32_t i = 0; i < r; ++i) BOOST_TEST_REQUIRE(bytes_of(*got[i]) == in[i]);
    received += r;
    BOOST_TEST_REQUIRE(drv.tx_outstanding() < 3u);  // only the unsignalled tail
  }
  BOOST_TEST(wqebbs > 65536u);    // the 16-bit WQE index wrapped
  BOOST_TEST(received > 65536u);  // so did the RQ counter
  BOOST_TEST(rig->count("mlx5.tx.frames") == sent_frames);
  BOOST_TEST(rig->count("mlx5.rx.frames") == received);
  BOOST_TEST(rig->drv->counters().sum("mlx5.tx.drop") == 0u);
  BOOST_TEST(rig->drv->counters().sum("mlx5.rx.drop") == 0u);
  BOOST_TEST(rig->drv->counters().sum("mlx5.err") == 0u);
  BOOST_TEST(rig->nic.recv_cq_ci() == (received & 0xffffff));
  BOOST_TEST(drv.rx_posted() == 16u);
  rig->drv.reset();  // returns what the rings hold
  BOOST_TEST(rig->pool.available() == 512u);
}

BOOST_AUTO_TEST_CASE(options_come_from_the_configuration) {
  Config c;
  c.mlx5_sq_size = 1000;
  c.mlx5_rq_size = 100;
  c.mlx5_inline = 300;
  c.mlx5_tx_signal_every = 8;
  c.mlx5_blueflame = 1;
  const Mlx5DriverOptions o = Mlx5DriverOptions::from(c);
  BOOST_TEST(o.sizes.sq_wqebbs == 1024u);
  BOOST_TEST(o.sizes.rq_wqes == 128u);
  BOOST_TEST(o.sizes.send_cqes == 1024u);
  BOOST_TEST(o.sizes.recv_cqes == 128u);
  BOOST_TEST(o.sizes.max_inline == 300u);
  BOOST_TEST(o.inline_threshold == 300u);
  BOOST_TEST(o.signal_every == 8u);
  BOOST_TEST(o.blueflame);
  const Mlx5DriverOptions d = Mlx5DriverOptions::from(Config{});
  BOOST_TEST(d.sizes.sq_wqebbs == 1024u);
  BOOST_TEST(d.sizes.rq_wqes == 512u);
  BOOST_TEST(d.inline_threshold == 204u);
  BOOST_TEST(d.signal_every == 16u);
  BOOST_TEST(!d.blueflame);
}
