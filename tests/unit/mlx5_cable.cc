// The shared-memory cable (nicmodel/port/shm_cable.h, docs/cable.md): create/attach, frames both
// ways, ring full, names, absent and dead peers, corrupt shared memory, stale objects, and real
// traffic between two processes and between two threads. Also built with ThreadSanitizer as
// test mlx5.cable_tsan.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nicmodel/port/shm_cable.h"
#include "stack/core/clock.h"
#include "support/child_process.h"

using nicmodel::CableOptions;
using nicmodel::ShmCable;
using shunt::Nanos;
namespace L = nicmodel::cable_layout;

namespace {

std::string unique_name(const std::string& tag) {
  return "t" + std::to_string(getpid()) + "-" + tag;
}

std::unique_ptr<ShmCable> open_cable(const std::string& name, uint32_t slots = 16,
                                     uint64_t rate = 0) {
  std::string error;
  auto c = ShmCable::open(CableOptions{name, slots, rate}, error);
  BOOST_REQUIRE_MESSAGE(c, "open " << name << ": " << error);
  BOOST_TEST(error.empty());
  return c;
}

std::string open_error(const CableOptions& o) {
  std::string error;
  auto c = ShmCable::open(o, error);
  BOOST_TEST(!c);
  return error;
}

bool object_exists(const std::string& name) {
  int fd = shm_open(ShmCable::object_name(name).c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// The test's own view of the shared object, to play the untrusted peer.
struct RawObject {
  int fd = -1;
  uint8_t* base = nullptr;
  size_t size = 0;
  explicit RawObject(const std::string& name) {
    fd = shm_open(ShmCable::object_name(name).c_str(), O_RDWR, 0);
    BOOST_REQUIRE(fd >= 0);
    struct stat st {};
    fstat(fd, &st);
    size = size_t(st.st_size);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    BOOST_REQUIRE(p != MAP_FAILED);
    base = static_cast<uint8_t*>(p);
  }
  ~RawObject() {
    munmap(base, size);
    close(fd);
  }
  template <typename T>
  T get(size_t off) const {
    T v;
    std::memcpy(&v, base + off, sizeof v);
    return v;
  }
  template <typename T>
  void put(size_t off, T v) {
    std::memcpy(base + off, &v, sizeof v);
  }
};

struct Arrival {
  std::vector<uint8_t> bytes;
  Nanos at;
};
struct Recorder final : nicmodel::WireReceiver {
  std::vector<Arrival> got;
  void on_wire_frame(std::span<const uint8_t> f, Nanos at) override {
    got.push_back({{f.begin(), f.end()}, at});
  }
};

std::vector<uint8_t> pattern(size_t len, uint8_t seed) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = uint8_t(seed + i * 7 + (i >> 8));
  return f;
}

// Waits for a forked child, at most `limit`; kills it if it overstays.
bool wait_child(shunt::test::Child& c, Nanos limit = 60 * shunt::kSecond) { return shunt::test::wait_for(c, limit); }

// Traffic with checksums: frame `seq` of direction `dir` has a size and content that the
// receiver can regenerate (a window of a fixed random block), its send time, and a checksum of
// everything before it. Word-wise and memcpy/memcmp-based so that ThreadSanitizer stays quick.
uint32_t checksum(const uint8_t* p, size_t n) {
  uint64_t sum = n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    sum = (sum ^ w) * 0x100000001b3ull;
  }
  for (; i < n; ++i) sum = (sum ^ p[i]) * 0x100000001b3ull;
  return uint32_t(sum ^ (sum >> 32));
}
const uint8_t* random_block() {
  static const std::vector<uint8_t> block = [] {
    std::vector<uint8_t> b(2 * L::kMaxFrame);
    uint32_t x = 2463534242u;
    for (auto& byte : b) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      byte = uint8_t(x);
    }
    return b;
  }();
  return block.data();
}
size_t frame_len(uint32_t dir, uint32_t seq) {
  return 60 + (size_t(seq) * 7919u + dir * 131u) % (L::kMaxFrame - 60 + 1);
}
void fill_frame(std::vector<uint8_t>& f, uint32_t dir, uint32_t seq, Nanos sent) {
  f.resize(frame_len(dir, seq));
  std::memcpy(f.data(), &dir, 4);
  std::memcpy(f.data() + 4, &seq, 4);
  std::memcpy(f.data() + 8, &sent, 8);
  std::memcpy(f.data() + 16, random_block() + (size_t(seq) * 977u + dir * 4099u) % L::kMaxFrame,
              f.size() - 20);
  uint32_t sum = checksum(f.data(), f.size() - 4);
  std::memcpy(f.data() + f.size() - 4, &sum, 4);
}

