#include "nicmodel/port/harness_port.h"

namespace nicmodel {

HarnessPort::HarnessPort(shunt::SimPort& port, size_t buffers) : port_(port), pool_(buffers) {
  port_.attach(pool_);
  // The model verifies arriving frames' checksums for its CQE; the link need not do it too.
  port_.set_checksum_offload(false);
}

HarnessPort::~HarnessPort() { port_.clear_rx(); }

bool HarnessPort::transmit(std::span<const uint8_t> frame, Nanos, Nanos) {
  // The link serializes from now (the model's wire start) at its own rate, which is the rate
  // the model used (rate_bps()), so the frame's last bit leaves at the model's wire end.
  if (frame.size() > shunt::PacketBuf::kCapacity) return false;
  shunt::PacketPtr p = pool_.alloc(0);
  if (!p) return false;
  p->append(frame);
  shunt::PacketPtr burst[1] = {std::move(p)};
  return port_.tx_burst(burst, 1) == 1;
}

uint64_t HarnessPort::rate_bps() const { return port_.link_rate_bps(); }

size_t HarnessPort::deliver(Nanos now) {
  size_t n = 0;
  shunt::PacketPtr frames[32];
  while (size_t got = port_.rx_burst(frames, 32)) {
    for (size_t i = 0; i < got; ++i) {
      if (receiver_) receiver_->on_wire_frame(frames[i]->bytes(), now);
      frames[i].reset();
    }
    n += got;
  }
  return n;
}

}  // namespace nicmodel
