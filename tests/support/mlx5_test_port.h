// A WirePort for tests of the simulated ConnectX: records every frame the model puts on the wire
// with its start and end times, and lets the test hand frames to the model as if they arrived.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "nicmodel/port/wire_port.h"

namespace nicmodel::test {

class RecordingPort final : public WirePort {
 public:
  struct Sent {
    std::vector<uint8_t> frame;
    Nanos start, end;
  };
  explicit RecordingPort(uint64_t rate_bps = 0) : rate_bps_(rate_bps) {}

  bool transmit(std::span<const uint8_t> frame, Nanos start, Nanos end) override {
    sent.push_back({{frame.begin(), frame.end()}, start, end});
    return accept;
  }
  void set_receiver(WireReceiver* r) override { receiver = r; }
  uint64_t rate_bps() const override { return rate_bps_; }
  // A frame whose last bit arrives at `at`.
  void deliver(std::span<const uint8_t> frame, Nanos at) {
    if (receiver) receiver->on_wire_frame(frame, at);
  }

  std::vector<Sent> sent;
  WireReceiver* receiver = nullptr;
  bool accept = true;

 private:
  uint64_t rate_bps_;
};

}  // namespace nicmodel::test
