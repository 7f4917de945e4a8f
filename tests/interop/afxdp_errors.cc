// SHUNT_DEVICE=afxdp:... that cannot work: each fails with one line that says why, before or
// without touching any interface (label interop; needs neither root nor a veth, and leaves no
// XDP program or socket behind).
#include <boost/test/unit_test.hpp>
#include <string>

#include "stack/core/clock.h"
#include "stack/core/config.h"
#include "stack/driver/device_registry.h"

namespace shunt {
namespace {

std::string open_error(const std::string& spec) {
  MonotonicClock clock;
  Config config;
  OpenedDevice d = open_device(spec, clock, config);
  BOOST_TEST_MESSAGE(spec << " -> " << (d.device ? "opened" : d.error));
  BOOST_CHECK_MESSAGE(!d.device, spec << " opened");
  BOOST_CHECK_MESSAGE(d.error.find('\n') == std::string::npos, "more than one line: " << d.error);
  BOOST_CHECK_MESSAGE(d.error.rfind("SHUNT_DEVICE=" + spec + ": ", 0) == 0,
                      "does not name the spec: " << d.error);
  return d.error;
}

void expect(const std::string& spec, const std::string& what) {
  const std::string e = open_error(spec);
  BOOST_CHECK_MESSAGE(e.find(what) != std::string::npos,
                      spec << ": expected '" << what << "' in: " << e);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(afxdp_errors)

BOOST_AUTO_TEST_CASE(kind_is_registered_with_its_usage) {
  bool found = false;
  for (const auto& [kind, usage] : device_kinds()) {
    if (kind == "afxdp") {
      found = true;
      BOOST_CHECK(usage.find("mode=native|generic|auto") != std::string::npos);
    }
  }
  BOOST_CHECK(found);
}

BOOST_AUTO_TEST_CASE(interface_that_does_not_exist_is_named) {
  expect("afxdp:shuntnosuch0", "no interface 'shuntnosuch0' in this network namespace");
}

BOOST_AUTO_TEST_CASE(missing_interface_name_says_the_syntax) {
  expect("afxdp", "needs an interface: afxdp:IFNAME");
}

BOOST_AUTO_TEST_CASE(too_long_interface_name_is_refused) {
  expect("afxdp:abcdefghijklmnopqrstuvwxyz", "longer than 15 characters");
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_before_the_interface_is_touched) {
  expect("afxdp:lo,mode=fast", "mode=fast: expected native, generic or auto");
  expect("afxdp:lo,queue=x", "queue=x: expected an integer in [0, 1023]");
  expect("afxdp:lo,queue=-1", "queue=-1: expected an integer");
  expect("afxdp:lo,frames=100", "frames=100: expected a power of two in [64, 65536]");
  expect("afxdp:lo,frames=32", "frames=32: expected an integer in [64, 65536]");
  expect("afxdp:lo,frames=131072", "expected an integer in [64, 65536]");
  expect("afxdp:lo,mac=01:02", "mac=01:02: not a MAC address");
  expect("afxdp:lo,speed=10", "unknown option 'speed' for afxdp (known: queue|mode|mac|frames)");
  expect("afxdp:lo,mode=native,mode=generic", "option 'mode' given twice");
  expect("afxdp:lo,eth1", "two names");
}

BOOST_AUTO_TEST_CASE(multicast_mac_is_refused) {
  // Checked after the interface is found: lo exists in every namespace, and is no Ethernet.
  const std::string e = open_error("afxdp:lo,mac=01:00:5e:00:00:01");
  BOOST_CHECK_MESSAGE(e.find("not an Ethernet interface") != std::string::npos ||
                          e.find("not a unicast address") != std::string::npos,
                      e);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace shunt