// Checks arrivals of direction `dir` in sequence; counts what is wrong.
struct Verifier final : nicmodel::WireReceiver {
  uint32_t dir;
  uint32_t next = 0;
  uint32_t bad = 0;
  Nanos last_at = 0;
  std::vector<uint8_t> want;
  std::string first_problem;
  explicit Verifier(uint32_t d) : dir(d) {}
  void problem(const std::string& what) {
    if (bad++ == 0) first_problem = what + " at frame " + std::to_string(next);
  }
  void on_wire_frame(std::span<const uint8_t> f, Nanos at) override {
    Nanos sent = 0;
    if (f.size() >= 16) std::memcpy(&sent, f.data() + 8, 8);
    fill_frame(want, dir, next, sent);
    uint32_t sum = 0;
    if (f.size() >= 4) std::memcpy(&sum, f.data() + f.size() - 4, 4);
    if (f.size() != want.size() || std::memcmp(f.data(), want.data(), want.size()) != 0)
      problem("content");
    else if (sum != checksum(f.data(), f.size() - 4))
      problem("checksum");
    if (at != sent) problem("wire_end time");
    if (at < last_at) problem("time order");
    last_at = at;
    ++next;
  }
};

// Sends `count` frames and receives `count` on `cable` until both are done or `limit` passes.
// Returns an empty string on success.
std::string exchange(ShmCable& cable, uint32_t send_dir, uint32_t count, Nanos limit) {
  shunt::MonotonicClock clock;
  const Nanos deadline = clock.now() + limit;
  while (!cable.peer_present()) {
    if (clock.now() > deadline) return "no peer within the time limit: " + cable.status();
    usleep(1000);
  }
  Verifier v(1 - send_dir);
  cable.set_receiver(&v);
  std::vector<uint8_t> frame;
  Nanos stamped = -1;  // the send time written into `frame`; -1: not built yet
  uint32_t sent = 0;
  uint64_t rounds = 0;
  while (sent < count || v.next < count) {
    const Nanos now = clock.now();
    if (now > deadline) break;
    for (int burst = 0; burst < 32 && sent < count; ++burst) {
      if (stamped < 0) fill_frame(frame, send_dir, sent, stamped = now);
      if (!cable.transmit(frame, stamped, stamped)) break;  // ring full: let the peer drain it
      ++sent;
      stamped = -1;
    }
    cable.poll(clock.now());
    if (++rounds % 1024 == 0 && v.next < count && !cable.peer_present()) {
      // The peer may have finished and left; what it sent is still in the ring.
      cable.poll(shunt::kNever - 1);
      if (v.next < count) return "peer gone: " + cable.status();
    }
  }
  cable.set_receiver(nullptr);
  if (sent < count || v.next < count)
    return "timed out: sent " + std::to_string(sent) + ", received " + std::to_string(v.next) +
           " of " + std::to_string(count);
  if (v.bad) return std::to_string(v.bad) + " bad frames, first: " + v.first_problem;
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(first_side_creates_second_attaches_third_is_refused_last_unlinks) {
  const std::string name = unique_name("create");
  {
    auto a = open_cable(name);
    BOOST_TEST(a->side() == 'a');
    BOOST_TEST(!a->peer_present());
    BOOST_TEST(a->status() == "cable " + name + ": no peer attached");
    struct stat st {};
    int fd = shm_open(("/shunt-cable-" + name).c_str(), O_RDONLY, 0);
    BOOST_REQUIRE(fd >= 0);
    fstat(fd, &st);
    close(fd);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(size_t(st.st_size) == L::total_size(16));
    {
      auto b = open_cable(name, 1024);  // the creator's geometry wins
      BOOST_TEST(b->side() == 'b');
      BOOST_TEST(b->slots() == 16u);
      BOOST_TEST(a->peer_present());
      BOOST_TEST(b->peer_present());
      BOOST_TEST(a->status() == "");
      BOOST_TEST(b->status() == "");
      std::string err = open_error(CableOptions{name, 16, 0});
      BOOST_TEST(
          err.find("both sides are in use (pids " + std::to_string(getpid())) != std::string::npos,
          err);
    }
    BOOST_TEST(!a->peer_present());
    BOOST_TEST(a->status() == "cable " + name + ": no peer attached (pid " +
                                  std::to_string(getpid()) + " detached)");
    BOOST_TEST(object_exists(name));
  }
  BOOST_TEST(!object_exists(name));
}

BOOST_AUTO_TEST_CASE(frames_cross_both_ways_in_order_with_exact_bytes_and_times) {
  const std::string name = unique_name("order");
  auto a = open_cable(name, 8, 25'000'000'000);
  auto b = open_cable(name);
  BOOST_TEST(a->rate_bps() == 25'000'000'000u);
  BOOST_TEST(b->rate_bps() == 25'000'000'000u);
  Recorder ra, rb;
  a->set_receiver(&ra);
  b->set_receiver(&rb);

  const std::vector<std::vector<uint8_t>> to_b = {pattern(60, 1), pattern(1514, 2),
                                                  pattern(L::kMaxFrame, 3), pattern(0, 4)};
  for (size_t i = 0; i < to_b.size(); ++i)
    BOOST_TEST(a->transmit(to_b[i], Nanos(100 * i), Nanos(100 * i + 50)));
  BOOST_TEST(b->transmit(pattern(64, 9), 10, 20));

  BOOST_TEST(b->poll(49) == 50);  // nothing due yet: the next is at 50
  BOOST_TEST(rb.got.empty());
  BOOST_TEST(b->poll(160) == 250);  // two delivered, the third ends at 250
  BOOST_REQUIRE(rb.got.size() == 2u);
  BOOST_TEST(b->poll(10'000) == shunt::kNever);
  BOOST_REQUIRE(rb.got.size() == to_b.size());
  for (size_t i = 0; i < to_b.size(); ++i) {
    BOOST_TEST(rb.got[i].bytes == to_b[i]);
    BOOST_TEST(rb.got[i].at == Nanos(100 * i + 50));
  }
  BOOST_TEST(a->poll(20) == shunt::kNever);
  BOOST_REQUIRE(ra.got.size() == 1u);
  BOOST_TEST(ra.got[0].bytes == pattern(64, 9));
  BOOST_TEST(ra.got[0].at == 20);

  BOOST_TEST(!a->transmit(pattern(L::kMaxFrame + 1, 0), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.too_big") == 1u);
  BOOST_TEST(a->counters().get("cable.tx_frames") == 4u);
  BOOST_TEST(b->counters().get("cable.rx_frames") == 4u);
  BOOST_TEST(b->counters().get("cable.rx_bytes") == 60u + 1514u + L::kMaxFrame);

  // Without a receiver, due frames are dropped and counted.
  b->set_receiver(nullptr);
  BOOST_TEST(a->transmit(pattern(60, 5), 0, 1));
  BOOST_TEST(b->poll(1) == shunt::kNever);
  BOOST_TEST(b->counters().get("cable.drop.no_receiver") == 1u);
}

BOOST_AUTO_TEST_CASE(full_ring_refuses_and_counts_then_wraps_around) {
  const std::string name = unique_name("full");
  auto a = open_cable(name, 4);
  auto b = open_cable(name);
  Recorder rb;
  b->set_receiver(&rb);
  uint8_t seed = 0;
  for (int round = 0; round < 10; ++round) {  // 10 rounds of 4 wrap the 4 slots many times
    for (int i = 0; i < 4; ++i) BOOST_TEST(a->transmit(pattern(100 + i, uint8_t(seed + i)), 0, 0));
    BOOST_TEST(!a->transmit(pattern(60, 0), 0, 0));
    BOOST_TEST(a->counters().get("cable.drop.ring_full") == uint64_t(round + 1));
    b->poll(0);
    BOOST_REQUIRE(rb.got.size() == size_t(4 * (round + 1)));
    for (int i = 0; i < 4; ++i)
      BOOST_TEST(rb.got[size_t(4 * round + i)].bytes == pattern(100 + i, uint8_t(seed + i)));
    seed = uint8_t(seed + 4);
  }
}

BOOST_AUTO_TEST_CASE(invalid_names_and_slot_counts_are_refused_with_a_clear_error) {
  for (const std::string& bad : std::vector<std::string>{"", std::string(65, 'x'), "a/b", "a b",
                                                         "caf\xc3\xa9", "x:y", "../etc"}) {
    std::string err = open_error(CableOptions{bad, 16, 0});
    BOOST_TEST(
        err.find("is invalid: use 1 to 64 characters of A-Z a-z 0-9 _ . -") != std::string::npos,
        err);
    BOOST_TEST(ShmCable::object_name(bad).empty());
  }
  BOOST_TEST(ShmCable::object_name("feed") == "/shunt-cable-feed");
  const std::string longest = unique_name("") + std::string(64 - unique_name("").size(), 'Z');
  BOOST_TEST(longest.size() == 64u);
  BOOST_TEST(open_cable(longest)->side() == 'a');
  for (uint32_t slots : {0u, 1u, 3u, 1000u, 32768u}) {
    std::string err = open_error(CableOptions{unique_name("slots"), slots, 0});
    BOOST_TEST(err.find("slots must be a power of two from 2 to 16384") != std::string::npos, err);
  }
  auto a = open_cable(unique_name("rate"), 4, 10'000'000'000);
  std::string err = open_error(CableOptions{unique_name("rate"), 4, 25'000'000'000});
  BOOST_TEST(err.find("made with 10000000000 bit/s") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(transmit_without_a_peer_is_refused_and_counted) {
  const std::string name = unique_name("alone");
  auto a = open_cable(name);
  BOOST_TEST(!a->transmit(pattern(60, 1), 0, 0));
  BOOST_TEST(!a->transmit(pattern(60, 1), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.no_peer") == 2u);
  BOOST_TEST(a->counters().get("cable.tx_frames") == 0u);
  BOOST_TEST(a->poll(1000) == shunt::kNever);
  BOOST_TEST(a->status() == "cable " + name + ": no peer attached");
  auto b = open_cable(name);
  BOOST_TEST(a->transmit(pattern(60, 1), 0, 0));  // a peer that attaches is seen at once
}

BOOST_AUTO_TEST_CASE(corrupt_header_is_a_clear_error_on_attach) {
  const std::string name = unique_name("hdr");
  auto a = open_cable(name, 8);
  RawObject raw(name);
  struct Case {
    size_t off;
    uint32_t value;
    const char* says;
  };
  for (const Case& c :
       {Case{L::kOffVersion, 99, "layout version 99"}, Case{L::kOffSlots, 3, "slot count 3"},
        Case{L::kOffSlots, 1u << 20, "slot count"}, Case{L::kOffSlotSize, 64, "bad header"},
        Case{L::kOffMaxFrame, 100000, "bad header"}, Case{L::kOffMagic, 0x12345678, "bad magic"}}) {
    const uint32_t saved = raw.get<uint32_t>(c.off);
    raw.put<uint32_t>(c.off, c.value);
    std::string err = open_error(CableOptions{name, 8, 0});
    BOOST_TEST(err.find(c.says) != std::string::npos, err);
    raw.put<uint32_t>(c.off, saved);
  }
  raw.put<uint64_t>(L::kOffTotalSize, 1ull << 40);
  BOOST_TEST(open_error(CableOptions{name, 8, 0}).find("bad header (size") != std::string::npos);
  raw.put<uint64_t>(L::kOffTotalSize, L::total_size(8));
  // A side already attached keeps its own copy of the geometry; status() notices the damage.
  raw.put<uint64_t>(L::kOffMagic, 0);
  BOOST_TEST(a->status() == "cable " + name + ": shared header corrupted (bad magic)");
  raw.put<uint64_t>(L::kOffMagic, L::kMagic);
  auto b = open_cable(name);
  BOOST_TEST(b->side() == 'b');
  raw.put<uint32_t>(L::side_record(1) + L::kSideState, 77);
  BOOST_TEST(a->status() == "cable " + name + ": peer record corrupted (state 77)");
  BOOST_TEST(!a->transmit(pattern(60, 0), 0, 0));  // not "attached": no peer
  raw.put<uint32_t>(L::side_record(1) + L::kSideState, L::kStateAttached);
}

BOOST_AUTO_TEST_CASE(corrupt_indices_and_lengths_are_counted_drops_not_crashes) {
  const std::string name = unique_name("idx");
  auto a = open_cable(name, 4);
  auto b = open_cable(name);
  Recorder rb;
  b->set_receiver(&rb);
  RawObject raw(name);

  // A head far beyond the tail: nothing is delivered, counted once however often we poll.
  raw.put<uint64_t>(L::ring_head(0), 1ull << 40);
  BOOST_TEST(b->poll(1000) == shunt::kNever);
  BOOST_TEST(b->poll(1000) == shunt::kNever);
  BOOST_TEST(b->counters().get("cable.drop.corrupt") == 1u);
  BOOST_TEST(rb.got.empty());
  // A head behind the tail is as bad.
  raw.put<uint64_t>(L::ring_head(0), ~0ull);
  b->poll(1000);
  BOOST_TEST(b->counters().get("cable.drop.corrupt") == 2u);
  // The producer's next publication repairs it.
  BOOST_TEST(a->transmit(pattern(60, 1), 0, 0));
  b->poll(1000);
  BOOST_REQUIRE(rb.got.size() == 1u);
  BOOST_TEST(rb.got[0].bytes == pattern(60, 1));

  // A slot length beyond the maximum frame: that slot is dropped and counted, the next is fine.
  BOOST_TEST(a->transmit(pattern(60, 2), 0, 0));
  BOOST_TEST(a->transmit(pattern(61, 3), 0, 0));
  const size_t slot1 = L::ring_slots(0, 4) + 1 * L::kSlotSize;  // frame #1 sits in slot 1
  raw.put<uint32_t>(slot1 + L::kSlotLength, 0xffffffffu);
  b->poll(1000);
  BOOST_TEST(b->counters().get("cable.drop.corrupt") == 3u);
  BOOST_REQUIRE(rb.got.size() == 2u);
  BOOST_TEST(rb.got[1].bytes == pattern(61, 3));

  // A consumer tail beyond our head, or moving backwards, is refused when the ring looks full.
  for (int i = 0; i < 4; ++i) BOOST_TEST(a->transmit(pattern(60, 4), 0, 0));
  const uint64_t tail = raw.get<uint64_t>(L::ring_tail(0));
  raw.put<uint64_t>(L::ring_tail(0), tail + 1000);
  BOOST_TEST(!a->transmit(pattern(60, 5), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.corrupt") == 1u);
  raw.put<uint64_t>(L::ring_tail(0), tail - 2);
  BOOST_TEST(!a->transmit(pattern(60, 5), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.corrupt") == 2u);
  raw.put<uint64_t>(L::ring_tail(0), tail);
  BOOST_TEST(!a->transmit(pattern(60, 5), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.ring_full") == 1u);
  b->poll(1000);
  BOOST_TEST(rb.got.size() == 6u);
  BOOST_TEST(a->transmit(pattern(60, 6), 0, 0));
}

BOOST_AUTO_TEST_CASE(stale_object_whose_sides_are_dead_is_reclaimed) {
  // A process that opened a cable and died without closing it leaves the object behind.
  const std::string name = unique_name("stale");
  {
    shunt::test::Child child([&] {
      std::string error;
      auto c = ShmCable::open(CableOptions{name, 8, 0}, error);
      _exit(c && c->side() == 'a' ? 0 : 1);  // no destructor: the object stays
      return 1;
    });
    BOOST_REQUIRE(wait_child(child));
    BOOST_REQUIRE(child.result().ok());
  }
  BOOST_REQUIRE(object_exists(name));
  {
    auto a = open_cable(name, 4);
    BOOST_TEST(a->side() == 'a');  // created afresh, with our geometry
    BOOST_TEST(a->slots() == 4u);
    BOOST_TEST(a->status() == "cable " + name + ": no peer attached");
  }
  BOOST_TEST(!object_exists(name));

  // Garbage under the name, held by nobody, is reclaimed too.
  const std::string junk = unique_name("junk");
  int fd = shm_open(ShmCable::object_name(junk).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(write(fd, "not a cable at all", 18) == 18);
  close(fd);
  BOOST_TEST(open_cable(junk)->side() == 'a');
  BOOST_TEST(!object_exists(junk));

  // An object others could read is refused, not reused.
  const std::string open_to_all = unique_name("mode");
  fd = shm_open(ShmCable::object_name(open_to_all).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  fchmod(fd, 0644);
  close(fd);
  std::string err = open_error(CableOptions{open_to_all, 8, 0});
  BOOST_TEST(err.find("has mode 0644, not 0600") != std::string::npos, err);
  shm_unlink(ShmCable::object_name(open_to_all).c_str());
}

BOOST_AUTO_TEST_CASE(peer_death_is_detected_and_a_new_process_may_take_its_side) {
  const std::string name = unique_name("death");
  auto a = open_cable(name, 8);
  Recorder ra;
  a->set_receiver(&ra);
  pid_t child_pid = 0;
  {
    shunt::test::Child child([&] {
      std::string error;
      auto b = ShmCable::open(CableOptions{name, 8, 0}, error);
      if (!b || b->side() != 'b') _exit(2);
      if (!b->transmit(pattern(80, 7), 5, 6)) _exit(3);
      _exit(0);  // dies holding its side: no destructor runs
      return 1;
    });
    BOOST_REQUIRE(wait_child(child));
    BOOST_REQUIRE_MESSAGE(child.result().ok(), "child: " << child.result().output);
  }
  // The child's pid is what its side record says.
  {
    RawObject raw(name);
    child_pid = pid_t(raw.get<uint32_t>(L::side_record(1) + L::kSidePid));
  }
  BOOST_TEST(child_pid != getpid());
  BOOST_TEST(!a->peer_present());
  BOOST_TEST(a->status() ==
             "cable " + name + ": peer (pid " + std::to_string(child_pid) + ") exited");
  BOOST_TEST(!a->transmit(pattern(60, 1), 0, 0));
  BOOST_TEST(a->counters().get("cable.drop.no_peer") == 1u);
  // What it sent before dying is still delivered.
  a->poll(10);
  BOOST_REQUIRE(ra.got.size() == 1u);
  BOOST_TEST(ra.got[0].bytes == pattern(80, 7));

  // A new process takes the dead side over.
  auto b = open_cable(name);
  BOOST_TEST(b->side() == 'b');
  BOOST_TEST(a->peer_present());
  BOOST_TEST(a->status() == "");
  BOOST_TEST(a->transmit(pattern(60, 2), 0, 0));
  Recorder rb;
  b->set_receiver(&rb);
  b->poll(0);
  BOOST_REQUIRE(rb.got.size() == 1u);
  BOOST_TEST(rb.got[0].bytes == pattern(60, 2));

  // The creator dies and a newcomer takes side 'a'.
  a.reset();
  BOOST_TEST(b->status() == "cable " + name + ": no peer attached (pid " +
                                std::to_string(getpid()) + " detached)");
  auto a2 = open_cable(name);
  BOOST_TEST(a2->side() == 'a');
  BOOST_TEST(b->peer_present());
}

BOOST_AUTO_TEST_CASE(two_processes_exchange_thousands_of_checksummed_frames) {
  const std::string name = unique_name("procs");
  constexpr uint32_t kFrames = 20000;
  auto a = open_cable(name, 64);
  shunt::test::Child child(
      [&] {
        std::string error;
        auto b = ShmCable::open(CableOptions{name, 64, 0}, error);
        if (!b) {
          std::printf("child: %s\n", error.c_str());
          return 2;
        }
        std::string why = exchange(*b, 1, kFrames, 90 * shunt::kSecond);
        if (!why.empty()) std::printf("child: %s\n", why.c_str());
        return why.empty() ? 0 : 1;
      },
      120);
  BOOST_REQUIRE(child.started());
  std::string why = exchange(*a, 0, kFrames, 90 * shunt::kSecond);
  BOOST_TEST(why.empty(), why);
  BOOST_REQUIRE(wait_child(child, 30 * shunt::kSecond));
  BOOST_TEST(child.result().ok(), "child: " << child.result().output);
  BOOST_TEST(a->counters().get("cable.tx_frames") == kFrames);
  BOOST_TEST(a->counters().get("cable.rx_frames") == kFrames);
  BOOST_TEST(a->counters().get("cable.drop.corrupt") == 0u);
}

// Both sides in one process, one thread each: the ring's synchronization as ThreadSanitizer sees
// it (test mlx5.cable_tsan).
BOOST_AUTO_TEST_CASE(two_threads_exchange_frames_over_one_cable) {
  const std::string name = unique_name("threads");
  constexpr uint32_t kFrames = 20000;
  auto a = open_cable(name, 16);
  auto b = open_cable(name);
  std::string why_b;
  std::thread tb([&] { why_b = exchange(*b, 1, kFrames, 90 * shunt::kSecond); });
  std::string why_a = exchange(*a, 0, kFrames, 90 * shunt::kSecond);
  tb.join();
  BOOST_TEST(why_a.empty(), why_a);
  BOOST_TEST(why_b.empty(), why_b);
  BOOST_TEST(a->counters().get("cable.rx_frames") == kFrames);
  BOOST_TEST(b->counters().get("cable.rx_frames") == kFrames);
  BOOST_TEST(a->counters().get("cable.drop.ring_full") + b->counters().get("cable.drop.ring_full") >
             0u);
}
