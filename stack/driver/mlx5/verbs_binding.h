// The mlx5 driver's rings on a real ConnectX, through rdma-core: an IBV_QPT_RAW_PACKET QP and two
// CQs whose memory mlx5dv_init_obj() exposes, ibv_create_flow() rules that steer the stack's
// traffic to that QP, and the UAR BlueFlame register as the send doorbell. docs/hardware.md says
// how to run it (permissions, memlock, the rules it installs, adapters, limits).
//
// Every verbs and mlx5dv call goes through a VerbsApi table, so the set-up, tear-down and
// recovery sequences are unit-tested against a fake (tests/unit/mlx5_verbs_setup.cc) on machines
// without an RDMA device. The doorbell itself is a plain store to whatever bf.reg the table's
// mlx5dv_init_obj reported, so a fake pointing it at ordinary memory sees every byte written.
#pragma once
#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stack/driver/mlx5/mlx5_binding.h"
#include "stack/net/addr.h"

namespace shunt {

// The rdma-core entry points the binding uses. Errors follow rdma-core: functions returning a
// pointer return nullptr and set errno; functions returning int return 0 or an errno value.
// Names drop the ibv_ prefix because several ibv_* names are macros in verbs.h (ibv_query_port,
// ibv_reg_mr) or static inline (ibv_create_flow, ibv_destroy_flow).
struct VerbsApi {
  ibv_device** (*get_device_list)(int* num_devices);
  void (*free_device_list)(ibv_device** list);
  const char* (*get_device_name)(ibv_device* device);
  bool (*is_mlx5)(ibv_device* device);  // mlx5dv_is_supported()
  ibv_context* (*open_device)(ibv_device* device);
  int (*close_device)(ibv_context* context);
  int (*query_port)(ibv_context* context, uint8_t port_num, ibv_port_attr* attr);
  ibv_pd* (*alloc_pd)(ibv_context* context);
  int (*dealloc_pd)(ibv_pd* pd);
  ibv_mr* (*reg_mr)(ibv_pd* pd, void* addr, size_t length, int access);
  int (*dereg_mr)(ibv_mr* mr);
  ibv_cq* (*create_cq)(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel,
                       int comp_vector);
  int (*destroy_cq)(ibv_cq* cq);
  ibv_qp* (*create_qp)(ibv_pd* pd, ibv_qp_init_attr* attr);
  int (*destroy_qp)(ibv_qp* qp);
  int (*modify_qp)(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask);
  ibv_flow* (*create_flow)(ibv_qp* qp, ibv_flow_attr* flow);
  int (*destroy_flow)(ibv_flow* flow);
  int (*mlx5dv_init_obj)(mlx5dv_obj* obj, uint64_t obj_type);
  // A sysfs attribute ("mtu", "address") of the Ethernet interface behind `port` of `device`
  // (/sys/class/infiniband/<dev>/device/net/<ifname>/<attr>), trimmed; empty if unknown.
  std::string (*netdev_attr)(ibv_device* device, uint8_t port, const char* attr);
};

// The table bound to libibverbs and libmlx5.
const VerbsApi& real_verbs_api();

// What the binding needs to know; the SHUNT_DEVICE parser (device_registry) fills it.
struct VerbsBindingOptions {
  std::string device;             // e.g. "mlx5_0"; empty: the first mlx5 device
  uint8_t port = 1;               // verbs port number (1-based)
  MacAddr mac;                    // zero: the MAC of the port's Ethernet interface
  std::vector<Ipv4Addr> ipv4;     // unicast addresses the stack owns: steered to its QP
  std::vector<Ipv6Addr> ipv6;     // likewise; the link-local address from `mac` is added
  uint32_t mtu = 0;               // 0: the interface's MTU (else the port's active MTU)
};

// One steering rule as installed, for tests and `shunt` diagnostics.
struct VerbsFlowRule {
  std::string what;  // e.g. "ipv4 10.0.0.2", "arp broadcast (dont-trap)"
  bool dont_trap = false;
};

class VerbsBinding final : public Mlx5Binding {
 public:
  explicit VerbsBinding(const VerbsBindingOptions& options, const VerbsApi& api = real_verbs_api());
  ~VerbsBinding() override;
  VerbsBinding(const VerbsBinding&) = delete;
  VerbsBinding& operator=(const VerbsBinding&) = delete;

  const DeviceInfo& info() const override { return info_; }
  std::string open(const Mlx5QueueSizes& sizes, Mlx5Rings& out) override;
  std::optional<uint32_t> register_memory(const void* addr, size_t len, std::string& error) override;
  void ring_send_doorbell(const void* wqe, size_t bf_bytes) override;
  bool recover() override;

  // The rules open() installed, in order.
  const std::vector<VerbsFlowRule>& flow_rules() const { return rule_names_; }
  // The BlueFlame buffer the next doorbell goes to (0 or bf_size): libmlx5's bf->offset.
  uint32_t bf_offset() const { return bf_offset_; }

 private:
  std::string fail(const char* step, int err, const char* hint = nullptr);
  std::string install_flow_rules();
  std::string to_ready(const char* why);  // RESET/INIT -> INIT -> RTR -> RTS
  std::string translate(const mlx5dv_qp& qp, const mlx5dv_cq& scq, const mlx5dv_cq& rcq,
                        const Mlx5QueueSizes& sizes, Mlx5Rings& out);
  void close();  // undoes whatever open() and register_memory() did, in reverse order

  VerbsBindingOptions options_;
  const VerbsApi& api_;
  DeviceInfo info_;
  std::string dev_name_;
  ibv_context* context_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_cq* send_cq_ = nullptr;
  ibv_cq* recv_cq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  std::vector<ibv_flow*> flows_;
  std::vector<VerbsFlowRule> rule_names_;
  std::vector<ibv_mr*> mrs_;
  // The send doorbell: BlueFlame register, its size, which half is next (libmlx5's bf->offset),
  // and the send ring, because a BlueFlame copy of a WQE wraps at the ring's end.
  uint8_t* bf_reg_ = nullptr;
  uint32_t bf_size_ = 0;
  uint32_t bf_offset_ = 0;
  const uint8_t* sq_begin_ = nullptr;
  const uint8_t* sq_end_ = nullptr;
};

}  // namespace shunt
