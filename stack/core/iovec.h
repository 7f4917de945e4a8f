// Copying between packet bytes and an application's scatter/gather list (struct iovec), shared
// by the UDP and TCP receive and send paths.
#pragma once
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "stack/core/buffer.h"

namespace shunt {

// The bytes of `p` and every buffer chained after it as a gather list of at most `max` entries
// (for writev/sendmsg). Returns the number of entries, or 0 when the chain has more buffers than
// that (longer than any frame could be).
inline size_t chain_iov(PacketBuf& p, iovec* iov, size_t max) {
  size_t n = 0;
  for (PacketBuf* b = &p; b; b = b->chain) {
    if (n == max) return 0;
    iov[n++] = iovec{b->data(), b->size()};
  }
  return n;
}

// Total bytes of a gather list.
inline size_t iov_total(const iovec* iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Reads a gather list in order.
class IovReader {
 public:
  IovReader(const iovec* iov, size_t n) : iov_(iov), n_(n) {}
  void copy(uint8_t* dst, size_t len) {
    while (len) {
      while (i_ < n_ && off_ == iov_[i_].iov_len) {
        ++i_;
        off_ = 0;
      }
      if (i_ == n_) return;
      size_t k = std::min(len, iov_[i_].iov_len - off_);
      std::memcpy(dst, static_cast<const uint8_t*>(iov_[i_].iov_base) + off_, k);
      dst += k;
      len -= k;
      off_ += k;
    }
  }

 private:
  const iovec* iov_;
  size_t n_;
  size_t i_ = 0;
  size_t off_ = 0;
};

// Fills a scatter list in order.
class IovWriter {
 public:
  IovWriter(const iovec* iov, size_t n) : iov_(iov), n_(n) {}
  // Copies up to n bytes from src; returns how many fitted.
  size_t write(const uint8_t* src, size_t n) {
    size_t done = 0;
    while (done < n && i_ < n_) {
      const size_t room = iov_[i_].iov_len - off_;
      if (room == 0) {
        ++i_;
        off_ = 0;
        continue;
      }
      const size_t k = std::min(n - done, room);
      std::memcpy(static_cast<uint8_t*>(iov_[i_].iov_base) + off_, src + done, k);
      done += k;
      off_ += k;
    }
    return done;
  }

 private:
  const iovec* iov_;
  size_t n_;
  size_t i_ = 0;
  size_t off_ = 0;
};

}  // namespace shunt
