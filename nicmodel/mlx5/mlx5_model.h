// The cycle-approximate simulated ConnectX: the device behind the mlx5 driver's rings
// (stack/driver/mlx5/mlx5_binding.h). It reads send WQEs, doorbell records and CQ consumer
// indices from host memory and writes frames and CQEs there, laid out as rdma-core's mlx5dv.h
// describes them, at modelled times:
//
//   TX  doorbell MMIO --pcie_latency+doorbell--> doorbell_seen --wqe_fetch (skipped with
//       BlueFlame)--> wqe_fetched --dma_read + bytes/pcie--> dma_done --pipeline--> wire_start
//       --serialization--> wire_end;  CQE (if signalled) at dma_done + cqe_write.
//   RX  last bit in --pipeline--> DMA write (pcie_latency + bytes/pcie) --> dma_done
//       --cqe_write--> CQE visible.
//
// Every step is an event in a min-heap ordered by (time, insertion sequence), so a run is
// deterministic. In virtual time the harness calls run_due() at next_event(); in real time
// service() does it. Behaviour choices and their hardware reasons are in mlx5_model.cc.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "nicmodel/port/wire_port.h"
#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/core/counters.h"
#include "stack/driver/mlx5/mlx5_binding.h"

namespace nicmodel {

// The time of every step. Defaults are those of Config (SHUNT_NIC_*); sources in docs/nicmodel.md.
struct NicTiming {
  Nanos doorbell = 100;         // decode a doorbell once the MMIO write arrived
  Nanos pcie_latency = 250;     // one-way latency of a posted write (doorbell, DMA write)
  Nanos wqe_fetch = 550;        // DMA read of one 64-byte WQEBB, request to data
  Nanos dma_read = 550;         // payload DMA read latency before bytes stream at pcie_bps
  Nanos pipeline = 100;         // per-frame processing in each direction
  Nanos cqe_write = 250;        // until a CQE is visible once its work is done
  uint64_t pcie_bps = 100'000'000'000;
  uint64_t link_bps = 25'000'000'000;  // used when the port reports no rate of its own
  uint32_t cq_mod_count = 32;          // completion event moderation: CQEs per event
  Nanos cq_mod_period = 3 * shunt::kMicro;  // ... or this long after the first unreported CQE
  size_t timelines = 4'096;                 // per-packet timelines kept
  // Frames the NIC holds between payload read and wire (its TX packet buffer): the payload read
  // of WQE k waits for frame k - tx_buffer_frames to start on the wire. Not a SHUNT_* variable.
  uint32_t tx_buffer_frames = 32;

  static NicTiming from(const shunt::Config& c);
};

// One frame's path through the NIC, for "where did the time go". Times never reached are kNever.
struct PacketTimeline {
  uint64_t seq = 0;  // frames of both directions, numbered in the order the NIC took them
  bool tx = false;
  uint32_t bytes = 0;
  uint16_t wqe_index = 0;
  // tx: doorbell (host write), doorbell_seen, wqe_fetched, dma_done, wire_start, wire_end, cqe
  //     (kNever if unsignalled or not written); rx: wire_end (last bit in), dma_done (frame in
  //     host memory), cqe (visible); the others kNever.
  Nanos doorbell = shunt::kNever, doorbell_seen = shunt::kNever, wqe_fetched = shunt::kNever,
        dma_done = shunt::kNever, wire_start = shunt::kNever, wire_end = shunt::kNever,
        cqe = shunt::kNever;
  // Compares the fields, never the padding bytes between them.
  bool operator==(const PacketTimeline&) const = default;
};

struct NicModelOptions {
  shunt::MacAddr mac;
  uint32_t mtu = 1500;
  NicTiming timing;
  std::string name = "mlx5sim";
  // A simulator runs the model's events itself, at their times (the harness calls run_due() at
  // next_event(), ns-3 schedules them): service() then does nothing, so the host's polls do not
  // report the model's deadlines as their own.
  bool simulator_driven = false;
};

class Mlx5Model final : public shunt::Mlx5Binding, public WireReceiver {
 public:
  Mlx5Model(shunt::Clock& clock, WirePort& port, const NicModelOptions& options);
  ~Mlx5Model() override;
  Mlx5Model(const Mlx5Model&) = delete;
  Mlx5Model& operator=(const Mlx5Model&) = delete;

