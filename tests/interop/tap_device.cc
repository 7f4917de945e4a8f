// The TAP driver on its own against the kernel (label interop): errors come back as lines,
// never crashes; frames cross both ways; frames longer than a buffer are dropped and counted.
// The process moves itself into a fresh network namespace first (unshare), so every interface it
// makes disappears with it. Needs root and /dev/net/tun, else exits 77 (skipped) with the reason.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "stack/core/buffer.h"
#include "stack/driver/tap/tap.h"
#include "stack/net/ethernet.h"

namespace shunt {
namespace {

// Enters a private network namespace once, or exits 77 saying why it cannot.
struct PrivateNetns {
  PrivateNetns() {
    const char* why = nullptr;
    if (geteuid() != 0) why = "needs root (TAP interfaces in a private network namespace)";
    else if (access("/dev/net/tun", F_OK) != 0) why = "/dev/net/tun does not exist (no TUN/TAP support)";
    else if (std::system("command -v ip >/dev/null 2>&1") != 0) why = "the `ip` command (iproute2) is not installed";
    else if (unshare(CLONE_NEWNET) != 0) why = "cannot create a network namespace (unshare CLONE_NEWNET failed)";
    if (why) {
      std::cout << "SKIPPED: " << why << std::endl;
      std::exit(77);
    }
  }
};

void sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  BOOST_REQUIRE_MESSAGE(rc == 0, "`" << cmd << "` failed");
}

bool wait_readable(int fd, int ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

const MacAddr kStackMac{{0x02, 0x53, 0x48, 0x00, 0x00, 0x02}};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(PrivateNetns);

BOOST_AUTO_TEST_SUITE(tap_device)

BOOST_AUTO_TEST_CASE(open_reports_a_name_longer_than_ifnamsiz) {
  auto r = TapDevice::open(TapOptions{"a-name-far-too-long-for-linux", kStackMac});
  BOOST_CHECK(!r.device);
  BOOST_CHECK_NE(r.error.find("longer than 15 characters"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(open_refuses_the_kernel_sides_mac) {
  sh("ip tuntap add dev shtapmac mode tap && ip link set dev shtapmac address 02:53:48:00:00:aa");
  auto r = TapDevice::open(TapOptions{"shtapmac", MacAddr{{0x02, 0x53, 0x48, 0x00, 0x00, 0xaa}}});
  BOOST_CHECK(!r.device);
  BOOST_CHECK_NE(r.error.find("equals the kernel side's MAC"), std::string::npos);
  auto ok = TapDevice::open(TapOptions{"shtapmac", kStackMac});
  BOOST_CHECK_MESSAGE(ok.device, ok.error);
  if (ok.device) BOOST_CHECK(ok.device->kernel_mac() == (MacAddr{{0x02, 0x53, 0x48, 0x00, 0x00, 0xaa}}));
  ok.device.reset();
  sh("ip link delete shtapmac");
}

BOOST_AUTO_TEST_CASE(open_reports_a_busy_interface) {
  auto first = TapDevice::open(TapOptions{"shtapbusy", kStackMac});
  BOOST_REQUIRE_MESSAGE(first.device, first.error);
  auto second = TapDevice::open(TapOptions{"shtapbusy", kStackMac});
  BOOST_CHECK(!second.device);
  BOOST_CHECK_MESSAGE(second.error.find("shtapbusy") != std::string::npos, second.error);
}

BOOST_AUTO_TEST_CASE(open_picks_a_name_and_a_mac_when_given_none) {
  auto r = TapDevice::open(TapOptions{});
  BOOST_REQUIRE_MESSAGE(r.device, r.error);
  BOOST_CHECK(!r.device->ifname().empty());
  BOOST_CHECK(!(r.device->info().mac == r.device->kernel_mac()));
  BOOST_CHECK(!r.device->info().mac.is_multicast());
  BOOST_CHECK_EQUAL(r.device->info().mtu, 1500u);
  BOOST_CHECK_GE(r.device->wait_fd(), 0);
}

// The kernel sends a small datagram and one longer than a 2 KiB buffer towards the stack's
// address; the driver delivers the first and drops and counts the second. Then the stack's
// side answers with a frame the kernel's socket receives.
BOOST_AUTO_TEST_CASE(frames_cross_both_ways_and_oversize_ones_are_counted) {
  auto r = TapDevice::open(TapOptions{"shtapio", kStackMac});
  BOOST_REQUIRE_MESSAGE(r.device, r.error);
  TapDevice& dev = *r.device;
  BufferPool pool(64);
  dev.attach(pool);
  sh("ip link set dev lo up && ip link set dev shtapio mtu 4000 up && ip addr add 10.77.0.1/24 dev shtapio && "
     "ip neigh replace 10.77.0.2 lladdr 02:53:48:00:00:02 dev shtapio nud permanent");
  BOOST_CHECK_EQUAL(dev.interface_mtu(), 1500u);  // read at open time, before the change

  int k = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(5000);
  inet_pton(AF_INET, "10.77.0.1", &me.sin_addr);
  BOOST_REQUIRE_EQUAL(bind(k, reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
  sockaddr_in stack_addr = me;
  inet_pton(AF_INET, "10.77.0.2", &stack_addr.sin_addr);
  std::string big(3000, 'x');
  BOOST_REQUIRE_EQUAL(sendto(k, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&stack_addr), sizeof stack_addr),
                      ssize_t(big.size()));
  BOOST_REQUIRE_EQUAL(sendto(k, "small", 5, 0, reinterpret_cast<sockaddr*>(&stack_addr), sizeof stack_addr), 5);

  // Collect frames until the small datagram shows up (IPv6 chatter may come too).
  PacketPtr frames[8];
  bool seen_small = false;
  PacketPtr small;
  for (int round = 0; round < 50 && !seen_small; ++round) {
    if (!wait_readable(dev.wait_fd(), 200)) continue;
    size_t n = dev.rx_burst(frames, 8);
    for (size_t i = 0; i < n; ++i) {
      auto eth = EthRepr::parse(frames[i]->data(), frames[i]->size());
      BOOST_REQUIRE(eth.repr);
      if (eth.repr->ethertype == kEtherTypeIpv4 && frames[i]->size() == 14 + 20 + 8 + 5) {
        seen_small = true;
        small = std::move(frames[i]);
      }
      frames[i].reset();
    }
  }
  BOOST_REQUIRE(seen_small);
  BOOST_CHECK_EQUAL(dev.counters().rx_drop_oversize, 1u);
  BOOST_CHECK_EQUAL(pool.available() + 1, pool.capacity());  // only `small` is held

  // Send it back with addresses and ports swapped (checksums stay valid: the sums are
  // symmetric in source and destination).
  uint8_t* f = small->data();
  uint8_t tmp[6];
  std::memcpy(tmp, f, 6);
  std::memcpy(f, f + 6, 6);
  std::memcpy(f + 6, tmp, 6);
  uint8_t* ip = f + 14;
  uint8_t a[4];
  std::memcpy(a, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, a, 4);
  uint8_t* udp = ip + 20;
  uint8_t p[2];
  std::memcpy(p, udp, 2);
  std::memcpy(udp, udp + 2, 2);
  std::memcpy(udp + 2, p, 2);
  PacketPtr out[1] = {std::move(small)};
  BOOST_CHECK_EQUAL(dev.tx_burst(out, 1), 1u);
  BOOST_CHECK_EQUAL(dev.counters().tx_frames, 1u);
  BOOST_CHECK_EQUAL(pool.available(), pool.capacity());

  BOOST_REQUIRE(wait_readable(k));
  char buf[16];
  sockaddr_in from{};
  socklen_t flen = sizeof from;
  ssize_t got = recvfrom(k, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
  BOOST_CHECK_EQUAL(got, 5);
  BOOST_CHECK_EQUAL(std::string(buf, size_t(std::max<ssize_t>(got, 0))), "small");
  BOOST_CHECK_EQUAL(from.sin_addr.s_addr, stack_addr.sin_addr.s_addr);
  close(k);
}

BOOST_AUTO_TEST_CASE(a_burst_of_oversize_frames_is_drained_a_bounded_number_at_a_time) {
  // Dropped frames count against the burst: a queue that keeps refilling with frames too long
  // for a buffer must not keep rx_burst (and the stack's poll) reading forever.
  auto r = TapDevice::open(TapOptions{"shtapover", kStackMac});
  BOOST_REQUIRE_MESSAGE(r.device, r.error);
  TapDevice& dev = *r.device;
  BufferPool pool(64);
  dev.attach(pool);
  // IPv6 off before the link comes up, so the kernel sends no MLD/RS/DAD frames of its own.
  sh("sysctl -qw net.ipv6.conf.shtapover.disable_ipv6=1 && "
     "ip link set dev shtapover mtu 4000 up && ip addr add 10.78.0.1/24 dev shtapover && "
     "ip neigh replace 10.78.0.2 lladdr 02:53:48:00:00:02 dev shtapover nud permanent");
  int k = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5000);
  inet_pton(AF_INET, "10.78.0.2", &to.sin_addr);
  std::string big(3000, 'y');
  constexpr int kFrames = 100;
  for (int i = 0; i < kFrames; ++i) {
    BOOST_REQUIRE_EQUAL(sendto(k, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                        ssize_t(big.size()));
  }
  BOOST_REQUIRE(wait_readable(dev.wait_fd()));
  // The kernel may still queue a small frame of its own (e.g. an IGMP report) among ours; such a
  // frame is delivered and released, and the bound is on reads: two per frame slot at most.
  PacketPtr frames[8];
  size_t delivered = dev.rx_burst(frames, 8);
  for (auto& f : frames) f.reset();
  BOOST_CHECK_LE(delivered, 1u);
  BOOST_CHECK_LE(dev.counters().rx_drop_oversize + delivered, 16u);
  BOOST_CHECK_GE(dev.counters().rx_drop_oversize, 15u);
  for (int round = 0; round < 50 && dev.counters().rx_drop_oversize < uint64_t(kFrames); ++round) {
    if (wait_readable(dev.wait_fd(), 200)) dev.rx_burst(frames, 8);
    for (auto& f : frames) f.reset();
  }
  BOOST_CHECK_EQUAL(dev.counters().rx_drop_oversize, uint64_t(kFrames));
  BOOST_CHECK_EQUAL(pool.available(), pool.capacity());
  close(k);
}

BOOST_AUTO_TEST_CASE(an_empty_pool_leaves_frames_in_the_kernel) {
  auto r = TapDevice::open(TapOptions{"shtappool", kStackMac});
  BOOST_REQUIRE_MESSAGE(r.device, r.error);
  TapDevice& dev = *r.device;
  BufferPool pool(1);
  dev.attach(pool);
  PacketPtr held = pool.alloc();
  PacketPtr frames[4];
  BOOST_CHECK_EQUAL(dev.rx_burst(frames, 4), 0u);
  BOOST_CHECK_EQUAL(dev.counters().rx_no_buffer, 1u);
  BOOST_CHECK_EQUAL(dev.counters().rx_errors, 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace shunt
