// Ring wrap-around of the simulated ConnectX over many laps (SQ with WQEs wrapping inside
// themselves, RQ, both CQs with their owner bits), and RX starvation and its recovery.
#include <boost/test/unit_test.hpp>

#include "tests/unit/mlx5_model_support.h"

using namespace nicmodel;
using namespace nicmodel::test;

namespace {

shunt::Mlx5QueueSizes tiny() {
  shunt::Mlx5QueueSizes s;
  s.sq_wqebbs = 8;
  s.rq_wqes = 4;
  s.send_cqes = 8;
  s.recv_cqes = 4;
  return s;
}

BOOST_AUTO_TEST_CASE(send_queue_and_cq_wrap_over_many_laps) {
  ModelBench b(tiny());
  const int n = 50;  // 3-WQEBB WQEs on an 8-WQEBB ring: some wrap inside; about 19 SQ laps
  for (int i = 0; i < n; ++i) {
    Bytes f = make_frame(58, false, false, uint8_t(i));  // 100 bytes: 18 + 82 inline = 9 ds
    const uint16_t idx = b.send(SendSpec{f}, /*blueflame=*/i % 2 == 0 && (b.sq_pi & 7) <= 5);
    b.run();
    BOOST_REQUIRE(b.port.sent.size() == size_t(i + 1));
    BOOST_TEST(b.port.sent.back().frame == f);
    // Before polling, the CQE's owner bit is the lap's; the next slot is still stale.
    const uint32_t cnt = b.rings.send_cq.cqe_cnt;
    const uint8_t op_own = b.rings.send_cq.buf[(b.scq_ci & (cnt - 1)) * 64 + 63];
    BOOST_TEST((op_own & 1) == ((b.scq_ci & cnt) ? 1 : 0));
    auto c = b.poll_send();
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(be16toh(c->wqe_counter) == idx);
    BOOST_TEST(!b.poll_send().has_value());
  }
  BOOST_TEST(b.sq_pi == uint16_t(3 * n));
  BOOST_TEST(b.model->counters().get("nic.blueflame") > 0u);
}

BOOST_AUTO_TEST_CASE(receive_queue_and_cq_wrap_over_many_laps) {
  ModelBench b(tiny());
  for (int i = 0; i < 4; ++i) b.post_recv(size_t(i) * 2048, 2048);
  for (int i = 0; i < 30; ++i) {
    Bytes f = make_frame(size_t(50 + i), false, true, uint8_t(i));
    b.port.deliver(f, b.clock.now());
    b.run();
    auto c = b.poll_recv();
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_RESP_SEND);
    BOOST_TEST(be16toh(c->wqe_counter) == i);  // the 16-bit count of RQ WQEs consumed
    BOOST_TEST(be32toh(c->byte_cnt) == f.size());
    BOOST_TEST((c->op_own & 1) == (((b.rcq_ci - 1) & 4) ? 1 : 0));
    const size_t slot = size_t(i % 4) * 2048;
    BOOST_TEST(std::equal(f.begin(), f.end(), b.memory.begin() + slot));
    BOOST_TEST(!b.poll_recv().has_value());
    b.post_recv(slot, 2048);  // repost the buffer
  }
  BOOST_TEST(b.model->counters().get("nic.rx.drop.no_wqe") == 0u);
}

BOOST_AUTO_TEST_CASE(frames_without_a_posted_wqe_are_dropped_and_counted_until_buffers_come) {
  ModelBench b(tiny());
  Bytes f = make_frame(100, false, true);
  for (int i = 0; i < 3; ++i) b.port.deliver(f, b.clock.now() + i * 100);
  b.run();
  BOOST_TEST(b.model->counters().get("nic.rx.drop.no_wqe") == 3u);
  BOOST_TEST(!b.poll_recv().has_value());
  BOOST_TEST(!b.model->rq_in_error());  // starvation is not an error

  b.post_recv(0, 2048);
  b.post_recv(2048, 2048);
  for (int i = 0; i < 3; ++i) b.port.deliver(f, b.clock.now() + i * 100);
  b.run();
  BOOST_TEST(b.poll_recv().has_value());
  BOOST_TEST(b.poll_recv().has_value());
  BOOST_TEST(!b.poll_recv().has_value());
  BOOST_TEST(b.model->counters().get("nic.rx.drop.no_wqe") == 4u);
  BOOST_TEST(b.model->counters().get("nic.rx.frames") == 2u);
}

BOOST_AUTO_TEST_CASE(oversize_and_runt_frames_are_dropped_at_the_mac) {
  ModelBench b(tiny());
  b.post_recv(0, 2048);
  b.port.deliver(Bytes(1519, 0), b.clock.now());
  b.port.deliver(Bytes(13, 0), b.clock.now());
  b.run();
  BOOST_TEST(b.model->counters().get("nic.rx.drop.oversize") == 1u);
  BOOST_TEST(b.model->counters().get("nic.rx.drop.runt") == 1u);
  BOOST_TEST(!b.poll_recv().has_value());
}

}  // namespace
