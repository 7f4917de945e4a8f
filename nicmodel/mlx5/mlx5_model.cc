// The simulated ConnectX. Behaviour choices, each with the hardware reason:
//
// - Send completion: a CQE is written cqe_write after the payload has been read (dma_done), not
//   when the frame leaves the wire: ConnectX holds the frame in its own packet buffer once read,
//   so the host buffer is free (Linux mlx5e frees TX skbs on the CQE, long before a congested
//   wire drains). The NIC's buffer is finite: the read of frame k waits for frame
//   k - tx_buffer_frames to start on the wire.
// - WQE fetch: one DMA read per WQE of all its WQEBBs: wqe_fetch (a 64-byte read, request to
//   data) plus the rest of the bytes at pcie_bps. WQE fetches and payload reads each take PCIe
//   read bandwidth (separately: WQE bytes are few) and overlap their latencies (a NIC keeps
//   many reads outstanding), but finish in WQE order. With BlueFlame the WQE came with the
//   doorbell: no fetch.
// - The SQ is walked when the doorbell is seen (pcie_latency + doorbell after the MMIO write),
//   up to the producer counter then read from the doorbell record; every step's time is fixed
//   then, and the frame is assembled then (a correct driver does not touch a posted WQE or its
//   buffer before the completion, so reading early is indistinguishable from reading at
//   dma_done). CQ consumer indices are read when each CQE is written (overflow), the RQ
//   producer counter when each frame arrives.
// - Validation (PRM "send WQE" rules): qpn of another QP, an opcode other than SEND or NOP, ds of
//   0, a WQE running past the producer counter or segments not matching ds:
//   LOCAL_QP_OP_ERR; an unknown lkey or [addr, addr+len) outside the registered region:
//   LOCAL_PROT_ERR; a frame longer than mtu + 18 (header and one VLAN tag) or shorter than 14:
//   LOCAL_LENGTH_ERR. A data segment byte_count of 0 means 2^31 bytes (PRM). The error CQE
//   (mlx5_err_cqe) comes cqe_write after the fetch, and the SQ stops: WQEs before it finish,
//   nothing after it is taken until recover(). Hardware would also flush later WQEs with
//   WR_FLUSH_ERR CQEs; the model does not, because the binding contract says recover() forgets
//   posted WQEs and the driver reclaims them then. vendor_err_synd values are the model's own
//   (hardware's are undocumented): see kVendor* below.
// - Ethernet segment: the inline header starts at inline_hdr_start and runs on into the following
//   16-byte units; the segment is 16 + round_up(max(sz, 2) - 2, 16) bytes (PRM; Linux mlx5e's
//   ds count; equal to rdma-core's 32-byte struct for 3 <= sz <= 18).
// - Receive: frames longer than mtu + 18 or shorter than 14 are dropped at the MAC
//   (nic.rx.drop.oversize / runt); with the RQ in error nic.rx.drop.queue_error; with no WQE
//   posted nic.rx.drop.no_wqe (hardware's rx_out_of_buffer). A WQE with an unknown lkey or a
//   range outside its region: RESP_ERR LOCAL_PROT_ERR; a frame longer than its buffer: RESP_ERR
//   LOCAL_LENGTH_ERR (mlx5e's cqe_syndrome_needs_recover() lists both: the RQ is in error and
//   must be recovered). The frame is copied to host memory on arrival; the CQE says when it is
//   there (dma_done) and visible (cqe).
// - Receive CQE: hds_ip_ext L2_OK always; L3_OK for an IPv4 header whose checksum verifies and
//   for a well-formed IPv6 header (hardware sets it for IPv6 too: mlx5e requires L3_OK and
//   L4_OK for CHECKSUM_UNNECESSARY on both families); L4_OK when the TCP/UDP checksum verifies
//   (a UDP checksum of 0 is left to the stack). l4_hdr_type_etc: l4 type in bits 6:4 (1 TCP,
//   2 UDP; the PRM's finer TCP kinds 3/4 are not used), l3 type in bits 3:2 (1 IPv6, 2 IPv4).
// - CQ overflow: before writing a CQE the CQ's consumer index is read from its doorbell record;
//   if cqe_cnt CQEs are outstanding the CQE is dropped, nic.cq.overflow counts, and the CQ and
//   the queue completing to it go to error. Frames already scheduled still go out.
// - Completion events: per CQ, after cq_mod_count CQEs or cq_mod_period after the first
//   unreported one (cq_max_count / cq_period of the CQ context). Each event calls the
//   completion handler; the first event after arm_wait() (the CQ arm doorbell's role) also adds
//   1 to wait_fd(), an eventfd that ack_wait() drains (EFD_NONBLOCK), so a busy-polled NIC
//   makes no system call per event.
// - recover(): the SQ and RQ restart at 0 with every posted WQE and every pending event of the
//   old incarnation dropped (the event heap is cleared). The CQs continue, as the binding
//   contract says and as on hardware, where a QP reset leaves its CQs alone: producer index,
//   owner phase and CQEs stay; a CQ that overflowed takes CQEs again.
// - wqe_counter: a send CQE carries the WQE index of the completed WQE's control segment (the
//   contract; libmlx5 reads it so); an error CQE carries the device's own consumer counter, which
//   is where the bad WQE is even if its control segment is garbage. A receive CQE carries the
//   16-bit count of RQ WQEs consumed.
// - Wire: frames one behind the other at the port's rate (or link_bps), each occupying
//   max(len, 60) + 24 bytes (preamble, FCS, inter-frame gap), as the harness's SimLink counts.
#include "nicmodel/mlx5/mlx5_model.h"

