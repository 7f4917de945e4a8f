// The TCP header and option wire format against well-formed and hostile input, and the stack's
// handling of malformed segments (dropped and counted, or options ignored and counted).
#include "tcp_engine_support.h"

using namespace shunt;
using namespace shunt::test;

namespace {
Bytes header(uint8_t doff_words, const Bytes& options = {}, const Bytes& payload = {}) {
  Bytes t(20);
  put16(t, 0, 1234);
  put16(t, 2, 80);
  store32(t.data() + 4, 0x01020304);
  store32(t.data() + 8, 0x05060708);
  t[12] = uint8_t(doff_words << 4);
  t[13] = kTcpSyn | kTcpAck;
  put16(t, 14, 0x1111);
  put16(t, 18, 7);
  t.insert(t.end(), options.begin(), options.end());
  t.insert(t.end(), payload.begin(), payload.end());
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(header_fields_parse_and_emit_round_trip) {
  Bytes t = header(5, {}, {9, 9});
  auto h = TcpRepr::parse(t.data(), t.size());
  BOOST_REQUIRE(h);
  BOOST_CHECK_EQUAL(h->src_port, 1234);
  BOOST_CHECK_EQUAL(h->dst_port, 80);
  BOOST_CHECK_EQUAL(h->seq, 0x01020304u);
  BOOST_CHECK_EQUAL(h->ack, 0x05060708u);
  BOOST_CHECK(h->has(kTcpSyn) && h->has(kTcpAck) && !h->has(kTcpFin));
  BOOST_CHECK_EQUAL(h->window, 0x1111);
  BOOST_CHECK_EQUAL(h->urgent, 7);
  BOOST_CHECK_EQUAL(h->header_len, 20);
  Bytes e(20);
  TcpRepr::emit(e.data(), 1234, 80, 0x01020304, 0x05060708, kTcpSyn | kTcpAck, 0x1111, 0);
  BOOST_CHECK(std::equal(e.begin(), e.begin() + 16, t.begin()));
}

BOOST_AUTO_TEST_CASE(every_truncation_of_the_fixed_header_is_rejected) {
  Bytes t = header(5);
  for (size_t n = 0; n < 20; ++n) {
    TcpError err{};
    BOOST_CHECK(!TcpRepr::parse(t.data(), n, &err));
    BOOST_CHECK(err == TcpError::kTruncated);
  }
  BOOST_CHECK(TcpRepr::parse(t.data(), 20));
}

BOOST_AUTO_TEST_CASE(data_offset_below_five_or_beyond_the_segment_is_rejected) {
  for (uint8_t d = 0; d < 5; ++d) {
    Bytes t = header(d, {}, Bytes(40, 0));
    TcpError err{};
    BOOST_CHECK(!TcpRepr::parse(t.data(), t.size(), &err));
    BOOST_CHECK(err == TcpError::kBadDataOffset);
  }
  // Data offset 15 (60 bytes) in a 40-byte segment, and every length just short of it.
  Bytes t = header(15, {}, Bytes(40, 1));
  for (size_t n = 20; n < 60; ++n) {
    TcpError err{};
    BOOST_CHECK(!TcpRepr::parse(t.data(), n, &err));
    BOOST_CHECK(err == TcpError::kBadDataOffset);
  }
  BOOST_CHECK(TcpRepr::parse(t.data(), 60));
}

BOOST_AUTO_TEST_CASE(options_parse_mss_wscale_sack_permitted_timestamps_and_sack) {
  Bytes o{2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1};
  auto r = TcpOptions::parse(o.data(), o.size());
  BOOST_CHECK(!r.malformed);
  BOOST_CHECK(r.has_mss && r.mss == 1460);
  BOOST_CHECK(r.has_wscale && r.wscale == 7);
  BOOST_CHECK(r.sack_permitted);
  BOOST_CHECK(r.has_timestamps && r.tsval == 1 && r.tsecr == 2);
  Bytes s{1, 1, 5, 26};
  for (uint32_t i = 0; i < 3; ++i) {
    Bytes b(8);
    store32(b.data(), 100 * i);
    store32(b.data() + 4, 100 * i + 50);
    s.insert(s.end(), b.begin(), b.end());
  }
  r = TcpOptions::parse(s.data(), s.size());
  BOOST_CHECK_EQUAL(r.sack_count, 3);
  BOOST_CHECK_EQUAL(r.sack[2].left, 200u);
  BOOST_CHECK_EQUAL(r.sack[2].right, 250u);
}

BOOST_AUTO_TEST_CASE(emitted_options_parse_back_the_same) {
  TcpSackBlock blocks[3] = {{10, 20}, {30, 40}, {50, 60}};
  TcpTxOptions t;
  t.mss = true;
  t.mss_value = 1400;
  t.wscale = true;
  t.wscale_value = 9;
  t.sack_permitted = true;
  t.timestamps = true;
  t.tsval = 77;
  t.tsecr = 88;
  uint8_t buf[40];
  size_t n = t.emit(buf);
  BOOST_CHECK_EQUAL(n, t.size());
  BOOST_CHECK_EQUAL(n % 4, 0u);
  auto r = TcpOptions::parse(buf, n);
  BOOST_CHECK(r.has_mss && r.mss == 1400 && r.has_wscale && r.wscale == 9 && r.sack_permitted && r.has_timestamps);
  TcpTxOptions d;
  d.timestamps = true;
  d.sack = blocks;
  d.sack_count = 3;
  n = d.emit(buf);
  BOOST_CHECK_EQUAL(n, 40u);
  r = TcpOptions::parse(buf, n);
  BOOST_CHECK_EQUAL(r.sack_count, 3);
  BOOST_CHECK(r.sack[1] == blocks[1]);
}

BOOST_AUTO_TEST_CASE(lying_option_lengths_stop_the_parse_and_are_flagged) {
  // Length 0 and 1 (would loop or step backwards), length past the end.
  for (Bytes o : {Bytes{8, 0, 1, 1}, Bytes{2, 1, 1, 1}, Bytes{2, 4, 5}, Bytes{8, 10, 0, 0, 0, 1}, Bytes{3}}) {
    auto r = TcpOptions::parse(o.data(), o.size());
    BOOST_CHECK(r.malformed);
    BOOST_CHECK(!r.has_timestamps && !r.has_mss);
  }
  // Options before the bad one are kept.
  Bytes o{2, 4, 0x02, 0x00, 99, 0};
  auto r = TcpOptions::parse(o.data(), o.size());
  BOOST_CHECK(r.malformed && r.has_mss && r.mss == 512);
  // End of list stops quietly; unknown options are skipped by their length.
  Bytes e{0, 2, 1};
  BOOST_CHECK(!TcpOptions::parse(e.data(), e.size()).malformed);
  Bytes u{30, 4, 0, 0, 3, 3, 5};
  r = TcpOptions::parse(u.data(), u.size());
  BOOST_CHECK(!r.malformed && r.has_wscale && r.wscale == 5);
}

BOOST_AUTO_TEST_CASE(known_options_with_wrong_lengths_and_bad_sack_blocks_are_ignored) {
  Bytes o{2, 5, 1, 2, 3, 3, 4, 1, 2, 4, 8, 9, 0, 0, 0, 0, 0, 0, 0, 5, 3, 0, 0};
  auto r = TcpOptions::parse(o.data(), o.size());
  BOOST_CHECK(!r.has_mss && !r.has_wscale && !r.has_timestamps);
  // SACK lengths that are not 2 + 8n, and a too-short one.
  for (uint8_t len : {uint8_t(9), uint8_t(11), uint8_t(2), uint8_t(17)}) {
    Bytes s{5, len};
    s.resize(len < 2 ? 2 : len, 0);
    r = TcpOptions::parse(s.data(), s.size());
    BOOST_CHECK_EQUAL(r.sack_count, 0);
  }
  // Five blocks cannot fit in 40 bytes; a hostile 4-block option in the maximum space is fine.
  Bytes four{1, 1, 5, 34};
  four.resize(36, 0);
  r = TcpOptions::parse(four.data(), four.size());
  BOOST_CHECK_EQUAL(r.sack_count, 4);
}

BOOST_AUTO_TEST_CASE(malformed_segments_are_dropped_and_counted_by_the_stack) {
  TcpRig r;
  auto p = r.accept_one();
  // Bad checksum.
  auto s = r.peer(p, kTcpAck, Bytes{1});
  s.bad_checksum = true;
  r.send(s);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.bad_checksum"), 1u);
  // Data offset beyond the segment, and below 5.
  s = r.peer(p, kTcpAck, Bytes{1});
  s.data_offset_override = 15;
  r.send(s);
  s.data_offset_override = 3;
  r.send(s);
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.bad_data_offset"), 2u);
  // Truncated headers: every length below 20.
  const Bytes whole = TcpRig::tcp_bytes(r.peer(p));
  for (size_t n = 0; n < 20; ++n) r.send_raw_tcp(Bytes(whole.begin(), whole.begin() + long(n)));
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.truncated"), 20u);
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 0u);
  BOOST_CHECK(r.out().empty());
  // A lying option is ignored from there on and counted; the segment itself is good.
  s = r.peer(p, kTcpAck, Bytes{'z'});
  s.options = {1, 1, 8, 40, 0, 0, 0, 0, 0, 0, 0, 0};
  r.send(s);
  BOOST_CHECK_EQUAL(r.counter("tcp.bad_options"), 1u);
  BOOST_CHECK_EQUAL(r.tcp().rx_queued(*p.conn), 1u);
  BOOST_CHECK(r.tcp().state(*p.conn) == TcpState::kEstablished);
}

BOOST_AUTO_TEST_CASE(a_segment_for_no_socket_is_answered_with_rst) {
  TcpRig r;
  TcpRig::Seg s;
  s.dport = 81;
  s.seq = 100;
  s.flags = kTcpSyn;
  r.send(s);
  auto o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(o[0].has(kTcpRst) && o[0].has(kTcpAck));
  BOOST_CHECK_EQUAL(o[0].h.ack, 101u);
  BOOST_CHECK_EQUAL(o[0].h.seq, 0u);
  // With an ACK: <SEQ=SEG.ACK><CTL=RST>; and never a RST for a RST.
  s.flags = kTcpAck;
  s.ack = 5555;
  r.send(s);
  o = r.out();
  BOOST_REQUIRE_EQUAL(o.size(), 1u);
  BOOST_CHECK(o[0].has(kTcpRst) && !o[0].has(kTcpAck));
  BOOST_CHECK_EQUAL(o[0].h.seq, 5555u);
  s.flags = kTcpRst;
  r.send(s);
  BOOST_CHECK(r.out().empty());
  BOOST_CHECK_EQUAL(r.counter("tcp.drop.no_socket"), 3u);
}
