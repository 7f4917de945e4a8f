// Test bench for the simulated ConnectX: the model on a VirtualClock and a RecordingPort, its
// rings, and send/receive WQEs built by hand with rdma-core's mlx5dv.h structs, the way
// libmlx5-style code writes them (no dependence on the stack's mlx5 driver).
#pragma once
#include <endian.h>
#include <infiniband/mlx5dv.h>

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "nicmodel/mlx5/mlx5_model.h"
#include "stack/core/buffer.h"
#include "stack/driver/checksum_offload.h"
#include "stack/net/addr.h"
#include "tests/support/mlx5_test_port.h"

namespace nicmodel::test {

using Bytes = std::vector<uint8_t>;
using shunt::Nanos;

inline size_t round16(size_t v) { return (v + 15) / 16 * 16; }
// Independent of the model: ceil(bytes * 8 / gbps) in ns.
inline Nanos xfer_ns(size_t bytes, uint64_t gbps) { return Nanos((bytes * 8 + gbps - 1) / gbps); }
inline Nanos wire_ns(size_t len, uint64_t gbps) { return xfer_ns(std::max<size_t>(len, 60) + 24, gbps); }

// An Ethernet + IPv4 + UDP frame (or IPv6 + TCP) with `payload` bytes; checksums zero unless
// `checksums`, then right (filled by the stack's software offload).
inline Bytes make_frame(size_t payload, bool v6_tcp = false, bool checksums = false, uint8_t seed = 1) {
  Bytes f(14, 0);
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 2}, src[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, src, 6);
  const size_t l4_len = (v6_tcp ? 20 : 8) + payload;
  if (!v6_tcp) {
    shunt::store16(f.data() + 12, 0x0800);
    uint8_t ip[20] = {0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
    shunt::store16(ip + 2, uint16_t(20 + l4_len));
    f.insert(f.end(), ip, ip + 20);
    uint8_t udp[8] = {0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0};
    shunt::store16(udp + 4, uint16_t(l4_len));
    f.insert(f.end(), udp, udp + 8);
  } else {
    shunt::store16(f.data() + 12, 0x86dd);
    uint8_t ip[40] = {0x60, 0, 0, 0, 0, 0, 6, 64};
    shunt::store16(ip + 4, uint16_t(l4_len));
    ip[8] = 0xfd, ip[23] = 1, ip[24] = 0xfd, ip[39] = 2;
    f.insert(f.end(), ip, ip + 40);
    uint8_t tcp[20] = {0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff};
    f.insert(f.end(), tcp, tcp + 20);
  }
  for (size_t i = 0; i < payload; ++i) f.push_back(uint8_t(seed + i * 7));
  if (checksums) {
    shunt::BufferPool pool(1);
    auto b = pool.alloc(0);
    b->append(f);
    shunt::fill_offloaded_checksums(*b, shunt::PacketBuf::kTxIpv4Checksum | shunt::PacketBuf::kTxL4Checksum);
    f.assign(b->data(), b->data() + b->size());
  }
  return f;
}

// The stack's software verifier, as the oracle for checksums the model filled in.
inline uint32_t verify(const Bytes& f) {
  shunt::BufferPool pool(1);
  auto b = pool.alloc(0);
  b->append(f);
  return shunt::verify_checksums(*b);
}

struct SendSpec {
  SendSpec() = default;
  explicit SendSpec(Bytes f) : frame(std::move(f)) {}
  Bytes frame;
  size_t inline_hdr = 18;   // bytes in the Ethernet segment
  bool gather = false;      // the rest by one data segment from host memory (else inline data)
  size_t mem_offset = 0;    // where the gathered bytes are put in the registered memory
  uint8_t cs_flags = 0;
  bool signalled = true;
  uint8_t opcode = MLX5_OPCODE_SEND;
  std::optional<uint32_t> ds, qpn, lkey, byte_count;
  std::optional<uint64_t> addr;
};

class ModelBench {
 public:
  explicit ModelBench(shunt::Mlx5QueueSizes sizes = small_sizes(), NicModelOptions options = default_options())
      : memory(64 * 1024, 0) {
    model = std::make_unique<Mlx5Model>(clock, port, options);
    error = model->open(sizes, rings);
    std::string why;
    lkey = model->register_memory(memory.data(), memory.size(), why).value_or(0);
  }
  static shunt::Mlx5QueueSizes small_sizes() {
    shunt::Mlx5QueueSizes s;
    s.sq_wqebbs = 64;
    s.rq_wqes = 16;
    s.send_cqes = 64;
    s.recv_cqes = 16;
    return s;
  }
  static NicModelOptions default_options() {
    NicModelOptions o;
    o.mac = shunt::MacAddr{{0x02, 0, 0, 0, 0, 1}};
    return o;
  }