#include <endian.h>
#include <infiniband/mlx5dv.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>

#include "stack/driver/checksum_offload.h"
#include "stack/net/addr.h"
#include "stack/net/checksum.h"
#include "stack/net/ethernet.h"
#include "stack/net/ip_rx.h"

namespace nicmodel {

using shunt::kNever;

namespace {

constexpr uint32_t kNoBf = UINT32_MAX;
// CQ doorbell record word 0: the consumer index (rdma-core providers/mlx5/mlx5.h MLX5_CQ_SET_CI,
// not exported by mlx5dv.h).
constexpr size_t kCqSetCi = 0;
constexpr size_t kMinFrameBytes = 14;
constexpr size_t kAlign = 4096;
constexpr uint32_t kMaxSqWqebbs = 1 << 15;
constexpr uint32_t kMaxRqWqes = 1 << 15;
constexpr uint32_t kMaxCqes = 1 << 22;
constexpr size_t kMaxRegions = 64;
constexpr uint32_t kSendCqn = 0x80, kRecvCqn = 0x81;

// vendor_err_synd of the model's error CQEs (hardware's values are not published).
constexpr uint8_t kVendorBadQpn = 0x01;
constexpr uint8_t kVendorBadOpcode = 0x02;
constexpr uint8_t kVendorBadDs = 0x03;
constexpr uint8_t kVendorPastProducer = 0x04;
constexpr uint8_t kVendorSegmentOverrun = 0x05;
constexpr uint8_t kVendorUnknownLkey = 0x10;
constexpr uint8_t kVendorOutsideRegion = 0x11;
constexpr uint8_t kVendorFrameTooLong = 0x20;
constexpr uint8_t kVendorFrameTooShort = 0x21;
constexpr uint8_t kVendorRxBufferTooSmall = 0x30;

// CQE l3/l4 header types (mlx5 PRM; Linux mlx5e get_cqe_l3_hdr_type / get_cqe_l4_hdr_type).
constexpr uint8_t kL4Tcp = 1, kL4Udp = 2;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
uint64_t load_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}

// The send WQE's eth cs_flags: fill what was asked, on frames the NIC can parse.
void fill_checksums(uint8_t* f, size_t len, uint8_t cs_flags) {
  if (!(cs_flags & (MLX5_ETH_WQE_L3_CSUM | MLX5_ETH_WQE_L4_CSUM))) return;
  shunt::fill_offloaded_checksums(std::span<uint8_t>(f, len), cs_flags & MLX5_ETH_WQE_L3_CSUM,
                                  cs_flags & MLX5_ETH_WQE_L4_CSUM);
}

// The receive CQE's hds_ip_ext and l4_hdr_type_etc for a frame.
void classify(const uint8_t* f, size_t len, uint8_t& hds_ip_ext, uint8_t& l4_l3) {
  hds_ip_ext = MLX5_CQE_L2_OK;
  l4_l3 = 0;
  const shunt::ChecksumCheck c = shunt::check_checksums(std::span<const uint8_t>(f, len));
  if (!c.ipv4 && !c.ipv6) return;
  if (c.l3_ok) hds_ip_ext |= MLX5_CQE_L3_OK;
  l4_l3 = uint8_t((c.ipv4 ? MLX5_CQE_L3_HDR_TYPE_IPV4 : MLX5_CQE_L3_HDR_TYPE_IPV6) << 2);
  if (!c.l4_proto) return;
  l4_l3 |= uint8_t((c.l4_proto == shunt::kProtoTcp ? kL4Tcp : kL4Udp) << 4);
  if (c.l4_ok) hds_ip_ext |= MLX5_CQE_L4_OK;
}

}  // namespace

NicTiming NicTiming::from(const shunt::Config& c) {
  NicTiming t;
  t.doorbell = c.nic_doorbell_ns;
  t.pcie_latency = c.nic_pcie_latency_ns;
  t.wqe_fetch = c.nic_wqe_fetch_ns;
  t.dma_read = c.nic_dma_read_ns;
  t.pipeline = c.nic_pipeline_ns;
  t.cqe_write = c.nic_cqe_write_ns;
  t.pcie_bps = uint64_t(c.nic_pcie_gbps) * 1'000'000'000ull;
  t.link_bps = uint64_t(c.nic_link_gbps) * 1'000'000'000ull;
  t.cq_mod_count = uint32_t(std::max<int64_t>(1, c.nic_cq_mod_count));
  t.cq_mod_period = c.nic_cq_mod_us * shunt::kMicro;
  t.timelines = size_t(c.nic_timelines);
  return t;
}

Nanos Mlx5Model::xfer_time(size_t bytes, uint64_t bps) {
  if (bps == 0 || bytes == 0) return 0;
  // 64-bit arithmetic while it cannot overflow (every frame and PCIe transfer), else 128-bit.
  if (bytes < (size_t(1) << 30) && bps < (uint64_t(1) << 62)) {
    const uint64_t bits64 = uint64_t(bytes) * 8 * uint64_t(shunt::kSecond);
    return Nanos((bits64 + bps - 1) / bps);
  }
  unsigned __int128 bits = (unsigned __int128)bytes * 8 * uint64_t(shunt::kSecond);
  return Nanos((bits + bps - 1) / bps);
}

Nanos Mlx5Model::wire_time(size_t len, uint64_t bps) { return xfer_time(std::max<size_t>(len, 60) + 24, bps); }