  // Mlx5Binding
  const shunt::DeviceInfo& info() const override { return info_; }
  std::string open(const shunt::Mlx5QueueSizes& sizes, shunt::Mlx5Rings& out) override;
  std::optional<uint32_t> register_memory(const void* addr, size_t len, std::string& error) override;
  void ring_send_doorbell(const void* wqe, size_t bf_bytes) override;
  bool recover() override;
  Nanos service(Nanos now) override;
  int wait_fd() const override { return event_fd_; }
  void arm_wait() override { wait_armed_.store(true, std::memory_order_release); }
  void ack_wait() override;

  // WireReceiver
  void on_wire_frame(std::span<const uint8_t> frame, Nanos at) override;

  Nanos next_event() const;       // earliest pending event, kNever when idle
  // The earliest pending event that shows outside the model at its time: a simulator that runs
  // run_due() there and at no other time changes nothing. A completion-event moderation timer
  // while no completion handler is set only counts and writes the eventfd, which nobody reads
  // in simulated time; run_due() runs it late, in its order, before anything after it. kNever
  // when idle; the earliest timer's time when only such timers are pending.
  Nanos next_observable_event() const;
  size_t run_due(Nanos now);      // runs every event due at or before now; returns how many
  uint64_t activity() const { return activity_; }
  // Called on each completion event (EQ interrupt), moderated by cq_mod_count / cq_mod_period.
  void set_completion_handler(std::function<void()> h) { completion_handler_ = std::move(h); }
  std::vector<PacketTimeline> timelines() const;  // the most recent ones, oldest first
  void set_timeline_sink(std::function<void(const PacketTimeline&)> sink) { timeline_sink_ = std::move(sink); }
  shunt::Counters& counters() { return counters_; }
  const NicTiming& timing() const { return timing_; }
  bool sq_in_error() const { return sq_.error; }
  bool rq_in_error() const { return rq_.error; }

  // Wire occupancy of a frame of `len` bytes at `bps`, as the harness's SimLink counts it
  // (padding to 60, preamble, FCS and inter-frame gap), rounded up.
  static Nanos wire_time(size_t len, uint64_t bps);
  // Transfer time of `bytes` at `bps`, rounded up.
  static Nanos xfer_time(size_t bytes, uint64_t bps);

 private:
  enum class EventKind : uint8_t { kDoorbell, kWireStart, kTxCqe, kRxCqe, kModTimer };
  struct Event {
    Nanos at;
    uint64_t seq;
    EventKind kind;
    uint32_t arg;
  };
  struct Region {
    uintptr_t begin, end;
    uint32_t lkey;
  };
  struct Cq {
    uint8_t* buf = nullptr;
    volatile uint32_t* dbrec = nullptr;
    uint32_t cnt = 0;
    uint32_t cqn = 0;
    uint32_t pi = 0;          // CQEs written (24-bit counter as hardware keeps it)
    bool error = false;
    Nanos last_cqe = 0;       // CQEs to one CQ are written in order
    uint32_t unreported = 0;  // CQEs since the last completion event
    uint32_t mod_epoch = 0;   // invalidates a pending moderation timer
    bool timer_armed = false;
  };
  struct Queue {
    uint8_t* buf = nullptr;
    uint32_t cnt = 0;  // WQEBBs (SQ) or WQEs (RQ)
    uint16_t ci = 0;   // the device's consumer counter
    bool stopped = false;  // an error was found; nothing more is taken
    bool error = false;    // visible error state (set when the error CQE is written)
  };
  // One WQE or received frame between the event that took it and its last event.
  struct Work {
    PacketTimeline tl;
    std::vector<uint8_t> frame;  // tx: assembled frame, reused
    uint8_t pending = 0;         // events still to run
    uint16_t ctrl_index = 0;     // the WQE index its control segment carries
    uint8_t syndrome = 0;        // != 0: an error CQE
    uint8_t vendor = 0;
    uint8_t opcode = 0;
    bool has_frame = false;
    uint8_t hds_ip_ext = 0, l4_l3 = 0;
    bool in_use = false;
  };
  struct BfSlot {
    std::array<uint8_t, 256> bytes{};
    uint16_t len = 0;
    uint16_t wqe_index = 0;
    bool valid = false;
  };

