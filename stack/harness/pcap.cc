#include "stack/harness/pcap.h"

#include <cerrno>
#include <cstring>

namespace shunt {

namespace {
// pcap fields are in the writer's byte order; we always write little-endian so files are the
// same on every host (readers detect the order from the magic).
void put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
}  // namespace

bool PcapWriter::open(const std::string& path, uint32_t snaplen) {
  close();
  path_ = path;
  snaplen_ = snaplen ? snaplen : 65535;
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) {
    error_ = path + ": " + std::strerror(errno);
    return false;
  }
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 16);
  uint8_t h[kPcapFileHeaderLen];
  put32(h, kPcapMagicNanos);
  put16(h + 4, 2);  // version 2.4
  put16(h + 6, 4);
  put32(h + 8, 0);   // thiszone
  put32(h + 12, 0);  // sigfigs
  put32(h + 16, snaplen_);
  put32(h + 20, kLinkTypeEthernet);
  if (std::fwrite(h, 1, sizeof h, file_) != sizeof h) {
    error_ = path + ": " + std::strerror(errno);
    close();
    return false;
  }
  records_ = 0;
  return true;
}

void PcapWriter::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void PcapWriter::flush() {
  if (file_) std::fflush(file_);
}

void PcapWriter::write(Nanos ts, const uint8_t* data, size_t len) {
  if (!file_) return;
  if (ts < 0) ts = 0;
  uint32_t incl = uint32_t(len < snaplen_ ? len : snaplen_);
  uint8_t h[kPcapRecordHeaderLen];
  put32(h, uint32_t(ts / kSecond));
  put32(h + 4, uint32_t(ts % kSecond));
  put32(h + 8, incl);
  put32(h + 12, uint32_t(len));
  std::fwrite(h, 1, sizeof h, file_);
  std::fwrite(data, 1, incl, file_);
  ++records_;
}

void PcapWriter::write(Nanos ts, const PacketBuf& frame) {
  if (!file_) return;
  if (!frame.chain) {
    write(ts, frame.data(), frame.size());
    return;
  }
  if (ts < 0) ts = 0;
  size_t len = frame.chain_size();
  uint32_t incl = uint32_t(len < snaplen_ ? len : snaplen_);
  uint8_t h[kPcapRecordHeaderLen];
  put32(h, uint32_t(ts / kSecond));
  put32(h + 4, uint32_t(ts % kSecond));
  put32(h + 8, incl);
  put32(h + 12, uint32_t(len));
  std::fwrite(h, 1, sizeof h, file_);
  size_t left = incl;
  for (const PacketBuf* b = &frame; b && left; b = b->chain) {
    size_t n = b->size() < left ? b->size() : left;
    std::fwrite(b->data(), 1, n, file_);
    left -= n;
  }
  ++records_;
}

}  // namespace shunt
