// What sits behind the mlx5 driver's rings. The driver (mlx5_driver.h) writes send WQEs, posts
// receive WQEs, updates the doorbell records and polls CQEs in memory laid out exactly as
// rdma-core's mlx5dv_init_obj() describes a raw-packet QP and its CQs. A binding provides that
// memory and the few operations that are not plain memory: the doorbell MMIO write, DMA
// registration of the buffer pool, and recovery of a QP in error. Two bindings exist:
//   - nicmodel/mlx5 (the simulated ConnectX): the rings are host memory the model reads and
//     writes at modelled times;
//   - verbs_binding.h (a real ConnectX): the rings come from mlx5dv_init_obj() on an
//     IBV_QPT_RAW_PACKET QP, the doorbell is the UAR's BlueFlame register.
// The driver code is the same for both.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "stack/core/clock.h"
#include "stack/driver/device.h"

namespace shunt {

// Requested queue sizes; a binding may round up (to powers of two) and reports what it made.
struct Mlx5QueueSizes {
  uint32_t sq_wqebbs = 1024;  // send queue, in 64-byte WQE basic blocks
  uint32_t rq_wqes = 512;     // receive queue, one single-segment WQE per buffer
  uint32_t send_cqes = 1024;  // at least sq_wqebbs: one CQE per WQE at most
  uint32_t recv_cqes = 512;   // at least rq_wqes
  uint32_t max_inline = 204;  // inline payload bytes the driver may place in a send WQE
};

// The queues as mlx5dv_qp / mlx5dv_cq describe them. Counters in doorbell records and CQEs are
// big-endian, as in mlx5dv.h. Ring memory belongs to the binding and lives as long as it does.
struct Mlx5Rings {
  uint32_t qpn = 0;                // the SQ number put into each WQE's control segment (qpn_ds)
  volatile uint32_t* dbrec = nullptr;  // [MLX5_RCV_DBR] receive counter, [MLX5_SND_DBR] send counter
  struct WorkQueue {
    uint8_t* buf = nullptr;
    uint32_t wqe_cnt = 0;  // a power of two
    uint32_t stride = 0;   // bytes per WQE (send: MLX5_SEND_WQE_BB; receive: 16 per segment)
  };
  WorkQueue sq, rq;
  struct CompletionQueue {
    uint8_t* buf = nullptr;
    volatile uint32_t* dbrec = nullptr;  // [MLX5_CQ_SET_CI]: the consumer index, low 24 bits
    uint32_t cqe_cnt = 0;                // a power of two
    uint32_t cqe_size = 64;              // the driver requires 64
    uint32_t cqn = 0;
  };
  CompletionQueue send_cq, recv_cq;
  // How the driver reads these rings (libmlx5's reading; see mlx5_driver.h):
  //  - a CQE is the software's when its opcode is not MLX5_CQE_INVALID and its owner bit equals
  //    !!(ci & cqe_cnt); the driver sets every op_own to MLX5_CQE_INVALID << 4 after open();
  //  - a send CQE's wqe_counter is the 16-bit WQE index of the control segment of the signalled
  //    WQE it completes (that WQE and every earlier one are done);
  //  - a receive CQE's wqe_counter is the 16-bit count of the RQ WQE it consumed (WQEs are
  //    consumed in order; the driver compares it modulo rq.wqe_cnt);
  //  - CQ doorbell record index 0 is MLX5_CQ_SET_CI (rdma-core's providers/mlx5/mlx5.h; not
  //    exported by mlx5dv.h: kMlx5CqSetCi in mlx5_wqe.h).
  uint32_t bf_size = 0;  // BlueFlame buffer size in bytes (0: no BlueFlame)
};

class Mlx5Binding {
 public:
  virtual ~Mlx5Binding() = default;

  // The port: MAC, MTU, and checksum offload (both true on ConnectX and in the model).
  virtual const DeviceInfo& info() const = 0;

  // Creates the QP and CQs for `sizes` and fills `out`. Called once. Returns an error line
  // (empty on success), e.g. "mlx5: no RDMA device found".
  virtual std::string open(const Mlx5QueueSizes& sizes, Mlx5Rings& out) = 0;

  // Registers [addr, addr+len) for DMA (the packet-buffer pool); returns its lkey, or nullopt
  // with the reason in `error`.
  virtual std::optional<uint32_t> register_memory(const void* addr, size_t len, std::string& error) = 0;

  // The send doorbell, after the driver has written the WQEs and then (behind a store barrier)
  // the send doorbell record: an 8-byte MMIO write of the first 8 bytes of the last WQE's
  // control segment (`wqe`). With BlueFlame (bf_bytes != 0, a multiple of 64 and <= bf_size),
  // the whole WQE of bf_bytes is copied to the BlueFlame register instead, so the device need
  // not fetch it. The driver asks for BlueFlame only for a WQE that does not wrap around the
  // ring end: the bf_bytes at `wqe` are contiguous.
  virtual void ring_send_doorbell(const void* wqe, size_t bf_bytes) = 0;

  // Brings a QP in error back to ready (on hardware RESET -> INIT -> RTR -> RTS). Afterwards
  // every posted send and receive WQE is gone, the device's counters restart at 0, and the
  // driver must zero its own indices and doorbell records and post receive buffers again.
  // Returns false if the device could not be recovered (the error is logged).
  // The CQs are not reset (as on hardware, where a QP reset leaves its CQs alone): their
  // indices and owner-bit phase continue; the driver discards every CQE found there once
  // recover() returns, and no CQE of the old WQEs may be written after that.
  virtual bool recover() = 0;

  // Work the device needs from the host CPU: a simulated NIC in real time runs its due events
  // here. Returns the device's next deadline (kNever: none, as on hardware).
  virtual Nanos service(Nanos /*now*/) { return kNever; }

  // A file descriptor that becomes readable when completions may be waiting, or -1.
  virtual int wait_fd() const { return -1; }
  // Device::arm_wait / ack_wait: arm the completion event (it fires once per arming), and
  // clear the fd after a wake-up.
  virtual void arm_wait() {}
  virtual void ack_wait() {}
};

}  // namespace shunt
