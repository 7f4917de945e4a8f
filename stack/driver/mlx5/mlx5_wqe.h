// Encoding of mlx5 send WQEs and decoding of CQEs, in the layout of rdma-core's
// infiniband/mlx5dv.h. The driver (mlx5_driver.h) writes and reads its rings only through
// these; the golden tests (tests/unit/mlx5_wqe.cc) pin them down byte by byte.
//
// A send WQE of the raw-packet QP is, in 16-byte units ("ds"):
//   control segment (1) | Ethernet segment with 18 inline header bytes (2) |
//   either one inline-data segment (4-byte byte_count | MLX5_INLINE_SEG, the rest of the frame,
//   padded to 16) or one data segment (byte_count, lkey, addr) per buffer of the frame.
// It occupies ceil(ds / 4) 64-byte WQEBBs and wraps around the end of the ring.
#pragma once
#include <endian.h>
#include <infiniband/mlx5dv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "stack/core/buffer.h"

namespace shunt {

// Not exported by mlx5dv.h: rdma-core providers/mlx5/mlx5.h (MLX5_CQ_SET_CI, MLX5_CQ_ARM_DB).
inline constexpr uint32_t kMlx5CqSetCi = 0;
// ConnectX-4 needs the L2 header plus a VLAN tag inline in the Ethernet segment
// (libmlx5's MLX5_ETH_L2_INLINE_HEADER_SIZE).
inline constexpr uint32_t kMlx5InlineHeaderSize = 18;
// The control segment's DS field is 6 bits: a WQE is at most 63 16-byte units.
inline constexpr uint32_t kMlx5MaxDs = 63;
inline constexpr uint32_t kMlx5SegSize = 16;
// Ctrl (1) + Ethernet (2) units, before the payload.
inline constexpr uint32_t kMlx5HeaderDs = 3;
// The most frame bytes one WQE can carry inline: the 18 in the Ethernet segment plus what the
// rest of 63 units hold after the inline segment's 4-byte byte_count.
inline constexpr uint32_t kMlx5MaxInlineFrame =
    kMlx5InlineHeaderSize + (kMlx5MaxDs - kMlx5HeaderDs) * kMlx5SegSize - 4;
// Data segments one WQE can carry.
inline constexpr uint32_t kMlx5MaxDataSegs = kMlx5MaxDs - kMlx5HeaderDs;

// CQE l3/l4 header types in l4_hdr_type_etc (PRM "CQE format"; DPDK mlx5_prm.h
// MLX5_CQE_L3_HDR_TYPE_SHIFT / MLX5_CQE_L4_HDR_TYPE_*); mlx5dv.h has only the L3 values.
inline constexpr uint8_t kMlx5CqeL3HdrTypeShift = 2;
inline constexpr uint8_t kMlx5CqeL4HdrTypeShift = 4;
inline constexpr uint8_t kMlx5CqeL4HdrTypeNone = 0;
inline constexpr uint8_t kMlx5CqeL4HdrTypeTcp = 1;
inline constexpr uint8_t kMlx5CqeL4HdrTypeUdp = 2;
inline constexpr uint8_t kMlx5CqeL4HdrTypeTcpEmptyAck = 3;
inline constexpr uint8_t kMlx5CqeL4HdrTypeTcpAck = 4;

// The layout this code relies on (mlx5dv.h; PRM).
static_assert(sizeof(mlx5_wqe_ctrl_seg) == 16);
static_assert(offsetof(mlx5_wqe_ctrl_seg, opmod_idx_opcode) == 0);
static_assert(offsetof(mlx5_wqe_ctrl_seg, qpn_ds) == 4);
static_assert(offsetof(mlx5_wqe_ctrl_seg, signature) == 8);
static_assert(offsetof(mlx5_wqe_ctrl_seg, fm_ce_se) == 11);
static_assert(offsetof(mlx5_wqe_ctrl_seg, imm) == 12);
static_assert(sizeof(mlx5_wqe_eth_seg) == 32);
static_assert(offsetof(mlx5_wqe_eth_seg, cs_flags) == 4);
static_assert(offsetof(mlx5_wqe_eth_seg, mss) == 6);
static_assert(offsetof(mlx5_wqe_eth_seg, inline_hdr_sz) == 12);
static_assert(offsetof(mlx5_wqe_eth_seg, inline_hdr_start) == 14);
static_assert(offsetof(mlx5_wqe_eth_seg, inline_hdr) == 16);
static_assert(sizeof(mlx5_wqe_eth_seg::inline_hdr_start) + sizeof(mlx5_wqe_eth_seg::inline_hdr) ==
              kMlx5InlineHeaderSize);
static_assert(sizeof(mlx5_wqe_data_seg) == 16);
static_assert(sizeof(mlx5_wqe_inl_data_seg) == 4);
static_assert(sizeof(mlx5_cqe64) == 64);
static_assert(offsetof(mlx5_cqe64, hds_ip_ext) == 28);
static_assert(offsetof(mlx5_cqe64, l4_hdr_type_etc) == 29);
static_assert(offsetof(mlx5_cqe64, byte_cnt) == 44);
static_assert(offsetof(mlx5_cqe64, wqe_counter) == 60);
static_assert(offsetof(mlx5_cqe64, op_own) == 63);
static_assert(sizeof(mlx5_err_cqe) == 64);
static_assert(offsetof(mlx5_err_cqe, vendor_err_synd) == 54);
static_assert(offsetof(mlx5_err_cqe, syndrome) == 55);
static_assert(offsetof(mlx5_err_cqe, wqe_counter) == 60);
static_assert(offsetof(mlx5_err_cqe, op_own) == 63);
static_assert(MLX5_SEND_WQE_BB == 64);

// [begin, end): memory registered for DMA under lkey.
struct Mlx5Registered {
  uintptr_t begin = 0;
  uintptr_t end = 0;  // begin == end: nothing registered
  uint32_t lkey = 0;
  bool contains(const void* p, size_t n) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= begin && a + n <= end && a + n >= a;
  }
};

