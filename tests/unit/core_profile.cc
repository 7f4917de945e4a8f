// SHUNT_PROFILE and SHUNT_CONFIG: the order in which defaults, the profile, the file and the
// environment apply, and how a bad file is reported.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
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

// A temporary configuration file, removed at the end of the test.
struct TempFile {
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/shunt-config-test-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    BOOST_TEST_REQUIRE(fd >= 0);
    path = tmpl;
    BOOST_TEST_REQUIRE(::write(fd, text.data(), text.size()) == ssize_t(text.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
  std::string path;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(core_profile)

BOOST_AUTO_TEST_CASE(the_default_profile_changes_nothing) {
  ConfigResult r = load_from({{"SHUNT_PROFILE", "default"}});
  BOOST_TEST(r.ok());
  Config d;
  BOOST_TEST(r.config.spin_us == d.spin_us);
  BOOST_TEST(r.config.nic_cq_mod_count == d.nic_cq_mod_count);
  BOOST_TEST(r.config.mlx5_tx_signal_every == d.mlx5_tx_signal_every);
}

BOOST_AUTO_TEST_CASE(latency_spins_long_and_does_not_moderate) {
  ConfigResult r = load_from({{"SHUNT_PROFILE", "latency"}});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.config.profile == "latency");
  BOOST_TEST(r.config.spin_us == 1'000'000);
  BOOST_TEST(r.config.nic_cq_mod_count == 1);
  BOOST_TEST(r.config.nic_cq_mod_us == 0);
  BOOST_TEST(r.config.mlx5_tx_signal_every < Config{}.mlx5_tx_signal_every);
  BOOST_TEST(r.config.mlx5_inline > Config{}.mlx5_inline);
  BOOST_TEST(r.config.mlx5_blueflame == 1);
}

BOOST_AUTO_TEST_CASE(throughput_spins_briefly_and_batches) {
  ConfigResult r = load_from({{"SHUNT_PROFILE", "throughput"}});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.config.spin_us < Config{}.spin_us);
  BOOST_TEST(r.config.mlx5_tx_signal_every > Config{}.mlx5_tx_signal_every);
  BOOST_TEST(r.config.nic_cq_mod_count > Config{}.nic_cq_mod_count);
  BOOST_TEST(r.config.nic_cq_mod_us > Config{}.nic_cq_mod_us);
  BOOST_TEST(r.config.progress_us > Config{}.progress_us);
}

BOOST_AUTO_TEST_CASE(every_profile_value_is_valid_for_its_variable) {
  for (const auto& d : profile_defaults()) {
    Config c;
    BOOST_TEST_CONTEXT(d.profile << " " << d.name << "=" << d.value) {
      BOOST_TEST(!config_set(c, d.name, d.value).has_value());
      BOOST_TEST((std::string(d.profile) == "latency" || std::string(d.profile) == "throughput"));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_variable_set_in_the_environment_wins_over_the_profile) {
  ConfigResult r = load_from({{"SHUNT_PROFILE", "latency"}, {"SHUNT_SPIN_US", "5"}});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.config.spin_us == 5);
  BOOST_TEST(r.config.nic_cq_mod_count == 1);  // the rest of the profile still applies
}

BOOST_AUTO_TEST_CASE(a_bad_profile_is_one_error_and_changes_nothing) {
  ConfigResult r = load_from({{"SHUNT_PROFILE", "fast"}});
  BOOST_TEST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(contains(r.errors[0], "SHUNT_PROFILE=fast"));
  BOOST_TEST(contains(r.errors[0], "default|latency|throughput"));
  BOOST_TEST(r.config.spin_us == Config{}.spin_us);
}

BOOST_AUTO_TEST_CASE(the_file_is_read_with_comments_blank_lines_quotes_and_export) {
  TempFile f(
      "# Shunt settings\n"
      "\n"
      "SHUNT_SPIN_US=250\n"
      "   SHUNT_TTL = 32   # hops\n"
      "export SHUNT_PCAP=\"/tmp/with space.pcap\"\n"
      "SHUNT_RULES='offload port=80;kernel'\n"
      "SHUNT_DEVICE=mlx5sim:cable=a#b\r\n");
  ConfigResult r = load_from({{"SHUNT_CONFIG", f.path}});
  BOOST_TEST(r.ok());
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e);
  BOOST_TEST(r.config.config_file == f.path);
  BOOST_TEST(r.config.spin_us == 250);
  BOOST_TEST(r.config.ttl == 32);
  BOOST_TEST(r.config.pcap == "/tmp/with space.pcap");
  BOOST_TEST(r.config.rules == "offload port=80;kernel");
  BOOST_TEST(r.config.device == "mlx5sim:cable=a#b");  // '#' inside a word is not a comment
}

BOOST_AUTO_TEST_CASE(the_environment_wins_over_the_file_and_the_file_over_the_profile) {
  TempFile f("SHUNT_PROFILE=latency\nSHUNT_SPIN_US=300\nSHUNT_TTL=10\nSHUNT_NIC_CQ_MOD_COUNT=7\n");
  ConfigResult r = load_from({{"SHUNT_CONFIG", f.path}, {"SHUNT_TTL", "20"}});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.config.profile == "latency");
  BOOST_TEST(r.config.spin_us == 300);         // file over profile
  BOOST_TEST(r.config.nic_cq_mod_count == 7);  // file over profile
  BOOST_TEST(r.config.nic_cq_mod_us == 0);     // profile over default
  BOOST_TEST(r.config.ttl == 20);              // environment over file
  ConfigResult t = load_from({{"SHUNT_CONFIG", f.path}, {"SHUNT_PROFILE", "throughput"}});
  BOOST_TEST(t.config.profile == "throughput");  // the environment's profile
  BOOST_TEST(t.config.spin_us == 300);
  BOOST_TEST(t.config.mlx5_tx_signal_every == 64);
}

