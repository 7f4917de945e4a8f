#include "stack/core/buffer.h"

#include <cstdlib>
#include <new>

namespace shunt {

BufferPool::BufferPool(size_t count) : count_(count), available_(count) {
  if (count == 0) return;
  void* mem = std::aligned_alloc(alignof(PacketBuf), sizeof(PacketBuf) * count);
  if (!mem) throw std::bad_alloc();
  slab_ = static_cast<PacketBuf*>(mem);
  for (size_t i = count; i-- > 0;) {
    PacketBuf* b = new (&slab_[i]) PacketBuf();
    b->pool_ = this;
    b->next = free_;
    free_ = b;
  }
}

BufferPool::~BufferPool() {
  // Buffers still out belong to code that outlived its pool: a bug, but not one to crash on here.
  for (size_t i = 0; i < count_; ++i) slab_[i].~PacketBuf();
  std::free(slab_);
}

PacketPtr BufferPool::clone(const PacketBuf& src) {
  PacketPtr p = alloc(src.headroom());
  if (!p) return p;
  p->append(src.bytes());
  p->user = src.user;
  p->flags = src.flags;
  PacketBuf* tail = p.get();
  for (const PacketBuf* s = src.chain; s; s = s->chain) {
    PacketPtr c = alloc(0);
    if (!c) return PacketPtr();  // releases what was copied so far
    c->append(s->bytes());
    tail->chain = c.release();
    tail = tail->chain;
  }
  return p;
}

}  // namespace shunt
