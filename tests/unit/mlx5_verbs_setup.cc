// The real-ConnectX binding (stack/driver/mlx5/verbs_binding.h) against a fake rdma-core: the
// set-up sequence and its arguments, the steering rules, the mlx5dv -> Mlx5Rings translation,
// every step failing in turn (one clear line, nothing leaked), the doorbell bytes and BlueFlame
// toggling into plain memory, recovery. Then the real rdma-core on this machine: with no RDMA
// device, opening fails with exactly the no-device line.
#include <arpa/inet.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "stack/driver/mlx5/verbs_binding.h"

using namespace shunt;

namespace shunt {
// How Boost.Test prints addresses in a failed check (found by argument-dependent lookup).
inline std::ostream& boost_test_print_type(std::ostream& o, const MacAddr& m) { return o << m.str(); }
inline std::ostream& boost_test_print_type(std::ostream& o, const Ipv6Addr& a) { return o << a.str(); }
}  // namespace shunt

namespace {

// A fake rdma-core: records every call and its arguments, owns every object it hands out (so a
// leak or double destroy is seen), and fails the nth call of a chosen name with a chosen errno.
struct FakeVerbs {
  struct Device {
    std::string name;
    bool mlx5 = true;
  };
  std::vector<Device> devices{{"mlx5_0", true}};
  bool list_fails = false;  // ibv_get_device_list returns NULL with ENOSYS (no uverbs in the kernel)

  ibv_port_attr port{};
  std::string netdev_mtu = "1500";
  std::string netdev_mac = "02:00:00:00:00:aa";

  // What mlx5dv_init_obj reports.
  uint32_t sq_cnt = 8, sq_stride = 64, rq_cnt = 8, rq_stride = 16, bf_size = 256;
  uint32_t scq_cnt = 8, rcq_cnt = 8, scq_size = 64, rcq_size = 64;
  alignas(64) uint8_t sq[8 * 64] = {};
  alignas(64) uint8_t rq[8 * 16] = {};
  alignas(64) uint8_t scq_buf[8 * 64] = {};
  alignas(64) uint8_t rcq_buf[8 * 64] = {};
  alignas(64) uint8_t uar[2 * 256] = {};  // the BlueFlame register, as plain memory
  uint32_t qp_dbrec[2] = {}, scq_dbrec[2] = {}, rcq_dbrec[2] = {};

  // Failure injection: the `fail_nth` call (0-based) named `fail_on` fails with `fail_errno`.
  std::string fail_on;
  int fail_nth = 0;
  int fail_errno = EPERM;
  std::map<std::string, int> seen;

  // The record.
  std::vector<std::string> calls;
  std::map<const void*, std::string> live;  // object -> "kind#id"
  int next_id = 0;
  int lists_out = 0;
  std::vector<int> cq_sizes;
  ibv_qp_init_attr qp_attr{};
  struct Modify {
    ibv_qp_state state;
    int mask;
    uint8_t port;
  };
  std::vector<Modify> modifies;
  std::vector<std::vector<uint8_t>> flows;  // each ibv_flow_attr with its specs, as passed
  std::vector<int> mr_access;

  std::vector<ibv_device> dev_structs;
  std::vector<ibv_device*> dev_list;

