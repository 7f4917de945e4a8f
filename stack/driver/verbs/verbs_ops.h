// The rdma-core calls the verbs driver makes, behind an interface: the real one calls
// libibverbs; unit tests (tests/unit/verbs_device.cc) give a fake to reach the error paths and
// the recovery from error completions on machines without an RDMA device. Errors follow
// rdma-core: pointer results are null with errno set; int results are 0 or an errno value
// (poll_cq: the number of completions, negative on failure).
#pragma once
#include <infiniband/verbs.h>

#include <cstdint>

#include "stack/net/addr.h"

namespace shunt::verbs {

class VerbsOps {
 public:
  virtual ~VerbsOps() = default;
  virtual ibv_device** get_device_list(int* num) = 0;
  virtual void free_device_list(ibv_device** list) = 0;
  virtual const char* get_device_name(ibv_device* dev) = 0;
  virtual ibv_context* open_device(ibv_device* dev) = 0;
  virtual int close_device(ibv_context* ctx) = 0;
  virtual int query_device(ibv_context* ctx, ibv_device_attr* attr) = 0;
  virtual int query_port(ibv_context* ctx, uint8_t port, ibv_port_attr* attr) = 0;
  virtual int query_gid(ibv_context* ctx, uint8_t port, int index, ibv_gid* gid) = 0;
  virtual ibv_pd* alloc_pd(ibv_context* ctx) = 0;
  virtual int dealloc_pd(ibv_pd* pd) = 0;
  virtual ibv_mr* reg_mr(ibv_pd* pd, void* addr, size_t len, int access) = 0;
  virtual int dereg_mr(ibv_mr* mr) = 0;
  virtual ibv_comp_channel* create_comp_channel(ibv_context* ctx) = 0;
  virtual int destroy_comp_channel(ibv_comp_channel* ch) = 0;
  virtual ibv_cq* create_cq(ibv_context* ctx, int cqe, ibv_comp_channel* ch) = 0;
  virtual int destroy_cq(ibv_cq* cq) = 0;
  virtual int req_notify_cq(ibv_cq* cq) = 0;
  // One event off the channel (non-blocking fd: -1 with EAGAIN when none), acknowledged.
  virtual int get_cq_event(ibv_comp_channel* ch) = 0;
  virtual ibv_qp* create_qp(ibv_pd* pd, ibv_qp_init_attr* attr) = 0;
  virtual int destroy_qp(ibv_qp* qp) = 0;
  virtual int modify_qp(ibv_qp* qp, ibv_qp_attr* attr, int mask) = 0;
  virtual ibv_ah* create_ah(ibv_pd* pd, ibv_ah_attr* attr) = 0;
  virtual int destroy_ah(ibv_ah* ah) = 0;
  virtual int attach_mcast(ibv_qp* qp, const ibv_gid* gid) = 0;
  virtual int detach_mcast(ibv_qp* qp, const ibv_gid* gid) = 0;
  virtual int post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) = 0;
  virtual int post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad) = 0;
  virtual int poll_cq(ibv_cq* cq, int n, ibv_wc* wc) = 0;
  // Makes the kernel's IP layer accept IPv4 multicast to `group` on the interface with address
  // `iface` (IP_ADD_MEMBERSHIP on a socket of its own): RoCEv2 multicast arrives as UDP to that
  // group, which the IP layer drops unless someone is a member. Returns the socket, or -1 with
  // errno; close_fd() leaves.
  virtual int join_ipv4_group(Ipv4Addr group, Ipv4Addr iface) = 0;
  virtual void close_fd(int fd) = 0;
};

// The libibverbs calls (socket calls go straight to the kernel, past the preload library).
VerbsOps& real_verbs_ops();

}  // namespace shunt::verbs
