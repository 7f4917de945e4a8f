// Linked into the `shunt` command and the preload library: makes the simulated NIC's device
// kinds (mlx5sim) known at load time, so code in stack/ opens them by name through the device
// registry and never depends on nicmodel/ (DESIGN.md).
#include "nicmodel/nicmodel.h"

namespace {
const bool registered = (nicmodel::register_devices(), true);
}  // namespace