  FakeVerbs() {
    port.state = IBV_PORT_ACTIVE;
    port.link_layer = IBV_LINK_LAYER_ETHERNET;
    port.active_mtu = IBV_MTU_1024;
  }
  bool should_fail(const std::string& name) {
    int n = seen[name]++;
    if (name == fail_on && n == fail_nth) {
      errno = fail_errno;
      return true;
    }
    return false;
  }
  template <class T>
  T* make(const std::string& kind) {
    T* p = new T{};
    live[p] = kind + "#" + std::to_string(next_id++);
    calls.push_back("create " + live[p]);
    return p;
  }
  template <class T>
  int destroy(T* p, const std::string& name) {
    auto it = live.find(p);
    if (it == live.end()) {
      calls.push_back("BAD " + name);
      return EINVAL;
    }
    calls.push_back("destroy " + it->second);
    live.erase(it);
    delete p;
    return 0;
  }
};

FakeVerbs* g = nullptr;

const VerbsApi& fake_api() {
  static const VerbsApi api = {
      .get_device_list =
          [](int* n) -> ibv_device** {
        g->calls.push_back("get_device_list");
        if (g->list_fails) {
          errno = ENOSYS;
          *n = 0;
          return nullptr;
        }
        g->dev_structs.assign(g->devices.size(), ibv_device{});
        g->dev_list.clear();
        for (size_t i = 0; i < g->devices.size(); i++) {
          std::snprintf(g->dev_structs[i].name, sizeof g->dev_structs[i].name, "%s", g->devices[i].name.c_str());
          g->dev_list.push_back(&g->dev_structs[i]);
        }
        g->dev_list.push_back(nullptr);
        *n = int(g->devices.size());
        g->lists_out++;
        return g->dev_list.data();
      },
      .free_device_list =
          [](ibv_device**) {
            g->calls.push_back("free_device_list");
            g->lists_out--;
          },
      .get_device_name = [](ibv_device* d) -> const char* { return d->name; },
      .is_mlx5 =
          [](ibv_device* d) {
            for (auto& x : g->devices)
              if (x.name == d->name) return x.mlx5;
            return false;
          },
      .open_device = [](ibv_device* d) -> ibv_context* {
        if (g->should_fail("open_device")) return nullptr;
        auto* c = g->make<ibv_context>("context");
        c->device = d;
        return c;
      },
      .close_device = [](ibv_context* c) { return g->destroy(c, "close_device"); },
      .query_port =
          [](ibv_context*, uint8_t port, ibv_port_attr* a) {
            g->calls.push_back("query_port " + std::to_string(port));
            if (g->should_fail("query_port")) return g->fail_errno;
            *a = g->port;
            return 0;
          },
      .alloc_pd = [](ibv_context*) -> ibv_pd* {
        if (g->should_fail("alloc_pd")) return nullptr;
        return g->make<ibv_pd>("pd");
      },
      .dealloc_pd = [](ibv_pd* pd) { return g->destroy(pd, "dealloc_pd"); },
      .reg_mr = [](ibv_pd*, void* addr, size_t len, int access) -> ibv_mr* {
        g->mr_access.push_back(access);
        if (g->should_fail("reg_mr")) return nullptr;
        auto* mr = g->make<ibv_mr>("mr");
        mr->addr = addr;
        mr->length = len;
        mr->lkey = 0xabc0 + uint32_t(g->mr_access.size());
        return mr;
      },
      .dereg_mr = [](ibv_mr* mr) { return g->destroy(mr, "dereg_mr"); },
      .create_cq = [](ibv_context*, int cqe, void*, ibv_comp_channel*, int) -> ibv_cq* {
        g->cq_sizes.push_back(cqe);
        if (g->should_fail("create_cq")) return nullptr;
        return g->make<ibv_cq>("cq");
      },
      .destroy_cq = [](ibv_cq* cq) { return g->destroy(cq, "destroy_cq"); },
      .create_qp = [](ibv_pd*, ibv_qp_init_attr* a) -> ibv_qp* {
        g->qp_attr = *a;
        if (g->should_fail("create_qp")) return nullptr;
        auto* qp = g->make<ibv_qp>("qp");
        qp->qp_num = 0x1d2;
        qp->qp_type = a->qp_type;
        return qp;
      },
      .destroy_qp = [](ibv_qp* qp) { return g->destroy(qp, "destroy_qp"); },
      .modify_qp =
          [](ibv_qp*, ibv_qp_attr* a, int mask) {
            g->modifies.push_back({a->qp_state, mask, a->port_num});
            g->calls.push_back("modify_qp " + std::to_string(int(a->qp_state)));
            if (g->should_fail("modify_qp")) return g->fail_errno;
            return 0;
          },
      .create_flow = [](ibv_qp*, ibv_flow_attr* f) -> ibv_flow* {
        const auto* p = reinterpret_cast<const uint8_t*>(f);
        g->flows.emplace_back(p, p + f->size);
        if (g->should_fail("create_flow")) return nullptr;
        return g->make<ibv_flow>("flow");
      },
      .destroy_flow = [](ibv_flow* f) { return g->destroy(f, "destroy_flow"); },
      .mlx5dv_init_obj =
          [](mlx5dv_obj* o, uint64_t type) {
            g->calls.push_back("mlx5dv_init_obj " + std::to_string(type));
            if (g->should_fail("mlx5dv_init_obj")) return g->fail_errno;
            if (type == MLX5DV_OBJ_QP) {
              mlx5dv_qp& q = *o->qp.out;
              q.dbrec = g->qp_dbrec;
              q.sq = {g->sq, g->sq_cnt, g->sq_stride};
              q.rq = {g->rq, g->rq_cnt, g->rq_stride};
              q.bf = {g->uar, g->bf_size};
            } else if (type == MLX5DV_OBJ_CQ) {
              bool send = g->seen["mlx5dv_init_obj"] == 2;
              mlx5dv_cq& c = *o->cq.out;
              c.buf = send ? g->scq_buf : g->rcq_buf;
              c.dbrec = send ? g->scq_dbrec : g->rcq_dbrec;
              c.cqe_cnt = send ? g->scq_cnt : g->rcq_cnt;
              c.cqe_size = send ? g->scq_size : g->rcq_size;
              c.cqn = send ? 0x51 : 0x52;
            } else {
              return EINVAL;
            }
            return 0;
          },
      .netdev_attr =
          [](ibv_device*, uint8_t, const char* attr) {
            return std::string(attr) == "mtu" ? g->netdev_mtu : g->netdev_mac;
          },
  };
  return api;
}

struct Fixture {
  FakeVerbs fake;
  VerbsBindingOptions opts;
  Mlx5QueueSizes sizes;
  Fixture() {
    g = &fake;
    opts.device = "mlx5_0";
    opts.mac = *MacAddr::parse("02:00:00:00:00:01");
    opts.ipv4 = {*Ipv4Addr::parse("10.0.0.2")};
    opts.ipv6 = {*Ipv6Addr::parse("2001:db8::2")};
    sizes.sq_wqebbs = 8;
    sizes.rq_wqes = 8;
    sizes.send_cqes = 8;
    sizes.recv_cqes = 8;
    sizes.max_inline = 204;
  }
  ~Fixture() { g = nullptr; }
  void expect_clean() {
    BOOST_TEST(fake.live.empty(), "leaked objects: " << fake.live.size());
    for (auto& [p, what] : fake.live) BOOST_TEST_MESSAGE("leaked " << what);
    BOOST_TEST(fake.lists_out == 0);
    for (auto& c : fake.calls) BOOST_TEST(c.rfind("BAD", 0) != 0, c);
  }
};

// A parsed flow rule, as the fake saw it.
struct Rule {
  ibv_flow_attr attr{};
  ibv_flow_spec_eth eth{};
  bool has_v4 = false, has_v6 = false;
  ibv_flow_spec_ipv4 v4{};
  ibv_flow_spec_ipv6 v6{};
};
Rule parse_rule(const std::vector<uint8_t>& bytes) {
  Rule r;
  std::memcpy(&r.attr, bytes.data(), sizeof r.attr);
  size_t off = sizeof r.attr;
  for (int i = 0; i < r.attr.num_of_specs; i++) {
    ibv_flow_spec hdr{};
    std::memcpy(&hdr.hdr, bytes.data() + off, sizeof hdr.hdr);
    BOOST_REQUIRE(off + hdr.hdr.size <= bytes.size());
    if (hdr.hdr.type == IBV_FLOW_SPEC_ETH) {
      BOOST_REQUIRE(hdr.hdr.size == sizeof r.eth);
      std::memcpy(&r.eth, bytes.data() + off, sizeof r.eth);
    } else if (hdr.hdr.type == IBV_FLOW_SPEC_IPV4) {
      BOOST_REQUIRE(hdr.hdr.size == sizeof r.v4);
      std::memcpy(&r.v4, bytes.data() + off, sizeof r.v4);
      r.has_v4 = true;
    } else if (hdr.hdr.type == IBV_FLOW_SPEC_IPV6) {
      BOOST_REQUIRE(hdr.hdr.size == sizeof r.v6);
      std::memcpy(&r.v6, bytes.data() + off, sizeof r.v6);
      r.has_v6 = true;
    } else {
      BOOST_FAIL("unexpected spec type");
    }
    off += hdr.hdr.size;
  }
  BOOST_TEST(off == bytes.size());
  BOOST_TEST(r.attr.size == bytes.size());
  return r;
}

MacAddr mac_of(const uint8_t* p) { return MacAddr::read(p); }
bool all_ff(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0xff) return false;
  return true;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(mlx5_verbs_setup, Fixture)

BOOST_AUTO_TEST_CASE(open_creates_a_raw_packet_qp_moves_it_to_rts_and_reports_its_rings) {
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_TEST(b.open(sizes, r) == "");
  // The order of creation.
  std::vector<std::string> creates;
  for (auto& c : fake.calls)
    if (c.rfind("create ", 0) == 0) creates.push_back(c.substr(7, c.find('#') - 7));
  std::vector<std::string> want = {"context", "pd", "cq", "cq", "qp", "flow", "flow", "flow",
                                   "flow",    "flow", "flow", "flow", "flow"};
  BOOST_TEST(creates == want, boost::test_tools::per_element());
  BOOST_TEST(fake.lists_out == 0);
  // CQs: n - 1 asked, so libmlx5's power of two above it is n.
  BOOST_TEST(fake.cq_sizes == std::vector<int>({7, 7}), boost::test_tools::per_element());
  // The QP.
  BOOST_TEST(fake.qp_attr.qp_type == IBV_QPT_RAW_PACKET);
  BOOST_TEST(fake.qp_attr.cap.max_send_wr == 8u);
  BOOST_TEST(fake.qp_attr.cap.max_recv_wr == 8u);
  BOOST_TEST(fake.qp_attr.cap.max_recv_sge == 1u);
  BOOST_TEST(fake.qp_attr.cap.max_send_sge >= 1u);
  BOOST_TEST(fake.qp_attr.cap.max_inline_data == 204u);
  BOOST_TEST(fake.qp_attr.sq_sig_all == 0);
  BOOST_TEST(fake.qp_attr.send_cq != nullptr);
  BOOST_TEST(fake.qp_attr.recv_cq != nullptr);
  BOOST_TEST(fake.qp_attr.send_cq != fake.qp_attr.recv_cq);
  // INIT (with the port), RTR, RTS.
  BOOST_REQUIRE(fake.modifies.size() == 3u);
  BOOST_TEST(fake.modifies[0].state == IBV_QPS_INIT);
  BOOST_TEST(fake.modifies[0].mask == (IBV_QP_STATE | IBV_QP_PORT));
  BOOST_TEST(fake.modifies[0].port == 1);
  BOOST_TEST(fake.modifies[1].state == IBV_QPS_RTR);
  BOOST_TEST(fake.modifies[1].mask == IBV_QP_STATE);
  BOOST_TEST(fake.modifies[2].state == IBV_QPS_RTS);
  BOOST_TEST(fake.modifies[2].mask == IBV_QP_STATE);
  // Port queried before anything was created on it; rings asked for after the rules.
  BOOST_TEST(fake.calls.at(1) == "create context#0");
  BOOST_TEST(fake.calls.at(3) == "query_port 1");
  std::vector<std::string> dv;
  for (auto& c : fake.calls)
    if (c.rfind("mlx5dv_init_obj", 0) == 0) dv.push_back(c);
  BOOST_TEST(dv == std::vector<std::string>({"mlx5dv_init_obj 1", "mlx5dv_init_obj 2", "mlx5dv_init_obj 2"}),
             boost::test_tools::per_element());
  // The rings.
  BOOST_TEST(r.qpn == 0x1d2u);
  BOOST_TEST(r.dbrec == fake.qp_dbrec);
  BOOST_TEST(r.sq.buf == fake.sq);
  BOOST_TEST(r.sq.wqe_cnt == 8u);
  BOOST_TEST(r.sq.stride == 64u);
  BOOST_TEST(r.rq.buf == fake.rq);
  BOOST_TEST(r.rq.wqe_cnt == 8u);
  BOOST_TEST(r.rq.stride == 16u);
  BOOST_TEST(r.send_cq.buf == fake.scq_buf);
  BOOST_TEST(r.send_cq.dbrec == fake.scq_dbrec);
  BOOST_TEST(r.send_cq.cqe_cnt == 8u);
  BOOST_TEST(r.send_cq.cqe_size == 64u);
  BOOST_TEST(r.send_cq.cqn == 0x51u);
  BOOST_TEST(r.recv_cq.buf == fake.rcq_buf);
  BOOST_TEST(r.recv_cq.dbrec == fake.rcq_dbrec);
  BOOST_TEST(r.recv_cq.cqn == 0x52u);
  BOOST_TEST(r.bf_size == 256u);
  // The port as the stack sees it.
  BOOST_TEST(b.info().name == "mlx5:mlx5_0");
  BOOST_TEST(b.info().mac == opts.mac);
  BOOST_TEST(b.info().mtu == 1500u);
  BOOST_TEST(b.info().rx_checksum);
  BOOST_TEST(b.info().tx_checksum);
}

BOOST_AUTO_TEST_CASE(steering_traps_the_stacks_unicast_and_shares_arp_and_ndp_multicast_with_the_kernel) {
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  std::vector<std::string> names;
  for (auto& f : b.flow_rules()) names.push_back(f.what);
  std::vector<std::string> want = {"ipv4 10.0.0.2",
                                   "ipv6 fe80::ff:fe00:1",
                                   "ipv6 2001:db8::2",
                                   "arp unicast (dont-trap)",
                                   "arp broadcast (dont-trap)",
                                   "ipv6 ff02::1:ff00:1 (dont-trap)",
                                   "ipv6 ff02::1:ff00:2 (dont-trap)",
                                   "ipv6 ff02::1 (dont-trap)"};
  BOOST_TEST(names == want, boost::test_tools::per_element());
  BOOST_REQUIRE(fake.flows.size() == want.size());

  std::vector<Rule> rules;
  for (auto& bytes : fake.flows) rules.push_back(parse_rule(bytes));
  for (size_t i = 0; i < rules.size(); i++) {
    const Rule& x = rules[i];
    BOOST_TEST_CONTEXT("rule " << want[i]) {
      BOOST_TEST(x.attr.type == IBV_FLOW_ATTR_NORMAL);
      BOOST_TEST(x.attr.port == 1);
      BOOST_TEST(x.attr.priority == 0);
      bool dont_trap = i >= 3;
      BOOST_TEST(x.attr.flags == (dont_trap ? uint32_t(IBV_FLOW_ATTR_FLAGS_DONT_TRAP) : 0u));
      BOOST_TEST(b.flow_rules()[i].dont_trap == dont_trap);
      BOOST_TEST(x.eth.type == IBV_FLOW_SPEC_ETH);
      BOOST_TEST(all_ff(x.eth.mask.dst_mac, 6));
      BOOST_TEST(x.eth.mask.ether_type == 0xffff);
      BOOST_TEST(x.eth.mask.vlan_tag == 0);
      BOOST_TEST(x.eth.mask.src_mac[0] == 0);
    }
  }
  // Unicast IPv4: our MAC, IPv4, 10.0.0.2 in network order, fully masked.
  BOOST_TEST(mac_of(rules[0].eth.val.dst_mac) == opts.mac);
  BOOST_TEST(ntohs(rules[0].eth.val.ether_type) == 0x0800);
  BOOST_TEST(rules[0].has_v4);
  BOOST_TEST(rules[0].attr.num_of_specs == 2);
  BOOST_TEST(ntohl(rules[0].v4.val.dst_ip) == 0x0a000002u);
  BOOST_TEST(rules[0].v4.mask.dst_ip == 0xffffffffu);
  BOOST_TEST(rules[0].v4.mask.src_ip == 0u);
  // Unicast IPv6: the link-local address from the MAC, then the configured one.
  for (int i : {1, 2}) {
    BOOST_TEST(mac_of(rules[i].eth.val.dst_mac) == opts.mac);
    BOOST_TEST(ntohs(rules[i].eth.val.ether_type) == 0x86dd);
    BOOST_TEST(rules[i].has_v6);
    BOOST_TEST(all_ff(rules[i].v6.mask.dst_ip, 16));
    BOOST_TEST(rules[i].v6.mask.src_ip[0] == 0);
  }
  BOOST_TEST(Ipv6Addr::read(rules[1].v6.val.dst_ip) == Ipv6Addr::link_local_from_mac(opts.mac));
  BOOST_TEST(Ipv6Addr::read(rules[2].v6.val.dst_ip) == opts.ipv6[0]);
  // ARP to our MAC and to broadcast, Ethernet only.
  BOOST_TEST(mac_of(rules[3].eth.val.dst_mac) == opts.mac);
  BOOST_TEST(mac_of(rules[4].eth.val.dst_mac) == MacAddr::broadcast());
  for (int i : {3, 4}) {
    BOOST_TEST(ntohs(rules[i].eth.val.ether_type) == 0x0806);
    BOOST_TEST(rules[i].attr.num_of_specs == 1);
  }
  // Solicited-node groups (one per distinct low 24 bits) and all-nodes, on their 33:33 MACs.
  BOOST_TEST(mac_of(rules[5].eth.val.dst_mac) == *MacAddr::parse("33:33:ff:00:00:01"));
  BOOST_TEST(Ipv6Addr::read(rules[5].v6.val.dst_ip) == *Ipv6Addr::parse("ff02::1:ff00:1"));
  BOOST_TEST(mac_of(rules[6].eth.val.dst_mac) == *MacAddr::parse("33:33:ff:00:00:02"));
  BOOST_TEST(Ipv6Addr::read(rules[6].v6.val.dst_ip) == *Ipv6Addr::parse("ff02::1:ff00:2"));
  BOOST_TEST(mac_of(rules[7].eth.val.dst_mac) == *MacAddr::parse("33:33:00:00:00:01"));
  BOOST_TEST(Ipv6Addr::read(rules[7].v6.val.dst_ip) == *Ipv6Addr::parse("ff02::1"));
  for (int i : {5, 6, 7}) BOOST_TEST(ntohs(rules[i].eth.val.ether_type) == 0x86dd);
}

BOOST_AUTO_TEST_CASE(without_ipv4_addresses_no_arp_rules_and_shared_solicited_node_groups_once) {
  opts.ipv4.clear();
  // Same low 24 bits as the link-local address of 02:00:00:00:00:01: one group for both.
  opts.ipv6 = {*Ipv6Addr::parse("2001:db8::1"), *Ipv6Addr::parse("2001:db8::1")};
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  std::vector<std::string> names;
  for (auto& f : b.flow_rules()) names.push_back(f.what);
  std::vector<std::string> want = {"ipv6 fe80::ff:fe00:1", "ipv6 2001:db8::1", "ipv6 ff02::1:ff00:1 (dont-trap)",
                                   "ipv6 ff02::1 (dont-trap)"};
  BOOST_TEST(names == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(teardown_destroys_everything_in_reverse_order) {
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_REQUIRE(b.open(sizes, r) == "");
    std::string err;
    char pool[4096];
    BOOST_TEST(b.register_memory(pool, sizeof pool, err).value_or(0) == 0xabc1u);
    fake.calls.clear();
  }
  std::vector<std::string> want = {"destroy flow#12", "destroy flow#11", "destroy flow#10", "destroy flow#9",
                                   "destroy flow#8",  "destroy flow#7",  "destroy flow#6",  "destroy flow#5",
                                   "destroy qp#4",    "destroy cq#3",    "destroy cq#2",    "destroy mr#13",
                                   "destroy pd#1",    "destroy context#0"};
  BOOST_TEST(fake.calls == want, boost::test_tools::per_element());
  expect_clean();
}

BOOST_AUTO_TEST_CASE(each_step_failing_gives_one_line_naming_it_and_undoes_everything) {
  struct Case {
    const char* call;
    int nth;
    int err;
    std::string line;
  };
  const std::vector<Case> cases = {
      {"open_device", 0, EACCES,
       "mlx5: ibv_open_device on mlx5_0 failed: Permission denied (no access to /dev/infiniband/uverbs*)"},
      {"query_port", 0, EINVAL, "mlx5: ibv_query_port(port 1) on mlx5_0 failed: Invalid argument"},
      {"alloc_pd", 0, ENOMEM, "mlx5: ibv_alloc_pd on mlx5_0 failed: Cannot allocate memory"},
      {"create_cq", 0, ENOMEM, "mlx5: ibv_create_cq(send) on mlx5_0 failed: Cannot allocate memory"},
      {"create_cq", 1, ENOMEM, "mlx5: ibv_create_cq(receive) on mlx5_0 failed: Cannot allocate memory"},
      {"create_qp", 0, EPERM,
       "mlx5: ibv_create_qp(IBV_QPT_RAW_PACKET) on mlx5_0 failed: Operation not permitted (needs CAP_NET_RAW)"},
      {"create_qp", 0, EINVAL, "mlx5: ibv_create_qp(IBV_QPT_RAW_PACKET) on mlx5_0 failed: Invalid argument"},
      {"modify_qp", 0, EINVAL, "mlx5: ibv_modify_qp(INIT) on mlx5_0 failed: Invalid argument"},
      {"modify_qp", 1, EINVAL, "mlx5: ibv_modify_qp(RTR) on mlx5_0 failed: Invalid argument"},
      {"modify_qp", 2, EINVAL, "mlx5: ibv_modify_qp(RTS) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 0, EPERM,
       "mlx5: ibv_create_flow(ipv4 10.0.0.2) on mlx5_0 failed: Operation not permitted (needs CAP_NET_RAW)"},
      {"create_flow", 1, EINVAL, "mlx5: ibv_create_flow(ipv6 fe80::ff:fe00:1) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 2, EINVAL, "mlx5: ibv_create_flow(ipv6 2001:db8::2) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 3, EOPNOTSUPP,
       "mlx5: ibv_create_flow(arp unicast (dont-trap)) on mlx5_0 failed: Operation not supported"},
      {"create_flow", 4, EINVAL, "mlx5: ibv_create_flow(arp broadcast (dont-trap)) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 5, EINVAL,
       "mlx5: ibv_create_flow(ipv6 ff02::1:ff00:1 (dont-trap)) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 6, EINVAL,
       "mlx5: ibv_create_flow(ipv6 ff02::1:ff00:2 (dont-trap)) on mlx5_0 failed: Invalid argument"},
      {"create_flow", 7, EINVAL, "mlx5: ibv_create_flow(ipv6 ff02::1 (dont-trap)) on mlx5_0 failed: Invalid argument"},
      {"mlx5dv_init_obj", 0, EINVAL, "mlx5: mlx5dv_init_obj(QP) on mlx5_0 failed: Invalid argument"},
      {"mlx5dv_init_obj", 1, EINVAL, "mlx5: mlx5dv_init_obj(send CQ) on mlx5_0 failed: Invalid argument"},
      {"mlx5dv_init_obj", 2, EINVAL, "mlx5: mlx5dv_init_obj(receive CQ) on mlx5_0 failed: Invalid argument"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.call << " #" << c.nth) {
      fake = FakeVerbs{};
      fake.fail_on = c.call;
      fake.fail_nth = c.nth;
      fake.fail_errno = c.err;
      VerbsBinding b(opts, fake_api());
      Mlx5Rings r;
      std::string e = b.open(sizes, r);
      BOOST_TEST(e == c.line);
      BOOST_TEST(e.find('\n') == std::string::npos);
      // Undone at once, not only when the binding goes away.
      expect_clean();
      BOOST_TEST(b.flow_rules().empty());
      BOOST_TEST(r.sq.buf == nullptr);
      std::string err;
      BOOST_TEST(!b.register_memory(&r, 8, err).has_value());
      BOOST_TEST(!b.recover());
    }
  }
}

BOOST_AUTO_TEST_CASE(no_device_missing_device_and_non_mlx5_devices_are_one_clear_line) {
  fake.list_fails = true;
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) ==
               "mlx5: no RDMA device found (ibv_get_device_list returned none); a ConnectX needs the mlx5_core and "
               "mlx5_ib kernel modules and rdma-core");
  }
  fake = FakeVerbs{};
  fake.devices.clear();  // an empty list
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r).rfind("mlx5: no RDMA device found", 0) == 0u);
    expect_clean();
  }
  fake = FakeVerbs{};
  fake.devices = {{"rxe0", false}, {"mlx5_0", true}};
  opts.device = "mlx5_3";
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) == "mlx5: no RDMA device named mlx5_3 (found: rxe0, mlx5_0)");
    expect_clean();
  }
  opts.device = "rxe0";
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) == "mlx5: rxe0 is not an mlx5 (ConnectX) device; its queues cannot be driven directly");
    expect_clean();
  }
  fake.devices = {{"rxe0", false}};
  opts.device = "";
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) == "mlx5: no mlx5 (ConnectX) device among the RDMA devices found (rxe0)");
    expect_clean();
  }
}