Mlx5Model::Mlx5Model(shunt::Clock& clock, WirePort& port, const NicModelOptions& options)
    : clock_(clock),
      port_(port),
      timing_(options.timing),
      max_frame_(size_t(options.mtu) + 18),
      tx_frames_(counters_.add("nic.tx.frames")),
      tx_bytes_(counters_.add("nic.tx.bytes")),
      tx_drop_port_(counters_.add("nic.tx.drop.port")),
      tx_nop_(counters_.add("nic.tx.nop")),
      rx_frames_(counters_.add("nic.rx.frames")),
      rx_bytes_(counters_.add("nic.rx.bytes")),
      rx_drop_no_wqe_(counters_.add("nic.rx.drop.no_wqe")),
      rx_drop_queue_error_(counters_.add("nic.rx.drop.queue_error")),
      rx_drop_oversize_(counters_.add("nic.rx.drop.oversize")),
      rx_drop_runt_(counters_.add("nic.rx.drop.runt")),
      err_local_length_(counters_.add("nic.err.local_length")),
      err_local_qp_op_(counters_.add("nic.err.local_qp_op")),
      err_local_prot_(counters_.add("nic.err.local_prot")),
      cq_overflow_(counters_.add("nic.cq.overflow")),
      doorbells_(counters_.add("nic.doorbells")),
      doorbells_ignored_(counters_.add("nic.doorbells_ignored")),
      wqe_fetches_(counters_.add("nic.wqe_fetches")),
      blueflame_(counters_.add("nic.blueflame")),
      blueflame_bad_(counters_.add("nic.blueflame_bad")),
      events_(counters_.add("nic.events")),
      cqes_(counters_.add("nic.cqes")),
      recoveries_(counters_.add("nic.recoveries")) {
  info_.name = options.name;
  simulator_driven_ = options.simulator_driven;
  info_.mac = options.mac;
  info_.mtu = options.mtu;
  info_.rx_checksum = true;
  info_.tx_checksum = true;
  if (timing_.tx_buffer_frames == 0) timing_.tx_buffer_frames = 1;
  if (timing_.cq_mod_count == 0) timing_.cq_mod_count = 1;
  tx_wire_starts_.assign(timing_.tx_buffer_frames, 0);
  timeline_ring_.resize(timing_.timelines);
  wqe_scratch_.resize(64 * MLX5_SEND_WQE_BB);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  port_.set_receiver(this);
}

Mlx5Model::~Mlx5Model() {
  port_.set_receiver(nullptr);
  if (event_fd_ >= 0) ::close(event_fd_);
  std::free(ring_memory_);
}

std::string Mlx5Model::open(const shunt::Mlx5QueueSizes& sizes, shunt::Mlx5Rings& out) {
  if (opened_) return "mlx5sim: the queues are already open";
  if (sizes.sq_wqebbs == 0 || sizes.sq_wqebbs > kMaxSqWqebbs) return "mlx5sim: send queue size must be 1.." + std::to_string(kMaxSqWqebbs);
  if (sizes.rq_wqes == 0 || sizes.rq_wqes > kMaxRqWqes) return "mlx5sim: receive queue size must be 1.." + std::to_string(kMaxRqWqes);
  if (sizes.send_cqes == 0 || sizes.send_cqes > kMaxCqes || sizes.recv_cqes == 0 || sizes.recv_cqes > kMaxCqes) {
    return "mlx5sim: CQ sizes must be 1.." + std::to_string(kMaxCqes);
  }
  const uint32_t sq_cnt = std::bit_ceil(sizes.sq_wqebbs), rq_cnt = std::bit_ceil(sizes.rq_wqes);
  const uint32_t scq_cnt = std::bit_ceil(sizes.send_cqes), rcq_cnt = std::bit_ceil(sizes.recv_cqes);
  // One page-aligned block: SQ, RQ, send CQ, recv CQ, then the doorbell records (64 bytes each).
  const size_t sq_off = 0;
  const size_t rq_off = round_up(sq_off + size_t(sq_cnt) * MLX5_SEND_WQE_BB, kAlign);
  const size_t scq_off = round_up(rq_off + size_t(rq_cnt) * sizeof(mlx5_wqe_data_seg), kAlign);
  const size_t rcq_off = round_up(scq_off + size_t(scq_cnt) * 64, kAlign);
  const size_t db_off = round_up(rcq_off + size_t(rcq_cnt) * 64, kAlign);
  const size_t total = round_up(db_off + 3 * 64, kAlign);
  ring_memory_ = std::aligned_alloc(kAlign, total);
  if (!ring_memory_) return "mlx5sim: out of memory for the rings";
  std::memset(ring_memory_, 0, total);
  auto* base = static_cast<uint8_t*>(ring_memory_);

  sq_ = Queue{base + sq_off, sq_cnt};
  rq_ = Queue{base + rq_off, rq_cnt};
  qp_dbrec_ = reinterpret_cast<volatile uint32_t*>(base + db_off);
  send_cq_.buf = base + scq_off;
  send_cq_.cnt = scq_cnt;
  send_cq_.cqn = kSendCqn;
  send_cq_.dbrec = reinterpret_cast<volatile uint32_t*>(base + db_off + 64);
  recv_cq_.buf = base + rcq_off;
  recv_cq_.cnt = rcq_cnt;
  recv_cq_.cqn = kRecvCqn;
  recv_cq_.dbrec = reinterpret_cast<volatile uint32_t*>(base + db_off + 128);
  init_cq(send_cq_);
  init_cq(recv_cq_);

  out.qpn = qpn_;
  out.dbrec = qp_dbrec_;
  out.sq = {sq_.buf, sq_cnt, MLX5_SEND_WQE_BB};
  out.rq = {rq_.buf, rq_cnt, uint32_t(sizeof(mlx5_wqe_data_seg))};
  out.send_cq = {send_cq_.buf, send_cq_.dbrec, scq_cnt, 64, kSendCqn};
  out.recv_cq = {recv_cq_.buf, recv_cq_.dbrec, rcq_cnt, 64, kRecvCqn};
  out.bf_size = 256;

  // Warm-up: every per-WQE structure is made now, so the data path does not allocate.
  work_.reserve(size_t(sq_cnt) + rq_cnt + timing_.tx_buffer_frames);
  work_.resize(size_t(sq_cnt) + rq_cnt);
  free_work_.reserve(work_.capacity());
  for (size_t i = work_.size(); i-- > 0;) free_work_.push_back(uint32_t(i));
  heap_.reserve(2 * (size_t(sq_cnt) + rq_cnt) + 64);
  timer_heap_.reserve(64);
  regions_.reserve(kMaxRegions);
  opened_ = true;
  return {};
}

