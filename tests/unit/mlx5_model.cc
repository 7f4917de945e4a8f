// The simulated ConnectX's send and receive paths with default timing: frame bytes, checksum
// offload, exact per-packet timelines, the wire pipeline, BlueFlame, unsignalled sends,
// completion event moderation, determinism.
#include <poll.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/unit/mlx5_model_support.h"

using namespace nicmodel;
using namespace nicmodel::test;
using shunt::kNever;

namespace {

// Default timing (Config's SHUNT_NIC_* defaults), spelled out so the tests compute independently.
constexpr Nanos kPcie = 250, kDoorbell = 100, kFetch = 550, kDma = 550, kPipe = 100, kCqe = 250;
constexpr uint64_t kPcieGbps = 100, kLinkGbps = 25;

BOOST_AUTO_TEST_CASE(default_timing_matches_the_configuration_defaults) {
  NicTiming t = NicTiming::from(shunt::Config{});
  NicTiming d;
  BOOST_TEST(t.doorbell == kDoorbell);
  BOOST_TEST(t.pcie_latency == kPcie);
  BOOST_TEST(t.wqe_fetch == kFetch);
  BOOST_TEST(t.dma_read == kDma);
  BOOST_TEST(t.pipeline == kPipe);
  BOOST_TEST(t.cqe_write == kCqe);
  BOOST_TEST(t.pcie_bps == kPcieGbps * 1'000'000'000);
  BOOST_TEST(t.link_bps == kLinkGbps * 1'000'000'000);
  BOOST_TEST(t.cq_mod_count == 32u);
  BOOST_TEST(t.cq_mod_period == 3000);
  BOOST_TEST(t.timelines == 4096u);
  BOOST_TEST(d.doorbell == t.doorbell);
  BOOST_TEST(d.cq_mod_period == t.cq_mod_period);
  BOOST_TEST(d.link_bps == t.link_bps);
}

BOOST_AUTO_TEST_CASE(open_makes_power_of_two_rings_with_invalid_cqes) {
  shunt::Mlx5QueueSizes s;
  s.sq_wqebbs = 100;
  s.rq_wqes = 3;
  s.send_cqes = 100;
  s.recv_cqes = 5;
  ModelBench b(s);
  BOOST_TEST(b.error.empty());
  BOOST_TEST(b.rings.sq.wqe_cnt == 128u);
  BOOST_TEST(b.rings.sq.stride == 64u);
  BOOST_TEST(b.rings.rq.wqe_cnt == 4u);
  BOOST_TEST(b.rings.rq.stride == 16u);
  BOOST_TEST(b.rings.send_cq.cqe_cnt == 128u);
  BOOST_TEST(b.rings.recv_cq.cqe_cnt == 8u);
  BOOST_TEST(b.rings.bf_size == 256u);
  BOOST_TEST(reinterpret_cast<uintptr_t>(b.rings.sq.buf) % 4096 == 0u);
  for (uint32_t i = 0; i < 128; ++i) BOOST_TEST(b.rings.send_cq.buf[i * 64 + 63] == uint8_t(MLX5_CQE_INVALID << 4));
  BOOST_TEST(b.lkey != 0u);
  BOOST_TEST(b.lkey != uint32_t(MLX5_INVALID_LKEY));
  shunt::Mlx5Rings again;
  BOOST_TEST(!b.model->open(s, again).empty());
  std::string why;
  BOOST_TEST(!b.model->register_memory(reinterpret_cast<void*>(~uintptr_t(0) - 10), 100, why).has_value());
  BOOST_TEST(!why.empty());
  BOOST_TEST(b.model->info().tx_checksum);
  BOOST_TEST(b.model->info().rx_checksum);
}

BOOST_AUTO_TEST_CASE(inline_send_fills_checksums_and_reports_exact_timeline) {
  ModelBench b;
  Bytes f = make_frame(18);  // 60 bytes: 18 in the Ethernet segment, 42 inline
  BOOST_REQUIRE(f.size() == 60u);
  SendSpec s{f};
  s.cs_flags = MLX5_ETH_WQE_L3_CSUM | MLX5_ETH_WQE_L4_CSUM;
  const Nanos rung = b.clock.now();
  b.send(s);
  b.run();

  BOOST_REQUIRE(b.port.sent.size() == 1u);
  const Bytes& out = b.port.sent[0].frame;
  BOOST_TEST(out.size() == f.size());
  BOOST_TEST(verify(out) == (shunt::PacketBuf::kRxL3ChecksumOk | shunt::PacketBuf::kRxL4ChecksumOk));
  BOOST_TEST(verify(f) == 0u);  // the input had no checksums
  BOOST_TEST(std::equal(out.begin() + 42, out.end(), f.begin() + 42));  // payload untouched

  // ctrl (1) + eth (2) + inline (4 + 42 -> 3) = 6 ds = 2 WQEBBs: one fetch, the second 64 bytes
  // at the PCIe rate. No data segment: nothing to DMA-read.
  const Nanos seen = rung + kPcie + kDoorbell;
  const Nanos fetched = seen + kFetch + xfer_ns(64, kPcieGbps);
  const Nanos wire_start = fetched + kPipe;
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == 1u);
  BOOST_TEST(tl[0].tx);
  BOOST_TEST(tl[0].bytes == 60u);
  BOOST_TEST(tl[0].wqe_index == 0);
  BOOST_TEST(tl[0].doorbell == rung);
  BOOST_TEST(tl[0].doorbell_seen == seen);
  BOOST_TEST(tl[0].wqe_fetched == fetched);
  BOOST_TEST(tl[0].dma_done == fetched);
  BOOST_TEST(tl[0].wire_start == wire_start);
  BOOST_TEST(tl[0].wire_end == wire_start + wire_ns(60, kLinkGbps));
  BOOST_TEST(tl[0].cqe == fetched + kCqe);
  BOOST_TEST(b.port.sent[0].start == tl[0].wire_start);
  BOOST_TEST(b.port.sent[0].end == tl[0].wire_end);

  auto c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_REQ);
  BOOST_TEST(be16toh(c->wqe_counter) == 0);
  BOOST_TEST((be32toh(c->sop_drop_qpn) & 0xffffff) == b.rings.qpn);
  BOOST_TEST(!b.poll_send().has_value());
  BOOST_TEST(b.model->counters().get("nic.tx.frames") == 1u);
  BOOST_TEST(b.model->counters().get("nic.tx.bytes") == 60u);
  BOOST_TEST(b.model->counters().get("nic.wqe_fetches") == 2u);
  BOOST_TEST(b.model->counters().get("nic.doorbells") == 1u);
}

BOOST_AUTO_TEST_CASE(gathered_send_reads_payload_by_dma_and_fills_tcp_over_ipv6_checksum) {
  ModelBench b;
  Bytes f = make_frame(1000, /*v6_tcp=*/true);
  SendSpec s{f};
  s.gather = true;
  s.mem_offset = 4096;
  s.cs_flags = MLX5_ETH_WQE_L4_CSUM;
  const Nanos rung = b.clock.now();
  b.send(s);
  b.run();

  BOOST_REQUIRE(b.port.sent.size() == 1u);
  BOOST_TEST(verify(b.port.sent[0].frame) == shunt::PacketBuf::kRxL4ChecksumOk);
  Bytes expect = f;
  std::copy(b.port.sent[0].frame.begin() + 54 + 16, b.port.sent[0].frame.begin() + 54 + 18, expect.begin() + 54 + 16);
  BOOST_TEST(b.port.sent[0].frame == expect);  // only the checksum field differs

  // ctrl + eth + one data segment = 4 ds = 1 WQEBB; the gathered rest is DMA-read.
  const size_t gathered = f.size() - 18;
  const Nanos seen = rung + kPcie + kDoorbell;
  const Nanos fetched = seen + kFetch;
  const Nanos dma_done = fetched + kDma + xfer_ns(gathered, kPcieGbps);
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == 1u);
  BOOST_TEST(tl[0].wqe_fetched == fetched);
  BOOST_TEST(tl[0].dma_done == dma_done);
  BOOST_TEST(tl[0].wire_start == dma_done + kPipe);
  BOOST_TEST(tl[0].wire_end == dma_done + kPipe + wire_ns(f.size(), kLinkGbps));
  BOOST_TEST(tl[0].cqe == dma_done + kCqe);  // completed once read, before the wire is done
  BOOST_TEST(tl[0].cqe < tl[0].wire_end);
}