  // Heap order: the earliest first; at the same time, the one scheduled first. A function
  // object, so that the heap algorithms inline it.
  struct Later {
    bool operator()(const Event& a, const Event& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  void schedule(Nanos at, EventKind kind, uint32_t arg);
  void run_event(const Event& e);
  void process_doorbell(Nanos seen, uint32_t bf_slot);
  uint32_t alloc_work();
  void finish_work(uint32_t idx);
  void emit_timeline(const PacketTimeline& tl);
  const Region* find_region(uint32_t lkey, uint64_t addr, uint64_t len) const;
  void tx_error(uint32_t work, uint16_t wqe_index, uint8_t opcode, uint8_t syndrome, uint8_t vendor, Nanos at);
  // Writes a CQE to `cq` unless it is full; false on overflow (the CQ and its queue go to error).
  bool write_cqe(Cq& cq, Queue& q, const void* cqe64, uint8_t opcode);
  void completion_written(Cq& cq, uint32_t cq_id, Nanos at);
  void tx_cqe_event(uint32_t work, Nanos at);
  void rx_cqe_event(uint32_t work, Nanos at);
  void fire_event(Cq& cq);
  void init_cq(Cq& cq);
  void count_error(uint8_t syndrome);
  uint64_t link_bps() const;

  shunt::Clock& clock_;
  WirePort& port_;
  NicTiming timing_;
  shunt::DeviceInfo info_;
  bool simulator_driven_ = false;
  shunt::Counters counters_;
  size_t max_frame_;

  bool opened_ = false;
  uint32_t qpn_ = 0x000ac5;
  void* ring_memory_ = nullptr;  // one aligned allocation for rings and doorbell records
  volatile uint32_t* qp_dbrec_ = nullptr;
  Queue sq_, rq_;
  Cq send_cq_, recv_cq_;
  std::vector<Region> regions_;

  std::vector<Event> heap_;        // every event but moderation timers, a min-heap
  std::vector<Event> timer_heap_;  // moderation timers (next_observable_event skips them)
  uint64_t event_seq_ = 0;
  uint64_t activity_ = 0;
  uint64_t timeline_seq_ = 0;

  std::vector<Work> work_;
  std::vector<uint32_t> free_work_;
  std::array<BfSlot, 16> bf_slots_{};
  uint32_t bf_next_ = 0;
  std::vector<uint8_t> wqe_scratch_;

  // Pipeline resources ("busy until"): the PCIe link in each direction, the wire, and the
  // in-order points of each queue.
  Nanos fetch_free_ = 0, pcie_read_free_ = 0, pcie_write_free_ = 0, wire_free_ = 0;
  Nanos sq_last_fetch_ = 0, sq_last_dma_ = 0, rq_last_dma_ = 0;
  std::vector<Nanos> tx_wire_starts_;  // ring of the last tx_buffer_frames wire starts
  uint64_t tx_frames_started_ = 0;     // frames scheduled on the wire (index into the ring)

  std::vector<PacketTimeline> timeline_ring_;
  size_t timeline_head_ = 0, timeline_count_ = 0;
  std::function<void(const PacketTimeline&)> timeline_sink_;
  std::function<void()> completion_handler_;
  int event_fd_ = -1;
  // Whether the next completion event writes event_fd_ (a sleeper armed it; cleared by the
  // write): a busy-polled NIC makes no system call per event.
  std::atomic<bool> wait_armed_{false};

  shunt::Counter& tx_frames_;
  shunt::Counter& tx_bytes_;
  shunt::Counter& tx_drop_port_;
  shunt::Counter& tx_nop_;
  shunt::Counter& rx_frames_;
  shunt::Counter& rx_bytes_;
  shunt::Counter& rx_drop_no_wqe_;
  shunt::Counter& rx_drop_queue_error_;
  shunt::Counter& rx_drop_oversize_;
  shunt::Counter& rx_drop_runt_;
  shunt::Counter& err_local_length_;
  shunt::Counter& err_local_qp_op_;
  shunt::Counter& err_local_prot_;
  shunt::Counter& cq_overflow_;
  shunt::Counter& doorbells_;
  shunt::Counter& doorbells_ignored_;
  shunt::Counter& wqe_fetches_;
  shunt::Counter& blueflame_;
  shunt::Counter& blueflame_bad_;
  shunt::Counter& events_;
  shunt::Counter& cqes_;

 public:
  // CQEs written so far (both CQs): a simulator polls the host only after this grows.
  uint64_t cqes_written() const { return cqes_.value; }
  shunt::Counter& recoveries_;
};

}  // namespace nicmodel
