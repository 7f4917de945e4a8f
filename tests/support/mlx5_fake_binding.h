// A test double behind the mlx5 driver's rings: it allocates the ring memory as
// mlx5dv_init_obj() would describe it, records doorbells, and lets a test act as the NIC:
// read the send WQEs the driver wrote (and rebuild their frames), write CQEs in mlx5dv.h layout
// with the right owner bit, and deliver frames into posted receive buffers.
#pragma once
#include <endian.h>
#include <infiniband/mlx5dv.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/driver/mlx5/mlx5_binding.h"
#include "stack/driver/mlx5/mlx5_wqe.h"

namespace shunt::test {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], AlignedFree>;
inline AlignedBytes aligned_bytes(size_t n, uint8_t fill = 0) {
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
  std::memset(p, fill, n);
  return AlignedBytes(p);
}

// One send WQE as the NIC reads it.
struct FakeSentWqe {
  uint16_t index = 0;  // from opmod_idx_opcode
  uint8_t opcode = 0;
  uint32_t qpn = 0;
  uint32_t ds = 0;
  uint32_t wqebbs = 0;
  uint8_t fm_ce_se = 0;
  uint8_t cs_flags = 0;
  uint16_t inline_hdr_sz = 0;
  bool all_inline = false;
  uint32_t data_segs = 0;
  bool bad_address = false;  // a data segment outside registered memory or with a wrong lkey
  std::vector<uint8_t> frame;
  bool signalled() const { return fm_ce_se & MLX5_WQE_CTRL_CQ_UPDATE; }
};

struct FakeDoorbell {
  const void* wqe = nullptr;
  size_t bf_bytes = 0;
  uint32_t snd_dbr = 0;  // the send doorbell record when the doorbell rang (host order)
};

class FakeMlx5Binding final : public Mlx5Binding {
 public:
  // What open() will do.
  std::string open_error;
  uint32_t qpn = 0x1a2b3;
  uint32_t rq_stride = 16;
  uint32_t bf_size = 256;
  bool recover_ok = true;
  std::optional<uint32_t> lkey = 0xabcd01;
  std::string register_error;
  std::function<void(Mlx5Rings&)> tweak_rings;  // to hand the driver unusable rings

  DeviceInfo device_info;
  Mlx5QueueSizes asked;
  Mlx5Rings rings;
  std::vector<FakeDoorbell> doorbells;
  int recovers = 0;
  const uint8_t* registered_begin = nullptr;
  size_t registered_len = 0;

  // The NIC's own indices.
  uint32_t sq_fetched = 0;  // WQEBBs read so far
  uint32_t rq_consumed = 0;
  uint32_t scq_pi = 0;
  uint32_t rcq_pi = 0;