// How one frame goes into a send WQE.
struct Mlx5SendPlan {
  enum class Verdict : uint8_t {
    kOk,
    kRunt,             // shorter than the 18 header bytes the Ethernet segment must inline
    kTooManySegments,  // a chain of more buffers than a WQE has data segments for
    kUnregistered,     // a buffer outside registered memory, too long to copy inline
  };
  Verdict verdict = Verdict::kOk;
  bool all_inline = false;  // the whole frame is copied into the WQE
  uint32_t frame_bytes = 0;
  uint32_t ds = 0;      // 16-byte units, control segment included
  uint32_t wqebbs = 0;  // 64-byte blocks
};

// Decides the layout: inline when the frame is at most `inline_threshold` bytes, otherwise a
// data segment per buffer (after the 18 inline header bytes); a frame with a buffer outside
// `reg` goes inline if it is at most `max_inline` bytes, otherwise it cannot be sent.
inline Mlx5SendPlan mlx5_plan_send(const PacketBuf& frame, uint32_t inline_threshold,
                                   uint32_t max_inline, const Mlx5Registered& reg) {
  Mlx5SendPlan p;
  uint32_t total = 0;
  uint32_t segs = 0;  // buffers holding bytes past the inline header
  bool registered = true;
  for (const PacketBuf* b = &frame; b; b = b->chain) {
    const uint32_t len = uint32_t(b->size());
    if (len == 0) continue;
    const uint32_t header_left = total < kMlx5InlineHeaderSize ? kMlx5InlineHeaderSize - total : 0;
    total += len;
    if (len > header_left) {
      ++segs;
      registered = registered && reg.contains(b->data(), len);
    }
  }
  p.frame_bytes = total;
  if (total < kMlx5InlineHeaderSize) {
    p.verdict = Mlx5SendPlan::Verdict::kRunt;
    return p;
  }
  const uint32_t rest = total - kMlx5InlineHeaderSize;
  if (total <= inline_threshold || (!registered && total <= max_inline)) {
    p.all_inline = true;
    p.ds = kMlx5HeaderDs + (rest ? (4 + rest + kMlx5SegSize - 1) / kMlx5SegSize : 0);
  } else if (!registered) {
    p.verdict = Mlx5SendPlan::Verdict::kUnregistered;
    return p;
  } else if (segs > kMlx5MaxDataSegs) {
    p.verdict = Mlx5SendPlan::Verdict::kTooManySegments;
    return p;
  } else {
    p.ds = kMlx5HeaderDs + segs;
  }
  p.wqebbs = (p.ds + 3) >> 2;
  return p;
}

// Writes bytes forward through the send ring, wrapping from its end to its start.
struct Mlx5RingWriter {
  uint8_t* pos;
  uint8_t* begin;
  uint8_t* end;