std::optional<uint32_t> Mlx5Model::register_memory(const void* addr, size_t len, std::string& error) {
  const auto begin = reinterpret_cast<uintptr_t>(addr);
  if (!addr || len == 0) {
    error = "mlx5sim: cannot register an empty region";
    return std::nullopt;
  }
  if (begin + len < begin) {
    error = "mlx5sim: region wraps around the address space";
    return std::nullopt;
  }
  if (regions_.size() >= kMaxRegions) {
    error = "mlx5sim: too many memory regions (" + std::to_string(kMaxRegions) + ")";
    return std::nullopt;
  }
  // Never 0 and never MLX5_INVALID_LKEY (0x100): the low byte is 0x5a.
  const uint32_t lkey = (uint32_t(regions_.size() + 1) << 8) | 0x5a;
  regions_.push_back({begin, begin + len, lkey});
  return lkey;
}

const Mlx5Model::Region* Mlx5Model::find_region(uint32_t lkey, uint64_t addr, uint64_t len) const {
  for (const Region& r : regions_) {
    if (r.lkey != lkey) continue;
    if (addr < r.begin || addr > r.end || len > r.end - addr) return nullptr;
    return &r;
  }
  return nullptr;
}

uint64_t Mlx5Model::link_bps() const {
  uint64_t r = port_.rate_bps();
  return r ? r : timing_.link_bps;
}

void Mlx5Model::schedule(Nanos at, EventKind kind, uint32_t arg) {
  std::vector<Event>& h = kind == EventKind::kModTimer ? timer_heap_ : heap_;
  h.push_back({at, event_seq_++, kind, arg});
  std::push_heap(h.begin(), h.end(), Later{});
}

Nanos Mlx5Model::next_event() const {
  return std::min(heap_.empty() ? kNever : heap_.front().at, timer_heap_.empty() ? kNever : timer_heap_.front().at);
}

Nanos Mlx5Model::next_observable_event() const {
  if (completion_handler_ || heap_.empty()) return next_event();
  return heap_.front().at;
}

size_t Mlx5Model::run_due(Nanos now) {
  size_t n = 0;
  for (;;) {
    // The two heaps as one: (time, sequence) order across both.
    const bool work_due = !heap_.empty() && heap_.front().at <= now;
    const bool timer_due = !timer_heap_.empty() && timer_heap_.front().at <= now;
    if (!work_due && !timer_due) break;
    std::vector<Event>& h =
        work_due && (!timer_due || Later{}(timer_heap_.front(), heap_.front())) ? heap_ : timer_heap_;
    std::pop_heap(h.begin(), h.end(), Later{});
    Event e = h.back();
    h.pop_back();
    ++activity_;
    ++n;
    run_event(e);
  }
  return n;
}

Nanos Mlx5Model::service(Nanos now) {
  if (simulator_driven_) return kNever;
  run_due(now);
  Nanos port_next = port_.poll(now);
  run_due(now);  // arrivals delivered by the poll whose work is already due
  return std::min(next_event(), port_next);
}

void Mlx5Model::run_event(const Event& e) {
  switch (e.kind) {
    case EventKind::kDoorbell:
      process_doorbell(e.at, e.arg);
      break;
    case EventKind::kWireStart: {
      Work& w = work_[e.arg];
      if (!port_.transmit({w.frame.data(), w.frame.size()}, w.tl.wire_start, w.tl.wire_end)) ++tx_drop_port_;
      ++tx_frames_;
      tx_bytes_.inc(w.frame.size());
      finish_work(e.arg);
      break;
    }
    case EventKind::kTxCqe:
      tx_cqe_event(e.arg, e.at);
      break;
    case EventKind::kRxCqe:
      rx_cqe_event(e.arg, e.at);
      break;
    case EventKind::kModTimer: {
      Cq& cq = (e.arg & 1) ? recv_cq_ : send_cq_;
      if (cq.timer_armed && (cq.mod_epoch & 0x7fffffff) == (e.arg >> 1) && cq.unreported > 0) fire_event(cq);
      break;
    }
  }
}

uint32_t Mlx5Model::alloc_work() {
  uint32_t idx;
  if (free_work_.empty()) {  // more in flight than the warm-up made: grows once, then reused
    idx = uint32_t(work_.size());
    work_.emplace_back();
  } else {
    idx = free_work_.back();
    free_work_.pop_back();
  }
  Work& w = work_[idx];
  w.tl = PacketTimeline{};
  w.tl.seq = timeline_seq_++;
  w.pending = 0;
  w.syndrome = w.vendor = w.opcode = 0;
  w.has_frame = false;
  w.hds_ip_ext = w.l4_l3 = 0;
  w.in_use = true;
  return idx;
}