BOOST_AUTO_TEST_CASE(successive_wqes_queue_behind_each_other_on_the_wire) {
  ModelBench b;
  const int n = 6;
  Bytes f = make_frame(1000);
  for (int i = 0; i < n; ++i) {
    SendSpec s{f};
    s.gather = true;
    s.mem_offset = size_t(i) * 2048;
    b.post_send(s);
  }
  const Nanos rung = b.clock.now();
  b.ring();
  b.run();
  BOOST_REQUIRE(b.port.sent.size() == size_t(n));
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == size_t(n));
  // Fetches overlap (one WQEBB each at the PCIe rate), payload reads follow each other at the
  // PCIe rate, and the wire (slower than PCIe) serializes one frame after the other.
  const size_t gathered = f.size() - 18;
  const Nanos seen = rung + kPcie + kDoorbell;
  Nanos dma_free = 0, wire_free = 0;
  for (int i = 0; i < n; ++i) {
    const Nanos fetched = seen + i * xfer_ns(64, kPcieGbps) + kFetch;
    const Nanos dma_start = std::max(fetched, dma_free);
    dma_free = dma_start + xfer_ns(gathered, kPcieGbps);
    const Nanos dma_done = dma_start + kDma + xfer_ns(gathered, kPcieGbps);
    const Nanos start = std::max(dma_done + kPipe, wire_free);
    wire_free = start + wire_ns(f.size(), kLinkGbps);
    BOOST_TEST(tl[i].wqe_index == i);
    BOOST_TEST(tl[i].wqe_fetched == fetched);
    BOOST_TEST(tl[i].dma_done == dma_done);
    BOOST_TEST(tl[i].wire_start == start);
    BOOST_TEST(b.port.sent[i].start == start);
    BOOST_TEST(b.port.sent[i].end == wire_free);
    if (i > 0) BOOST_TEST(b.port.sent[i].start == b.port.sent[i - 1].end);  // back to back
  }
  for (int i = 0; i < n; ++i) {
    auto c = b.poll_send();
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(be16toh(c->wqe_counter) == i);
  }
}

