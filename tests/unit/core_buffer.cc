#include <boost/test/unit_test.hpp>
#include <cstring>
#include <vector>

#include "stack/core/buffer.h"

using namespace shunt;

BOOST_AUTO_TEST_CASE(exhaustion_returns_null_and_is_counted) {
  BufferPool pool(4);
  std::vector<PacketPtr> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(pool.alloc());
    BOOST_TEST_REQUIRE(held.back() != nullptr);
  }
  BOOST_TEST(pool.available() == 0u);
  BOOST_TEST(pool.alloc() == nullptr);
  BOOST_TEST(pool.alloc() == nullptr);
  BOOST_TEST(pool.exhausted() == 2u);
  held.pop_back();
  BOOST_TEST(pool.available() == 1u);
  BOOST_TEST(pool.alloc() != nullptr);  // returned at once by the temporary
  BOOST_TEST(pool.available() == 1u);
}

BOOST_AUTO_TEST_CASE(headroom_prepend_append_pull_trim) {
  BufferPool pool(1);
  PacketPtr p = pool.alloc(16);
  BOOST_TEST(p->headroom() == 16u);
  BOOST_TEST(p->size() == 0u);
  const uint8_t body[] = {1, 2, 3, 4};
  BOOST_TEST(p->append(body));
  uint8_t* h = p->prepend(2);
  BOOST_TEST_REQUIRE(h != nullptr);
  h[0] = 9;
  h[1] = 8;
  BOOST_TEST(p->size() == 6u);
  BOOST_TEST(p->prepend(15) == nullptr);  // only 14 left in front
  BOOST_TEST(p->pull(2));
  BOOST_TEST(p->data()[0] == 1);
  BOOST_TEST(!p->pull(5));
  p->trim(2);
  BOOST_TEST(p->size() == 2u);
  p->trim(10);  // never grows
  BOOST_TEST(p->size() == 2u);
  BOOST_TEST(p->append(PacketBuf::kCapacity) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_chain_is_released_with_its_head) {
  BufferPool pool(8);
  PacketPtr head = pool.alloc();
  head->append(100);
  PacketBuf* tail = head.get();
  for (int i = 0; i < 3; ++i) {
    PacketPtr c = pool.alloc(0);
    c->append(1000);
    tail->chain = c.release();
    tail = tail->chain;
  }
  BOOST_TEST(pool.available() == 4u);
  BOOST_TEST(head->chain_size() == 3100u);
  head.reset();
  BOOST_TEST(pool.available() == 8u);
}

BOOST_AUTO_TEST_CASE(clone_copies_the_chain_or_gives_nothing_back) {
  BufferPool pool(5);
  PacketPtr head = pool.alloc(32);
  head->append(10);
  std::memset(head->data(), 7, 10);
  PacketPtr c = pool.alloc(0);
  c->append(20);
  head->chain = c.release();
  PacketPtr copy = pool.clone(*head);
  BOOST_TEST_REQUIRE(copy != nullptr);
  BOOST_TEST(copy->headroom() == 32u);
  BOOST_TEST(copy->chain_size() == 30u);
  BOOST_TEST(copy->data()[9] == 7);
  BOOST_TEST(pool.available() == 1u);
  // Not enough for a second copy of two buffers: partial copies are returned.
  PacketPtr again = pool.clone(*head);
  BOOST_TEST(again == nullptr);
  BOOST_TEST(pool.available() == 1u);
}

BOOST_AUTO_TEST_CASE(packet_queue_is_fifo_with_byte_accounting_and_returns_buffers) {
  BufferPool pool(4);
  {
    PacketQueue q;
    for (int i = 0; i < 3; ++i) {
      PacketPtr p = pool.alloc();
      p->append(size_t(10 * (i + 1)));
      p->user = uint64_t(i);
      q.push(std::move(p));
    }
    BOOST_TEST(q.count() == 3u);
    BOOST_TEST(q.bytes() == 60u);
    PacketPtr first = q.pop();
    BOOST_TEST(first->user == 0u);
    BOOST_TEST(q.bytes() == 50u);
    PacketQueue moved(std::move(q));
    BOOST_TEST(q.empty());
    BOOST_TEST(moved.count() == 2u);
    BOOST_TEST(pool.available() == 1u);
  }
  BOOST_TEST(pool.available() == 4u);
}