void Mlx5Model::finish_work(uint32_t idx) {
  Work& w = work_[idx];
  if (w.pending > 0 && --w.pending > 0) return;
  if (w.has_frame && !w.syndrome) emit_timeline(w.tl);
  w.in_use = false;
  free_work_.push_back(idx);
}

void Mlx5Model::emit_timeline(const PacketTimeline& tl) {
  if (!timeline_ring_.empty()) {
    timeline_ring_[(timeline_head_ + timeline_count_) % timeline_ring_.size()] = tl;
    if (timeline_count_ < timeline_ring_.size()) {
      ++timeline_count_;
    } else {
      timeline_head_ = (timeline_head_ + 1) % timeline_ring_.size();
    }
  }
  if (timeline_sink_) timeline_sink_(tl);
}

std::vector<PacketTimeline> Mlx5Model::timelines() const {
  std::vector<PacketTimeline> out;
  out.reserve(timeline_count_);
  for (size_t i = 0; i < timeline_count_; ++i) out.push_back(timeline_ring_[(timeline_head_ + i) % timeline_ring_.size()]);
  return out;
}

void Mlx5Model::ring_send_doorbell(const void* wqe, size_t bf_bytes) {
  ++doorbells_;
  if (!opened_) return;
  uint32_t slot = kNoBf;
  if (bf_bytes) {
    if (!wqe || bf_bytes % MLX5_SEND_WQE_BB || bf_bytes > 256) {
      ++blueflame_bad_;  // not a BlueFlame write the device accepts: a plain doorbell
    } else {
      // The BlueFlame register receives the WQE now; later changes to the ring do not matter.
      slot = bf_next_++ % bf_slots_.size();
      BfSlot& s = bf_slots_[slot];
      std::memcpy(s.bytes.data(), wqe, bf_bytes);
      s.len = uint16_t(bf_bytes);
      s.wqe_index = uint16_t(load_be32(s.bytes.data()) >> 8);
      s.valid = true;
    }
  }
  schedule(clock_.now() + timing_.pcie_latency + timing_.doorbell, EventKind::kDoorbell, slot);
}

void Mlx5Model::count_error(uint8_t syndrome) {
  switch (syndrome) {
    case MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR: ++err_local_length_; break;
    case MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR: ++err_local_qp_op_; break;
    default: ++err_local_prot_; break;
  }
}

void Mlx5Model::tx_error(uint32_t work, uint16_t wqe_index, uint8_t opcode, uint8_t syndrome, uint8_t vendor, Nanos at) {
  Work& w = work_[work];
  w.tl.wqe_index = wqe_index;
  w.syndrome = syndrome;
  w.vendor = vendor;
  w.opcode = opcode;
  w.pending = 1;
  count_error(syndrome);
  sq_.stopped = true;
  Nanos t = std::max(at + timing_.cqe_write, send_cq_.last_cqe);
  send_cq_.last_cqe = t;
  schedule(t, EventKind::kTxCqe, work);
}