BOOST_AUTO_TEST_CASE(blueflame_skips_the_wqe_fetch_and_uses_the_copy) {
  ModelBench b;
  Bytes f = make_frame(100);
  const Nanos rung = b.clock.now();
  b.send(SendSpec{f}, /*blueflame=*/true);
  // The register holds the WQE now: what the ring says afterwards does not matter.
  std::memset(b.sq_slot(0), 0, 64);
  b.run();
  BOOST_REQUIRE(b.port.sent.size() == 1u);
  BOOST_TEST(b.port.sent[0].frame == f);
  auto tl = b.model->timelines();
  BOOST_TEST(tl[0].wqe_fetched == rung + kPcie + kDoorbell);
  BOOST_TEST(tl[0].wire_start == rung + kPcie + kDoorbell + kPipe);
  BOOST_TEST(b.model->counters().get("nic.blueflame") == 1u);
  BOOST_TEST(b.model->counters().get("nic.wqe_fetches") == 0u);
}

BOOST_AUTO_TEST_CASE(unsignalled_sends_produce_no_cqe) {
  ModelBench b;
  Bytes f = make_frame(64);
  for (int i = 0; i < 3; ++i) {
    SendSpec s{f};
    s.signalled = false;
    b.post_send(s);
  }
  const uint16_t last = b.post_send(SendSpec{f});
  b.ring();
  b.run();
  BOOST_TEST(b.port.sent.size() == 4u);
  auto c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(be16toh(c->wqe_counter) == last);  // completes it and every earlier one
  BOOST_TEST(!b.poll_send().has_value());
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == 4u);
  for (int i = 0; i < 3; ++i) BOOST_TEST(tl[i].cqe == kNever);
  BOOST_TEST(tl[3].cqe != kNever);
}