  FakeMlx5Binding() {
    device_info.name = "fake-mlx5";
    device_info.mac = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};
    device_info.rx_checksum = true;
    device_info.tx_checksum = true;
  }

  const DeviceInfo& info() const override { return device_info; }

  std::string open(const Mlx5QueueSizes& sizes, Mlx5Rings& out) override {
    asked = sizes;
    if (!open_error.empty()) return open_error;
    sq_ = aligned_bytes(size_t(sizes.sq_wqebbs) * 64, 0x5a);
    rq_ = aligned_bytes(size_t(sizes.rq_wqes) * rq_stride, 0x5a);
    scq_ = aligned_bytes(size_t(sizes.send_cqes) * 64, 0x5a);
    rcq_ = aligned_bytes(size_t(sizes.recv_cqes) * 64, 0x5a);
    rings.qpn = qpn;
    rings.dbrec = dbrec;
    rings.sq = {sq_.get(), sizes.sq_wqebbs, 64};
    rings.rq = {rq_.get(), sizes.rq_wqes, rq_stride};
    rings.send_cq = {scq_.get(), &scq_dbrec, sizes.send_cqes, 64, 7};
    rings.recv_cq = {rcq_.get(), &rcq_dbrec, sizes.recv_cqes, 64, 8};
    rings.bf_size = bf_size;
    if (tweak_rings) tweak_rings(rings);
    out = rings;
    return {};
  }

  std::optional<uint32_t> register_memory(const void* addr, size_t len,
                                          std::string& error) override {
    if (!lkey) {
      error = register_error;
      return std::nullopt;
    }
    registered_begin = static_cast<const uint8_t*>(addr);
    registered_len = len;
    return lkey;
  }

  void ring_send_doorbell(const void* wqe, size_t bf_bytes) override {
    doorbells.push_back({wqe, bf_bytes, be32toh(dbrec[MLX5_SND_DBR])});
  }

  bool recover() override {
    ++recovers;
    // The QP's counters restart; the CQs go on (mlx5_binding.h).
    sq_fetched = 0;
    rq_consumed = 0;
    return recover_ok;
  }

  // --- the NIC's side ---------------------------------------------------------------------

  uint32_t snd_dbr() const { return be32toh(dbrec[MLX5_SND_DBR]); }
  uint32_t rcv_dbr() const { return be32toh(dbrec[MLX5_RCV_DBR]); }
  uint32_t send_cq_ci() const { return be32toh(scq_dbrec); }
  uint32_t recv_cq_ci() const { return be32toh(rcq_dbrec); }

  uint8_t* sq_wqebb(uint32_t i) const {
    return rings.sq.buf + size_t(i & (rings.sq.wqe_cnt - 1)) * 64;
  }
  uint8_t* rq_wqe(uint32_t i) const {
    return rings.rq.buf + size_t(i & (rings.rq.wqe_cnt - 1)) * rings.rq.stride;
  }

  // Reads the WQEs handed over by the send doorbell record since the last call.
  std::vector<FakeSentWqe> fetch_sends() {
    std::vector<FakeSentWqe> out;
    const uint16_t pi = uint16_t(snd_dbr());
    while (uint16_t(sq_fetched) != pi) {
      out.push_back(read_wqe(sq_fetched));
      if (out.back().wqebbs == 0) break;  // broken WQE: stop rather than loop
      sq_fetched += out.back().wqebbs;
    }
    return out;
  }

  // Reads the send WQE starting at WQEBB `at`, following the ring around its end.
  FakeSentWqe read_wqe(uint32_t at) const {
    FakeSentWqe w;
    const size_t ring_bytes = size_t(rings.sq.wqe_cnt) * 64;
    auto byte_at = [&](size_t off) {
      return rings.sq.buf[(size_t(at & (rings.sq.wqe_cnt - 1)) * 64 + off) % ring_bytes];
    };
    auto read = [&](size_t off, void* dst, size_t n) {
      for (size_t i = 0; i < n; ++i) static_cast<uint8_t*>(dst)[i] = byte_at(off + i);
    };
    mlx5_wqe_ctrl_seg ctrl;
    read(0, &ctrl, sizeof(ctrl));
    const uint32_t oio = be32toh(ctrl.opmod_idx_opcode);
    w.opcode = uint8_t(oio & 0xff);
    w.index = uint16_t(oio >> 8);
    const uint32_t qd = be32toh(ctrl.qpn_ds);
    w.qpn = qd >> 8;
    w.ds = qd & 0x3f;
    w.wqebbs = (w.ds + 3) / 4;
    w.fm_ce_se = ctrl.fm_ce_se;
    mlx5_wqe_eth_seg eth;
    read(16, &eth, sizeof(eth));
    w.cs_flags = eth.cs_flags;
    w.inline_hdr_sz = be16toh(eth.inline_hdr_sz);
    w.frame.assign(eth.inline_hdr_start,
                   eth.inline_hdr_start + std::min<size_t>(w.inline_hdr_sz, 18));
    size_t off = 48;
    for (uint32_t unit = 3; unit < w.ds;) {
      uint32_t bc;
      read(off, &bc, 4);
      bc = be32toh(bc);
      if (bc & MLX5_INLINE_SEG) {
        w.all_inline = true;
        const uint32_t len = bc & ~uint32_t(MLX5_INLINE_SEG);
        const size_t at_frame = w.frame.size();
        w.frame.resize(at_frame + len);
        read(off + 4, w.frame.data() + at_frame, len);
        const uint32_t units = (4 + len + 15) / 16;
        unit += units;
        off += size_t(units) * 16;
        continue;
      }
      mlx5_wqe_data_seg d;
      read(off, &d, sizeof(d));
      ++w.data_segs;
      const uint32_t len = be32toh(d.byte_count);
      const auto* addr = reinterpret_cast<const uint8_t*>(be64toh(d.addr));
      if (be32toh(d.lkey) != lkey.value_or(~0u) || addr < registered_begin ||
          addr + len > registered_begin + registered_len) {
        w.bad_address = true;
      } else {
        w.frame.insert(w.frame.end(), addr, addr + len);
      }
      ++unit;
      off += 16;
    }
    return w;
  }

  // Writes a CQE as the device does: every field, then op_own with the lap's owner bit.
  static void write_cqe(const Mlx5Rings::CompletionQueue& cq, uint32_t& pi, const mlx5_cqe64& c,
                        uint8_t opcode) {
    auto* slot = reinterpret_cast<mlx5_cqe64*>(cq.buf + size_t(pi & (cq.cqe_cnt - 1)) * 64);
    mlx5_cqe64 copy = c;
    copy.op_own = uint8_t((opcode << 4) | ((pi & cq.cqe_cnt) ? 1 : 0));
    std::memcpy(slot, &copy, 63);
    slot->op_own = copy.op_own;
    ++pi;
  }

  void complete_send(uint16_t wqe_counter) {
    mlx5_cqe64 c{};
    c.wqe_counter = htobe16(wqe_counter);
    c.sop_drop_qpn = htobe32(qpn);
    write_cqe(rings.send_cq, scq_pi, c, MLX5_CQE_REQ);
  }
  // Completes what fetch_sends returned as hardware would: one CQE per signalled WQE.
  void complete_signalled(const std::vector<FakeSentWqe>& ws) {
    for (const auto& w : ws)
      if (w.signalled()) complete_send(w.index);
  }

  static void write_err_cqe(const Mlx5Rings::CompletionQueue& cq, uint32_t& pi, uint8_t opcode,
                            uint8_t syndrome, uint8_t vendor, uint16_t wqe_counter) {
    mlx5_cqe64 c{};
    auto* e = reinterpret_cast<mlx5_err_cqe*>(&c);
    e->syndrome = syndrome;
    e->vendor_err_synd = vendor;
    e->wqe_counter = htobe16(wqe_counter);
    write_cqe(cq, pi, c, opcode);
  }
  void send_error(uint8_t syndrome, uint8_t vendor = 0x33, uint16_t wqe_counter = 0) {
    write_err_cqe(rings.send_cq, scq_pi, MLX5_CQE_REQ_ERR, syndrome, vendor, wqe_counter);
  }
  void recv_error(uint8_t syndrome, uint8_t vendor = 0x44) {
    write_err_cqe(rings.recv_cq, rcq_pi, MLX5_CQE_RESP_ERR, syndrome, vendor,
                  uint16_t(rq_consumed));
  }

  // Receive buffers posted and not consumed, by the receive doorbell record.
  uint32_t rq_available() const { return uint16_t(uint16_t(rcv_dbr()) - uint16_t(rq_consumed)); }

  // Consumes the next posted RQ WQE, writes `frame` there and a receive CQE. False (and nothing
  // written) when no buffer is posted or the frame does not fit, as a NIC drops it.
  bool deliver(const std::vector<uint8_t>& frame, uint8_t hds_ip_ext = 0,
               uint8_t l4_hdr_type_etc = 0) {
    if (rq_available() == 0) return false;
    const auto* seg = reinterpret_cast<const mlx5_wqe_data_seg*>(rq_wqe(rq_consumed));
    const uint32_t room = be32toh(seg->byte_count);
    auto* addr = reinterpret_cast<uint8_t*>(be64toh(seg->addr));
    if (frame.size() > room) return false;
    std::memcpy(addr, frame.data(), frame.size());
    mlx5_cqe64 c{};
    c.byte_cnt = htobe32(uint32_t(frame.size()));
    c.wqe_counter = htobe16(uint16_t(rq_consumed));
    c.hds_ip_ext = hds_ip_ext;
    c.l4_hdr_type_etc = l4_hdr_type_etc;
    ++rq_consumed;
    write_cqe(rings.recv_cq, rcq_pi, c, MLX5_CQE_RESP_SEND);
    return true;
  }
  // A receive CQE with whatever byte count and wqe_counter a broken device might report; it
  // consumes one RQ WQE.
  void raw_recv_cqe(uint32_t byte_cnt, uint16_t wqe_counter, uint8_t opcode = MLX5_CQE_RESP_SEND) {
    mlx5_cqe64 c{};
    c.byte_cnt = htobe32(byte_cnt);
    c.wqe_counter = htobe16(wqe_counter);
    ++rq_consumed;
    write_cqe(rings.recv_cq, rcq_pi, c, opcode);
  }

 private:
  AlignedBytes sq_, rq_, scq_, rcq_;
  volatile uint32_t dbrec[2] = {0x77777777, 0x77777777};
  volatile uint32_t scq_dbrec = 0x77777777;
  volatile uint32_t rcq_dbrec = 0x77777777;
};

}  // namespace shunt::test
