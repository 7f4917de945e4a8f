// The `shunt stat` shared memory (stack/preload/stats_shm.h): what a publisher writes from a
// stack's sockets and counters is what the reader gives back; the object's name, mode and
// lifetime; bounded tables; hostile layouts are rejected, never crashed on; a reader never sees
// a torn snapshot; stale objects of dead processes are cleaned up.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <thread>

#include "stack/core/random.h"
#include "stack/preload/stats_shm.h"
#include "unit/tcp_socket_support.h"

using namespace shunt;
using namespace shunt::tcptest;

namespace {

// Fake fds: fd = handle + kFdBase.
constexpr int kFdBase = 10;

std::function<int(int)> fds_of(const SocketApi& api) {
  return [&api](int fd) {
    const int h = fd - kFdBase;
    return h >= 0 && api.is_socket(h) ? h : -1;
  };
}

// The whole object as a reader's pread sees it.
std::vector<uint8_t> bytes_of(const stats::StatsPublisher& p) {
  const int fd = ::shm_open(p.name().c_str(), O_RDONLY | O_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  struct stat st;
  BOOST_TEST_REQUIRE(::fstat(fd, &st) == 0);
  std::vector<uint8_t> b(size_t(st.st_size));
  BOOST_TEST_REQUIRE(::pread(fd, b.data(), b.size(), 0) == ssize_t(b.size()));
  ::close(fd);
  return b;
}

stats::Snapshot read_back(const stats::StatsPublisher& p) {
  const int fd = ::shm_open(p.name().c_str(), O_RDONLY | O_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  stats::Snapshot s;
  std::string err;
  const bool ok = stats::read(fd, ::getpid(), s, err);
  ::close(fd);
  BOOST_TEST_REQUIRE(ok, err);
  return s;
}

const stats::SocketEntry* row_of(const stats::Snapshot& s, int fd) {
  for (const auto& e : s.sockets) {
    if (e.fd == fd) return &e;
  }
  return nullptr;
}

std::unique_ptr<stats::StatsPublisher> open_publisher(const char* program = "stattest") {
  std::string err;
  auto p = stats::StatsPublisher::open(program, err);
  BOOST_TEST_REQUIRE(p != nullptr, err);
  return p;
}

std::string text(const stats::SocketEntry& e) {
  return std::string(stats::state_name(e.proto, e.state)) + " " +
         stats::address(e.family, e.local_addr, e.local_port, true) + " " +
         stats::address(e.family, e.remote_addr, e.remote_port, e.has_peer);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(preload_stats)

BOOST_AUTO_TEST_CASE(published_sockets_read_back_as_netstat_rows) {
  Net n;
  SocketApi& api = n.api(1);
  const Net::Conn c = n.connect_pair(0, 1, false, 5000);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, std::string(1000, 'x')) == 1000);
  n.run_until([&] { return n.fionread(1, c.server) == 1000; });
  const int l6 = n.listener(1, true, 6000);
  const int u = api.socket(AF_INET, SOCK_DGRAM, 0);
  Addr ua = v4(Harness::ipv4_of(1), 7000);
  BOOST_TEST_REQUIRE(api.bind(u, ua.sa(), ua.len) == 0);
  const int u6 = api.socket(AF_INET6, SOCK_DGRAM, 0);
  Addr peer = v6(Harness::ipv6_of(0), 7001);
  BOOST_TEST_REQUIRE(api.connect(u6, peer.sa(), peer.len) == 0);

  auto p = open_publisher();
  p->publish(api, n.h.stack(1).counters(), fds_of(api), 100);
  const stats::Snapshot s = read_back(*p);
  BOOST_TEST(s.pid == ::getpid());
  BOOST_TEST(s.program == "stattest");
  BOOST_TEST(s.sockets.size() == 5u);
  BOOST_TEST(s.sockets_dropped == 0u);

  const auto* lis = row_of(s, kFdBase + c.listener);
  BOOST_TEST_REQUIRE(lis);
  BOOST_TEST(lis->proto == stats::kTcp);
  BOOST_TEST(lis->family == 4);
  BOOST_TEST(text(*lis) == "LISTEN 0.0.0.0:5000 0.0.0.0:*");

  const auto* srv = row_of(s, kFdBase + c.server);
  BOOST_TEST_REQUIRE(srv);
  const std::string peer_port = std::to_string(srv->remote_port);
  BOOST_TEST(text(*srv) == "ESTABLISHED 10.0.0.2:5000 10.0.0.1:" + peer_port);
  BOOST_TEST(srv->recv_q == 1000u);
  BOOST_TEST(srv->send_q == 0u);

  const auto* six = row_of(s, kFdBase + l6);
  BOOST_TEST_REQUIRE(six);
  BOOST_TEST(six->family == 6);
  BOOST_TEST(text(*six) == "LISTEN :::6000 :::*");

  const auto* ur = row_of(s, kFdBase + u);
  BOOST_TEST_REQUIRE(ur);
  BOOST_TEST(ur->proto == stats::kUdp);
  BOOST_TEST(text(*ur) == " 10.0.0.2:7000 0.0.0.0:*");  // UDP unconnected: no state, as netstat

  const auto* ur6 = row_of(s, kFdBase + u6);
  BOOST_TEST_REQUIRE(ur6);
  BOOST_TEST(ur6->family == 6);
  BOOST_TEST(stats::state_name(ur6->proto, ur6->state) == std::string("ESTABLISHED"));
  BOOST_TEST(stats::address(6, ur6->remote_addr, ur6->remote_port, true) == "fd00::1:7001");
}

BOOST_AUTO_TEST_CASE(send_queue_shows_unacknowledged_bytes) {
  Net n;
  const Net::Conn c = n.connect_pair(0, 1, false, 5000);
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(n.send_str(0, c.client, std::string(3000, 'y')) == 3000);  // not yet acknowledged
  auto p = open_publisher();
  p->publish(n.api(0), n.h.stack(0).counters(), fds_of(n.api(0)), 100);
  const auto s = read_back(*p);
  const auto* cl = row_of(s, kFdBase + c.client);
  BOOST_TEST_REQUIRE(cl);
  BOOST_TEST(cl->send_q == 3000u);
}

BOOST_AUTO_TEST_CASE(counters_are_published_by_name) {
  Net n;
  Counters& counters = n.h.stack(0).counters();
  counters.add("stattest.answer").value = 42;
  auto p = open_publisher();
  p->publish(n.api(0), counters, fds_of(n.api(0)), 0);
  const auto s = read_back(*p);
  BOOST_TEST(s.counters.size() == counters.entries().size());
  bool found = false;
  for (const auto& [name, value] : s.counters) {
    if (name == "stattest.answer") found = value == 42u;
  }
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(dup_fds_are_rows_of_their_own_and_unpublished_fds_are_not_shown) {
  Net n;
  SocketApi& api = n.api(0);
  const int u = api.socket(AF_INET, SOCK_DGRAM, 0);
  auto p = open_publisher();
  p->publish(
      api, n.h.stack(0).counters(),
      [&](int fd) { return fd == 3 || fd == 9 ? u
                           : fd == 5          ? 77
                                              : -1; }, 20);
  const auto s = read_back(*p);
  BOOST_TEST_REQUIRE(s.sockets.size() == 2u);  // handle 77 is no socket
  BOOST_TEST(s.sockets[0].fd == 3);
  BOOST_TEST(s.sockets[1].fd == 9);
}

BOOST_AUTO_TEST_CASE(
    the_object_is_named_for_user_and_pid_mode_0600_and_removed_with_its_publisher) {
  const std::string path = "/dev/shm" + stats::object_name(::getuid(), ::getpid());
  {
    auto p = open_publisher();
    BOOST_TEST(p->name() == stats::object_name(::getuid(), ::getpid()));
    struct stat st;
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(st.st_uid == ::getuid());
    BOOST_TEST(size_t(st.st_size) == stats::object_size());
    // Nothing published yet: a valid, empty snapshot.
    const auto s = read_back(*p);
    BOOST_TEST(s.sockets.empty());
    BOOST_TEST(s.seq == 0u);
  }
  BOOST_TEST(::access(path.c_str(), F_OK) != 0);
}

BOOST_AUTO_TEST_CASE(a_leftover_object_with_our_pid_is_replaced) {
  const std::string name = stats::object_name(::getuid(), ::getpid());
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_TEST_REQUIRE(fd >= 0);
  BOOST_TEST(::write(fd, "junk", 4) == 4);
  ::close(fd);
  auto p = open_publisher();
  const auto s = read_back(*p);
  BOOST_TEST(s.program == "stattest");
}

BOOST_AUTO_TEST_CASE(a_full_table_counts_the_sockets_it_cannot_show) {
  Net n;
  SocketApi& api = n.api(0);
  const int u = api.socket(AF_INET, SOCK_DGRAM, 0);
  auto p = open_publisher();
  const int fds = int(stats::kMaxSockets) + 100;
  p->publish(
      api, n.h.stack(0).counters(), [&](int) { return u; }, fds - 1);
  const auto s = read_back(*p);
  BOOST_TEST(s.sockets.size() == stats::kMaxSockets);
  BOOST_TEST(s.sockets_dropped == 100u);
}

BOOST_AUTO_TEST_CASE(overlong_counter_names_are_counted_not_truncated) {
  Net n;
  Counters counters;
  counters.add("short.one").value = 1;
  counters.add(std::string(stats::kCounterNameLen, 'x')).value = 2;
  auto p = open_publisher();
  p->publish(n.api(0), counters, fds_of(n.api(0)), 0);
  const auto s = read_back(*p);
  BOOST_TEST(s.counters.size() == 1u);
  BOOST_TEST(s.counters_dropped == 1u);
}

BOOST_AUTO_TEST_CASE(corrupt_layouts_are_rejected_with_a_reason) {
  Net n;
  SocketApi& api = n.api(0);
  api.socket(AF_INET, SOCK_STREAM, 0);
  api.socket(AF_INET, SOCK_DGRAM, 0);
  auto p = open_publisher();
  p->publish(api, n.h.stack(0).counters(), fds_of(api), 100);
  const std::vector<uint8_t> good = bytes_of(*p);
  const pid_t pid = ::getpid();
  stats::Snapshot s;
  std::string err;
  BOOST_TEST_REQUIRE(stats::parse(good.data(), good.size(), pid, s, err), err);
  BOOST_TEST_REQUIRE(s.sockets.size() == 2u);

  using stats::Header;
  auto at = [](std::vector<uint8_t>& b, size_t off) { return b.data() + off; };
  auto put32 = [&](std::vector<uint8_t>& b, size_t off, uint32_t v) {
    std::memcpy(at(b, off), &v, 4);
  };
  auto put64 = [&](std::vector<uint8_t>& b, size_t off, uint64_t v) {
    std::memcpy(at(b, off), &v, 8);
  };
  const size_t row0 = sizeof(Header);
  const size_t crow0 = sizeof(Header) + stats::kMaxSockets * sizeof(stats::SocketRow);
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> corrupt;
  };
  const Case cases[] = {
      {"magic", [&](auto& b) { b[0] = 'X'; }},
      {"version", [&](auto& b) { put32(b, offsetof(Header, version), 2); }},
      {"header size", [&](auto& b) { put32(b, offsetof(Header, header_size), 4); }},
      {"row size", [&](auto& b) { put32(b, offsetof(Header, socket_row_size), 8); }},
      {"total size", [&](auto& b) { put64(b, offsetof(Header, total_size), good.size() * 2); }},
      {"huge table", [&](auto& b) { put32(b, offsetof(Header, max_sockets), 0xffffffffu); }},
      {"table past the end",
       [&](auto& b) { put32(b, offsetof(Header, max_counters), stats::kMaxCounters * 4); }},
      {"offset past the end",
       [&](auto& b) { put64(b, offsetof(Header, sockets_offset), uint64_t(1) << 63); }},
      {"offset into the header", [&](auto& b) { put64(b, offsetof(Header, counters_offset), 8); }},
      {"offset wraps",
       [&](auto& b) { put64(b, offsetof(Header, counters_offset), ~uint64_t(0) - 10); }},
      {"other pid", [&](auto& b) { put32(b, offsetof(Header, pid), uint32_t(pid + 1)); }},
      {"odd seq", [&](auto& b) { put64(b, offsetof(Header, seq), 3); }},
      {"too many rows",
       [&](auto& b) { put32(b, offsetof(Header, n_sockets), stats::kMaxSockets + 1); }},
      {"too many counters", [&](auto& b) { put32(b, offsetof(Header, n_counters), 0x7fffffffu); }},
      {"program unterminated",
       [&](auto& b) { std::memset(at(b, offsetof(Header, program)), 'a', stats::kProgramLen); }},
      {"bad proto", [&](auto& b) { b[row0 + offsetof(stats::SocketRow, proto)] = 1; }},
      {"bad family", [&](auto& b) { b[row0 + offsetof(stats::SocketRow, family)] = 5; }},
      {"bad tcp state", [&](auto& b) { b[row0 + offsetof(stats::SocketRow, state)] = 12; }},
      {"bad udp state",
       [&](auto& b) {
         b[row0 + sizeof(stats::SocketRow) + offsetof(stats::SocketRow, state)] = 10;
       }},
      {"negative fd",
       [&](auto& b) { put32(b, row0 + offsetof(stats::SocketRow, fd), 0x80000000u); }},
      {"peer flag", [&](auto& b) { b[row0 + offsetof(stats::SocketRow, has_peer)] = 2; }},
      {"counter unterminated",
       [&](auto& b) { std::memset(at(b, crow0), 'a', stats::kCounterNameLen); }},
      {"counter empty", [&](auto& b) { b[crow0] = 0; }},
      {"counter control char", [&](auto& b) { b[crow0] = '\n'; }},
  };
  for (const auto& c : cases) {
    std::vector<uint8_t> b = good;
    c.corrupt(b);
    err.clear();
    BOOST_TEST_CONTEXT(c.what) {
      BOOST_TEST(!stats::parse(b.data(), b.size(), pid, s, err));
      BOOST_TEST(!err.empty());
      BOOST_TEST(err.find('\n') == std::string::npos);
    }
  }
  // Truncated copies.
  for (size_t len : {size_t(0), size_t(8), sizeof(Header) - 1, sizeof(Header), good.size() - 1}) {
    BOOST_TEST(!stats::parse(good.data(), len, pid, s, err));
  }
  // A program name with control characters is shown, made printable.
  std::vector<uint8_t> b = good;
  std::memcpy(at(b, offsetof(Header, program)), "a\x1b[2Jb", 7);
  BOOST_TEST_REQUIRE(stats::parse(b.data(), b.size(), pid, s, err), err);
  BOOST_TEST(s.program == "a?[2Jb");
}

BOOST_AUTO_TEST_CASE(random_corruption_never_crashes_the_reader) {
  Net n;
  SocketApi& api = n.api(0);
  for (int i = 0; i < 8; ++i)
    api.socket(i % 2 ? AF_INET6 : AF_INET, i % 3 ? SOCK_DGRAM : SOCK_STREAM, 0);
  auto p = open_publisher();
  p->publish(api, n.h.stack(0).counters(), fds_of(api), 100);
  const std::vector<uint8_t> good = bytes_of(*p);
  Random rng(2026);
  size_t accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> b = good;
    const int flips = 1 + int(rng.next() % 8);
    for (int f = 0; f < flips; ++f) {
      // Mostly the header and the first rows, where the structure is.
      const size_t span = rng.next() % 4 ? sizeof(stats::Header) + 16 * 64 : b.size();
      b[rng.next() % span] = uint8_t(rng.next());
    }
    stats::Snapshot s;
    std::string err;
    if (stats::parse(b.data(), b.size(), 0, s, err)) {
      ++accepted;
      BOOST_TEST(s.sockets.size() <= stats::kMaxSockets);
      for (const auto& e : s.sockets) BOOST_TEST((e.family == 4 || e.family == 6));
    }
  }
  BOOST_TEST(accepted < 3000u);  // some corruptions hit checked fields
}

BOOST_AUTO_TEST_CASE(a_reader_never_sees_a_torn_snapshot) {
  Net n;
  SocketApi& api = n.api(0);
  // Every counter holds the same generation number in each snapshot: a torn copy would mix two.
  Counters counters;
  std::vector<Counter*> cs;
  for (int i = 0; i < 200; ++i) cs.push_back(&counters.add("gen.c" + std::to_string(i)));
  auto p = open_publisher();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    // Pauses between snapshots give the reader windows; the point is that it is never wrong.
    for (uint64_t gen = 1; gen <= 3000; ++gen) {
      for (Counter* c : cs) c->value = gen;
      p->publish(
          api, counters, [](int) { return -1; }, 0);
      if (gen % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    done = true;
  });
  const int fd = ::shm_open(p->name().c_str(), O_RDONLY | O_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  int consistent = 0, busy = 0, torn = 0;
  while (!done.load()) {
    stats::Snapshot s;
    std::string err;
    if (!stats::read(fd, ::getpid(), s, err)) {
      ++busy;  // the writer kept it odd for every try: allowed, never wrong data
      continue;
    }
    if (s.counters.empty()) continue;
    bool same = true;
    for (const auto& kv : s.counters) same = same && kv.second == s.counters.front().second;
    if (same) {
      ++consistent;
    } else {
      ++torn;
    }
  }
  writer.join();
  ::close(fd);
  BOOST_TEST(torn == 0);
  BOOST_TEST(consistent > 0);
  BOOST_TEST_MESSAGE("consistent " << consistent << ", busy " << busy);
}

BOOST_AUTO_TEST_CASE(scan_removes_objects_of_dead_processes_and_skips_foreign_modes) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/shunt-stat-scan-XXXXXX";
  BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  Net n;
  auto p = open_publisher();
  n.api(0).socket(AF_INET, SOCK_DGRAM, 0);
  p->publish(n.api(0), n.h.stack(0).counters(), fds_of(n.api(0)), 100);
  std::vector<uint8_t> bytes = bytes_of(*p);

  // A process that has exited.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  BOOST_TEST_REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);

  const uid_t uid = ::getuid();
  auto write_object = [&](pid_t pid, mode_t mode, std::vector<uint8_t> b) {
    const int32_t p32 = pid;
    if (b.size() >= offsetof(stats::Header, pid) + 4) std::memcpy(b.data() + offsetof(stats::Header, pid), &p32, 4);
    const std::string path = dir + "/shunt-stat-" + std::to_string(uid) + "-" + std::to_string(pid);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    BOOST_TEST_REQUIRE(fd >= 0);
    BOOST_TEST_REQUIRE(::write(fd, b.data(), b.size()) == ssize_t(b.size()));
    ::fchmod(fd, mode);
    ::close(fd);
    return path;
  };
  const std::string live = write_object(::getpid(), 0600, bytes);
  const std::string dead = write_object(child, 0600, bytes);
  const std::string dead_garbage =
      write_object(child + 100000000, 0600, std::vector<uint8_t>(10, 0xff));
  const std::string open_mode = write_object(1, 0644, bytes);  // pid 1: alive, but readable by all
  const std::string other_user =
      dir + "/shunt-stat-" + std::to_string(uid + 1) + "-" + std::to_string(::getpid());
  fs::copy_file(live, other_user);
  const std::string not_a_pid = dir + "/shunt-stat-" + std::to_string(uid) + "-12x";
  fs::copy_file(live, not_a_pid);

  stats::Scan s = stats::scan(uid, true, dir);
  BOOST_TEST_REQUIRE(s.snapshots.size() == 1u);
  BOOST_TEST(s.snapshots[0].pid == ::getpid());
  BOOST_TEST(s.snapshots[0].sockets.size() == 1u);
  BOOST_TEST(s.cleaned.size() == 2u);
  BOOST_TEST(!fs::exists(dead));
  BOOST_TEST(!fs::exists(dead_garbage));
  BOOST_TEST(fs::exists(live));
  BOOST_TEST(fs::exists(open_mode));  // skipped, not removed
  BOOST_TEST(fs::exists(other_user));
  BOOST_TEST(s.warnings.size() == 1u);  // the 0644 one
  for (const auto& w : s.warnings) BOOST_TEST_MESSAGE(w);

  // Without cleaning, nothing is removed.
  write_object(child, 0600, bytes);
  s = stats::scan(uid, false, dir);
  BOOST_TEST(s.cleaned.empty());
  BOOST_TEST(fs::exists(dead));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
