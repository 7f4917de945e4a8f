// The Boost.Test entry point shared by every test executable.
#define BOOST_TEST_MODULE shunt
#include <boost/test/unit_test.hpp>

#include "nicmodel/nicmodel.h"

namespace {
// The simulated NIC's device kinds (mlx5sim), so SHUNT_DEVICE=mlx5sim runs any harness-based
// test over the modelled NICs.
const bool registered = (nicmodel::register_devices(), true);
}  // namespace
