// The `shunt stat` shared memory: the writer the preload runtime calls and the reader the
// command and tests share. Layout and rules in stats_shm.h and docs/preload.md ("shunt stat").
#include "stack/preload/stats_shm.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace shunt::stats {

namespace {

constexpr size_t kPage = 4096;
// A reader refuses objects bigger than this (a v1 writer creates ~330 KiB).
constexpr uint64_t kMaxObjectSize = 64ull << 20;
constexpr uint32_t kMaxRowsAccepted = 1u << 20;
constexpr int kReadAttempts = 1000;

Header* header_of(void* map) { return static_cast<Header*>(map); }

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

void copy_address(const sockaddr_storage& ss, uint8_t* addr, uint16_t* port) {
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    std::memcpy(addr, &sin->sin_addr, 4);
    *port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::memcpy(addr, &sin6->sin6_addr, 16);
    *port = ntohs(sin6->sin6_port);
  }
}

bool counter_name_ok(const char* name, size_t cap) {
  const void* nul = std::memchr(name, '\0', cap);
  if (!nul || nul == name) return false;
  for (const char* c = name; *c; ++c) {
    const bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
    if (!ok) return false;
  }
  return true;
}

// pread until `len` bytes or end of object; the byte count read.
size_t pread_all(int fd, void* buf, size_t len, off_t at) {
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, static_cast<uint8_t*>(buf) + got, len - got, at + off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  return got;
}

}  // namespace

std::string object_name(uid_t uid, pid_t pid) {
  return "/shunt-stat-" + std::to_string(uid) + "-" + std::to_string(pid);
}

uint64_t process_start_time(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  const size_t n = pread_all(fd, buf, sizeof buf - 1, 0);
  ::close(fd);
  buf[n] = '\0';
  // The name (field 2) may hold anything, so count fields after its last ')': field 3 is the
  // first, starttime is field 22 (proc(5)).
  const char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  ++p;
  for (int field = 3; field < 22; ++field) {
    while (*p == ' ') ++p;
    while (*p && *p != ' ') ++p;
    if (!*p) return 0;
  }
  while (*p == ' ') ++p;
  return std::strtoull(p, nullptr, 10);
}

size_t object_size() {
  return round_up(sizeof(Header) + size_t(kMaxSockets) * sizeof(SocketRow) +
                      size_t(kMaxCounters) * sizeof(CounterRow),
                  kPage);
}

// --- Writer.

std::unique_ptr<StatsPublisher> StatsPublisher::open(const char* program, std::string& error) {
  const pid_t pid = ::getpid();
  const std::string name = object_name(::getuid(), pid);
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    // A leftover of an earlier process that had our pid: that process is gone.
    ::shm_unlink(name.c_str());
    fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    error = "stats: cannot create /dev/shm" + name + ": " + std::strerror(errno);
    return nullptr;
  }
  const size_t size = object_size();
  if (::fchmod(fd, 0600) != 0 || ::ftruncate(fd, off_t(size)) != 0) {
    error = "stats: cannot size /dev/shm" + name + ": " + std::strerror(errno);
    ::close(fd);
    ::shm_unlink(name.c_str());
    return nullptr;
  }
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    error = "stats: cannot map /dev/shm" + name + ": " + std::strerror(errno);
    ::shm_unlink(name.c_str());
    return nullptr;
  }
  Header* h = header_of(map);  // the object is fresh: all zero
  std::memcpy(h->magic, kMagic, sizeof kMagic);
  h->version = kVersion;
  h->header_size = sizeof(Header);
  h->total_size = size;
  h->max_sockets = kMaxSockets;
  h->socket_row_size = sizeof(SocketRow);
  h->max_counters = kMaxCounters;
  h->counter_row_size = sizeof(CounterRow);
  h->sockets_offset = sizeof(Header);
  h->counters_offset = sizeof(Header) + size_t(kMaxSockets) * sizeof(SocketRow);
  h->pid = pid;
  h->start_time = process_start_time(pid);
  std::string prog = program && *program ? program : "";
  if (prog.empty()) {
    char comm[64] = {};
    const int cfd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
      const size_t n = pread_all(cfd, comm, sizeof comm - 1, 0);
      ::close(cfd);
      prog.assign(comm, n);
      while (!prog.empty() && prog.back() == '\n') prog.pop_back();
    }
  }
  std::memcpy(h->program, prog.data(), std::min(prog.size(), kProgramLen - 1));

  auto p = std::unique_ptr<StatsPublisher>(new StatsPublisher());
  p->name_ = name;
  p->owner_ = pid;
  p->map_ = map;
  p->size_ = size;
  return p;
}