  void put(const void* src, size_t n) {
    const size_t room = size_t(end - pos);
    if (n < room) {
      std::memcpy(pos, src, n);
      pos += n;
      return;
    }
    std::memcpy(pos, src, room);
    std::memcpy(begin, static_cast<const uint8_t*>(src) + room, n - room);
    pos = begin + (n - room);
  }
  void zero(size_t n) {
    const size_t room = size_t(end - pos);
    if (n < room) {
      std::memset(pos, 0, n);
      pos += n;
      return;
    }
    std::memset(pos, 0, room);
    std::memset(begin, 0, n - room);
    pos = begin + (n - room);
  }
  // The next 16-byte segment (segments never straddle the ring end: it is 64-byte aligned).
  template <class Seg>
  Seg* seg() {
    Seg* s = reinterpret_cast<Seg*>(pos);
    pos += kMlx5SegSize;
    if (pos == end) pos = begin;
    return s;
  }
};

// Copies frame bytes [from, from + n) of a chain through `w`.
inline void mlx5_copy_chain(Mlx5RingWriter& w, const PacketBuf& frame, uint32_t from, uint32_t n) {
  for (const PacketBuf* b = &frame; b && n; b = b->chain) {
    const uint32_t len = uint32_t(b->size());
    if (from >= len) {
      from -= len;
      continue;
    }
    const uint32_t take = len - from < n ? len - from : n;
    w.put(b->data() + from, take);
    n -= take;
    from = 0;
  }
}

// Transmit checksum flags of a frame (PacketBuf::kTx*) as the Ethernet segment's cs_flags.
inline uint8_t mlx5_cs_flags(uint32_t tx_flags) {
  return uint8_t(((tx_flags & PacketBuf::kTxIpv4Checksum) ? MLX5_ETH_WQE_L3_CSUM : 0) |
                 ((tx_flags & PacketBuf::kTxL4Checksum) ? MLX5_ETH_WQE_L4_CSUM : 0));
}

// Writes the send WQE `plan` describes at WQE index `pi` of the ring (sq_buf, wqe_cnt a power of
// two) and returns its control segment. fm_ce_se: MLX5_WQE_CTRL_CQ_UPDATE to ask for a CQE.
// Bytes of the last WQEBB past ds * 16 are left as they are (the device reads ds units).
inline mlx5_wqe_ctrl_seg* mlx5_write_send_wqe(uint8_t* sq_buf, uint32_t wqe_cnt, uint32_t pi,
                                              uint32_t qpn, const Mlx5SendPlan& plan,
                                              const PacketBuf& frame, uint32_t lkey,
                                              uint8_t fm_ce_se) {
  uint8_t* wqe = sq_buf + size_t(pi & (wqe_cnt - 1)) * MLX5_SEND_WQE_BB;
  auto* ctrl = reinterpret_cast<mlx5_wqe_ctrl_seg*>(wqe);
  mlx5dv_set_ctrl_seg(ctrl, uint16_t(pi), MLX5_OPCODE_SEND, 0, qpn, fm_ce_se, uint8_t(plan.ds), 0,
                      0);
  ctrl->dci_stream_channel_id = 0;

  // The Ethernet segment sits in the first WQEBB with the control segment: never wraps.
  auto* eth = reinterpret_cast<mlx5_wqe_eth_seg*>(wqe + sizeof(mlx5_wqe_ctrl_seg));
  eth->rsvd0 = 0;
  eth->cs_flags = mlx5_cs_flags(frame.flags);
  eth->rsvd1 = 0;
  eth->mss = 0;
  eth->rsvd2 = 0;
  eth->inline_hdr_sz = htobe16(uint16_t(kMlx5InlineHeaderSize));
  if (frame.size() >= kMlx5InlineHeaderSize) {
    std::memcpy(eth->inline_hdr_start, frame.data(), kMlx5InlineHeaderSize);
  } else {
    // The header is spread over several buffers (rare): gather it.
    Mlx5RingWriter hw{eth->inline_hdr_start, eth->inline_hdr_start,
                      eth->inline_hdr_start + kMlx5InlineHeaderSize};
    mlx5_copy_chain(hw, frame, 0, kMlx5InlineHeaderSize);
  }

  Mlx5RingWriter w{wqe + sizeof(mlx5_wqe_ctrl_seg) + sizeof(mlx5_wqe_eth_seg), sq_buf,
                   sq_buf + size_t(wqe_cnt) * MLX5_SEND_WQE_BB};
  const uint32_t rest = plan.frame_bytes - kMlx5InlineHeaderSize;
  if (plan.all_inline) {
    if (rest == 0) return ctrl;
    const uint32_t inl = htobe32(rest | MLX5_INLINE_SEG);
    w.put(&inl, sizeof(inl));
    if (frame.chain == nullptr) {
      w.put(frame.data() + kMlx5InlineHeaderSize, rest);
    } else {
      mlx5_copy_chain(w, frame, kMlx5InlineHeaderSize, rest);
    }
    const uint32_t used = 4 + rest;
    w.zero(((used + kMlx5SegSize - 1) & ~(kMlx5SegSize - 1)) - used);
    return ctrl;
  }
  uint32_t skip = kMlx5InlineHeaderSize;  // header bytes already inline
  for (const PacketBuf* b = &frame; b; b = b->chain) {
    uint32_t len = uint32_t(b->size());
    const uint32_t s = skip < len ? skip : len;
    skip -= s;
    len -= s;
    if (len == 0) continue;
    mlx5dv_set_data_seg(w.seg<mlx5_wqe_data_seg>(), len, lkey,
                        reinterpret_cast<uintptr_t>(b->data() + s));
  }
  return ctrl;
}