void Mlx5Model::process_doorbell(Nanos seen, uint32_t bf_slot) {
  BfSlot* bf = bf_slot == kNoBf ? nullptr : &bf_slots_[bf_slot];
  if (sq_.stopped) {
    ++doorbells_ignored_;
    if (bf) bf->valid = false;
    return;
  }
  const Nanos rung = seen - timing_.pcie_latency - timing_.doorbell;
  const uint16_t pi = uint16_t(be32toh(qp_dbrec_[MLX5_SND_DBR]));
  const uint32_t mask = sq_.cnt - 1;
  uint8_t* s = wqe_scratch_.data();
  while (sq_.ci != pi && !sq_.stopped) {
    const uint16_t idx = sq_.ci;
    const uint16_t outstanding = uint16_t(pi - idx);
    const bool from_bf = bf && bf->valid && bf->wqe_index == idx;
    // The control segment decides how much to read.
    const uint8_t* ctrl_src = from_bf ? bf->bytes.data() : sq_.buf + size_t(idx & mask) * MLX5_SEND_WQE_BB;
    std::memcpy(s, ctrl_src, 16);
    const uint32_t opmod_idx_opcode = load_be32(s);
    const uint32_t qpn_ds = load_be32(s + 4);
    const uint8_t opcode = uint8_t(opmod_idx_opcode & 0xff);
    const uint32_t ds = qpn_ds & 0x3f;
    const uint32_t wqebbs = std::max<uint32_t>(1, (ds + 3) / 4);
    const uint8_t fm_ce_se = s[11];
    const bool signalled = fm_ce_se & MLX5_WQE_CTRL_CQ_UPDATE;

    Nanos fetched;
    const bool use_bf = from_bf && ds * 16 <= bf->len;
    if (use_bf) {
      fetched = seen;
      ++blueflame_;
      std::memcpy(s, bf->bytes.data(), ds * 16);
      bf->valid = false;
    } else {
      const size_t n = size_t(std::min<uint32_t>(wqebbs, outstanding ? outstanding : 1)) * MLX5_SEND_WQE_BB;
      Nanos start = std::max(seen, fetch_free_);
      fetch_free_ = start + xfer_time(n, timing_.pcie_bps);
      fetched = start + timing_.wqe_fetch + xfer_time(n - MLX5_SEND_WQE_BB, timing_.pcie_bps);
      wqe_fetches_.inc(n / MLX5_SEND_WQE_BB);
      for (uint32_t b = 0; b < wqebbs && b < 16; ++b) {  // the ring wraps inside a WQE
        std::memcpy(s + b * MLX5_SEND_WQE_BB, sq_.buf + size_t((idx + b) & mask) * MLX5_SEND_WQE_BB, MLX5_SEND_WQE_BB);
      }
    }
    fetched = std::max(fetched, sq_last_fetch_);
    sq_last_fetch_ = fetched;

    const uint32_t work = alloc_work();
    Work& w = work_[work];
    w.tl.tx = true;
    w.tl.wqe_index = idx;
    w.ctrl_index = uint16_t(opmod_idx_opcode >> 8);
    if ((qpn_ds >> 8) != qpn_) {
      tx_error(work, idx, opcode, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, kVendorBadQpn, fetched);
      break;
    }
    if (opcode != MLX5_OPCODE_SEND && opcode != MLX5_OPCODE_NOP) {
      tx_error(work, idx, opcode, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, kVendorBadOpcode, fetched);
      break;
    }
    if (ds == 0 || (opcode == MLX5_OPCODE_SEND && ds < 2)) {
      tx_error(work, idx, opcode, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, kVendorBadDs, fetched);
      break;
    }
    if (wqebbs > outstanding || outstanding > sq_.cnt) {
      tx_error(work, idx, opcode, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, kVendorPastProducer, fetched);
      break;
    }
    if (opcode == MLX5_OPCODE_NOP) {
      ++tx_nop_;
      sq_.ci = uint16_t(idx + wqebbs);
      if (!signalled) {
        finish_work(work);
        continue;
      }
      w.pending = 1;
      Nanos t = std::max(fetched + timing_.cqe_write, send_cq_.last_cqe);
      send_cq_.last_cqe = t;
      schedule(t, EventKind::kTxCqe, work);
      continue;
    }

    // Ethernet segment: cs_flags, then the inline header from inline_hdr_start on.
    const size_t wqe_bytes = size_t(ds) * 16;
    const uint8_t* eth = s + 16;
    const uint8_t cs_flags = eth[4];
    const size_t hdr_sz = shunt::load16(eth + 12);
    const size_t eth_len = 16 + round_up(std::max<size_t>(hdr_sz, 2) - 2, 16);
    if (16 + eth_len > wqe_bytes) {
      tx_error(work, idx, opcode, MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, kVendorBadDs, fetched);
      break;
    }
    if (w.frame.capacity() < max_frame_) w.frame.reserve(max_frame_);  // once per Work
    w.frame.clear();
    uint8_t syndrome = 0, vendor = 0;
    if (hdr_sz > max_frame_) {
      syndrome = MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, vendor = kVendorFrameTooLong;
    } else {
      w.frame.insert(w.frame.end(), eth + 14, eth + 14 + hdr_sz);
    }
    size_t gathered = 0;
    for (size_t off = 16 + eth_len; !syndrome && off < wqe_bytes;) {
      const uint32_t word = load_be32(s + off);
      if (word & MLX5_INLINE_SEG) {
        const size_t len = word & ~uint32_t(MLX5_INLINE_SEG);
        const size_t seg = round_up(4 + len, 16);
        if (off + seg > wqe_bytes) {
          syndrome = MLX5_CQE_SYNDROME_LOCAL_QP_OP_ERR, vendor = kVendorSegmentOverrun;
        } else if (w.frame.size() + len > max_frame_) {
          syndrome = MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, vendor = kVendorFrameTooLong;
        } else {
          w.frame.insert(w.frame.end(), s + off + 4, s + off + 4 + len);
        }
        off += seg;
        continue;
      }
      const uint64_t len = word ? word : (uint64_t(1) << 31);  // PRM: byte_count 0 is 2^31
      const uint32_t lkey = load_be32(s + off + 4);
      const uint64_t addr = load_be64(s + off + 8);
      bool known = false;
      for (const Region& r : regions_) known |= r.lkey == lkey;
      if (!known) {
        syndrome = MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, vendor = kVendorUnknownLkey;
      } else if (!find_region(lkey, addr, len)) {
        syndrome = MLX5_CQE_SYNDROME_LOCAL_PROT_ERR, vendor = kVendorOutsideRegion;
      } else if (w.frame.size() + len > max_frame_) {
        syndrome = MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, vendor = kVendorFrameTooLong;
      } else {
        const auto* src = reinterpret_cast<const uint8_t*>(uintptr_t(addr));
        w.frame.insert(w.frame.end(), src, src + len);
        gathered += len;
      }
      off += sizeof(mlx5_wqe_data_seg);
    }
    if (!syndrome && w.frame.size() < kMinFrameBytes) {
      syndrome = MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR, vendor = kVendorFrameTooShort;
    }
    if (syndrome) {
      tx_error(work, idx, opcode, syndrome, vendor, fetched);
      break;
    }
    fill_checksums(w.frame.data(), w.frame.size(), cs_flags);

    // Payload read: behind the PCIe read link and the NIC's TX buffer; in WQE order.
    const uint32_t ring_pos = uint32_t(tx_frames_started_ % tx_wire_starts_.size());
    Nanos ready = fetched;
    if (tx_frames_started_ >= tx_wire_starts_.size()) ready = std::max(ready, tx_wire_starts_[ring_pos]);
    Nanos dma_done = ready;
    if (gathered) {
      Nanos start = std::max(ready, pcie_read_free_);
      pcie_read_free_ = start + xfer_time(gathered, timing_.pcie_bps);
      dma_done = start + timing_.dma_read + xfer_time(gathered, timing_.pcie_bps);
    }
    dma_done = std::max(dma_done, sq_last_dma_);
    sq_last_dma_ = dma_done;
    const Nanos wire_start = std::max(dma_done + timing_.pipeline, wire_free_);
    const Nanos wire_end = wire_start + wire_time(w.frame.size(), link_bps());
    wire_free_ = wire_end;
    tx_wire_starts_[ring_pos] = wire_start;
    ++tx_frames_started_;

    w.has_frame = true;
    w.tl.bytes = uint32_t(w.frame.size());
    w.tl.doorbell = rung;
    w.tl.doorbell_seen = seen;
    w.tl.wqe_fetched = fetched;
    w.tl.dma_done = dma_done;
    w.tl.wire_start = wire_start;
    w.tl.wire_end = wire_end;
    w.pending = signalled ? 2 : 1;
    schedule(wire_start, EventKind::kWireStart, work);
    if (signalled) {
      Nanos t = std::max(dma_done + timing_.cqe_write, send_cq_.last_cqe);
      send_cq_.last_cqe = t;
      schedule(t, EventKind::kTxCqe, work);
    }
    sq_.ci = uint16_t(idx + wqebbs);
  }
  if (bf) bf->valid = false;
}