StatsPublisher::~StatsPublisher() {
  if (map_) ::munmap(map_, size_);
  // A forked child inherits the publisher but not the object: only its creator removes it.
  if (::getpid() == owner_) ::shm_unlink(name_.c_str());
}

uint64_t StatsPublisher::published() const {
  return std::atomic_ref<uint64_t>(header_of(map_)->seq).load(std::memory_order_relaxed) / 2;
}

void StatsPublisher::publish(const SocketApi& api, const Counters& counters,
                             const std::function<int(int fd)>& handle_of, int max_fd) {
  Header* h = header_of(map_);
  auto* rows = reinterpret_cast<SocketRow*>(static_cast<uint8_t*>(map_) + h->sockets_offset);
  auto* crows = reinterpret_cast<CounterRow*>(static_cast<uint8_t*>(map_) + h->counters_offset);
  std::atomic_ref<uint64_t> seq(h->seq);
  const uint64_t s = seq.load(std::memory_order_relaxed);
  // Seqlock: odd while writing; the fence keeps the row stores after the odd value.
  seq.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);

  uint32_t n = 0, dropped = 0;
  for (int fd = 0; fd <= max_fd; ++fd) {
    const int handle = handle_of(fd);
    if (handle < 0) continue;
    SocketApi::SocketInfo info;
    if (api.socket_info(handle, &info) < 0) continue;
    if (n == kMaxSockets) {
      ++dropped;
      continue;
    }
    SocketRow r{};
    r.fd = fd;
    r.proto = info.type == SOCK_STREAM ? kTcp : kUdp;
    r.family = info.domain == AF_INET6 ? 6 : 4;
    r.state = uint8_t(info.state);
    copy_address(info.local, r.local_addr, &r.local_port);
    r.has_peer = info.peer.ss_family != AF_UNSPEC;
    if (r.has_peer) copy_address(info.peer, r.remote_addr, &r.remote_port);
    r.recv_q = info.recv_q;
    r.send_q = info.send_q;
    rows[n++] = r;
  }
  h->n_sockets = n;
  h->sockets_dropped = dropped;

  uint32_t nc = 0, cdropped = 0;
  for (const auto& e : counters.entries()) {
    if (nc == kMaxCounters || e.name.size() >= kCounterNameLen) {
      ++cdropped;
      continue;
    }
    CounterRow& c = crows[nc++];
    std::memset(c.name, 0, sizeof c.name);
    std::memcpy(c.name, e.name.data(), e.name.size());
    c.value = e.counter.value;
  }
  h->n_counters = nc;
  h->counters_dropped = cdropped;
  seq.store(s + 2, std::memory_order_release);
}

// --- Reader.