// --- Completions -----------------------------------------------------------------------------

inline uint8_t mlx5_cqe_opcode(uint8_t op_own) { return uint8_t(op_own >> 4); }

// libmlx5 get_sw_cqe(): the CQE at consumer index `ci` is software's when the device has
// written it (opcode not MLX5_CQE_INVALID) in the current lap (owner bit == lap parity).
// Returns its op_own, or 0xff (never valid: opcode 15) when it is not ready.
inline uint8_t mlx5_cqe_ready(const uint8_t* cq_buf, uint32_t cqe_cnt, uint32_t ci) {
  const auto* cqe =
      reinterpret_cast<const mlx5_cqe64*>(cq_buf + size_t(ci & (cqe_cnt - 1)) * sizeof(mlx5_cqe64));
  const uint8_t op_own = *reinterpret_cast<const volatile uint8_t*>(&cqe->op_own);
  if (mlx5_cqe_opcode(op_own) == MLX5_CQE_INVALID) return 0xff;
  if ((op_own & MLX5_CQE_OWNER_MASK) != ((ci & cqe_cnt) ? 1 : 0)) return 0xff;
  // udma_from_device_barrier(): the rest of the CQE is read after its owner byte.
  std::atomic_thread_fence(std::memory_order_acquire);
  return op_own;
}

inline const mlx5_cqe64* mlx5_cqe_at(const uint8_t* cq_buf, uint32_t cqe_cnt, uint32_t ci) {
  return reinterpret_cast<const mlx5_cqe64*>(cq_buf +
                                             size_t(ci & (cqe_cnt - 1)) * sizeof(mlx5_cqe64));
}

// The receive checksum verdicts of a CQE as PacketBuf::kRx* flags: L3 only for IPv4 (IPv6 has no
// header checksum), L4 only for TCP and UDP (libmlx5 get_csum_ok; DPDK rxq_cq_to_ol_flags).
inline uint32_t mlx5_rx_checksum_flags(const mlx5_cqe64& cqe) {
  const uint8_t ok = cqe.hds_ip_ext;
  const uint8_t l3 = (cqe.l4_hdr_type_etc >> kMlx5CqeL3HdrTypeShift) & 0x3;
  const uint8_t l4 = (cqe.l4_hdr_type_etc >> kMlx5CqeL4HdrTypeShift) & 0x7;
  uint32_t flags = 0;
  if ((ok & MLX5_CQE_L3_OK) && l3 == MLX5_CQE_L3_HDR_TYPE_IPV4) flags |= PacketBuf::kRxL3ChecksumOk;
  if ((ok & MLX5_CQE_L4_OK) &&
      (l3 == MLX5_CQE_L3_HDR_TYPE_IPV4 || l3 == MLX5_CQE_L3_HDR_TYPE_IPV6) &&
      l4 >= kMlx5CqeL4HdrTypeTcp && l4 <= kMlx5CqeL4HdrTypeTcpAck)
    flags |= PacketBuf::kRxL4ChecksumOk;
  return flags;
}

// The name an error CQE's syndrome is counted under ("mlx5.err.<name>").
inline const char* mlx5_syndrome_name(uint8_t syndrome) {
  switch (syndrome) {
    case MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR:
      return "local_length";
    case MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR:
      return "local_qp_op";
    case MLX5_CQE_SYNDROME_LOCAL_PROT_ERR:
      return "local_prot";
    case MLX5_CQE_SYNDROME_WR_FLUSH_ERR:
      return "wr_flush";
    case MLX5_CQE_SYNDROME_LOCAL_ACCESS_ERR:
      return "local_access";
    case MLX5_CQE_SYNDROME_BAD_RESP_ERR:
      return "bad_resp";
    default:
      return "other";
  }
}

}  // namespace shunt
