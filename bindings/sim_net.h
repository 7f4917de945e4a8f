// Net over the virtual-time harness (stack/harness): `hosts` stacks on one SimLink (a shared
// segment, or with `queue` a switch), each behind the simulated mlx5 NIC ("mlx5sim") or straight
// on its port ("sim").
// Host i is 10.0.0.(i+1)/24 and fd00::(i+1)/64.
#pragma once
#include <memory>
#include <string>

#include "nicmodel/net.h"
#include "stack/core/config.h"

namespace shunt::bindings {

using nicmodel::Net;

struct SimNetOptions {
  size_t hosts = 2;
  std::string nic = "mlx5sim";  // "mlx5sim" or "sim"
  uint64_t rate_bps = 10'000'000'000ull;
  Nanos delay = 1'000;  // one way
  uint32_t mtu = 1500;
  double loss = 0;  // probability that a frame is lost on the link (seeded by `seed`)
  // The switch's egress queue at each host's port, frames (LinkConfig::egress_queue_frames).
  // 0: no switch, a shared segment where nothing limits what arrives at a host (n senders to one
  // receiver deliver n times the link rate). > 0: the frames to a host are serialized onto its
  // downlink at `rate_bps`, with up to `queue` waiting; more are dropped (network_drops()).
  size_t queue = 0;
  uint64_t seed = 1;
  Config config;     // every stack's (and NIC model's) configuration; seed overrides config.seed
  std::string pcap;  // pcap of the link, if not empty
};

// Null with `error` set when the options are invalid or a NIC cannot be set up.
std::unique_ptr<Net> make_sim_net(const SimNetOptions& options, std::string& error);

}  // namespace shunt::bindings