BOOST_AUTO_TEST_CASE(no_device_named_picks_the_first_mlx5_device) {
  fake.devices = {{"rxe0", false}, {"mlx5_1", true}, {"mlx5_2", true}};
  opts.device = "";
  VerbsBinding b(opts, fake_api());
  BOOST_TEST(b.info().name == "mlx5:auto");
  Mlx5Rings r;
  BOOST_TEST(b.open(sizes, r) == "");
  BOOST_TEST(b.info().name == "mlx5:mlx5_1");
}

BOOST_AUTO_TEST_CASE(port_down_or_not_ethernet_is_refused_and_undone) {
  fake.port.state = IBV_PORT_DOWN;
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) == "mlx5: port 1 of mlx5_0 is not active (state DOWN): is the cable in and the link up?");
    expect_clean();
  }
  fake = FakeVerbs{};
  fake.port.link_layer = IBV_LINK_LAYER_INFINIBAND;
  opts.port = 2;
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) ==
               "mlx5: port 2 of mlx5_0 is not Ethernet (link layer InfiniBand); raw Ethernet QPs need an Ethernet "
               "port (mlxconfig LINK_TYPE_P1=2)");
    BOOST_TEST(fake.calls.at(3) == "query_port 2");
    expect_clean();
  }
}

BOOST_AUTO_TEST_CASE(ring_layouts_the_driver_cannot_use_are_refused_and_undone) {
  struct Case {
    void (*tweak)(FakeVerbs&);
    std::string line;
  };
  const std::vector<Case> cases = {
      {[](FakeVerbs& f) { f.sq_stride = 128; },
       "mlx5: mlx5dv_init_obj on mlx5_0: send queue stride 128, the driver needs 64"},
      {[](FakeVerbs& f) { f.scq_size = 128; },
       "mlx5: mlx5dv_init_obj on mlx5_0: send CQE size 128, the driver needs 64 (is MLX5_CQE_SIZE=128 set in the "
       "environment?)"},
      {[](FakeVerbs& f) { f.rcq_size = 128; },
       "mlx5: mlx5dv_init_obj on mlx5_0: receive CQE size 128, the driver needs 64 (is MLX5_CQE_SIZE=128 set in the "
       "environment?)"},
      {[](FakeVerbs& f) { f.sq_cnt = 6; },
       "mlx5: mlx5dv_init_obj on mlx5_0: send queue of 6 WQEBBs, expected a power of two >= 8"},
      {[](FakeVerbs& f) { f.rq_cnt = 4; },
       "mlx5: mlx5dv_init_obj on mlx5_0: receive queue of 4 WQEs, expected a power of two >= 8"},
      {[](FakeVerbs& f) { f.rq_stride = 24; },
       "mlx5: mlx5dv_init_obj on mlx5_0: receive queue stride 24, expected a power of two >= 16"},
      {[](FakeVerbs& f) { f.rcq_cnt = 12; },
       "mlx5: mlx5dv_init_obj on mlx5_0: receive CQ of 12 CQEs, expected a power of two >= 8"},
      {[](FakeVerbs& f) { f.bf_size = 100; },
       "mlx5: mlx5dv_init_obj on mlx5_0: BlueFlame size 100 is not a multiple of 64"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.line) {
      fake = FakeVerbs{};
      c.tweak(fake);
      VerbsBinding b(opts, fake_api());
      Mlx5Rings r;
      BOOST_TEST(b.open(sizes, r) == c.line);
      expect_clean();
    }
  }
}

