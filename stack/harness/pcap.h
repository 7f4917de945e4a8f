// Classic pcap files (LINKTYPE_ETHERNET, nanosecond timestamps, magic 0xa1b23c4d) written from
// virtual or real time. The writer is also a Device wrapper (PcapDevice), so any driver can
// record what the stack sends and receives (SHUNT_PCAP=file).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "stack/core/buffer.h"
#include "stack/core/clock.h"
#include "stack/driver/device.h"

namespace shunt {

inline constexpr uint32_t kPcapMagicNanos = 0xa1b23c4d;
inline constexpr uint32_t kLinkTypeEthernet = 1;
inline constexpr size_t kPcapFileHeaderLen = 24;
inline constexpr size_t kPcapRecordHeaderLen = 16;

class PcapWriter {
 public:
  PcapWriter() = default;
  ~PcapWriter() { close(); }
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Creates (truncates) `path` and writes the file header. False on failure; error() says why.
  bool open(const std::string& path, uint32_t snaplen = 65535);
  void close();
  bool is_open() const { return file_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  // One record at time `ts` (negative times are written as 0). Frames longer than the snap
  // length are cut, with their original length kept in the record.
  void write(Nanos ts, const uint8_t* data, size_t len);
  // The frame in `frame` and every buffer chained after it.
  void write(Nanos ts, const PacketBuf& frame);
  void flush();
  uint64_t records() const { return records_; }

 private:
  FILE* file_ = nullptr;
  std::string path_;
  std::string error_;
  uint32_t snaplen_ = 65535;
  uint64_t records_ = 0;
};

// Wraps a Device and records every frame it receives and sends, stamped by `clock`.
class PcapDevice final : public Device {
 public:
  PcapDevice(Device& inner, Clock& clock, PcapWriter& writer)
      : inner_(inner), clock_(clock), writer_(writer) {}
  const DeviceInfo& info() const override { return inner_.info(); }
  void attach(BufferPool& pool) override {
    pool_ = &pool;
    inner_.attach(pool);
  }
  size_t rx_burst(PacketPtr* out, size_t max) override {
    size_t n = inner_.rx_burst(out, max);
    if (n && writer_.is_open()) {
      Nanos t = clock_.now();
      for (size_t i = 0; i < n; ++i) writer_.write(t, *out[i]);
    }
    return n;
  }
  size_t tx_burst(PacketPtr* frames, size_t n) override {
    if (n && writer_.is_open()) {
      Nanos t = clock_.now();
      for (size_t i = 0; i < n; ++i) writer_.write(t, *frames[i]);
    }
    return inner_.tx_burst(frames, n);
  }
  int wait_fd() const override { return inner_.wait_fd(); }
  void detach() override { inner_.detach(); }
  Nanos service(Nanos now) override { return inner_.service(now); }
  Device& inner() { return inner_; }

 private:
  Device& inner_;
  Clock& clock_;
  PcapWriter& writer_;
};

}  // namespace shunt
