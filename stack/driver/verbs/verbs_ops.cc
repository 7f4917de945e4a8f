#include "stack/driver/verbs/verbs_ops.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace shunt::verbs {
namespace {

class RealVerbsOps final : public VerbsOps {
 public:
  ibv_device** get_device_list(int* num) override { return ibv_get_device_list(num); }
  void free_device_list(ibv_device** list) override { ibv_free_device_list(list); }
  const char* get_device_name(ibv_device* dev) override { return ibv_get_device_name(dev); }
  ibv_context* open_device(ibv_device* dev) override { return ibv_open_device(dev); }
  int close_device(ibv_context* ctx) override { return ibv_close_device(ctx); }
  int query_device(ibv_context* ctx, ibv_device_attr* attr) override { return ibv_query_device(ctx, attr); }
  int query_port(ibv_context* ctx, uint8_t port, ibv_port_attr* attr) override {
    return ibv_query_port(ctx, port, attr);
  }
  int query_gid(ibv_context* ctx, uint8_t port, int index, ibv_gid* gid) override {
    return ibv_query_gid(ctx, port, index, gid) == 0 ? 0 : (errno ? errno : EINVAL);
  }
  ibv_pd* alloc_pd(ibv_context* ctx) override { return ibv_alloc_pd(ctx); }
  int dealloc_pd(ibv_pd* pd) override { return ibv_dealloc_pd(pd); }
  ibv_mr* reg_mr(ibv_pd* pd, void* addr, size_t len, int access) override { return ibv_reg_mr(pd, addr, len, access); }
  int dereg_mr(ibv_mr* mr) override { return ibv_dereg_mr(mr); }
  ibv_comp_channel* create_comp_channel(ibv_context* ctx) override {
    ibv_comp_channel* ch = ibv_create_comp_channel(ctx);
    if (ch) {
      // The driver drains events without blocking (rx_burst); the stack's owner polls the fd.
      const long flags = syscall(SYS_fcntl, ch->fd, F_GETFL);
      if (flags >= 0) syscall(SYS_fcntl, ch->fd, F_SETFL, flags | O_NONBLOCK);
    }
    return ch;
  }
  int destroy_comp_channel(ibv_comp_channel* ch) override { return ibv_destroy_comp_channel(ch); }
  ibv_cq* create_cq(ibv_context* ctx, int cqe, ibv_comp_channel* ch) override {
    return ibv_create_cq(ctx, cqe, nullptr, ch, 0);
  }
  int destroy_cq(ibv_cq* cq) override { return ibv_destroy_cq(cq); }
  int req_notify_cq(ibv_cq* cq) override { return ibv_req_notify_cq(cq, 0); }
  int get_cq_event(ibv_comp_channel* ch) override {
    ibv_cq* cq = nullptr;
    void* ctx = nullptr;
    if (ibv_get_cq_event(ch, &cq, &ctx) != 0) return -1;
    ibv_ack_cq_events(cq, 1);
    return 0;
  }
  ibv_qp* create_qp(ibv_pd* pd, ibv_qp_init_attr* attr) override { return ibv_create_qp(pd, attr); }
  int destroy_qp(ibv_qp* qp) override { return ibv_destroy_qp(qp); }
  int modify_qp(ibv_qp* qp, ibv_qp_attr* attr, int mask) override { return ibv_modify_qp(qp, attr, mask); }
  ibv_ah* create_ah(ibv_pd* pd, ibv_ah_attr* attr) override { return ibv_create_ah(pd, attr); }
  int destroy_ah(ibv_ah* ah) override { return ibv_destroy_ah(ah); }
  int attach_mcast(ibv_qp* qp, const ibv_gid* gid) override { return ibv_attach_mcast(qp, gid, 0); }
  int detach_mcast(ibv_qp* qp, const ibv_gid* gid) override { return ibv_detach_mcast(qp, gid, 0); }
  int post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) override { return ibv_post_send(qp, wr, bad); }
  int post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad) override { return ibv_post_recv(qp, wr, bad); }
  int poll_cq(ibv_cq* cq, int n, ibv_wc* wc) override { return ibv_poll_cq(cq, n, wc); }
  int join_ipv4_group(Ipv4Addr group, Ipv4Addr iface) override {
    // Raw system calls: under the preload library, socket() would come back to the stack.
    const int fd = int(syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd < 0) return -1;
    ip_mreq m{};
    m.imr_multiaddr.s_addr = htonl(group.v);
    m.imr_interface.s_addr = htonl(iface.v);
    if (syscall(SYS_setsockopt, fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, socklen_t(sizeof m)) != 0) {
      const int err = errno;
      syscall(SYS_close, fd);
      errno = err;
      return -1;
    }
    return fd;
  }
  void close_fd(int fd) override {
    if (fd >= 0) syscall(SYS_close, fd);
  }
};

}  // namespace

VerbsOps& real_verbs_ops() {
  static RealVerbsOps ops;
  return ops;
}

}  // namespace shunt::verbs