bool parse(const uint8_t* data, size_t size, pid_t expected_pid, Snapshot& out,
           std::string& error) {
  if (size < sizeof(Header)) {
    error = "shorter than its header (" + std::to_string(size) + " bytes)";
    return false;
  }
  Header h;
  std::memcpy(&h, data, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) {
    error = "not a shunt stat object (bad magic)";
    return false;
  }
  if (h.version != kVersion) {
    error = "layout version " + std::to_string(h.version) + ", this shunt reads version " +
            std::to_string(kVersion);
    return false;
  }
  if (h.header_size != sizeof(Header) || h.socket_row_size != sizeof(SocketRow) ||
      h.counter_row_size != sizeof(CounterRow)) {
    error = "header or row sizes do not match layout version 1";
    return false;
  }
  if (h.total_size != size) {
    error = "says it is " + std::to_string(h.total_size) + " bytes, is " + std::to_string(size);
    return false;
  }
  if (h.max_sockets > kMaxRowsAccepted || h.max_counters > kMaxRowsAccepted) {
    error = "table capacity out of range";
    return false;
  }
  // Each table within the object (the products fit in 64 bits: rows <= 2^20, 64 bytes each).
  auto fits = [&](uint64_t offset, uint64_t bytes) {
    return offset >= sizeof(Header) && offset <= size && bytes <= size - offset;
  };
  if (!fits(h.sockets_offset, uint64_t(h.max_sockets) * sizeof(SocketRow)) ||
      !fits(h.counters_offset, uint64_t(h.max_counters) * sizeof(CounterRow))) {
    error = "a table lies outside the object";
    return false;
  }
  if (expected_pid > 0 && h.pid != expected_pid) {
    error = "written for pid " + std::to_string(h.pid) + " but named for pid " +
            std::to_string(expected_pid);
    return false;
  }
  if (h.seq % 2 != 0) {
    error = "caught in the middle of an update";
    return false;
  }
  if (h.n_sockets > h.max_sockets || h.n_counters > h.max_counters) {
    error = "more rows than the tables hold";
    return false;
  }
  if (!std::memchr(h.program, '\0', sizeof h.program)) {
    error = "program name not terminated";
    return false;
  }
  Snapshot s;
  s.pid = h.pid;
  s.program = h.program;
  for (char& c : s.program) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  s.start_time = h.start_time;
  s.seq = h.seq;
  s.sockets_dropped = h.sockets_dropped;
  s.counters_dropped = h.counters_dropped;
  s.sockets.reserve(h.n_sockets);
  for (uint32_t i = 0; i < h.n_sockets; ++i) {
    SocketRow r;
    std::memcpy(&r, data + h.sockets_offset + uint64_t(i) * sizeof r, sizeof r);
    const bool state_ok =
        r.proto == kTcp ? (r.state >= 1 && r.state <= 11) : (r.state == 1 || r.state == 7);
    if (r.fd < 0 || (r.proto != kTcp && r.proto != kUdp) || (r.family != 4 && r.family != 6) ||
        !state_ok || r.has_peer > 1) {
      error = "socket row " + std::to_string(i) + " is malformed";
      return false;
    }
    SocketEntry e;
    e.fd = r.fd;
    e.proto = r.proto;
    e.family = r.family;
    e.state = r.state;
    e.has_peer = r.has_peer;
    std::memcpy(e.local_addr, r.local_addr, 16);
    std::memcpy(e.remote_addr, r.remote_addr, 16);
    e.local_port = r.local_port;
    e.remote_port = r.remote_port;
    e.recv_q = r.recv_q;
    e.send_q = r.send_q;
    s.sockets.push_back(e);
  }
  s.counters.reserve(h.n_counters);
  for (uint32_t i = 0; i < h.n_counters; ++i) {
    CounterRow c;
    std::memcpy(&c, data + h.counters_offset + uint64_t(i) * sizeof c, sizeof c);
    if (!counter_name_ok(c.name, sizeof c.name)) {
      error = "counter row " + std::to_string(i) + " has a malformed name";
      return false;
    }
    s.counters.emplace_back(std::string(c.name), c.value);
  }
  out = std::move(s);
  return true;
}

