// Net (nicmodel/net.h) over an ns-3 topology (topology.h): two hosts back to back, a dumbbell, or a
// star of Shunt hosts, each a ShuntHost application behind a Mlx5NetDevice. No ns-3 header here:
// the Python module (bindings/) includes this file and stays free of ns-3's.
//
// ns-3 has one simulator per process, so one Ns3Net may exist at a time: make_ns3_net refuses a
// second while the first lives. The simulation is deterministic for the options (ns-3 seed and
// run, config.seed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nicmodel/net.h"
#include "stack/core/config.h"

namespace nicmodel {

struct Ns3LinkOptions {
  uint64_t rate_bps = 10'000'000'000ull;
  shunt::Nanos delay = 1'000;             // one way
  uint32_t mtu = 1500;             // IP MTU of both ends, 576 .. 9000 (the NIC's range)
  uint32_t queue_packets = 1'000;  // each device's transmit queue
  double loss = 0;                 // probability that a frame is corrupt at each receiving end
};

struct Ns3NetOptions {
  enum class Shape { kTwoHosts, kDumbbell, kStar };
  Shape shape = Shape::kTwoHosts;
  size_t hosts = 2;            // kStar: hosts on the switch (1 .. 250)
  size_t left = 1, right = 1;  // kDumbbell: hosts on each side (1 .. 250)
  // kTwoHosts and kStar: every cable; kDumbbell: the edge cables (host to router).
  Ns3LinkOptions link;
  // kDumbbell: the bottleneck between the routers.
  Ns3LinkOptions bottleneck{1'000'000'000ull, 10'000, 1500, 1'000, 0};
  std::string medium = "ethlink";       // kTwoHosts: "ethlink" (full-duplex cable) or "csma"
  std::string queue_disc = "droptail";  // kDumbbell: "droptail", "red" or "codel"
  uint32_t queue_disc_packets = 100;    // kDumbbell: the queue discipline's limit
  uint32_t ns3_seed = 1;                // >= 1
  uint64_t ns3_run = 1;
  shunt::Config config;     // every host's; host i runs with seed config.seed + i
  std::string pcap;  // if not empty: pcap of every link device, `pcap-<node>-<device>.pcap`
};

class Ns3Net : public Net {
 public:
  // The pcap files being written (complete once the Ns3Net is destroyed).
  virtual std::vector<std::string> pcap_files() const = 0;
};

// Null with `error` set when the options are invalid, a host cannot be set up, or another Ns3Net
// exists in this process.
std::unique_ptr<Ns3Net> make_ns3_net(const Ns3NetOptions& options, std::string& error);

}  // namespace nicmodel