BOOST_AUTO_TEST_CASE(mac_and_mtu_come_from_the_interface_unless_given) {
  opts.mac = MacAddr{};
  fake.netdev_mtu = "9000";
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_REQUIRE(b.open(sizes, r) == "");
    BOOST_TEST(b.info().mac == *MacAddr::parse("02:00:00:00:00:aa"));
    BOOST_TEST(b.info().mtu == 9000u);
    // The rules use the interface's MAC.
    Rule x = parse_rule(fake.flows.at(0));
    BOOST_TEST(mac_of(x.eth.val.dst_mac) == *MacAddr::parse("02:00:00:00:00:aa"));
  }
  // No interface MTU: the port's active (RoCE) MTU, a lower bound.
  fake = FakeVerbs{};
  fake.netdev_mtu = "";
  fake.port.active_mtu = IBV_MTU_4096;
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_REQUIRE(b.open(sizes, r) == "");
    BOOST_TEST(b.info().mtu == 4096u);
  }
  // Given in the options: used as is.
  fake = FakeVerbs{};
  opts.mtu = 1400;
  {
    VerbsBinding b(opts, fake_api());
    BOOST_TEST(b.info().mtu == 1400u);
    Mlx5Rings r;
    BOOST_REQUIRE(b.open(sizes, r) == "");
    BOOST_TEST(b.info().mtu == 1400u);
  }
  // No MAC anywhere.
  fake = FakeVerbs{};
  fake.netdev_mac = "";
  {
    VerbsBinding b(opts, fake_api());
    Mlx5Rings r;
    BOOST_TEST(b.open(sizes, r) ==
               "mlx5: no MAC address given and none found for mlx5_0 port 1 (its Ethernet interface in sysfs); give "
               "one in SHUNT_DEVICE");
    expect_clean();
  }
}

