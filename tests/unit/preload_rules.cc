// SHUNT_RULES: parsing (every bad rule is one error line and is left out) and matching (the
// first rule whose every given field matches decides; docs/preload.md).
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/test/unit_test.hpp>

#include "stack/preload/offload.h"

using namespace shunt;
using namespace shunt::preload;

namespace {
IpAddr ip(const char* s) { return *IpAddr::parse(s); }
}  // namespace

BOOST_AUTO_TEST_CASE(first_matching_rule_decides) {
  std::vector<std::string> errors;
  auto rules = OffloadRules::parse("kernel port=22; offload remote=10.0.0.0/8 ; kernel program=curl", errors);
  BOOST_TEST(errors.empty());
  BOOST_TEST(rules.size() == 3u);
  const IpAddr local = ip("10.9.0.1"), remote = ip("10.1.2.3"), far = ip("192.168.1.1");
  BOOST_TEST(rules.match("sshd", &local, 22, nullptr, 0).value() == false);       // port, local side
  BOOST_TEST(rules.match("ssh", nullptr, 0, &remote, 22).value() == false);       // port, remote side
  BOOST_TEST(rules.match("curl", nullptr, 0, &remote, 80).value() == true);       // remote before program
  BOOST_TEST(rules.match("curl", nullptr, 0, &far, 80).value() == false);
  BOOST_TEST(!rules.match("wget", nullptr, 0, &far, 80).has_value());             // no rule: defaults
  BOOST_TEST(!rules.match("wget", &local, 80, nullptr, 0).has_value());           // remote= needs a peer
}

BOOST_AUTO_TEST_CASE(ranges_prefixes_and_mapped_addresses) {
  std::vector<std::string> errors;
  auto rules = OffloadRules::parse("offload local=fd09::/64 port=5000-5010;kernel local=10.9.0.0/24", errors);
  BOOST_TEST(errors.empty());
  const IpAddr v6 = ip("fd09::1"), v4 = ip("10.9.0.7"), mapped = ip("::ffff:10.9.0.7");
  BOOST_TEST(rules.match(nullptr, &v6, 5005, nullptr, 0).value() == true);
  BOOST_TEST(!rules.match(nullptr, &v6, 5011, nullptr, 0).has_value());
  BOOST_TEST(rules.match(nullptr, &v4, 1, nullptr, 0).value() == false);
  BOOST_TEST(rules.match(nullptr, &mapped, 1, nullptr, 0).value() == false);  // ::ffff:a.b.c.d is a.b.c.d
}

BOOST_AUTO_TEST_CASE(bad_rules_are_reported_one_line_each_and_left_out) {
  std::vector<std::string> errors;
  auto rules = OffloadRules::parse(
      "maybe port=1; offload port=70000; offload port=9-3; kernel local=10.0.0.300; offload colour=red; "
      "kernel remote=fd00::/129; offload program=; ; offload",
      errors);
  BOOST_TEST(rules.size() == 1u);  // only the last, bare "offload"
  BOOST_REQUIRE(errors.size() == 7u);
  BOOST_TEST(errors[0] == "SHUNT_RULES: rule 1 'maybe port=1': starts with 'maybe', not offload or kernel");
  BOOST_TEST(errors[1] == "SHUNT_RULES: rule 2 'offload port=70000': port=70000: expected N or N-M");
  BOOST_TEST(errors[2].find("port=9-3") != std::string::npos);
  BOOST_TEST(errors[3].find("local=10.0.0.300: expected ADDR[/N]") != std::string::npos);
  BOOST_TEST(errors[4].find("unknown field 'colour=red'") != std::string::npos);
  BOOST_TEST(errors[5].find("remote=fd00::/129") != std::string::npos);
  BOOST_TEST(errors[6].find("unknown field 'program='") != std::string::npos);
  const IpAddr any = ip("1.2.3.4");
  BOOST_TEST(rules.match("x", &any, 1, &any, 2).value() == true);
}

BOOST_AUTO_TEST_CASE(hostile_rule_text_is_bounded) {
  std::vector<std::string> errors;
  std::string text(100000, ';');
  text += std::string(5000, 'x');
  auto rules = OffloadRules::parse(text, errors);
  BOOST_TEST(rules.size() == 0u);
  BOOST_TEST(errors.size() == 1u);
}

BOOST_AUTO_TEST_CASE(candidate_sockets_are_ip_udp_and_tcp_with_a_device) {
  Config c;
  BOOST_TEST(!decide_socket(&c, AF_INET, SOCK_STREAM, 0).offload);  // no device
  c.device = "mlx5sim:cable=x";
  BOOST_TEST(decide_socket(&c, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).offload);
  BOOST_TEST(decide_socket(&c, AF_INET6, SOCK_DGRAM, IPPROTO_UDP).offload);
  BOOST_TEST(std::string(decide_socket(&c, AF_UNIX, SOCK_STREAM, 0).reason) == "not an IP socket");
  BOOST_TEST(!decide_socket(&c, AF_INET, SOCK_RAW, IPPROTO_ICMP).offload);
  BOOST_TEST(!decide_socket(&c, AF_INET, SOCK_DGRAM, IPPROTO_TCP).offload);
  BOOST_TEST(!decide_socket(nullptr, AF_INET, SOCK_DGRAM, 0).offload);
}