  // Writes a send WQE at the producer index (wrapping around the ring as libmlx5 does),
  // updates the send doorbell record; returns the WQE's index. Does not ring.
  uint16_t post_send(const SendSpec& spec) {
    uint8_t w[1024] = {};
    const uint16_t idx = sq_pi;
    auto* ctrl = reinterpret_cast<mlx5_wqe_ctrl_seg*>(w);
    auto* eth = reinterpret_cast<mlx5_wqe_eth_seg*>(w + 16);
    eth->cs_flags = spec.cs_flags;
    const size_t h = std::min(spec.inline_hdr, spec.frame.size());
    eth->inline_hdr_sz = htobe16(uint16_t(h));
    std::memcpy(eth->inline_hdr_start, spec.frame.data(), h);  // runs on past the segment
    size_t off = 16 + 16 + round16(std::max<size_t>(h, 2) - 2);
    const size_t rest = spec.frame.size() - h;
    if (rest && !spec.gather) {
      auto* inl = reinterpret_cast<mlx5_wqe_inl_data_seg*>(w + off);
      inl->byte_count = htobe32(uint32_t(rest) | MLX5_INLINE_SEG);
      std::memcpy(w + off + 4, spec.frame.data() + h, rest);
      off += round16(4 + rest);
    } else if (rest || spec.byte_count) {
      std::memcpy(memory.data() + spec.mem_offset, spec.frame.data() + h, rest);
      auto* d = reinterpret_cast<mlx5_wqe_data_seg*>(w + off);
      d->byte_count = htobe32(spec.byte_count.value_or(uint32_t(rest)));
      d->lkey = htobe32(spec.lkey.value_or(lkey));
      d->addr = htobe64(spec.addr.value_or(uint64_t(uintptr_t(memory.data() + spec.mem_offset))));
      off += sizeof(mlx5_wqe_data_seg);
    }
    if (spec.opcode == MLX5_OPCODE_NOP) off = 16;
    const uint32_t ds = spec.ds.value_or(uint32_t(off / 16));
    ctrl->opmod_idx_opcode = htobe32(uint32_t(idx) << 8 | spec.opcode);
    ctrl->qpn_ds = htobe32(spec.qpn.value_or(rings.qpn) << 8 | ds);
    ctrl->fm_ce_se = spec.signalled ? MLX5_WQE_CTRL_CQ_UPDATE : 0;
    const uint32_t wqebbs = std::max<uint32_t>(1, uint32_t((off + 63) / 64));
    for (uint32_t b = 0; b < wqebbs; ++b) {
      std::memcpy(sq_slot(uint16_t(idx + b)), w + b * 64, 64);
    }
    last_wqe = sq_slot(idx);
    last_wqebbs = wqebbs;
    sq_pi = uint16_t(sq_pi + wqebbs);
    rings.dbrec[MLX5_SND_DBR] = htobe32(sq_pi);
    return idx;
  }
  uint8_t* sq_slot(uint16_t i) { return rings.sq.buf + size_t(i & (rings.sq.wqe_cnt - 1)) * 64; }
  void ring(bool blueflame = false) { model->ring_send_doorbell(last_wqe, blueflame ? last_wqebbs * 64 : 0); }
  uint16_t send(const SendSpec& spec, bool blueflame = false) {
    uint16_t i = post_send(spec);
    ring(blueflame);
    return i;
  }

  // Posts one receive WQE for [offset, offset + len) of the memory (or a given lkey/address).
  void post_recv(size_t offset, uint32_t len, std::optional<uint32_t> key = {}, std::optional<uint64_t> addr = {}) {
    auto* d = reinterpret_cast<mlx5_wqe_data_seg*>(rings.rq.buf + size_t(rq_pi & (rings.rq.wqe_cnt - 1)) * rings.rq.stride);
    d->byte_count = htobe32(len);
    d->lkey = htobe32(key.value_or(lkey));
    d->addr = htobe64(addr.value_or(uint64_t(uintptr_t(memory.data() + offset))));
    ++rq_pi;
    rings.dbrec[MLX5_RCV_DBR] = htobe32(rq_pi);
  }

  // Runs the model's events in time order until it is idle (or `until`), moving the clock.
  void run(Nanos until = shunt::kNever) {
    for (Nanos t; (t = model->next_event()) != shunt::kNever && t <= until;) {
      clock.advance_to(t);
      model->run_due(clock.now());
    }
    if (until != shunt::kNever) clock.advance_to(until);
  }

  // libmlx5's CQE poll: the CQE at ci is ours when its opcode is valid and its owner bit is
  // !!(ci & cqe_cnt); then the consumer index goes to the CQ doorbell record.
  std::optional<mlx5_cqe64> poll(bool recv) {
    auto& cq = recv ? rings.recv_cq : rings.send_cq;
    uint32_t& ci = recv ? rcq_ci : scq_ci;
    const uint8_t* p = cq.buf + size_t(ci & (cq.cqe_cnt - 1)) * 64;
    const uint8_t op_own = p[63];
    if ((op_own >> 4) == MLX5_CQE_INVALID || (op_own & 1) != ((ci & cq.cqe_cnt) ? 1 : 0)) return std::nullopt;
    mlx5_cqe64 c;
    std::memcpy(&c, p, 64);
    ++ci;
    cq.dbrec[0] = htobe32(ci & 0xffffff);
    return c;
  }
  std::optional<mlx5_cqe64> poll_send() { return poll(false); }
  std::optional<mlx5_cqe64> poll_recv() { return poll(true); }

  // After recover(): the driver's side of it (indices and doorbell records to zero; the CQs
  // continue, and whatever is left in them is discarded).
  void recover() {
    model->recover();
    sq_pi = rq_pi = 0;
    rings.dbrec[MLX5_SND_DBR] = 0;
    rings.dbrec[MLX5_RCV_DBR] = 0;
    while (poll_send()) {
    }
    while (poll_recv()) {
    }
  }

  shunt::VirtualClock clock{1000};
  RecordingPort port;
  std::unique_ptr<Mlx5Model> model;
  shunt::Mlx5Rings rings;
  std::string error;
  Bytes memory;
  uint32_t lkey = 0;
  uint16_t sq_pi = 0, rq_pi = 0;
  uint32_t scq_ci = 0, rcq_ci = 0;
  uint8_t* last_wqe = nullptr;
  uint32_t last_wqebbs = 0;
};

inline uint8_t cqe_opcode(const mlx5_cqe64& c) { return c.op_own >> 4; }
inline const mlx5_err_cqe& as_err(const mlx5_cqe64& c) { return reinterpret_cast<const mlx5_err_cqe&>(c); }

}  // namespace nicmodel::test