BOOST_AUTO_TEST_CASE(register_memory_pins_for_local_write_and_explains_memlock_failures) {
  VerbsBinding b(opts, fake_api());
  std::string err;
  char pool[256];
  BOOST_TEST(!b.register_memory(pool, sizeof pool, err).has_value());
  BOOST_TEST(err == "mlx5: register_memory() before a successful open()");
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  auto lkey = b.register_memory(pool, sizeof pool, err);
  BOOST_REQUIRE(lkey.has_value());
  BOOST_TEST(*lkey == 0xabc1u);  // the call before open() never reached rdma-core
  BOOST_TEST(fake.mr_access.back() == int(IBV_ACCESS_LOCAL_WRITE));
  fake.fail_on = "reg_mr";
  fake.fail_nth = 1;
  fake.fail_errno = ENOMEM;
  BOOST_TEST(!b.register_memory(pool, 8 << 20, err).has_value());
  BOOST_TEST(err ==
             "mlx5: ibv_reg_mr(8388608 bytes) on mlx5_0 failed: Cannot allocate memory (pinned memory is limited by "
             "RLIMIT_MEMLOCK: raise ulimit -l, see docs/hardware.md)");
}

BOOST_AUTO_TEST_CASE(doorbell_writes_the_first_8_bytes_and_alternates_blueflame_buffers) {
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  for (size_t i = 0; i < sizeof fake.sq; i++) fake.sq[i] = uint8_t(i * 7 + 1);
  const uint8_t* wqe = r.sq.buf + 2 * 64;
  BOOST_TEST(b.bf_offset() == 0u);
  b.ring_send_doorbell(wqe, 0);
  BOOST_TEST(std::memcmp(fake.uar, wqe, 8) == 0);
  for (size_t i = 8; i < sizeof fake.uar; i++) BOOST_TEST_REQUIRE(fake.uar[i] == 0);
  BOOST_TEST(b.bf_offset() == 256u);
  // The next doorbell goes to the other buffer, then back.
  const uint8_t* wqe2 = r.sq.buf + 3 * 64;
  b.ring_send_doorbell(wqe2, 0);
  BOOST_TEST(std::memcmp(fake.uar + 256, wqe2, 8) == 0);
  BOOST_TEST(fake.uar[264] == 0);
  BOOST_TEST(b.bf_offset() == 0u);
  b.ring_send_doorbell(wqe2, 0);
  BOOST_TEST(std::memcmp(fake.uar, wqe2, 8) == 0);
  BOOST_TEST(b.bf_offset() == 256u);
}

