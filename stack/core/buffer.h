// Packet buffers from a fixed pool: the hot path never allocates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace shunt {

class BufferPool;

// One frame. Data lives at storage()[head_, head_ + len_); headroom lets each layer prepend
// its header in place on transmit, and pull() strips headers in place on receive.
class PacketBuf {
 public:
  static constexpr size_t kCapacity = 2048;
  static constexpr size_t kDefaultHeadroom = 128;

  uint8_t* data() { return storage_ + head_; }
  const uint8_t* data() const { return storage_ + head_; }
  size_t size() const { return len_; }
  size_t headroom() const { return head_; }
  size_t tailroom() const { return kCapacity - head_ - len_; }
  std::span<uint8_t> bytes() { return {data(), len_}; }
  std::span<const uint8_t> bytes() const { return {data(), len_}; }

  // Sets an empty buffer with `headroom` bytes reserved in front.
  void reset(size_t headroom = kDefaultHeadroom) {
    head_ = uint16_t(headroom);
    len_ = 0;
  }
  // Grows the front by n bytes and returns the new front; nullptr if there is no room.
  uint8_t* prepend(size_t n) {
    if (n > head_) return nullptr;
    head_ = uint16_t(head_ - n);
    len_ = uint16_t(len_ + n);
    return data();
  }
  // Grows the back by n bytes and returns where they start; nullptr if there is no room.
  uint8_t* append(size_t n) {
    if (n > tailroom()) return nullptr;
    uint8_t* p = data() + len_;
    len_ = uint16_t(len_ + n);
    return p;
  }
  bool append(std::span<const uint8_t> src) {
    uint8_t* p = append(src.size());
    if (!p) return false;
    if (!src.empty()) std::memcpy(p, src.data(), src.size());
    return true;
  }
  // Drops n bytes from the front (a parsed header); false if fewer are there.
  bool pull(size_t n) {
    if (n > len_) return false;
    head_ = uint16_t(head_ + n);
    len_ = uint16_t(len_ - n);
    return true;
  }
  // Keeps only the first n bytes (strips link-layer padding).
  void trim(size_t n) {
    if (n < len_) len_ = uint16_t(n);
  }
  BufferPool* pool() const { return pool_; }

  // Free for the owner of the buffer to use while it holds it (queue links, metadata).
  PacketBuf* next = nullptr;
  uint64_t user = 0;
  // Receive flags set by the driver (kRx*), and tx flags for the driver.
  uint32_t flags = 0;
  static constexpr uint32_t kRxL3ChecksumOk = 1;  // the NIC verified the IPv4 header checksum
  static constexpr uint32_t kRxL4ChecksumOk = 2;  // the NIC verified the TCP/UDP checksum
  // Transmit checksum offload, only on devices whose DeviceInfo says tx_checksum: the NIC fills
  // in the IPv4 header checksum / the TCP or UDP checksum of an unfragmented packet.
  static constexpr uint32_t kTxIpv4Checksum = 4;
  static constexpr uint32_t kTxL4Checksum = 8;
  static constexpr uint32_t kTxChecksumMask = kTxIpv4Checksum | kTxL4Checksum;
  // A datagram larger than one buffer (a reassembled one, or one to fragment) continues in
  // `chain`; the chain belongs to this buffer and is released with it.
  PacketBuf* chain = nullptr;
  // Bytes in this buffer and every buffer chained after it.
  size_t chain_size() const {
    size_t n = 0;
    for (const PacketBuf* b = this; b; b = b->chain) n += b->len_;
    return n;
  }

 private:
  friend class BufferPool;
  BufferPool* pool_ = nullptr;
  uint16_t head_ = 0;
  uint16_t len_ = 0;
  alignas(64) uint8_t storage_[kCapacity];
};

struct PacketReturn {
  void operator()(PacketBuf* b) const;
};
// Owning handle: destroying it returns the buffer to its pool.
using PacketPtr = std::unique_ptr<PacketBuf, PacketReturn>;

// A fixed number of buffers allocated once; alloc() is a pop from a free list.
class BufferPool {
 public:
  explicit BufferPool(size_t count);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An empty buffer with default headroom, or null when the pool is exhausted.
  PacketPtr alloc(size_t headroom = PacketBuf::kDefaultHeadroom) {
    PacketBuf* b = free_;
    if (!b) {
      ++exhausted_;
      return PacketPtr();
    }
    free_ = b->next;
    b->next = nullptr;
    b->chain = nullptr;
    b->user = 0;
    b->flags = 0;
    b->reset(headroom);
    --available_;
    return PacketPtr(b);
  }
  // A copy of `src` (same headroom and bytes), or null when exhausted.
  PacketPtr clone(const PacketBuf& src);
  // Returns `b` and its chain.
  void release(PacketBuf* b) {
    while (b) {
      PacketBuf* rest = b->chain;
      b->chain = nullptr;
      b->next = free_;
      free_ = b;
      ++available_;
      b = rest;
    }
  }
  size_t capacity() const { return count_; }
  size_t available() const { return available_; }
  // The one slab all buffers live in, for a NIC to register as DMA memory.
  const void* memory() const { return slab_; }
  size_t memory_size() const { return count_ * sizeof(PacketBuf); }
  uint64_t exhausted() const { return exhausted_; }

 private:
  size_t count_;
  size_t available_;
  uint64_t exhausted_ = 0;
  PacketBuf* slab_ = nullptr;
  PacketBuf* free_ = nullptr;
};

inline void PacketReturn::operator()(PacketBuf* b) const { b->pool()->release(b); }

// A FIFO of buffers linked through PacketBuf::next, with byte accounting.
class PacketQueue {
 public:
  PacketQueue() = default;
  PacketQueue(PacketQueue&& o) noexcept { *this = std::move(o); }
  PacketQueue& operator=(PacketQueue&& o) noexcept {
    clear();
    head_ = o.head_;
    tail_ = o.tail_;
    count_ = o.count_;
    bytes_ = o.bytes_;
    o.head_ = o.tail_ = nullptr;
    o.count_ = o.bytes_ = 0;
    return *this;
  }
  ~PacketQueue() { clear(); }
  void push(PacketPtr p) {
    PacketBuf* b = p.release();
    b->next = nullptr;
    if (tail_) {
      tail_->next = b;
    } else {
      head_ = b;
    }
    tail_ = b;
    ++count_;
    bytes_ += b->size();
  }
  PacketPtr pop() {
    PacketBuf* b = head_;
    if (!b) return PacketPtr();
    head_ = b->next;
    if (!head_) tail_ = nullptr;
    b->next = nullptr;
    --count_;
    bytes_ -= b->size();
    return PacketPtr(b);
  }
  PacketBuf* front() const { return head_; }
  bool empty() const { return head_ == nullptr; }
  size_t count() const { return count_; }
  size_t bytes() const { return bytes_; }
  void clear() {
    while (head_) pop();
  }

 private:
  PacketBuf* head_ = nullptr;
  PacketBuf* tail_ = nullptr;
  size_t count_ = 0;
  size_t bytes_ = 0;
};

}  // namespace shunt
