#include "stack/driver/mlx5/verbs_binding.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "stack/core/log.h"

namespace shunt {

namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
// Data segments a send WQE may carry besides inline data. With the default inline threshold
// this does not change libmlx5's WQE size (the inline part is larger), so it costs nothing.
constexpr uint32_t kMaxSendSge = 4;

// The barriers libmlx5 puts around its doorbell (rdma-core util/udma_barrier.h): mmio_wc_start()
// orders the WQE and doorbell-record stores before the write-combining MMIO stores, and
// mmio_flush_writes() pushes the write-combining buffer out to the device. Both are sfence on
// x86 and "dsb st" on AArch64.
inline void mmio_flush_writes() {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("sfence" ::: "memory");
#elif defined(__aarch64__)
  asm volatile("dsb st" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}
inline void mmio_wc_start() { mmio_flush_writes(); }

// One 64-bit store of 8 bytes already in device (big-endian) order: libmlx5's mmio_write64_be.
inline void mmio_write64(uint8_t* reg, const uint8_t* src) {
  uint64_t v;
  std::memcpy(&v, src, sizeof v);
  *reinterpret_cast<volatile uint64_t*>(reg) = v;
}

bool is_pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

std::string errno_text(int err) {
  if (err == 0) return "unknown error (errno not set)";
  return std::strerror(err);
}

const char* port_state_name(ibv_port_state s) {
  switch (s) {
    case IBV_PORT_NOP: return "NOP";
    case IBV_PORT_DOWN: return "DOWN";
    case IBV_PORT_INIT: return "INIT";
    case IBV_PORT_ARMED: return "ARMED";
    case IBV_PORT_ACTIVE: return "ACTIVE";
    case IBV_PORT_ACTIVE_DEFER: return "ACTIVE_DEFER";
  }
  return "unknown";
}

std::string read_trimmed(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s;
  if (!in || !std::getline(in, s)) return {};
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// /sys/class/infiniband/<dev>/device/net/<ifname>/<attr>: the netdev on the same PCI function.
// A ConnectX port is its own PCI function, so there is normally one; dev_port picks among more.
std::string real_netdev_attr(ibv_device* device, uint8_t port, const char* attr) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path net = fs::path(device->ibdev_path) / "device" / "net";
  std::string first;
  for (const auto& entry : fs::directory_iterator(net, ec)) {
    std::string dev_port = read_trimmed(entry.path() / "dev_port");
    std::string value = read_trimmed(entry.path() / attr);
    if (dev_port == std::to_string(port - 1)) return value;
    if (first.empty()) first = value;
  }
  return first;
}

// A flow attribute and its specs, laid out back to back as ibv_create_flow() reads them.
class FlowAttrBuilder {
 public:
  FlowAttrBuilder(uint8_t port, bool dont_trap) {
    ibv_flow_attr a{};
    a.type = IBV_FLOW_ATTR_NORMAL;
    a.priority = 0;
    a.port = port;
    a.flags = dont_trap ? IBV_FLOW_ATTR_FLAGS_DONT_TRAP : 0;
    append(a);
  }
  void eth(const MacAddr& dst, uint16_t ether_type) {
    ibv_flow_spec_eth s{};
    s.type = IBV_FLOW_SPEC_ETH;
    s.size = sizeof s;
    std::memcpy(s.val.dst_mac, dst.b.data(), 6);
    std::memset(s.mask.dst_mac, 0xff, 6);
    s.val.ether_type = htons(ether_type);
    s.mask.ether_type = 0xffff;
    add_spec(s);
  }
  void ipv4_dst(Ipv4Addr dst) {
    ibv_flow_spec_ipv4 s{};
    s.type = IBV_FLOW_SPEC_IPV4;
    s.size = sizeof s;
    s.val.dst_ip = htonl(dst.v);
    s.mask.dst_ip = 0xffffffffu;
    add_spec(s);
  }
  void ipv6_dst(const Ipv6Addr& dst) {
    ibv_flow_spec_ipv6 s{};
    s.type = IBV_FLOW_SPEC_IPV6;
    s.size = sizeof s;
    std::memcpy(s.val.dst_ip, dst.b.data(), 16);
    std::memset(s.mask.dst_ip, 0xff, 16);
    add_spec(s);
  }
  ibv_flow_attr* attr() { return reinterpret_cast<ibv_flow_attr*>(bytes_); }

 private:
  template <class T>
  void append(const T& v) {
    static_assert(sizeof(ibv_flow_attr) + sizeof(ibv_flow_spec_eth) + sizeof(ibv_flow_spec_ipv6) <= sizeof bytes_);
    std::memcpy(bytes_ + len_, &v, sizeof v);
    len_ += sizeof v;
  }
  template <class T>
  void add_spec(const T& s) {
    append(s);
    attr()->num_of_specs++;
    attr()->size = uint16_t(len_);
  }
  // The attribute and at most an Ethernet and an IP spec; aligned for their 32-bit fields.
  alignas(8) uint8_t bytes_[256] = {};
  size_t len_ = 0;
};

}  // namespace

const VerbsApi& real_verbs_api() {
  static const VerbsApi api = {
      .get_device_list = [](int* n) { return ibv_get_device_list(n); },
      .free_device_list = [](ibv_device** l) { ibv_free_device_list(l); },
      .get_device_name = [](ibv_device* d) { return ibv_get_device_name(d); },
      .is_mlx5 = [](ibv_device* d) { return mlx5dv_is_supported(d); },
      .open_device = [](ibv_device* d) { return ibv_open_device(d); },
      .close_device = [](ibv_context* c) { return ibv_close_device(c); },
      // ibv_query_port is a macro around the inline ___ibv_query_port in verbs.h.
      .query_port = [](ibv_context* c, uint8_t port, ibv_port_attr* a) { return ibv_query_port(c, port, a); },
      .alloc_pd = [](ibv_context* c) { return ibv_alloc_pd(c); },
      .dealloc_pd = [](ibv_pd* pd) { return ibv_dealloc_pd(pd); },
      // ibv_reg_mr is a macro too (it picks ibv_reg_mr_iova2 when access flags need it).
      .reg_mr = [](ibv_pd* pd, void* addr, size_t len, int access) { return ibv_reg_mr(pd, addr, len, access); },
      .dereg_mr = [](ibv_mr* mr) { return ibv_dereg_mr(mr); },
      .create_cq = [](ibv_context* c, int cqe, void* ctx, ibv_comp_channel* ch, int vec) {
        return ibv_create_cq(c, cqe, ctx, ch, vec);
      },
      .destroy_cq = [](ibv_cq* cq) { return ibv_destroy_cq(cq); },
      .create_qp = [](ibv_pd* pd, ibv_qp_init_attr* a) { return ibv_create_qp(pd, a); },
      .destroy_qp = [](ibv_qp* qp) { return ibv_destroy_qp(qp); },
      .modify_qp = [](ibv_qp* qp, ibv_qp_attr* a, int mask) { return ibv_modify_qp(qp, a, mask); },
      // Static inline in verbs.h (a provider op, EOPNOTSUPP in errno where missing).
      .create_flow = [](ibv_qp* qp, ibv_flow_attr* f) { return ibv_create_flow(qp, f); },
      .destroy_flow = [](ibv_flow* f) { return ibv_destroy_flow(f); },
      .mlx5dv_init_obj = [](mlx5dv_obj* o, uint64_t t) { return mlx5dv_init_obj(o, t); },
      .netdev_attr = real_netdev_attr,
  };
  return api;
}

VerbsBinding::VerbsBinding(const VerbsBindingOptions& options, const VerbsApi& api)
    : options_(options), api_(api) {
  dev_name_ = options_.device;
  info_.name = "mlx5:" + (dev_name_.empty() ? std::string("auto") : dev_name_);
  info_.mac = options_.mac;
  info_.mtu = options_.mtu ? options_.mtu : 1500;
  // ConnectX verifies IPv4 header and TCP/UDP checksums on receive and computes them on send.
  info_.rx_checksum = true;
  info_.tx_checksum = true;
}

VerbsBinding::~VerbsBinding() { close(); }

std::string VerbsBinding::fail(const char* step, int err, const char* hint) {
  std::string s = "mlx5: ";
  s += step;
  s += " on ";
  s += dev_name_.empty() ? std::string("(no device)") : dev_name_;
  s += " failed: ";
  s += errno_text(err);
  if (hint) {
    s += " (";
    s += hint;
    s += ")";
  }
  return s;
}

void VerbsBinding::close() {
  auto warn = [this](const char* what, int rc) {
    if (rc != 0) SHUNT_WARN("mlx5: %s on %s failed: %s", what, dev_name_.c_str(), errno_text(rc).c_str());
  };
  for (auto it = flows_.rbegin(); it != flows_.rend(); ++it) warn("ibv_destroy_flow", api_.destroy_flow(*it));
  flows_.clear();
  rule_names_.clear();
  if (qp_) warn("ibv_destroy_qp", api_.destroy_qp(qp_));
  qp_ = nullptr;
  if (recv_cq_) warn("ibv_destroy_cq(receive)", api_.destroy_cq(recv_cq_));
  recv_cq_ = nullptr;
  if (send_cq_) warn("ibv_destroy_cq(send)", api_.destroy_cq(send_cq_));
  send_cq_ = nullptr;
  for (auto it = mrs_.rbegin(); it != mrs_.rend(); ++it) warn("ibv_dereg_mr", api_.dereg_mr(*it));
  mrs_.clear();
  if (pd_) warn("ibv_dealloc_pd", api_.dealloc_pd(pd_));
  pd_ = nullptr;
  if (context_) warn("ibv_close_device", api_.close_device(context_));
  context_ = nullptr;
  bf_reg_ = nullptr;
  bf_size_ = bf_offset_ = 0;
  sq_begin_ = sq_end_ = nullptr;
}

std::string VerbsBinding::open(const Mlx5QueueSizes& sizes, Mlx5Rings& out) {
  if (context_) return "mlx5: open() called twice on " + dev_name_;
  if (!sizes.sq_wqebbs || !sizes.rq_wqes || !sizes.send_cqes || !sizes.recv_cqes)
    return "mlx5: queue sizes must not be zero";
  if (options_.port == 0) return "mlx5: port numbers start at 1";

  // 1. The device: the one named, or the first mlx5 one.
  errno = 0;
  int num = 0;
  ibv_device** list = api_.get_device_list(&num);
  if (!list && errno == ENOMEM) return fail("ibv_get_device_list", ENOMEM);
  if (!list || num <= 0) {
    if (list) api_.free_device_list(list);
    return "mlx5: no RDMA device found (ibv_get_device_list returned none); a ConnectX needs the "
           "mlx5_core and mlx5_ib kernel modules and rdma-core";
  }
  ibv_device* device = nullptr;
  std::string seen;
  for (int i = 0; i < num && list[i]; i++) {
    std::string name = api_.get_device_name(list[i]);
    seen += (seen.empty() ? "" : ", ") + name;
    if (options_.device.empty() ? api_.is_mlx5(list[i]) : name == options_.device) {
      if (!device) device = list[i];
    }
  }
  if (!device) {
    api_.free_device_list(list);
    if (options_.device.empty()) return "mlx5: no mlx5 (ConnectX) device among the RDMA devices found (" + seen + ")";
    return "mlx5: no RDMA device named " + options_.device + " (found: " + seen + ")";
  }
  dev_name_ = api_.get_device_name(device);
  info_.name = "mlx5:" + dev_name_;
  if (!api_.is_mlx5(device)) {
    api_.free_device_list(list);
    return "mlx5: " + dev_name_ + " is not an mlx5 (ConnectX) device; its queues cannot be driven directly";
  }

  // 2. Open it; the device list may go once the context exists.
  errno = 0;
  context_ = api_.open_device(device);
  int err = errno;
  std::string mac_text = options_.mac.is_zero() ? api_.netdev_attr(device, options_.port, "address") : "";
  std::string mtu_text = options_.mtu ? "" : api_.netdev_attr(device, options_.port, "mtu");
  api_.free_device_list(list);
  if (!context_) return fail("ibv_open_device", err, err == EACCES || err == EPERM ? "no access to /dev/infiniband/uverbs*" : nullptr);

  // 3. The port: up, Ethernet, its MTU.
  ibv_port_attr port{};
  char step[96];
  std::snprintf(step, sizeof step, "ibv_query_port(port %u)", unsigned(options_.port));
  if (int rc = api_.query_port(context_, options_.port, &port); rc != 0) {
    std::string e = fail(step, rc);
    close();
    return e;
  }
  if (port.state != IBV_PORT_ACTIVE) {
    std::string e = "mlx5: port " + std::to_string(options_.port) + " of " + dev_name_ + " is not active (state " +
                    port_state_name(port.state) + "): is the cable in and the link up?";
    close();
    return e;
  }
  if (port.link_layer != IBV_LINK_LAYER_ETHERNET) {
    std::string e = "mlx5: port " + std::to_string(options_.port) + " of " + dev_name_ +
                    " is not Ethernet (link layer " +
                    (port.link_layer == IBV_LINK_LAYER_INFINIBAND ? "InfiniBand" : "unspecified") +
                    "); raw Ethernet QPs need an Ethernet port (mlxconfig LINK_TYPE_P1=2)";
    close();
    return e;
  }
  if (options_.mtu) {
    info_.mtu = options_.mtu;
  } else {
    uint32_t mtu = 0;
    auto [p, ec] = std::from_chars(mtu_text.data(), mtu_text.data() + mtu_text.size(), mtu);
    // The interface's MTU is the Ethernet one; the port's active_mtu is the RoCE MTU (an IB
    // size no larger than it), the best lower bound when sysfs says nothing.
    info_.mtu = (ec == std::errc() && mtu >= 576) ? mtu : (128u << int(port.active_mtu));
  }
  if (options_.mac.is_zero()) {
    auto mac = MacAddr::parse(mac_text);
    if (!mac || mac->is_zero() || mac->is_multicast()) {
      std::string e = "mlx5: no MAC address given and none found for " + dev_name_ + " port " +
                      std::to_string(options_.port) + " (its Ethernet interface in sysfs); give one in SHUNT_DEVICE";
      close();
      return e;
    }
    options_.mac = *mac;
  }
  info_.mac = options_.mac;

  // 4. Protection domain, CQs, the raw packet QP.
  errno = 0;
  pd_ = api_.alloc_pd(context_);
  if (!pd_) {
    std::string e = fail("ibv_alloc_pd", errno);
    close();
    return e;
  }
  // libmlx5 makes a CQ of the next power of two above cqe (align_queue_size(cqe + 1)), so asking
  // for n - 1 gives exactly n when n is a power of two.
  errno = 0;
  send_cq_ = api_.create_cq(context_, int(std::max<uint32_t>(sizes.send_cqes - 1, 1)), nullptr, nullptr, 0);
  if (!send_cq_) {
    std::string e = fail("ibv_create_cq(send)", errno);
    close();
    return e;
  }
  errno = 0;
  recv_cq_ = api_.create_cq(context_, int(std::max<uint32_t>(sizes.recv_cqes - 1, 1)), nullptr, nullptr, 0);
  if (!recv_cq_) {
    std::string e = fail("ibv_create_cq(receive)", errno);
    close();
    return e;
  }
  ibv_qp_init_attr qa{};
  qa.send_cq = send_cq_;
  qa.recv_cq = recv_cq_;
  qa.qp_type = IBV_QPT_RAW_PACKET;
  qa.sq_sig_all = 0;  // the driver asks for a completion every N WQEs itself
  qa.cap.max_send_wr = sizes.sq_wqebbs;
  qa.cap.max_recv_wr = sizes.rq_wqes;
  qa.cap.max_send_sge = kMaxSendSge;
  qa.cap.max_recv_sge = 1;
  qa.cap.max_inline_data = sizes.max_inline;
  errno = 0;
  qp_ = api_.create_qp(pd_, &qa);
  if (!qp_) {
    int e0 = errno;
    std::string e = fail("ibv_create_qp(IBV_QPT_RAW_PACKET)", e0,
                         e0 == EPERM || e0 == EACCES ? "needs CAP_NET_RAW" : nullptr);
    close();
    return e;
  }

  // 5. RESET -> INIT -> RTR -> RTS.
  if (std::string e = to_ready("open"); !e.empty()) {
    close();
    return e;
  }

  // 6. Steering: the stack's traffic to this QP.
  if (std::string e = install_flow_rules(); !e.empty()) {
    close();
    return e;
  }

  // 7. The rings, as libmlx5 laid them out.
  mlx5dv_qp dv_qp{};
  mlx5dv_cq dv_scq{}, dv_rcq{};
  mlx5dv_obj obj{};
  obj.qp.in = qp_;
  obj.qp.out = &dv_qp;
  if (int rc = api_.mlx5dv_init_obj(&obj, MLX5DV_OBJ_QP); rc != 0) {
    std::string e = fail("mlx5dv_init_obj(QP)", rc);
    close();
    return e;
  }
  obj = {};
  obj.cq.in = send_cq_;
  obj.cq.out = &dv_scq;
  if (int rc = api_.mlx5dv_init_obj(&obj, MLX5DV_OBJ_CQ); rc != 0) {
    std::string e = fail("mlx5dv_init_obj(send CQ)", rc);
    close();
    return e;
  }
  obj = {};
  obj.cq.in = recv_cq_;
  obj.cq.out = &dv_rcq;
  if (int rc = api_.mlx5dv_init_obj(&obj, MLX5DV_OBJ_CQ); rc != 0) {
    std::string e = fail("mlx5dv_init_obj(receive CQ)", rc);
    close();
    return e;
  }
  if (std::string e = translate(dv_qp, dv_scq, dv_rcq, sizes, out); !e.empty()) {
    close();
    return e;
  }
  SHUNT_INFO("mlx5: %s port %u open: qpn 0x%x, SQ %u x %u B, RQ %u x %u B, CQs %u/%u, BlueFlame %u B, %zu steering rules",
             dev_name_.c_str(), unsigned(options_.port), out.qpn, out.sq.wqe_cnt, out.sq.stride, out.rq.wqe_cnt,
             out.rq.stride, out.send_cq.cqe_cnt, out.recv_cq.cqe_cnt, out.bf_size, flows_.size());
  return {};
}

std::string VerbsBinding::to_ready(const char* why) {
  struct Step {
    ibv_qp_state state;
    int mask;
    const char* name;
  };
  // A raw packet QP needs only its port on the way to INIT; RTR and RTS take no attributes.
  const Step steps[] = {{IBV_QPS_INIT, IBV_QP_STATE | IBV_QP_PORT, "ibv_modify_qp(INIT)"},
                        {IBV_QPS_RTR, IBV_QP_STATE, "ibv_modify_qp(RTR)"},
                        {IBV_QPS_RTS, IBV_QP_STATE, "ibv_modify_qp(RTS)"}};
  for (const Step& s : steps) {
    ibv_qp_attr a{};
    a.qp_state = s.state;
    a.port_num = options_.port;
    if (int rc = api_.modify_qp(qp_, &a, s.mask); rc != 0) {
      std::string e = fail(s.name, rc);
      if (std::strcmp(why, "open") != 0) e += std::string(" during ") + why;
      return e;
    }
  }
  return {};
}

std::string VerbsBinding::install_flow_rules() {
  const MacAddr& mac = options_.mac;
  auto add = [&](FlowAttrBuilder& b, std::string what, bool dont_trap) -> std::string {
    if (dont_trap) what += " (dont-trap)";
    errno = 0;
    ibv_flow* f = api_.create_flow(qp_, b.attr());
    if (!f) {
      int err = errno;
      std::string step = "ibv_create_flow(" + what + ")";
      return fail(step.c_str(), err, err == EPERM || err == EACCES ? "needs CAP_NET_RAW" : nullptr);
    }
    flows_.push_back(f);
    rule_names_.push_back({what, dont_trap});
    return {};
  };

  // Unicast: our MAC and each address the stack owns, trapped (the kernel does not see them).
  for (Ipv4Addr a : options_.ipv4) {
    FlowAttrBuilder b(options_.port, false);
    b.eth(mac, kEtherTypeIpv4);
    b.ipv4_dst(a);
    if (auto e = add(b, "ipv4 " + a.str(), false); !e.empty()) return e;
  }
  std::vector<Ipv6Addr> v6 = options_.ipv6;
  // The stack configures fe80::/64 from its MAC by itself (Stack's constructor, RFC 4862 5.3).
  v6.insert(v6.begin(), Ipv6Addr::link_local_from_mac(mac));
  std::vector<Ipv6Addr> unicast6, groups6;
  auto push_unique = [](std::vector<Ipv6Addr>& v, const Ipv6Addr& a) {
    for (const auto& x : v)
      if (x == a) return;
    v.push_back(a);
  };
  for (const Ipv6Addr& a : v6) {
    if (a.is_multicast() || a.is_unspecified()) continue;
    push_unique(unicast6, a);
    push_unique(groups6, a.solicited_node());  // RFC 4861 7.2.1: NS for `a` goes here
  }
  for (const Ipv6Addr& a : unicast6) {
    FlowAttrBuilder b(options_.port, false);
    b.eth(mac, kEtherTypeIpv6);
    b.ipv6_dst(a);
    if (auto e = add(b, "ipv6 " + a.str(), false); !e.empty()) return e;
  }
  // Shared with the kernel (DONT_TRAP: this QP gets a copy and matching goes on, so the kernel
  // keeps its own neighbour discovery on the same MAC): ARP to us and broadcast (RFC 826),
  // solicited-node and all-nodes multicast (RFC 4861 7.2.1, RFC 4291 2.7.1).
  if (!options_.ipv4.empty()) {
    FlowAttrBuilder u(options_.port, true);
    u.eth(mac, kEtherTypeArp);
    if (auto e = add(u, "arp unicast", true); !e.empty()) return e;
    FlowAttrBuilder b(options_.port, true);
    b.eth(MacAddr::broadcast(), kEtherTypeArp);
    if (auto e = add(b, "arp broadcast", true); !e.empty()) return e;
  }
  for (const Ipv6Addr& g : groups6) {
    FlowAttrBuilder b(options_.port, true);
    b.eth(g.multicast_mac(), kEtherTypeIpv6);
    b.ipv6_dst(g);
    if (auto e = add(b, "ipv6 " + g.str(), true); !e.empty()) return e;
  }
  Ipv6Addr all_nodes{};
  all_nodes.b[0] = 0xff;
  all_nodes.b[1] = 0x02;
  all_nodes.b[15] = 0x01;
  FlowAttrBuilder b(options_.port, true);
  b.eth(all_nodes.multicast_mac(), kEtherTypeIpv6);
  b.ipv6_dst(all_nodes);
  return add(b, "ipv6 " + all_nodes.str(), true);
}

std::string VerbsBinding::translate(const mlx5dv_qp& qp, const mlx5dv_cq& scq, const mlx5dv_cq& rcq,
                                    const Mlx5QueueSizes& sizes, Mlx5Rings& out) {
  auto bad = [&](const std::string& what) { return "mlx5: mlx5dv_init_obj on " + dev_name_ + ": " + what; };
  if (!qp.dbrec || !qp.sq.buf || !qp.rq.buf) return bad("the QP has no rings");
  if (qp.sq.stride != MLX5_SEND_WQE_BB)
    return bad("send queue stride " + std::to_string(qp.sq.stride) + ", the driver needs " +
               std::to_string(MLX5_SEND_WQE_BB));
  if (!is_pow2(qp.sq.wqe_cnt) || qp.sq.wqe_cnt < sizes.sq_wqebbs)
    return bad("send queue of " + std::to_string(qp.sq.wqe_cnt) + " WQEBBs, expected a power of two >= " +
               std::to_string(sizes.sq_wqebbs));
  if (!is_pow2(qp.rq.wqe_cnt) || qp.rq.wqe_cnt < sizes.rq_wqes)
    return bad("receive queue of " + std::to_string(qp.rq.wqe_cnt) + " WQEs, expected a power of two >= " +
               std::to_string(sizes.rq_wqes));
  if (qp.rq.stride < sizeof(mlx5_wqe_data_seg) || !is_pow2(qp.rq.stride))
    return bad("receive queue stride " + std::to_string(qp.rq.stride) + ", expected a power of two >= 16");
  if (!qp.bf.reg) return bad("no doorbell register (bf.reg)");
  if (qp.bf.size % 64 != 0) return bad("BlueFlame size " + std::to_string(qp.bf.size) + " is not a multiple of 64");
  const std::pair<const mlx5dv_cq*, const char*> cqs[] = {{&scq, "send"}, {&rcq, "receive"}};
  for (auto [cq, name] : cqs) {
    if (cq->cqe_size != 64)
      return bad(std::string(name) + " CQE size " + std::to_string(cq->cqe_size) +
                 ", the driver needs 64 (is MLX5_CQE_SIZE=128 set in the environment?)");
    uint32_t want = cq == &scq ? sizes.send_cqes : sizes.recv_cqes;
    if (!is_pow2(cq->cqe_cnt) || cq->cqe_cnt < want)
      return bad(std::string(name) + " CQ of " + std::to_string(cq->cqe_cnt) + " CQEs, expected a power of two >= " +
                 std::to_string(want));
    if (!cq->buf || !cq->dbrec) return bad(std::string(name) + " CQ has no ring");
  }

  out = Mlx5Rings{};
  out.qpn = qp_->qp_num;  // for a raw packet QP, the SQ number (what libmlx5 puts in qpn_ds)
  out.dbrec = qp.dbrec;
  out.sq = {static_cast<uint8_t*>(qp.sq.buf), qp.sq.wqe_cnt, qp.sq.stride};
  out.rq = {static_cast<uint8_t*>(qp.rq.buf), qp.rq.wqe_cnt, qp.rq.stride};
  out.send_cq = {static_cast<uint8_t*>(scq.buf), scq.dbrec, scq.cqe_cnt, scq.cqe_size, scq.cqn};
  out.recv_cq = {static_cast<uint8_t*>(rcq.buf), rcq.dbrec, rcq.cqe_cnt, rcq.cqe_size, rcq.cqn};
  out.bf_size = qp.bf.size;

  bf_reg_ = static_cast<uint8_t*>(qp.bf.reg);
  bf_size_ = qp.bf.size;
  bf_offset_ = 0;
  sq_begin_ = out.sq.buf;
  sq_end_ = out.sq.buf + size_t(out.sq.wqe_cnt) * out.sq.stride;
  return {};
}

std::optional<uint32_t> VerbsBinding::register_memory(const void* addr, size_t len, std::string& error) {
  if (!pd_) {
    error = "mlx5: register_memory() before a successful open()";
    return std::nullopt;
  }
  errno = 0;
  // The device writes received frames into this memory; it only reads what is sent.
  ibv_mr* mr = api_.reg_mr(pd_, const_cast<void*>(addr), len, IBV_ACCESS_LOCAL_WRITE);
  if (!mr) {
    int err = errno;
    std::string step = "ibv_reg_mr(" + std::to_string(len) + " bytes)";
    error = fail(step.c_str(), err,
                 err == ENOMEM || err == EPERM || err == EAGAIN
                     ? "pinned memory is limited by RLIMIT_MEMLOCK: raise ulimit -l, see docs/hardware.md"
                     : nullptr);
    return std::nullopt;
  }
  mrs_.push_back(mr);
  return mr->lkey;
}

void VerbsBinding::ring_send_doorbell(const void* wqe, size_t bf_bytes) {
  if (!bf_reg_) return;  // not open
  const auto* src = static_cast<const uint8_t*>(wqe);
  uint8_t* reg = bf_reg_ + bf_offset_;
  // The driver's doorbell-record store happened before this; the WQE and record must reach the
  // device before the MMIO does (libmlx5 mlx5_post_send: mmio_wc_start()).
  mmio_wc_start();
  if (bf_bytes != 0 && bf_size_ != 0 && bf_bytes <= bf_size_ && bf_bytes % 64 == 0) {
    // BlueFlame: the whole WQE in 64-byte chunks to write-combining memory; a WQE that wraps the
    // send ring continues from its start (libmlx5 mlx5_bf_copy).
    bool in_ring = src >= sq_begin_ && src < sq_end_;
    for (size_t done = 0; done < bf_bytes; done += 64) {
      for (size_t i = 0; i < 64; i += 8) mmio_write64(reg + done + i, src + i);
      src += 64;
      if (in_ring && src == sq_end_) src = sq_begin_;
    }
  } else {
    mmio_write64(reg, src);
  }
  // Out of the write-combining buffer now, then the other BlueFlame buffer next time, so the
  // device never sees two doorbells merged in one buffer (libmlx5: bf->offset ^= bf->buf_size).
  mmio_flush_writes();
  bf_offset_ ^= bf_size_;
}

bool VerbsBinding::recover() {
  if (!qp_) {
    SHUNT_ERROR("mlx5: recover() before a successful open()");
    return false;
  }
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RESET;
  if (int rc = api_.modify_qp(qp_, &a, IBV_QP_STATE); rc != 0) {
    SHUNT_ERROR("%s", fail("ibv_modify_qp(RESET)", rc).c_str());
    return false;
  }
  // The steering rules belong to the QP and survive the reset; the QP only needs to be ready.
  if (std::string e = to_ready("recovery"); !e.empty()) {
    SHUNT_ERROR("%s", e.c_str());
    return false;
  }
  SHUNT_WARN("mlx5: %s: QP 0x%x recovered (RESET -> INIT -> RTR -> RTS)", dev_name_.c_str(), qp_->qp_num);
  return true;
}

}  // namespace shunt