BOOST_AUTO_TEST_CASE(blueflame_copies_the_whole_wqe_in_64_byte_chunks_wrapping_at_the_ring_end) {
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  for (size_t i = 0; i < sizeof fake.sq; i++) fake.sq[i] = uint8_t(i * 13 + 5);
  // A 3-WQEBB WQE at slot 6 of 8: slots 6, 7, then 0.
  b.ring_send_doorbell(r.sq.buf + 6 * 64, 192);
  BOOST_TEST(std::memcmp(fake.uar, r.sq.buf + 6 * 64, 128) == 0);
  BOOST_TEST(std::memcmp(fake.uar + 128, r.sq.buf, 64) == 0);
  BOOST_TEST(fake.uar[192] == 0);
  BOOST_TEST(b.bf_offset() == 256u);
  // A whole BlueFlame buffer into the second half.
  b.ring_send_doorbell(r.sq.buf, 256);
  BOOST_TEST(std::memcmp(fake.uar + 256, r.sq.buf, 256) == 0);
  BOOST_TEST(b.bf_offset() == 0u);
  // Bigger than the BlueFlame buffer, or not whole chunks: the plain 8-byte doorbell.
  std::memset(fake.uar, 0, sizeof fake.uar);
  b.ring_send_doorbell(r.sq.buf + 64, 320);
  BOOST_TEST(std::memcmp(fake.uar, r.sq.buf + 64, 8) == 0);
  BOOST_TEST(fake.uar[8] == 0);
  b.ring_send_doorbell(r.sq.buf + 64, 100);
  BOOST_TEST(std::memcmp(fake.uar + 256, r.sq.buf + 64, 8) == 0);
  BOOST_TEST(fake.uar[256 + 8] == 0);
}