BOOST_AUTO_TEST_CASE(received_frame_lands_in_the_buffer_with_checksum_flags) {
  ModelBench b;
  b.post_recv(8192, 2048);
  b.post_recv(12288, 2048);
  b.post_recv(16384, 2048);
  Bytes good = make_frame(200, false, true);
  Bytes bad = good;
  bad[good.size() - 1] ^= 0xff;  // breaks the UDP checksum only
  Bytes tcp6 = make_frame(300, true, true);
  const Nanos at = 5000;
  b.clock.advance_to(at);
  b.port.deliver(good, at);
  b.port.deliver(bad, at + wire_ns(good.size(), kLinkGbps));
  b.port.deliver(tcp6, at + 2 * wire_ns(good.size(), kLinkGbps));
  b.run();

  auto c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_RESP_SEND);
  BOOST_TEST(be32toh(c->byte_cnt) == good.size());
  BOOST_TEST(be16toh(c->wqe_counter) == 0);
  BOOST_TEST(c->hds_ip_ext == (MLX5_CQE_L2_OK | MLX5_CQE_L3_OK | MLX5_CQE_L4_OK));
  BOOST_TEST(((c->l4_hdr_type_etc >> 2) & 3) == MLX5_CQE_L3_HDR_TYPE_IPV4);
  BOOST_TEST(((c->l4_hdr_type_etc >> 4) & 7) == 2);  // UDP
  BOOST_TEST(std::equal(good.begin(), good.end(), b.memory.begin() + 8192));

  c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->hds_ip_ext == (MLX5_CQE_L2_OK | MLX5_CQE_L3_OK));
  BOOST_TEST(be16toh(c->wqe_counter) == 1);

  c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST((c->hds_ip_ext & MLX5_CQE_L4_OK) != 0);
  BOOST_TEST(((c->l4_hdr_type_etc >> 2) & 3) == MLX5_CQE_L3_HDR_TYPE_IPV6);
  BOOST_TEST(((c->l4_hdr_type_etc >> 4) & 7) == 1);  // TCP

  // Exact timeline of the first: pipeline, DMA write (latency + bytes at the PCIe rate), CQE.
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == 3u);
  BOOST_TEST(!tl[0].tx);
  BOOST_TEST(tl[0].wire_end == at);
  BOOST_TEST(tl[0].dma_done == at + kPipe + kPcie + xfer_ns(good.size(), kPcieGbps));
  BOOST_TEST(tl[0].cqe == tl[0].dma_done + kCqe);
  BOOST_TEST(b.model->counters().get("nic.rx.frames") == 3u);
}

BOOST_AUTO_TEST_CASE(completion_events_are_moderated_by_count_and_by_period) {
  NicModelOptions o = ModelBench::default_options();
  o.timing.cq_mod_count = 4;
  ModelBench b(ModelBench::small_sizes(), o);
  std::vector<Nanos> fired;
  b.model->set_completion_handler([&] { fired.push_back(b.clock.now()); });
  b.model->arm_wait();  // a sleeper armed the CQ: the first event makes wait_fd() readable
  Bytes f = make_frame(64);
  for (int i = 0; i < 4; ++i) b.post_send(SendSpec{f});
  b.ring();
  b.run();
  auto tl = b.model->timelines();
  BOOST_REQUIRE(fired.size() == 1u);
  BOOST_TEST(fired[0] == tl[3].cqe);  // the fourth CQE

  // One more: the event waits the period after its CQE.
  b.send(SendSpec{f});
  b.run();
  tl = b.model->timelines();
  BOOST_REQUIRE(fired.size() == 2u);
  BOOST_TEST(fired[1] == tl[4].cqe + 3 * shunt::kMicro);
  BOOST_TEST(b.model->counters().get("nic.events") == 2u);

  // The eventfd says so once per arming (the second event found the CQ disarmed), and
  // ack_wait() drains it.
  pollfd p{b.model->wait_fd(), POLLIN, 0};
  BOOST_TEST(::poll(&p, 1, 0) == 1);
  b.model->ack_wait();
  BOOST_TEST(::poll(&p, 1, 0) == 0);
  uint64_t v = 0;
  BOOST_TEST(::read(b.model->wait_fd(), &v, sizeof(v)) == -1);  // drained

  // Not armed: an event writes nothing (a busy-polled NIC makes no system call per event).
  b.send(SendSpec{f});
  b.run();
  BOOST_REQUIRE(fired.size() == 3u);
  BOOST_TEST(::poll(&p, 1, 0) == 0);
  // Armed again: the next event wakes the sleeper.
  b.model->arm_wait();
  b.send(SendSpec{f});
  b.run();
  BOOST_REQUIRE(fired.size() == 4u);
  BOOST_TEST(::poll(&p, 1, 0) == 1);
  BOOST_TEST(::read(b.model->wait_fd(), &v, sizeof(v)) == ssize_t(sizeof(v)));
  BOOST_TEST(v == 1u);
}

