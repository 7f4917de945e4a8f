// Net over the virtual-time harness (sim_net.h).
#include "bindings/sim_net.h"

namespace shunt::bindings {

std::unique_ptr<Net> make_sim_net(const SimNetOptions& /*options*/, std::string& error) {
  error = "make_sim_net: not implemented yet";
  return nullptr;
}

}  // namespace shunt::bindings