bool Mlx5Model::write_cqe(Cq& cq, Queue& q, const void* cqe64, uint8_t opcode) {
  if (cq.error) return false;
  const uint32_t ci = be32toh(cq.dbrec[kCqSetCi]) & 0xffffff;
  if (((cq.pi - ci) & 0xffffff) >= cq.cnt) {
    ++cq_overflow_;
    cq.error = true;
    q.error = true;
    q.stopped = true;
    return false;
  }
  uint8_t* dst = cq.buf + size_t(cq.pi & (cq.cnt - 1)) * 64;
  std::memcpy(dst, cqe64, 63);
  // op_own last, as the device's ordered DMA writes make it: the owner bit publishes the CQE.
  std::atomic_thread_fence(std::memory_order_release);
  *reinterpret_cast<volatile uint8_t*>(dst + 63) = uint8_t(opcode << 4 | ((cq.pi & cq.cnt) ? 1 : 0));
  cq.pi = (cq.pi + 1) & 0xffffff;
  return true;
}

void Mlx5Model::tx_cqe_event(uint32_t idx, Nanos at) {
  Work& w = work_[idx];
  bool written;
  if (w.syndrome) {
    mlx5_err_cqe e;
    std::memset(&e, 0, sizeof(e));
    e.syndrome = w.syndrome;
    e.vendor_err_synd = w.vendor;
    e.s_wqe_opcode_qpn = htobe32(uint32_t(w.opcode) << 24 | qpn_);
    e.wqe_counter = htobe16(w.tl.wqe_index);
    written = write_cqe(send_cq_, sq_, &e, MLX5_CQE_REQ_ERR);
    sq_.error = true;
  } else {
    mlx5_cqe64 c;
    std::memset(&c, 0, sizeof(c));
    c.sop_drop_qpn = htobe32(uint32_t(MLX5_OPCODE_SEND) << 24 | qpn_);
    c.wqe_counter = htobe16(w.ctrl_index);
    c.timestamp = htobe64(uint64_t(at));
    written = write_cqe(send_cq_, sq_, &c, MLX5_CQE_REQ);
  }
  if (written) {
    w.tl.cqe = at;
    completion_written(send_cq_, 0, at);
  }
  finish_work(idx);
}

void Mlx5Model::on_wire_frame(std::span<const uint8_t> frame, Nanos at) {
  if (!opened_) {
    ++rx_drop_queue_error_;
    return;
  }
  const size_t len = frame.size();
  if (len > max_frame_) {
    ++rx_drop_oversize_;
    return;
  }
  if (len < kMinFrameBytes) {
    ++rx_drop_runt_;
    return;
  }
  if (rq_.stopped || recv_cq_.error) {
    ++rx_drop_queue_error_;
    return;
  }
  const uint16_t pi = uint16_t(be32toh(qp_dbrec_[MLX5_RCV_DBR]));
  if (pi == rq_.ci) {
    ++rx_drop_no_wqe_;  // hardware's rx_out_of_buffer
    return;
  }
  const uint16_t idx = rq_.ci;
  rq_.ci = uint16_t(idx + 1);
  const uint8_t* seg = rq_.buf + size_t(idx & (rq_.cnt - 1)) * sizeof(mlx5_wqe_data_seg);
  const uint32_t bc = load_be32(seg);
  const uint64_t cap = bc ? bc : (uint64_t(1) << 31);
  const uint32_t lkey = load_be32(seg + 4);
  const uint64_t addr = load_be64(seg + 8);

  const uint32_t work = alloc_work();
  Work& w = work_[work];
  w.tl.tx = false;
  w.tl.bytes = uint32_t(len);
  w.tl.wqe_index = idx;
  w.tl.wire_end = at;
  w.pending = 1;
  const Nanos start = at + timing_.pipeline;
  Nanos cqe_at;
  if (!find_region(lkey, addr, cap)) {
    w.syndrome = MLX5_CQE_SYNDROME_LOCAL_PROT_ERR;
    w.vendor = lkey == MLX5_INVALID_LKEY || std::none_of(regions_.begin(), regions_.end(), [&](const Region& r) { return r.lkey == lkey; })
                   ? kVendorUnknownLkey
                   : kVendorOutsideRegion;
  } else if (len > cap) {
    w.syndrome = MLX5_CQE_SYNDROME_LOCAL_LENGTH_ERR;
    w.vendor = kVendorRxBufferTooSmall;
  }
  if (w.syndrome) {
    count_error(w.syndrome);
    rq_.stopped = true;
    cqe_at = start + timing_.cqe_write;
  } else {
    std::memcpy(reinterpret_cast<uint8_t*>(uintptr_t(addr)), frame.data(), len);
    classify(frame.data(), len, w.hds_ip_ext, w.l4_l3);
    w.has_frame = true;
    const Nanos wstart = std::max(start, pcie_write_free_);
    pcie_write_free_ = wstart + xfer_time(len, timing_.pcie_bps);
    Nanos dma_done = wstart + timing_.pcie_latency + xfer_time(len, timing_.pcie_bps);
    dma_done = std::max(dma_done, rq_last_dma_);
    rq_last_dma_ = dma_done;
    w.tl.dma_done = dma_done;
    cqe_at = dma_done + timing_.cqe_write;
    ++rx_frames_;
    rx_bytes_.inc(len);
  }
  cqe_at = std::max(cqe_at, recv_cq_.last_cqe);
  recv_cq_.last_cqe = cqe_at;
  schedule(cqe_at, EventKind::kRxCqe, work);
}