BOOST_AUTO_TEST_CASE(without_blueflame_every_doorbell_is_8_bytes_at_the_same_offset) {
  fake.bf_size = 0;
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  BOOST_TEST(r.bf_size == 0u);
  for (size_t i = 0; i < sizeof fake.sq; i++) fake.sq[i] = uint8_t(i + 3);
  b.ring_send_doorbell(r.sq.buf + 64, 64);
  BOOST_TEST(std::memcmp(fake.uar, r.sq.buf + 64, 8) == 0);
  BOOST_TEST(fake.uar[8] == 0);
  BOOST_TEST(b.bf_offset() == 0u);
  b.ring_send_doorbell(r.sq.buf + 128, 0);
  BOOST_TEST(std::memcmp(fake.uar, r.sq.buf + 128, 8) == 0);
  BOOST_TEST(b.bf_offset() == 0u);
}

BOOST_AUTO_TEST_CASE(recover_resets_the_qp_and_brings_it_back_to_rts_keeping_its_rules) {
  VerbsBinding b(opts, fake_api());
  Mlx5Rings r;
  BOOST_REQUIRE(b.open(sizes, r) == "");
  fake.modifies.clear();
  fake.calls.clear();
  BOOST_TEST(b.recover());
  BOOST_REQUIRE(fake.modifies.size() == 4u);
  BOOST_TEST(fake.modifies[0].state == IBV_QPS_RESET);
  BOOST_TEST(fake.modifies[0].mask == IBV_QP_STATE);
  BOOST_TEST(fake.modifies[1].state == IBV_QPS_INIT);
  BOOST_TEST(fake.modifies[1].mask == (IBV_QP_STATE | IBV_QP_PORT));
  BOOST_TEST(fake.modifies[1].port == 1);
  BOOST_TEST(fake.modifies[2].state == IBV_QPS_RTR);
  BOOST_TEST(fake.modifies[2].mask == IBV_QP_STATE);
  BOOST_TEST(fake.modifies[3].state == IBV_QPS_RTS);
  BOOST_TEST(fake.modifies[3].mask == IBV_QP_STATE);
  // Nothing created or destroyed: the rules and rings stay.
  for (auto& c : fake.calls) BOOST_TEST(c.rfind("modify_qp", 0) == 0u, c);
  BOOST_TEST(b.flow_rules().size() == 8u);

  // A step that fails: recovery reports false, the binding stays whole for its destructor.
  fake.fail_on = "modify_qp";
  fake.fail_nth = fake.seen["modify_qp"] + 2;  // RTR of the next recovery
  fake.fail_errno = EIO;
  fake.modifies.clear();
  BOOST_TEST(!b.recover());
  BOOST_TEST(fake.modifies.size() == 3u);
  BOOST_TEST(fake.live.size() == 13u);
}

BOOST_AUTO_TEST_SUITE_END()

// With the real rdma-core. This machine has no RDMA device; where one exists the case says so.
BOOST_AUTO_TEST_CASE(real_rdma_core_without_a_device_fails_with_the_no_device_line) {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list) ibv_free_device_list(list);
  if (list && n > 0) {
    BOOST_TEST_MESSAGE("skipped: this machine has " << n << " RDMA device(s); the no-device line cannot be seen");
    return;
  }
  VerbsBindingOptions opts;
  opts.device = "mlx5_0";
  opts.mac = *MacAddr::parse("02:00:00:00:00:01");
  VerbsBinding b(opts);
  Mlx5Rings r;
  BOOST_TEST(b.open(Mlx5QueueSizes{}, r) ==
             "mlx5: no RDMA device found (ibv_get_device_list returned none); a ConnectX needs the mlx5_core and "
             "mlx5_ib kernel modules and rdma-core");
  b.ring_send_doorbell(&r, 0);  // not open: nothing happens
  BOOST_TEST(!b.recover());
}
