// SHUNT_DEVICE: the spec syntax, the registry of kinds, and the one-line errors a user sees.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <string>

#include "stack/core/clock.h"
#include "stack/driver/device_registry.h"
#include "stack/harness/harness.h"

using namespace shunt;

namespace {
std::string open_error(const std::string& spec) {
  MonotonicClock clock;
  Config config;
  OpenedDevice d = open_device(spec, clock, config);
  BOOST_TEST(!d.device);
  return d.error;
}
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
}  // namespace

BOOST_AUTO_TEST_CASE(a_spec_has_a_kind_a_name_and_options) {
  std::string error;
  auto s = DeviceSpec::parse("mlx5:mlx5_0,port=2,mac=02:00:00:00:00:01,ipv6=fd00::1", error);
  BOOST_REQUIRE_MESSAGE(s, error);
  BOOST_TEST(s->kind == "mlx5");
  BOOST_TEST(s->name == "mlx5_0");
  BOOST_TEST(s->option("port").value_or("") == "2");
  BOOST_TEST(s->option("mac").value_or("") == "02:00:00:00:00:01");
  BOOST_TEST(s->option("ipv6").value_or("") == "fd00::1");
  BOOST_TEST(!s->option("mtu"));
  BOOST_TEST(s->check_options("port|mac|ipv6").empty());
  BOOST_TEST(s->check_options("port").find("unknown option 'mac'") != std::string::npos);

  auto k = DeviceSpec::parse("mlx5sim", error);
  BOOST_REQUIRE(k);
  BOOST_TEST(k->kind == "mlx5sim");
  BOOST_TEST(k->name.empty());
  BOOST_TEST(k->options.empty());
  auto c = DeviceSpec::parse("mlx5sim:cable=feed", error);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->name.empty());
  BOOST_TEST(c->option("cable").value_or("") == "feed");
}

BOOST_AUTO_TEST_CASE(malformed_specs_are_refused_with_a_reason) {
  for (const char* bad : {"", ":x", "mlx5:", "mlx5:a,b", "mlx5:a,port=1,port=2", "mlx5:port=", "mlx5:=1",
                          "ml x5", "mlx5:a b", "tap:eth0;rm", "mlx5:,"}) {
    std::string error;
    BOOST_TEST(!DeviceSpec::parse(bad, error), bad);
    BOOST_TEST(!error.empty(), bad);
  }
  std::string long_name(200, 'a'), error;
  BOOST_TEST(!DeviceSpec::parse("tap:" + long_name, error));
}

BOOST_AUTO_TEST_CASE(opening_reports_one_line_naming_the_spec) {
  std::string e = open_error("nosuch:thing");
  BOOST_TEST(starts_with(e, "SHUNT_DEVICE=nosuch:thing: unknown device kind 'nosuch'"), e);
  BOOST_TEST(e.find("mlx5") != std::string::npos);  // the known kinds are listed
  BOOST_TEST(e.find('\n') == std::string::npos);
  e = open_error("mlx5sim");
  BOOST_TEST(starts_with(e, "SHUNT_DEVICE=mlx5sim: "), e);
  BOOST_TEST(e.find("cable=NAME") != std::string::npos, e);
  e = open_error("mlx5sim:cable=bad/name");
  BOOST_TEST(starts_with(e, "SHUNT_DEVICE=mlx5sim:cable=bad/name: "), e);
  e = open_error("mlx5sim:cable=x,speed=9");
  BOOST_TEST(e.find("unknown option 'speed'") != std::string::npos, e);
  e = open_error("mlx5:mlx5_0,port=0");
  BOOST_TEST(e.find("port=0") != std::string::npos, e);
  e = open_error("tap:x,mac=zz");
  BOOST_TEST(e.find("mac=zz: not a MAC address") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(a_connectx_spec_without_a_verbs_device_fails_with_one_clear_line) {
  if (std::filesystem::exists("/sys/class/infiniband") && !std::filesystem::is_empty("/sys/class/infiniband")) {
    BOOST_TEST_MESSAGE("an RDMA device exists here: the no-device case cannot be checked");
    return;
  }
  const std::string e = open_error("mlx5:mlx5_0");
  BOOST_TEST(e == "SHUNT_DEVICE=mlx5:mlx5_0: mlx5: no RDMA device found (ibv_get_device_list returned none); "
                  "a ConnectX needs the mlx5_core and mlx5_ib kernel modules and rdma-core");
}

BOOST_AUTO_TEST_CASE(every_kind_is_listed_with_its_usage) {
  bool mlx5 = false, mlx5sim = false, tap = false;
  for (const auto& [kind, usage] : device_kinds()) {
    BOOST_TEST(starts_with(usage, kind), usage);
    mlx5 |= kind == "mlx5";
    mlx5sim |= kind == "mlx5sim";
    tap |= kind == "tap";
  }
  BOOST_TEST(mlx5);
  BOOST_TEST(mlx5sim);  // registered by the test main, as `shunt` and the preload library do
  BOOST_TEST(tap);
}

BOOST_AUTO_TEST_CASE(the_harness_refuses_a_nic_kind_nobody_registered) {
  HarnessOptions o;
  o.nic = "nosuch";
  BOOST_CHECK_THROW(Harness h(o), std::invalid_argument);
  o.nic = "mlx5sim";
  Harness h(o);
  BOOST_TEST(h.nic(0) != nullptr);
  o.nic = "sim";
  Harness plain(o);
  BOOST_TEST(plain.nic(0) == nullptr);
}
