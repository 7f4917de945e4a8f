// A Device for unit tests: the test pushes frames in as bytes and reads what the stack sent.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "stack/driver/device.h"

namespace shunt::test {

using Bytes = std::vector<uint8_t>;

class TestDevice final : public Device {
 public:
  explicit TestDevice(MacAddr mac = MacAddr{{0x02, 0, 0, 0, 0, 1}}, uint32_t mtu = 1500) {
    info_.name = "test0";
    info_.mac = mac;
    info_.mtu = mtu;
  }
  const DeviceInfo& info() const override { return info_; }
  DeviceInfo& mutable_info() { return info_; }

  size_t rx_burst(PacketPtr* out, size_t max) override {
    size_t n = 0;
    while (n < max && !inbox_.empty()) {
      PacketPtr p = pool_->alloc(0);
      if (!p) break;
      const Bytes& f = inbox_.front();
      if (!p->append(f)) {  // longer than a buffer: a NIC would drop it too
        inbox_.pop_front();
        ++oversize;
        continue;
      }
      inbox_.pop_front();
      out[n++] = std::move(p);
    }
    return n;
  }
  size_t tx_burst(PacketPtr* frames, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      const PacketBuf& f = *frames[i];
      sent.emplace_back(f.data(), f.data() + f.size());
    }
    return n;
  }

  // A frame for the stack's next poll().
  void inject(const Bytes& frame) { inbox_.push_back(frame); }
  // Removes and returns what the stack sent so far.
  std::vector<Bytes> take_sent() {
    std::vector<Bytes> s;
    s.swap(sent);
    return s;
  }

  std::vector<Bytes> sent;
  uint64_t oversize = 0;

 private:
  DeviceInfo info_;
  std::deque<Bytes> inbox_;
};

}  // namespace shunt::test
