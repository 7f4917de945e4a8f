// Every error path of the simulated ConnectX: the error CQE (opcode, syndrome, wqe_counter, qpn),
// the queue left in error with nothing more taken, and recover() bringing it back. CQ overflow.
#include <boost/test/unit_test.hpp>

#include "tests/unit/mlx5_model_support.h"

using namespace nicmodel;
using namespace nicmodel::test;

namespace {

// Posts `bad` and a good WQE behind it in one doorbell: the bad one completes in error, the good
// one is not taken; after recover() a send works again.
void expect_send_error(ModelBench& b, const SendSpec& bad, uint8_t syndrome, const char* counter) {
  const uint16_t bad_idx = b.post_send(bad);
  b.post_send(SendSpec{make_frame(64)});
  b.ring();
  b.run();
  BOOST_TEST(b.port.sent.empty());
  BOOST_TEST(b.model->sq_in_error());
  BOOST_TEST(!b.model->rq_in_error());
  auto c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_REQ_ERR);
  const mlx5_err_cqe& e = as_err(*c);
  BOOST_TEST(e.syndrome == syndrome);
  BOOST_TEST(e.vendor_err_synd != 0);
  BOOST_TEST(be16toh(e.wqe_counter) == bad_idx);
  BOOST_TEST((be32toh(e.s_wqe_opcode_qpn) & 0xffffff) == b.rings.qpn);
  BOOST_TEST((be32toh(e.s_wqe_opcode_qpn) >> 24) == bad.opcode);
  BOOST_TEST(!b.poll_send().has_value());
  BOOST_TEST(b.model->counters().get(counter) == 1u);

  // Later doorbells are ignored while in error.
  b.post_send(SendSpec{make_frame(64)});
  b.ring();
  b.run();
  BOOST_TEST(b.port.sent.empty());
  BOOST_TEST(b.model->counters().get("nic.doorbells_ignored") == 1u);

  b.recover();
  BOOST_TEST(!b.model->sq_in_error());
  Bytes f = make_frame(80);
  BOOST_TEST(b.send(SendSpec{f}) == 0);
  b.run();
  BOOST_REQUIRE(b.port.sent.size() == 1u);
  BOOST_TEST(b.port.sent[0].frame == f);
  c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_REQ);
  BOOST_TEST(be16toh(c->wqe_counter) == 0);
}

BOOST_AUTO_TEST_CASE(opcode_other_than_send_is_a_local_qp_operation_error) {
  ModelBench b;
  SendSpec s{make_frame(64)};
  s.opcode = MLX5_OPCODE_RDMA_WRITE;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, "nic.err.local_qp_op");
}

BOOST_AUTO_TEST_CASE(ds_of_zero_is_a_local_qp_operation_error) {
  ModelBench b;
  SendSpec s{make_frame(64)};
  s.ds = 0;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, "nic.err.local_qp_op");
}

BOOST_AUTO_TEST_CASE(ds_too_small_for_ctrl_and_eth_is_a_local_qp_operation_error) {
  ModelBench b;
  SendSpec s{make_frame(64)};
  s.ds = 1;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, "nic.err.local_qp_op");
}

BOOST_AUTO_TEST_CASE(ds_inconsistent_with_the_inline_segment_is_a_local_qp_operation_error) {
  ModelBench b;
  SendSpec s{make_frame(100)};  // the inline segment needs 6 units after ctrl and eth
  s.ds = 4;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, "nic.err.local_qp_op");
}

BOOST_AUTO_TEST_CASE(wqe_of_another_qp_is_a_local_qp_operation_error) {
  ModelBench b;
  SendSpec s{make_frame(64)};
  s.qpn = b.rings.qpn + 1;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, "nic.err.local_qp_op");
}

BOOST_AUTO_TEST_CASE(unknown_lkey_is_a_local_protection_error) {
  ModelBench b;
  SendSpec s{make_frame(200)};
  s.gather = true;
  s.lkey = 0x7777;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, "nic.err.local_prot");
}

BOOST_AUTO_TEST_CASE(data_segment_past_the_region_end_is_a_local_protection_error) {
  ModelBench b;
  SendSpec s{make_frame(200)};
  s.gather = true;
  s.addr = uint64_t(uintptr_t(b.memory.data() + b.memory.size() - 10));
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, "nic.err.local_prot");
}

BOOST_AUTO_TEST_CASE(data_segment_before_the_region_is_a_local_protection_error) {
  ModelBench b;
  SendSpec s{make_frame(200)};
  s.gather = true;
  s.addr = uint64_t(uintptr_t(b.memory.data())) - 64;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, "nic.err.local_prot");
}

BOOST_AUTO_TEST_CASE(frame_longer_than_mtu_is_a_local_length_error) {
  ModelBench b;
  SendSpec s{make_frame(1500 - 28 + 1)};  // one byte over mtu + 18 with ... 14 + 1501 + ... > 1518
  s.frame.resize(1519);
  s.gather = true;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, "nic.err.local_length");
}

BOOST_AUTO_TEST_CASE(largest_frame_goes_out) {
  ModelBench b;
  SendSpec s{make_frame(1500 - 28)};
  s.frame.resize(1518);  // mtu + 14 header + 4 VLAN tag
  s.gather = true;
  b.send(s);
  b.run();
  BOOST_TEST(b.port.sent.size() == 1u);
  BOOST_TEST(!b.model->sq_in_error());
}

BOOST_AUTO_TEST_CASE(frame_shorter_than_an_ethernet_header_is_a_local_length_error) {
  ModelBench b;
  SendSpec s{Bytes(10, 0xab)};
  s.inline_hdr = 10;
  expect_send_error(b, s, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, "nic.err.local_length");
}