BOOST_AUTO_TEST_CASE(each_bad_line_of_the_file_is_one_error_naming_file_and_line) {
  TempFile f(
      "SHUNT_SPIN_US=7\n"
      "SHUNT_TTL=999\n"
      "just words\n"
      "SHUNT_NO_SUCH=1\n"
      "SHUNT_CONFIG=/etc/other\n"
      "SHUNT_BUFFERS=128\n");
  ConfigResult r = load_from({{"SHUNT_CONFIG", f.path}});
  BOOST_TEST_REQUIRE(r.errors.size() == 4u);
  BOOST_TEST(r.errors[0].rfind(f.path + ":2: SHUNT_TTL=999: expected an integer in [1, 255]", 0) ==
             0u);
  BOOST_TEST(r.errors[1].rfind(f.path + ":3: ", 0) == 0u);
  BOOST_TEST(contains(r.errors[1], "NAME=value"));
  BOOST_TEST(r.errors[2].rfind(f.path + ":4: SHUNT_NO_SUCH", 0) == 0u);
  BOOST_TEST(r.errors[3].rfind(f.path + ":5: ", 0) == 0u);
  for (const auto& e : r.errors) BOOST_TEST(!contains(e, "\n"));
  BOOST_TEST(r.config.spin_us == 7);  // good lines still apply
  BOOST_TEST(r.config.buffers == 128);
  BOOST_TEST(r.config.ttl == Config{}.ttl);
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_one_error_and_the_environment_still_applies) {
  ConfigResult r = load_from({{"SHUNT_CONFIG", "/nonexistent/shunt.conf"}, {"SHUNT_TTL", "9"}});
  BOOST_TEST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(contains(r.errors[0], "SHUNT_CONFIG=/nonexistent/shunt.conf"));
  BOOST_TEST(contains(r.errors[0], "No such file"));
  BOOST_TEST(r.config.ttl == 9);
}

BOOST_AUTO_TEST_CASE(binary_and_overlong_input_is_reported_not_crashed_on) {
  std::string text = "SHUNT_TTL=1";
  text.push_back('\0');
  text += "0\n" + std::string(10000, 'x') + "\nSHUNT_SPIN_US=3\n";
  TempFile f(text);
  ConfigResult r = load_from({{"SHUNT_CONFIG", f.path}});
  BOOST_TEST(r.errors.size() == 2u);
  BOOST_TEST(r.config.ttl == Config{}.ttl);
  BOOST_TEST(r.config.spin_us == 3);
}

BOOST_AUTO_TEST_CASE(docs_config_md_holds_the_profile_table) {
  std::string here = __FILE__;
  std::string root = here.substr(0, here.rfind("/tests/unit/"));
  std::ifstream in(root + "/docs/config.md");
  BOOST_TEST_REQUIRE(in.good());
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(
      contains(doc, profile_markdown()),
      "docs/config.md is out of date: regenerate its profile table with `build/bin/shunt config "
      "--profiles`");
}

BOOST_AUTO_TEST_SUITE_END()