BOOST_AUTO_TEST_CASE(timeline_sink_sees_every_frame_and_the_ring_keeps_the_latest) {
  NicModelOptions o = ModelBench::default_options();
  o.timing.timelines = 3;
  ModelBench b(ModelBench::small_sizes(), o);
  std::vector<uint64_t> seen;
  b.model->set_timeline_sink([&](const PacketTimeline& t) { seen.push_back(t.seq); });
  Bytes f = make_frame(64);
  std::vector<uint16_t> idx;
  for (int i = 0; i < 5; ++i) idx.push_back(b.post_send(SendSpec{f}));
  b.ring();
  b.run();
  BOOST_TEST(seen.size() == 5u);
  auto tl = b.model->timelines();
  BOOST_REQUIRE(tl.size() == 3u);
  BOOST_TEST(tl[0].wqe_index == idx[2]);
  BOOST_TEST(tl[2].wqe_index == idx[4]);
  BOOST_TEST(tl[0].seq < tl[1].seq);
}

// A mixed run: sends (inline, gathered, BlueFlame, unsignalled) and receives.
struct RunResult {
  Bytes send_cq, recv_cq;
  std::vector<PacketTimeline> timelines;
  std::vector<RecordingPort::Sent> sent;
};
RunResult mixed_run() {
  ModelBench b;
  for (int i = 0; i < 8; ++i) b.post_recv(size_t(i) * 2048 + 32768, 2048);
  for (int i = 0; i < 20; ++i) {
    SendSpec s{make_frame(size_t(40 + i * 37), i % 3 == 0, false, uint8_t(i))};
    s.gather = i % 2 == 1;
    s.mem_offset = size_t(i % 8) * 2048;
    s.cs_flags = MLX5_ETH_WQE_L3_CSUM | MLX5_ETH_WQE_L4_CSUM;
    s.signalled = i % 4 == 3;
    b.send(s, i % 5 == 0 && !s.gather);
    b.port.deliver(make_frame(size_t(100 + i), false, true, uint8_t(i)), b.clock.now() + 10);
    b.run(b.clock.now() + 300);
    if (i % 7 == 6) {
      while (b.poll_recv()) {
      }
    }
  }
  b.run();
  RunResult r;
  r.send_cq.assign(b.rings.send_cq.buf, b.rings.send_cq.buf + 64 * b.rings.send_cq.cqe_cnt);
  r.recv_cq.assign(b.rings.recv_cq.buf, b.rings.recv_cq.buf + 64 * b.rings.recv_cq.cqe_cnt);
  r.timelines = b.model->timelines();
  r.sent = b.port.sent;
  return r;
}

BOOST_AUTO_TEST_CASE(identical_runs_give_identical_cqes_timelines_and_frames) {
  RunResult a = mixed_run(), b = mixed_run();
  BOOST_TEST(a.send_cq == b.send_cq);
  BOOST_TEST(a.recv_cq == b.recv_cq);
  BOOST_REQUIRE(a.timelines.size() == b.timelines.size());
  BOOST_TEST(a.timelines.size() > 20u);
  for (size_t i = 0; i < a.timelines.size(); ++i) {
    BOOST_TEST((a.timelines[i] == b.timelines[i]));
  }
  BOOST_REQUIRE(a.sent.size() == b.sent.size());
  for (size_t i = 0; i < a.sent.size(); ++i) {
    BOOST_TEST(a.sent[i].frame == b.sent[i].frame);
    BOOST_TEST(a.sent[i].start == b.sent[i].start);
  }
}

}  // namespace
