// A network of Shunt hosts that a workload can drive, whatever runs it: the virtual-time harness
// (stack/harness: N stacks on one SimLink, each behind the mlx5 model or straight on its port;
// bindings/sim_net.h) or an ns-3 topology (nicmodel/ns3/ns3_net.h: Shunt hosts as ns-3
// applications). The workloads (bindings/workloads.h) are written once against this interface,
// and the Python module exposes both. It lives here, beside the model, so that the ns-3 side
// stays inside nicmodel/ns3/, the only code that uses ns-3.
//
// Workloads use non-blocking sockets of api(i) and never block: run() calls their pump between
// steps of the network, and the pump says when the workload is done.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nicmodel/mlx5/mlx5_model.h"
#include "stack/core/clock.h"
#include "stack/net/addr.h"

namespace shunt {
class SocketApi;
class Stack;
}  // namespace shunt

namespace nicmodel {

class Net {
 public:
  virtual ~Net() = default;

  // Hosts, numbered from 0; only Shunt hosts have a stack (is_shunt()).
  virtual size_t size() const = 0;
  virtual bool is_shunt(size_t host) const = 0;
  // Host `host`'s socket API and stack (Shunt hosts only; throws std::out_of_range otherwise).
  virtual shunt::SocketApi& api(size_t host) = 0;
  virtual shunt::Stack& stack(size_t host) = 0;
  // The host's unicast address in the family asked for.
  virtual shunt::IpAddr addr(size_t host, bool ipv6 = false) const = 0;

  // Virtual time, ns since the network was built.
  virtual shunt::Nanos now() const = 0;
  // Runs the network, calling `pump` after every step in which a Shunt host may have seen socket
  // events (and once at the start), until `pump` returns true or `timeout` of virtual time has
  // passed. Returns whether `pump` said done. The pump may use every host's sockets.
  virtual bool run(const std::function<bool()>& pump, shunt::Nanos timeout) = 0;
  // Runs the network for `d` of virtual time with no workload.
  virtual void run_for(shunt::Nanos d) = 0;
  // After code outside run() used a socket: lets the hosts see it (polls them at the current
  // time).
  virtual void kick() = 0;

  // Per-packet NIC timelines of a Shunt host's simulated mlx5 (the most recent ones, oldest
  // first; empty when the host has no NIC model).
  virtual std::vector<PacketTimeline> timelines(size_t host) = 0;
  // Every counter of a Shunt host's stack (and NIC model, when it has one), by name.
  virtual std::map<std::string, uint64_t> counters(size_t host) = 0;
  // Frames lost or dropped by the network itself (link loss, queue drops), all links together.
  virtual uint64_t network_drops() const = 0;
};

}  // namespace nicmodel
