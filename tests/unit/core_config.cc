#include <boost/test/unit_test.hpp>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "stack/core/config.h"

using namespace shunt;

namespace {
ConfigResult load_from(const std::map<std::string, std::string>& env) {
  return load_config([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_CASE(no_variables_give_the_defaults) {
  ConfigResult r = load_from({});
  BOOST_TEST(r.ok());
  Config d;
  BOOST_TEST(r.config.buffers == d.buffers);
  BOOST_TEST(r.config.log_level == "warn");
  BOOST_TEST(r.config.pcap.empty());
}

BOOST_AUTO_TEST_CASE(good_values_parse) {
  ConfigResult r = load_from({{"SHUNT_BUFFERS", "64"},
                              {"SHUNT_TTL", "255"},
                              {"SHUNT_SEED", "9223372036854775807"},
                              {"SHUNT_LOG_LEVEL", "debug"},
                              {"SHUNT_PCAP", "/tmp/x.pcap"},
                              {"SHUNT_REASM_MAX_BYTES", "0"}});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.config.buffers == 64);
  BOOST_TEST(r.config.ttl == 255);
  BOOST_TEST(r.config.seed == INT64_MAX);
  BOOST_TEST(r.config.log_level == "debug");
  BOOST_TEST(r.config.pcap == "/tmp/x.pcap");
  BOOST_TEST(r.config.reasm_max_bytes == 0);
}

BOOST_AUTO_TEST_CASE(each_bad_integer_is_one_line_naming_the_variable_and_its_range) {
  for (const char* bad :
       {"256", "0", "-1", "", "12abc", "abc", "5 ", "99999999999999999999999", "1.5"}) {
    ConfigResult r = load_from({{"SHUNT_TTL", bad}});
    BOOST_TEST_CONTEXT("SHUNT_TTL=" << bad) {
      BOOST_TEST_REQUIRE(r.errors.size() == 1u);
      const std::string& e = r.errors[0];
      BOOST_TEST(contains(e, "SHUNT_TTL"));
      BOOST_TEST(contains(e, "[1, 255]"));
      BOOST_TEST(!contains(e, "\n"));
      BOOST_TEST(r.config.ttl == Config{}.ttl);  // the default stays
    }
  }
}

BOOST_AUTO_TEST_CASE(a_bad_choice_lists_the_accepted_values) {
  ConfigResult r = load_from({{"SHUNT_LOG_LEVEL", "loud"}});
  BOOST_TEST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(contains(r.errors[0], "SHUNT_LOG_LEVEL"));
  BOOST_TEST(contains(r.errors[0], "error|warn|info|debug|trace"));
  BOOST_TEST(r.config.log_level == "warn");
}

BOOST_AUTO_TEST_CASE(every_bad_variable_is_reported_and_good_ones_still_apply) {
  ConfigResult r = load_from({{"SHUNT_TTL", "0"}, {"SHUNT_BUFFERS", "1"}, {"SHUNT_SPIN_US", "7"}});
  BOOST_TEST(r.errors.size() == 2u);
  BOOST_TEST(r.config.spin_us == 7);
}

BOOST_AUTO_TEST_CASE(an_overlong_string_is_refused) {
  ConfigResult r = load_from({{"SHUNT_PCAP", std::string(5000, 'x')}});
  BOOST_TEST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(contains(r.errors[0], "SHUNT_PCAP"));
}

BOOST_AUTO_TEST_CASE(config_set_and_get_by_name) {
  Config c;
  BOOST_TEST(!config_set(c, "SHUNT_ICMP_RATE", "10").has_value());
  BOOST_TEST(c.icmp_rate == 10);
  auto err = config_set(c, "SHUNT_NO_SUCH", "1");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(contains(*err, "SHUNT_NO_SUCH"));
  for (const auto& v : config_vars()) {
    if (std::string(v.name) == "SHUNT_ICMP_RATE") BOOST_TEST(config_get(c, v) == "10");
  }
}

BOOST_AUTO_TEST_CASE(markdown_table_has_one_row_per_variable) {
  std::string md = config_markdown();
  size_t rows = 0;
  for (char ch : md) rows += ch == '\n';
  BOOST_TEST(rows == config_vars().size() + 2);  // header and separator
  for (const auto& v : config_vars()) {
    BOOST_TEST(contains(md, std::string("`") + v.name + "`"));
    BOOST_TEST(std::string(v.name).rfind("SHUNT_", 0) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(docs_config_md_holds_the_generated_table) {
  // This file is tests/unit/core_config.cc; the reference is docs/config.md beside tests/.
  std::string here = __FILE__;
  std::string root = here.substr(0, here.rfind("/tests/unit/"));
  std::ifstream in(root + "/docs/config.md");
  BOOST_TEST_REQUIRE(in.good(), "cannot read " << root << "/docs/config.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(contains(doc, config_markdown()),
             "docs/config.md is out of date: regenerate its table with `build/bin/shunt config "
             "--markdown`");
}