void Mlx5Model::rx_cqe_event(uint32_t idx, Nanos at) {
  Work& w = work_[idx];
  bool written;
  if (w.syndrome) {
    mlx5_err_cqe e;
    std::memset(&e, 0, sizeof(e));
    e.syndrome = w.syndrome;
    e.vendor_err_synd = w.vendor;
    e.s_wqe_opcode_qpn = htobe32(qpn_);
    e.wqe_counter = htobe16(w.tl.wqe_index);
    written = write_cqe(recv_cq_, rq_, &e, MLX5_CQE_RESP_ERR);
    rq_.error = true;
  } else {
    mlx5_cqe64 c;
    std::memset(&c, 0, sizeof(c));
    c.hds_ip_ext = w.hds_ip_ext;
    c.l4_hdr_type_etc = w.l4_l3;
    c.byte_cnt = htobe32(w.tl.bytes);
    c.timestamp = htobe64(uint64_t(at));
    c.sop_drop_qpn = htobe32(qpn_);
    c.wqe_counter = htobe16(w.tl.wqe_index);
    written = write_cqe(recv_cq_, rq_, &c, MLX5_CQE_RESP_SEND);
  }
  if (written) {
    w.tl.cqe = at;
    completion_written(recv_cq_, 1, at);
  }
  finish_work(idx);
}

void Mlx5Model::completion_written(Cq& cq, uint32_t cq_id, Nanos at) {
  ++cqes_;
  ++cq.unreported;
  if (cq.unreported >= timing_.cq_mod_count || timing_.cq_mod_period <= 0) {
    fire_event(cq);
    return;
  }
  if (!cq.timer_armed) {
    cq.timer_armed = true;
    schedule(at + timing_.cq_mod_period, EventKind::kModTimer, cq_id | ((cq.mod_epoch & 0x7fffffff) << 1));
  }
}

void Mlx5Model::fire_event(Cq& cq) {
  cq.unreported = 0;
  cq.timer_armed = false;
  ++cq.mod_epoch;
  ++events_;
  if (event_fd_ >= 0 && wait_armed_.load(std::memory_order_acquire) &&
      wait_armed_.exchange(false, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof(one));
  }
  if (completion_handler_) completion_handler_();
}

void Mlx5Model::ack_wait() {
  uint64_t v;
  if (event_fd_ >= 0) [[maybe_unused]] ssize_t r = ::read(event_fd_, &v, sizeof(v));
}

void Mlx5Model::init_cq(Cq& cq) {
  std::memset(cq.buf, 0, size_t(cq.cnt) * 64);
  for (uint32_t i = 0; i < cq.cnt; ++i) cq.buf[size_t(i) * 64 + 63] = uint8_t(MLX5_CQE_INVALID << 4);  // as libmlx5
  cq.dbrec[kCqSetCi] = 0;
  cq.dbrec[1] = 0;
  cq.pi = 0;
}

bool Mlx5Model::recover() {
  if (!opened_) return false;
  ++recoveries_;
  // A simulator may have left moderation timers that were due for later (next_observable_event):
  // they ran before this on time, so they run now. Nothing else can be overdue there.
  if (simulator_driven_) run_due(clock_.now() - 1);
  // Everything of the old incarnation goes: pending events, WQEs in flight, BlueFlame copies.
  heap_.clear();
  timer_heap_.clear();
  free_work_.clear();
  for (size_t i = work_.size(); i-- > 0;) {
    work_[i].in_use = false;
    free_work_.push_back(uint32_t(i));
  }
  for (BfSlot& s : bf_slots_) s.valid = false;
  sq_.ci = rq_.ci = 0;
  sq_.stopped = sq_.error = rq_.stopped = rq_.error = false;
  qp_dbrec_[MLX5_RCV_DBR] = 0;
  qp_dbrec_[MLX5_SND_DBR] = 0;
  // The CQs continue (binding contract; on hardware a QP reset leaves its CQs alone): producer
  // index, owner phase and CQEs stay; the driver discards what it finds there. A CQ that
  // overflowed is usable again once the driver has caught up.
  for (Cq* cq : {&send_cq_, &recv_cq_}) {
    cq->error = false;
    cq->last_cqe = 0;
    cq->unreported = 0;
    cq->timer_armed = false;
    ++cq->mod_epoch;
  }
  sq_last_fetch_ = sq_last_dma_ = rq_last_dma_ = 0;
  std::fill(tx_wire_starts_.begin(), tx_wire_starts_.end(), 0);
  tx_frames_started_ = 0;
  return true;
}

}  // namespace nicmodel
