// The stack as an ns-3 Application (DESIGN.md, "Ports"): one Shunt host on a node whose NIC is
// a Mlx5NetDevice, with no ns-3 InternetStack on that node. The host polls its stack when the
// NIC writes completions and at the stack's own deadlines (timers), all in ns-3's scheduler, in
// the node's context.
//
// Workloads are tasks run after every poll, on non-blocking sockets of the host's SocketApi
// (shunt_workloads.h has TCP and UDP ones); a task returns the next time it wants to run
// without new input (kNever: only after the next poll).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ns3/application.h>
#include <ns3/event-id.h>

#include "nicmodel/ns3/mlx5_net_device.h"
#include "stack/core/config.h"
#include "stack/net/addr.h"

namespace shunt {
class Stack;
class SocketApi;
}  // namespace shunt

namespace nicmodel {

class ShuntHost final : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  ShuntHost();
  ~ShuntHost() override;

  // Builds the NIC's rings and the stack on `nic` (already attached to its PHY and on the same
  // node as this application). Returns false with `error` set when the NIC cannot be set up.
  bool Configure(ns3::Ptr<Mlx5NetDevice> nic, const shunt::Config& config, std::string& error);
  void AddAddress(const shunt::IpAddr& addr, int prefix_len);
  void SetDefaultGateway(const shunt::IpAddr& gw);

  shunt::Stack& stack() { return *stack_; }
  shunt::SocketApi& api() { return *api_; }
  ns3::Ptr<Mlx5NetDevice> nic() const { return nic_; }
  shunt::Nanos now() const;

  using Task = std::function<shunt::Nanos(ShuntHost&)>;
  void AddTask(Task task);
  // Polls the stack (and runs the tasks) as soon as the scheduler allows: after code outside the
  // simulation used a socket, or when a task wants to run again now.
  void Wake();
  uint64_t polls() const { return polls_; }
  // Polls that asked to be polled again at the same instant too many times in a row: a stack
  // that never settles. Each one is delayed by a microsecond instead of spinning the scheduler.
  uint64_t stalls() const { return stalls_; }

 protected:
  void DoDispose() override;

 private:
  void StartApplication() override;
  void StopApplication() override;
  void Poll();
  void ScheduleAt(shunt::Nanos t);

  ns3::Ptr<Mlx5NetDevice> nic_;
  std::unique_ptr<shunt::Stack> stack_;
  std::unique_ptr<shunt::SocketApi> api_;
  std::vector<Task> tasks_;
  ns3::EventId poll_event_;
  shunt::Nanos poll_at_ = shunt::kNever;
  bool running_ = false;
  uint64_t polls_ = 0;
  uint64_t same_instant_ = 0;
  shunt::Nanos last_poll_ = -1;
  uint64_t stalls_ = 0;
};

// Puts a Shunt host on `node`: a Mlx5NetDevice with address `mac` whose PHY is `phy` (a device
// already on its channel and on the node, at `rate_bps`), and a ShuntHost application that
// starts at time 0. Null with `error` set when the NIC cannot be set up.
ns3::Ptr<ShuntHost> InstallShuntHost(ns3::Ptr<ns3::Node> node, ns3::Ptr<ns3::NetDevice> phy, uint64_t rate_bps,
                                     const shunt::Config& config, ns3::Mac48Address mac, std::string& error);

}  // namespace nicmodel
