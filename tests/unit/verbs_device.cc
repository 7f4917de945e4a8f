// The verbs driver (stack/driver/verbs/verbs_device.h) over a fake of the verbs calls
// (tests/support/verbs_fake.h): open's error lines, two stacks talking UDP and TCP through it,
// hostile messages, recovery from error completions. And SHUNT_DEVICE=verbs:... on this host.
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <string>

#include "stack/core/clock.h"
#include "stack/driver/device_registry.h"
#include "stack/driver/verbs/verbs_device.h"
#include "stack/net/stack.h"
#include "tests/support/verbs_fake.h"
#include "tests/support/verbs_pingpong.h"
#include "tests/support/verbs_print.h"

namespace shunt {
namespace {

using test::FakeVerbs;

std::string open_error(FakeVerbs& fake, VerbsOptions o = {}) {
  if (o.device.empty()) o.device = "rxe0";
  auto r = VerbsDevice::open(o, fake);
  return r.device ? "" : r.error;
}

BOOST_AUTO_TEST_CASE(without_rdma_in_the_kernel_open_says_so_in_one_line) {
  FakeVerbs fake;
  fake.no_kernel = true;
  BOOST_TEST(open_error(fake) ==
             "verbs: no RDMA support in this kernel (ibv_get_device_list: Function not implemented); soft-RoCE needs "
             "a kernel with rdma_rxe, see docs/hardware.md");
}

BOOST_AUTO_TEST_CASE(the_real_device_list_on_this_host_gives_one_clear_line_or_a_device) {
  MonotonicClock clock;
  OpenedDevice d = open_device("verbs:rxe0", clock, Config{});
  if (d.device) {  // a machine with rxe0
    BOOST_TEST(d.device->info().name == "verbs:rxe0");
    return;
  }
  BOOST_TEST(d.error.rfind("SHUNT_DEVICE=verbs:rxe0: verbs: ", 0) == 0u);
  BOOST_TEST(d.error.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(open_errors_name_the_device_and_what_to_do) {
  FakeVerbs fake;
  VerbsOptions o;
  o.device = "rxe7";
  BOOST_TEST(open_error(fake, o) == "verbs: no RDMA device named rxe7 (found: rxe0)");
  fake.names = {};
  BOOST_TEST(open_error(fake).find("verbs: no RDMA devices (for soft-RoCE: modprobe rdma_rxe") == 0u);
  fake.names = {"mlx5_0"};
  o.device = "mlx5_0";
  BOOST_TEST(open_error(fake, o) ==
             "verbs: mlx5_0 is a ConnectX (mlx5): use SHUNT_DEVICE=mlx5:mlx5_0 (its raw packet queues, no "
             "encapsulation), or add allow_mlx5=1 to carry IP in UD messages anyway");
  o.allow_mlx5 = true;
  BOOST_TEST(open_error(fake, o) == "");
  FakeVerbs down;
  down.port_state = IBV_PORT_DOWN;
  BOOST_TEST(open_error(down) == "verbs: port 1 of rxe0 is not active (state DOWN): is its network interface up?");
  FakeVerbs f2;
  VerbsOptions p;
  p.port = 2;
  BOOST_TEST(open_error(f2, p) == "verbs: rxe0: ibv_query_port(port 2) failed: Invalid argument (no such port)");
  p = {};
  p.mtu = 1021;
  BOOST_TEST(open_error(f2, p) == "verbs: mtu=1021 is larger than rxe0 carries (1020: active MTU 1024 - 4)");
  p = {};
  p.gid_index = 5;
  BOOST_TEST(open_error(f2, p) == "verbs: gid=5: port 1 of rxe0 has 2 GIDs");
  FakeVerbs broken;
  broken.modify_fail_state = IBV_QPS_RTR;
  BOOST_TEST(open_error(broken) == "verbs: rxe0: ibv_modify_qp(RTR) failed: Invalid argument");
}

BOOST_AUTO_TEST_CASE(bad_options_in_the_device_spec_are_one_line_each) {
  MonotonicClock clock;
  auto err = [&](const char* spec) { return open_device(spec, clock, Config{}).error; };
  BOOST_TEST(err("verbs:rxe0,colour=red") ==
             "SHUNT_DEVICE=verbs:rxe0,colour=red: unknown option 'colour' for verbs (known: "
             "port|gid|mtu|qkey|group|peers|rx|tx|allow_mlx5)");
  BOOST_TEST(err("verbs:rxe0,port=0") == "SHUNT_DEVICE=verbs:rxe0,port=0: port=0: expected an integer in [1, 255]");
  BOOST_TEST(err("verbs:rxe0,group=10.0.0.1") ==
             "SHUNT_DEVICE=verbs:rxe0,group=10.0.0.1: group=10.0.0.1: expected an IPv4 multicast address (224.0.0.0/4)");
  BOOST_TEST(err("verbs:rxe0,mtu=9000") == "SHUNT_DEVICE=verbs:rxe0,mtu=9000: mtu=9000: expected an integer in [68, 4092]");
  BOOST_TEST(err("verbs:rxe0,allow_mlx5=yes") ==
             "SHUNT_DEVICE=verbs:rxe0,allow_mlx5=yes: allow_mlx5=yes: expected an integer in [0, 1]");
}

BOOST_AUTO_TEST_CASE(open_picks_the_ipv4_mapped_gid_joins_the_group_and_derives_mac_and_mtu) {
  FakeVerbs fake;
  auto r = VerbsDevice::open({}, fake);
  BOOST_REQUIRE(r.device);
  VerbsDevice& d = *r.device;
  BOOST_TEST(d.gid_index() == 1);
  BOOST_TEST(d.gid().str() == "::ffff:10.0.2.15");
  BOOST_TEST(d.info().mac.str() == verbs::ud_mac(d.gid(), d.qpn()).str());
  BOOST_TEST(d.info().mtu == 1020u);
  BOOST_TEST(d.info().name == "verbs:rxe0");
  BOOST_TEST(fake.mcast_attached == 1);
  BOOST_TEST(fake.joins == 1);
  VerbsOptions o;
  o.gid_index = 0;
  FakeVerbs f2;
  auto r2 = VerbsDevice::open(o, f2);
  BOOST_REQUIRE(r2.device);
  BOOST_TEST(r2.device->gid().is_link_local());
  BOOST_TEST(f2.joins == 0);  // an IPv6 GID: no IPv4 group to join in the kernel
}

BOOST_AUTO_TEST_CASE(two_stacks_talk_udp_and_tcp_through_the_driver) {
  FakeVerbs fake;
  VirtualClock clock;
  Config config;
  config.buffers = 4096;
  auto da = VerbsDevice::open({}, fake), db = VerbsDevice::open({}, fake);
  BOOST_REQUIRE(da.device);
  BOOST_REQUIRE(db.device);
  {
    Stack a(*da.device, clock, config), b(*db.device, clock, config);
    a.add_address(IpAddr(Ipv4Addr{0x0a4d0001}), 24);
    b.add_address(IpAddr(Ipv4Addr{0x0a4d0002}), 24);
    test::PingPongOptions o;
    o.udp_rounds = 100;
    o.tcp_bytes = 256 * 1024;
    o.tick = [&] { clock.advance(10 * kMicro); };
    test::PingPongResult res = test::run_pingpong(a, b, clock, o);
    BOOST_TEST_MESSAGE(res.what);
    BOOST_TEST(res.ok, res.what);
    const Counters& ca = da.device->counters();
    BOOST_TEST(ca.get("verbs.ah.created") == 1u);  // one peer, one address handle
    BOOST_TEST(ca.get("verbs.peer.learned") == 1u);
    BOOST_TEST(ca.get("verbs.rx.own_loop") >= 1u);  // its own ARP request, back from the group
    BOOST_TEST(ca.sum("verbs.rx.drop") == 0u);
    BOOST_TEST(ca.sum("verbs.tx.drop") == 0u);
    BOOST_TEST(ca.sum("verbs.recover") == 0u);
    BOOST_TEST(da.device->peers().size() == 1u);
  }
  // The stacks are gone: every buffer they posted came back (the pools would have complained).
  BOOST_TEST(fake.live_ahs == 2 + 2);  // each device's group handle and peer handle, until closed
  da.device.reset();
  db.device.reset();
  BOOST_TEST(fake.live_ahs == 0);
  BOOST_TEST(fake.closes == 2);
}

BOOST_AUTO_TEST_CASE(hostile_messages_are_dropped_counted_and_their_buffers_posted_again) {
  FakeVerbs fake;
  auto r = VerbsDevice::open({}, fake);
  BOOST_REQUIRE(r.device);
  VerbsDevice& d = *r.device;
  BufferPool pool(256);
  d.attach(pool);
  const size_t posted = fake.posted_receives(d.qpn());
  BOOST_TEST(posted == 64u);  // a quarter of the pool
  const uint8_t shortmsg[] = {0x08};
  const uint8_t reserved[] = {0x08, 0x00, 0x04, 0x00, 0x45};
  const uint8_t lldp[] = {0x88, 0xcc, 0x00, 0x00, 0x00};
  const uint8_t good[] = {0x08, 0x06, 0x00, 0x00, 0x00, 0x01};
  fake.inject(d.qpn(), shortmsg, sizeof shortmsg, 99);
  fake.inject(d.qpn(), reserved, sizeof reserved, 99);
  fake.inject(d.qpn(), lldp, sizeof lldp, 99);
  fake.inject(d.qpn(), good, sizeof good, 99, /*grh=*/false);
  fake.inject(d.qpn(), good, sizeof good, 99);
  PacketPtr out[8];
  BOOST_TEST(d.rx_burst(out, 8) == 1u);
  BOOST_TEST(out[0]->size() == 14u + 2u);
  BOOST_TEST(MacAddr::read(out[0]->data() + 6) == verbs::ud_mac(fake.gids[1], 99));
  const Counters& c = d.counters();
  BOOST_TEST(c.get("verbs.rx.drop.runt") == 1u);
  BOOST_TEST(c.get("verbs.rx.drop.reserved") == 1u);
  BOOST_TEST(c.get("verbs.rx.drop.ethertype") == 1u);
  BOOST_TEST(c.get("verbs.rx.drop.no_grh") == 1u);
  BOOST_TEST(fake.posted_receives(d.qpn()) == posted);  // refilled
  out[0].reset();
  // A frame to a MAC never heard from cannot be addressed: dropped, counted.
  PacketPtr f = pool.alloc();
  uint8_t* p = f->append(14 + 20);
  std::memset(p, 0, 34);
  p[0] = 0x02;
  p[5] = 0x77;
  store16(p + 12, 0x0800);
  BOOST_TEST(d.tx_burst(&f, 1) == 0u);
  BOOST_TEST(c.get("verbs.tx.drop.unknown_peer") == 1u);
  d.detach();
  BOOST_TEST(pool.available() == pool.capacity());
}

BOOST_AUTO_TEST_CASE(an_error_completion_recovers_the_qp_and_traffic_resumes) {
  FakeVerbs fake;
  VirtualClock clock;
  Config config;
  auto da = VerbsDevice::open({}, fake), db = VerbsDevice::open({}, fake);
  BOOST_REQUIRE(da.device);
  BOOST_REQUIRE(db.device);
  const uint32_t qpn_a = da.device->qpn();
  {
    Stack a(*da.device, clock, config), b(*db.device, clock, config);
    a.add_address(IpAddr(Ipv4Addr{0x0a4d0001}), 24);
    b.add_address(IpAddr(Ipv4Addr{0x0a4d0002}), 24);
    // The 40th send fails (a protection error): the QP goes to the error state mid-transfer.
    fake.send_errors = 1;
    fake.sends_before_error = 40;
    test::PingPongOptions o;
    o.udp_rounds = 50;
    o.tcp_bytes = 128 * 1024;
    o.tick = [&] { clock.advance(50 * kMicro); };
    test::PingPongResult res = test::run_pingpong(a, b, clock, o);
    BOOST_TEST(res.ok, res.what);
    uint64_t errors = 0, ok = 0;
    for (VerbsDevice* d : {da.device.get(), db.device.get()}) {
      errors += d->counters().get("verbs.tx.error.local_protection");
      ok += d->counters().get("verbs.recover.ok");
      BOOST_TEST(!d->recovering());
    }
    BOOST_TEST(errors == 1u);
    BOOST_TEST(ok == 1u);
    // The failed QP went RESET -> INIT -> RTR -> RTS again.
    int resets = 0;
    for (const std::string& s : fake.modify_log) resets += s.find(":RESET") != std::string::npos;
    BOOST_TEST(resets == 1);
    // A receive error later: the same again, on a's QP.
    fake.fail_next_receive(qpn_a, IBV_WC_LOC_LEN_ERR);
    PacketPtr out[4];
    da.device->rx_burst(out, 4);
    BOOST_TEST(da.device->recovering());
    BOOST_TEST(da.device->counters().get("verbs.rx.error.local_length") == 1u);
    BOOST_TEST(da.device->counters().get("verbs.rx.flushed") > 0u);
    da.device->service(clock.now());
    BOOST_TEST(!da.device->recovering());
    BOOST_TEST(fake.posted_receives(qpn_a) > 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_recovery_that_fails_is_retried_with_a_back_off) {
  FakeVerbs fake;
  auto r = VerbsDevice::open({}, fake);
  BOOST_REQUIRE(r.device);
  VerbsDevice& d = *r.device;
  BufferPool pool(256);
  d.attach(pool);
  fake.fail_next_receive(d.qpn(), IBV_WC_GENERAL_ERR);
  PacketPtr out[4];
  d.rx_burst(out, 4);
  BOOST_TEST(d.recovering());
  fake.modify_fail_state = IBV_QPS_INIT;
  const Nanos next = d.service(1000);
  BOOST_TEST(d.recovering());
  BOOST_TEST(next == 1000 + 10 * kMilli);
  BOOST_TEST(d.counters().get("verbs.recover.failed") == 1u);
  BOOST_TEST(d.service(2000) == next);  // not before its time
  fake.modify_fail_state = -1;
  d.service(next);
  BOOST_TEST(!d.recovering());
  BOOST_TEST(d.counters().get("verbs.recover.ok") == 1u);
  d.detach();
  BOOST_TEST(pool.available() == pool.capacity());
}

}  // namespace
}  // namespace shunt