BOOST_AUTO_TEST_CASE(wqes_before_the_bad_one_complete) {
  ModelBench b;
  Bytes f = make_frame(64);
  b.post_send(SendSpec{f});
  SendSpec bad{f};
  bad.ds = 0;
  const uint16_t bad_idx = b.post_send(bad);
  b.ring();
  b.run();
  BOOST_TEST(b.port.sent.size() == 1u);
  auto c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_REQ);
  c = b.poll_send();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_REQ_ERR);
  BOOST_TEST(be16toh(as_err(*c).wqe_counter) == bad_idx);
}

// Receive side: the WQE's buffer is checked when a frame arrives for it.
void expect_recv_error(ModelBench& b, uint8_t syndrome) {
  Bytes f = make_frame(200, false, true);
  b.port.deliver(f, b.clock.now());
  b.run();
  BOOST_TEST(b.model->rq_in_error());
  BOOST_TEST(!b.model->sq_in_error());
  auto c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_RESP_ERR);
  BOOST_TEST(as_err(*c).syndrome == syndrome);
  BOOST_TEST(be16toh(as_err(*c).wqe_counter) == 0);
  BOOST_TEST((be32toh(as_err(*c).s_wqe_opcode_qpn) & 0xffffff) == b.rings.qpn);

  // Nothing more is received until recover(), even with WQEs posted.
  b.post_recv(4096, 2048);
  b.port.deliver(f, b.clock.now());
  b.run();
  BOOST_TEST(!b.poll_recv().has_value());
  BOOST_TEST(b.model->counters().get("nic.rx.drop.queue_error") == 1u);

  // Sending still works: the SQ is not affected.
  b.send(SendSpec{make_frame(64)});
  b.run();
  BOOST_TEST(b.port.sent.size() == 1u);

  b.recover();
  BOOST_TEST(!b.model->rq_in_error());
  b.post_recv(8192, 2048);
  b.port.deliver(f, b.clock.now());
  b.run();
  c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_RESP_SEND);
  BOOST_TEST(be16toh(c->wqe_counter) == 0);
  BOOST_TEST(std::equal(f.begin(), f.end(), b.memory.begin() + 8192));
}

BOOST_AUTO_TEST_CASE(receive_wqe_with_unknown_lkey_is_a_local_protection_error) {
  ModelBench b;
  b.post_recv(0, 2048, 0x9999);
  expect_recv_error(b, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR);
  BOOST_TEST(b.model->counters().get("nic.err.local_prot") == 1u);
}

BOOST_AUTO_TEST_CASE(receive_wqe_outside_its_region_is_a_local_protection_error) {
  ModelBench b;
  b.post_recv(b.memory.size() - 100, 2048);
  expect_recv_error(b, MLX5_CQE_SYNDROME_LOCAL_PROT_ERR);
}

BOOST_AUTO_TEST_CASE(frame_longer_than_the_receive_buffer_is_a_local_length_error) {
  ModelBench b;
  b.post_recv(0, 64);
  expect_recv_error(b, MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR);
  BOOST_TEST(b.model->counters().get("nic.err.local_length") == 1u);
}

BOOST_AUTO_TEST_CASE(receive_cq_overflow_puts_the_rq_in_error) {
  shunt::Mlx5QueueSizes s = ModelBench::small_sizes();
  s.rq_wqes = 8;
  s.recv_cqes = 4;
  ModelBench b(s);
  for (int i = 0; i < 8; ++i) b.post_recv(size_t(i) * 2048, 2048);
  Bytes f = make_frame(100, false, true);
  for (int i = 0; i < 5; ++i) {
    b.port.deliver(f, b.clock.now());
    b.run(b.clock.now() + 1000);  // the software never polls
  }
  BOOST_TEST(b.model->counters().get("nic.cq.overflow") == 1u);
  BOOST_TEST(b.model->rq_in_error());
  for (int i = 0; i < 4; ++i) {
    auto c = b.poll_recv();
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(be16toh(c->wqe_counter) == i);
  }
  BOOST_TEST(!b.poll_recv().has_value());  // the fifth was never written

  b.recover();  // the CQ continues: its next CQE has the second lap's owner bit
  b.post_recv(0, 2048);
  b.port.deliver(f, b.clock.now());
  b.run();
  auto c = b.poll_recv();
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST((c->op_own & 1) == 1);
  BOOST_TEST(cqe_opcode(*c) == MLX5_CQE_RESP_SEND);
}

BOOST_AUTO_TEST_CASE(send_cq_overflow_puts_the_sq_in_error) {
  shunt::Mlx5QueueSizes s = ModelBench::small_sizes();
  s.send_cqes = 4;
  ModelBench b(s);
  Bytes f = make_frame(64);
  for (int i = 0; i < 5; ++i) b.post_send(SendSpec{f});
  b.ring();
  b.run();
  BOOST_TEST(b.model->counters().get("nic.cq.overflow") == 1u);
  BOOST_TEST(b.model->sq_in_error());
  int n = 0;
  while (b.poll_send()) ++n;
  BOOST_TEST(n == 4);
  b.recover();
  b.send(SendSpec{f});
  b.run();
  BOOST_TEST(b.poll_send().has_value());
  BOOST_TEST(!b.model->sq_in_error());
}

BOOST_AUTO_TEST_CASE(recover_drops_pending_work_of_the_old_queue) {
  ModelBench b;
  Bytes f = make_frame(64);
  b.send(SendSpec{f});
  BOOST_TEST(b.model->next_event() != shunt::kNever);
  b.recover();
  BOOST_TEST(b.model->next_event() == shunt::kNever);
  b.run();
  BOOST_TEST(b.port.sent.empty());
  BOOST_TEST(!b.poll_send().has_value());
}

}  // namespace