bool read(int fd, pid_t expected_pid, Snapshot& out, std::string& error) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    error = std::string("fstat: ") + std::strerror(errno);
    return false;
  }
  if (st.st_size < off_t(sizeof(Header)) || uint64_t(st.st_size) > kMaxObjectSize) {
    error = "size " + std::to_string(st.st_size) + " out of range";
    return false;
  }
  std::vector<uint8_t> buf(size_t(st.st_size));
  constexpr off_t kSeqAt = offsetof(Header, seq);
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    uint64_t before = 1, after = 0;
    if (pread_all(fd, &before, sizeof before, kSeqAt) != sizeof before) {
      error = "shrank while being read";
      return false;
    }
    if (before % 2 != 0) {
      ::sched_yield();
      continue;
    }
    // pread, not mmap: a writer that truncates the object cannot fault us.
    const size_t got = pread_all(fd, buf.data(), buf.size(), 0);
    if (got != buf.size()) {
      error = "shrank while being read";
      return false;
    }
    if (pread_all(fd, &after, sizeof after, kSeqAt) != sizeof after) {
      error = "shrank while being read";
      return false;
    }
    if (before == after) return parse(buf.data(), buf.size(), expected_pid, out, error);
    ::sched_yield();
  }
  error = "the writer kept updating it (no consistent snapshot in " +
          std::to_string(kReadAttempts) + " tries)";
  return false;
}

const char* state_name(int proto, int state) {
  static const char* const kNames[] = {"",           "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                       "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                       "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING"};
  if (proto == kUdp) return state == 1 ? "ESTABLISHED" : "";
  if (state < 1 || state > 11) return "UNKNOWN";
  return kNames[state];
}

std::string address(int family, const uint8_t* addr, uint16_t port, bool present) {
  char text[INET6_ADDRSTRLEN] = {};
  static const uint8_t kZero[16] = {};
  const uint8_t* a = present ? addr : kZero;
  if (family == 4) {
    inet_ntop(AF_INET, a, text, sizeof text);
  } else {
    inet_ntop(AF_INET6, a, text, sizeof text);
  }
  return std::string(text) + ":" + (present && port ? std::to_string(port) : "*");
}

Scan scan(uid_t uid, bool clean, const std::string& dir) {
  Scan out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    out.warnings.push_back("cannot list " + dir + ": " + std::strerror(errno));
    return out;
  }
  const std::string prefix = "shunt-stat-" + std::to_string(uid) + "-";
  std::vector<std::pair<pid_t, std::string>> found;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 || digits[0] == '0' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    found.emplace_back(pid_t(std::stol(digits)), name);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());

  for (const auto& [pid, name] : found) {
    const std::string path = dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      if (errno != ENOENT) out.warnings.push_back(path + ": " + std::strerror(errno));
      continue;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 077) != 0) {
      out.warnings.push_back(path + ": skipped: not a regular file of uid " + std::to_string(uid) +
                             " with mode 0600");
      ::close(fd);
      continue;
    }
    // ESRCH: no such process. EPERM: the pid now belongs to another user's process, so the
    // writer (which ran as `uid`) is gone too.
    bool stale = ::kill(pid, 0) != 0 && (errno == ESRCH || errno == EPERM);
    Snapshot snap;
    std::string err;
    bool ok = false;
    if (!stale) {
      ok = read(fd, pid, snap, err);
      // The pid was reused by a later process of ours that does not publish.
      const uint64_t now_start = process_start_time(pid);
      if (ok && snap.start_time && now_start && snap.start_time != now_start) stale = true;
    }
    ::close(fd);
    if (stale) {
      if (clean) {
        if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
          out.cleaned.push_back(pid);
        } else {
          out.warnings.push_back(path +
                                 ": cannot remove the stale object: " + std::strerror(errno));
        }
      }
      continue;
    }
    if (!ok) {
      out.warnings.push_back("pid " + std::to_string(pid) + ": " + path + ": " + err);
      continue;
    }
    out.snapshots.push_back(std::move(snap));
  }
  return out;
}

}  // namespace shunt::stats
