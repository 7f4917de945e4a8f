// Replays every input of the committed fuzz corpus (tests/fuzz/corpus/: the seeds and the
// inputs that once found bugs) through the fuzz target's harness, so every compiler and
// sanitizer build checks them: no crash, every buffer back in the pool, no reassembly and no
// timer left once the sockets are closed and time has run out.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "stack/core/log.h"
#include "tests/fuzz/stack_rx_harness.h"

using namespace shunt;

namespace {

std::filesystem::path corpus_dir() { return std::filesystem::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus"; }

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct QuietLog {
  QuietLog() : saved(log_level()) { set_log_level(LogLevel::kError); }
  ~QuietLog() { set_log_level(saved); }
  LogLevel saved;
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_corpus_input_leaves_the_stack_whole) {
  QuietLog quiet;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir())) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  BOOST_TEST_REQUIRE(files.size() >= 10u);
  for (const auto& p : files) {
    const auto data = read_file(p);
    const fuzz::Result r = fuzz::run_stack_rx(data.data(), data.size());
    BOOST_TEST(r.ok, p.filename().string() << ": " << r.why);
  }
}

BOOST_AUTO_TEST_CASE(the_seeds_reach_every_protocol) {
  // The corpus is worth replaying only if its frames get past the parsers.
  QuietLog quiet;
  Counters total;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir())) {
    if (e.path().filename().string().rfind("seed-", 0) != 0) continue;
    const auto data = read_file(e.path());
    fuzz::StackRxHarness h;
    BOOST_TEST(h.run(data.data(), data.size()).ok);
    for (const auto& c : h.stack().counters().entries()) total.add(c.name).inc(c.counter.value);
  }
  for (const char* name : {"arp.tx_replies", "icmp.tx_echo_reply", "ipv4.reasm_ok", "udp.rx_datagrams",
                           "udp.icmp_errors", "igmp.rx_queries", "icmp6.tx_echo_reply", "ipv6.reassembled",
                           "ndp.rx_ns", "ndp.rx_na", "ndp.dad_duplicate", "mld.rx_queries", "icmp.tx_errors",
                           "icmp6.tx_errors"}) {
    BOOST_TEST(total.get(name) > 0u, name);
  }
}
