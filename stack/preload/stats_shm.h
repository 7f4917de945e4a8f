// Statistics in per-process shared memory for `shunt stat` (docs/preload.md, "shunt stat").
//
// Each process under the preload library owns one POSIX shared memory object,
// "/shunt-stat-<uid>-<pid>" (so /dev/shm/shunt-stat-<uid>-<pid>), mode 0600, created O_EXCL and
// unlinked when the process exits. It holds a fixed header, then a table of socket rows (one per
// offloaded fd) and a table of counters (the stack's Counters, name/value). The writer publishes
// a whole snapshot inside a seqlock: `seq` is odd while it writes and even between snapshots, so
// a reader that sees the same even value before and after copying has a consistent copy.
//
// The reader treats the object as hostile (another process, maybe another program, wrote it):
// it checks owner and mode, reads with pread (a writer that truncates the object cannot fault
// the reader), bounds every count, offset and string, and rejects what does not fit.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/core/counters.h"
#include "stack/socket/socket_api.h"

namespace shunt::stats {

// --- The layout, version 1. All integers are the host's byte order (readers are on the same
// host); every struct has a fixed size checked below.
inline constexpr char kMagic[8] = {'S', 'H', 'U', 'N', 'T', 'S', 'T', '\0'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kMaxSockets = 4096;   // rows beyond are counted in sockets_dropped
inline constexpr uint32_t kMaxCounters = 1024;  // beyond: counted in counters_dropped
inline constexpr size_t kProgramLen = 64;       // with its NUL
inline constexpr size_t kCounterNameLen = 56;   // with its NUL

struct Header {
  char magic[8];              // kMagic
  uint32_t version;           // kVersion
  uint32_t header_size;       // sizeof(Header)
  uint64_t total_size;        // size of the object in bytes
  uint32_t max_sockets;       // rows in the socket table
  uint32_t socket_row_size;   // sizeof(SocketRow)
  uint32_t max_counters;      // rows in the counter table
  uint32_t counter_row_size;  // sizeof(CounterRow)
  uint64_t sockets_offset;    // from the start of the object
  uint64_t counters_offset;
  int32_t pid;  // the writer; equals the <pid> of the name
  uint32_t reserved0;
  uint64_t start_time;        // the writer's start time (/proc/<pid>/stat field 22), 0 if unknown
  char program[kProgramLen];  // the writer's program name, NUL-terminated
  // The snapshot, under the seqlock. Everything above is written once, before seq leaves 0.
  uint64_t seq;               // odd: being written; even and > 0: a snapshot is there
  uint32_t n_sockets;         // valid rows, <= max_sockets
  uint32_t sockets_dropped;   // offloaded fds not shown (the table was full)
  uint32_t n_counters;        // valid rows, <= max_counters
  uint32_t counters_dropped;  // counters not shown (table full, or name too long)
};
static_assert(sizeof(Header) == 160);
// The offsets docs/preload.md documents.
static_assert(offsetof(Header, pid) == 56 && offsetof(Header, start_time) == 64 &&
              offsetof(Header, program) == 72 && offsetof(Header, seq) == 136 &&
              offsetof(Header, counters_dropped) == 156);

enum Proto : uint8_t { kTcp = 6, kUdp = 17 };

struct SocketRow {
  int32_t fd;
  uint8_t proto;        // kTcp or kUdp
  uint8_t family;       // 4 (AF_INET socket) or 6 (AF_INET6 socket: "tcp6", "udp6")
  uint8_t state;        // Linux's tcp_states.h numbering: 1 ESTABLISHED .. 10 LISTEN, 11 CLOSING
  uint8_t has_peer;     // 1: remote_* is the peer; 0: none ("*")
  uint16_t local_port;  // host order
  uint16_t remote_port;
  uint8_t local_addr[16];  // family 4: the first 4 bytes (network order); 6: the 16 bytes
  uint8_t remote_addr[16];
  uint32_t reserved;  // 0
  uint64_t recv_q;    // bytes
  uint64_t send_q;    // bytes
};
static_assert(sizeof(SocketRow) == 64);
static_assert(offsetof(SocketRow, local_addr) == 12 && offsetof(SocketRow, recv_q) == 48);

struct CounterRow {
  char name[kCounterNameLen];  // NUL-terminated, [A-Za-z0-9._-]
  uint64_t value;
};
static_assert(sizeof(CounterRow) == 64);

// The object's name for shm_open: "/shunt-stat-<uid>-<pid>".
std::string object_name(uid_t uid, pid_t pid);
// The start time of `pid` from /proc/<pid>/stat (clock ticks after boot), 0 if unknown.
uint64_t process_start_time(pid_t pid);

// --- Writer: one per process. Not thread-safe: call publish() under the runtime's lock.
class StatsPublisher {
 public:
  // Creates the object (O_EXCL, mode 0600; a leftover of an earlier process with our pid is
  // removed first). `program` is shown by `shunt stat` (truncated to 63 bytes). Null and
  // `error` set on failure.
  static std::unique_ptr<StatsPublisher> open(const char* program, std::string& error);
  ~StatsPublisher();  // unmaps; unlinks the object only in the process that created it
  StatsPublisher(const StatsPublisher&) = delete;
  StatsPublisher& operator=(const StatsPublisher&) = delete;

  // Publishes one snapshot: a row for each fd in [0, max_fd] whose handle_of(fd) >= 0 is a
  // socket of `api` (so dup'ed fds show as their own rows), and every counter. Allocates
  // nothing; costs a scan of max_fd + 1 fds and the counters (call it every ~100 ms, not per
  // packet).
  void publish(const SocketApi& api, const Counters& counters,
               const std::function<int(int fd)>& handle_of, int max_fd);

  const std::string& name() const { return name_; }
  // Snapshots published so far.
  uint64_t published() const;

 private:
  StatsPublisher() = default;
  std::string name_;
  pid_t owner_ = -1;
  void* map_ = nullptr;
  size_t size_ = 0;
};

// The object size the writer creates.
size_t object_size();

// --- Reader, shared by `shunt stat` and tests.
struct SocketEntry {
  int fd = -1;
  int proto = kTcp;
  int family = 4;
  int state = 7;
  bool has_peer = false;
  uint8_t local_addr[16] = {};
  uint8_t remote_addr[16] = {};
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint64_t recv_q = 0;
  uint64_t send_q = 0;
};

struct Snapshot {
  pid_t pid = 0;
  std::string program;
  uint64_t start_time = 0;
  uint64_t seq = 0;
  uint32_t sockets_dropped = 0;
  uint32_t counters_dropped = 0;
  std::vector<SocketEntry> sockets;
  std::vector<std::pair<std::string, uint64_t>> counters;
};

// Validates one consistent copy of an object (`size` bytes) whose name says `expected_pid`.
// False with a one-line reason for anything out of bounds or malformed.
bool parse(const uint8_t* data, size_t size, pid_t expected_pid, Snapshot& out, std::string& error);
// Reads the object behind `fd` (pread, seqlock retried a bounded number of times) and parses it.
bool read(int fd, pid_t expected_pid, Snapshot& out, std::string& error);

// netstat's words for a state ("ESTABLISHED", "LISTEN", ...); "" for UDP that is not connected.
const char* state_name(int proto, int state);
// "10.0.0.1:5000", "0.0.0.0:*", "2001:db8::1:80", ":::*" (netstat's form).
std::string address(int family, const uint8_t* addr, uint16_t port, bool present);

// Every object of user `uid` in `dir` (/dev/shm): objects of dead processes (kill() says ESRCH,
// or the pid now belongs to a later process) are unlinked when `clean` and they belong to
// `uid`; objects with the wrong owner or mode are skipped. Each problem is one line in
// `warnings`. Snapshots are sorted by pid.
struct Scan {
  std::vector<Snapshot> snapshots;
  std::vector<std::string> warnings;
  std::vector<pid_t> cleaned;  // pids whose stale objects were removed
};
Scan scan(uid_t uid, bool clean, const std::string& dir = "/dev/shm");

}  // namespace shunt::stats
