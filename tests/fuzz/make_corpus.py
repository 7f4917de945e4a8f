#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_stack_rx (valid frames in the record format of
stack_rx_harness.h) into tests/fuzz/corpus/seed-*. Run it again after changing the format.

    python3 tests/fuzz/make_corpus.py [outdir]

The corpus also holds fuzz-* files: small inputs that reached new code in fuzzing runs (picked
from a `-merge=1` of the run's corpus), replayed by net.fuzz_corpus like the seeds.
"""
import os
import struct
import sys

OUR_MAC = bytes([2, 0, 0, 0, 0, 1])
PEER_MAC = bytes([2, 0, 0, 0, 0, 2])
BCAST = b"\xff" * 6


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def ip6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


OUR4, PEER4 = ip4("10.0.0.1"), ip4("10.0.0.2")
OUR6, PEER6, TENT6 = ip6("2001:db8::1"), ip6("2001:db8::2"), ip6("2001:db8::99")
OUR_LL, PEER_LL = ip6("fe80::ff:fe00:1"), ip6("fe80::2")
ALL_NODES = ip6("ff02::1")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def with_sum(msg, at, pseudo=b""):
    msg = bytearray(msg)
    msg[at:at + 2] = b"\0\0"
    msg[at:at + 2] = struct.pack("!H", csum(pseudo + bytes(msg)))
    return bytes(msg)


def eth(dst, etype, payload, src=PEER_MAC):
    return dst + src + struct.pack("!H", etype) + payload


def mac6(a):
    return b"\x33\x33" + a[12:]


def mac4(a):
    return bytes([1, 0, 0x5E, a[1] & 0x7F, a[2], a[3]])


def ipv4(src, dst, proto, payload, ident=1, frag=0, mf=False, ttl=64, options=b""):
    hl = 20 + len(options)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | hl // 4, 0, hl + len(payload), ident,
                    (0x2000 if mf else 0) | (frag // 8), ttl, proto, 0, src, dst) + options
    return with_sum(h, 10) + payload


def udp4(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ph = src + dst + struct.pack("!BBH", 0, 17, len(u))
    return with_sum(u, 6, ph)


def icmp(t, c, body):
    return with_sum(bytes([t, c, 0, 0]) + body, 2)


def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, hop) + src + dst + payload


def l4sum6(src, dst, nh, msg, at):
    ph = src + dst + struct.pack("!I", len(msg)) + b"\0\0\0" + bytes([nh])
    return with_sum(msg, at, ph)


def icmp6(src, dst, t, c, body):
    return l4sum6(src, dst, 58, bytes([t, c, 0, 0]) + body, 2)


def udp6(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return l4sum6(src, dst, 17, u, 6)


def arp(op, smac, sip, tmac, tip):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + smac + sip + tmac + tip


def rec(frame, step=0, keep=False, nopoll=False, act=0):
    ctl = (step & 7) | (0x08 if keep else 0) | (0x10 if nopoll else 0) | (act << 5)
    return bytes([ctl]) + struct.pack("!H", len(frame)) + frame


# --- Frames.
arp_req = eth(BCAST, 0x0806, arp(1, PEER_MAC, PEER4, b"\0" * 6, OUR4))
arp_rep = eth(OUR_MAC, 0x0806, arp(2, PEER_MAC, PEER4, OUR_MAC, OUR4))
arp_gw = eth(OUR_MAC, 0x0806, arp(2, bytes([2, 0, 0, 0, 0, 0xfe]), ip4("10.0.0.254"), OUR_MAC, OUR4))
echo4 = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 1, icmp(8, 0, struct.pack("!HH", 1, 1) + b"a" * 56)))
udp_echo4 = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 17, udp4(PEER4, OUR4, 1234, 7, b"hello")))
udp_closed4 = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 17, udp4(PEER4, OUR4, 1234, 9999, b"x" * 20)))
udp_mc4 = eth(mac4(ip4("239.1.1.1")), 0x0800,
              ipv4(PEER4, ip4("239.1.1.1"), 17, udp4(PEER4, ip4("239.1.1.1"), 1234, 5000, b"m" * 10), ttl=1))
udp_bc4 = eth(BCAST, 0x0800, ipv4(PEER4, ip4("10.0.0.255"), 17, udp4(PEER4, ip4("10.0.0.255"), 1234, 7, b"b" * 10)))
proto_unreach = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 99, b"z" * 16))
opts4 = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 1, icmp(8, 0, b"\0\1\0\2" + b"o" * 8),
                                  options=bytes([1, 0x88, 6, 1, 2, 3, 4, 0])))


def frags4(proto, payload, ident, chunk=1480):
    out = []
    for off in range(0, len(payload), chunk):
        piece = payload[off:off + chunk]
        out.append(eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, proto, piece, ident=ident, frag=off,
                                             mf=off + chunk < len(payload))))
    return out


udp_frags4 = frags4(17, udp4(PEER4, OUR4, 1234, 7, bytes(range(256)) * 12), 77)
echo_frags4 = frags4(1, icmp(8, 0, b"\0\3\0\3" + b"f" * 2000), 78, chunk=1024)
# What the connected sockets send (10.0.0.1:53601 -> 10.0.0.2:9, [2001:db8::1]:41726 ->
# [2001:db8::2]:9: the ports the harness's seeded stack picks), quoted in errors.
CONNECTED_PORT4, CONNECTED_PORT6 = 53601, 41726
quoted = ipv4(OUR4, PEER4, 17, struct.pack("!HHHH", CONNECTED_PORT4, 9, 16, 0))
port_unreach4 = eth(OUR_MAC, 0x0800, ipv4(PEER4, OUR4, 1, icmp(3, 3, b"\0" * 4 + quoted)))
time_exc4 = eth(OUR_MAC, 0x0800, ipv4(ip4("10.0.0.254"), OUR4, 1, icmp(11, 0, b"\0" * 4 + quoted)))
igmp_general = eth(mac4(ip4("224.0.0.1")), 0x0800,
                   ipv4(ip4("10.0.0.254"), ip4("224.0.0.1"), 2, with_sum(bytes([0x11, 100, 0, 0, 0, 0, 0, 0, 2, 125, 0, 0]), 2),
                        ttl=1, options=bytes([148, 4, 0, 0])))
igmp_group = eth(mac4(ip4("239.1.1.1")), 0x0800,
                 ipv4(ip4("10.0.0.254"), ip4("239.1.1.1"), 2, with_sum(bytes([0x11, 10, 0, 0]) + ip4("239.1.1.1"), 2), ttl=1,
                      options=bytes([148, 4, 0, 0])))
igmp_v3_sources = eth(mac4(ip4("224.0.0.1")), 0x0800,
                      ipv4(ip4("10.0.0.254"), ip4("224.0.0.1"), 2,
                           with_sum(bytes([0x11, 0x85, 0, 0]) + ip4("239.1.1.1") + bytes([2, 10, 0, 2]) + PEER4 + OUR4, 2),
                           ttl=1, options=bytes([148, 4, 0, 0])))
vlan = OUR_MAC + PEER_MAC + b"\x81\x00\x00\x00\x08\x00" + ipv4(PEER4, OUR4, 1, icmp(8, 0, b"\0\4\0\4" + b"v" * 8))


def slla(mac):
    return bytes([1, 1]) + mac


def tlla(mac):
    return bytes([2, 1]) + mac


def sol(a):
    return ip6("ff02::1:ff00:0")[:13] + a[13:]


ns = eth(mac6(sol(OUR6)), 0x86DD,
         ipv6(PEER6, sol(OUR6), 58, icmp6(PEER6, sol(OUR6), 135, 0, b"\0" * 4 + OUR6 + slla(PEER_MAC)), hop=255))
ns_ll = eth(mac6(sol(OUR_LL)), 0x86DD,
            ipv6(PEER_LL, sol(OUR_LL), 58, icmp6(PEER_LL, sol(OUR_LL), 135, 0, b"\0" * 4 + OUR_LL + slla(PEER_MAC)), hop=255))
ns_dad = eth(mac6(sol(TENT6)), 0x86DD,
             ipv6(bytes(16), sol(TENT6), 58, icmp6(bytes(16), sol(TENT6), 135, 0, b"\0" * 4 + TENT6), hop=255))
na = eth(OUR_MAC, 0x86DD,
         ipv6(PEER6, OUR6, 58, icmp6(PEER6, OUR6, 136, 0, struct.pack("!I", 0x60000000) + PEER6 + tlla(PEER_MAC)), hop=255))
na_gw = eth(OUR_MAC, 0x86DD,
            ipv6(ip6("fe80::fe"), OUR_LL, 58,
                 icmp6(ip6("fe80::fe"), OUR_LL, 136, 0, struct.pack("!I", 0xe0000000) + ip6("fe80::fe") +
                       tlla(bytes([2, 0, 0, 0, 0, 0xfe]))), hop=255))
na_unsol = eth(mac6(ALL_NODES), 0x86DD,
               ipv6(PEER6, ALL_NODES, 58, icmp6(PEER6, ALL_NODES, 136, 0, struct.pack("!I", 0x20000000) + PEER6 +
                                                tlla(bytes([2, 0, 0, 0, 0, 3]))), hop=255))
echo6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 58, icmp6(PEER6, OUR6, 128, 0, struct.pack("!HH", 1, 1) + b"e" * 40)))
echo6_mc = eth(mac6(ALL_NODES), 0x86DD, ipv6(PEER_LL, ALL_NODES, 58, icmp6(PEER_LL, ALL_NODES, 128, 0, b"\0\1\0\1" + b"m" * 8)))
udp_echo6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 17, udp6(PEER6, OUR6, 1234, 7, b"hello6")))
udp_closed6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 17, udp6(PEER6, OUR6, 1234, 9999, b"x" * 20)))
mc6 = ip6("ff02::1:3")
udp_mc6 = eth(mac6(mc6), 0x86DD, ipv6(PEER_LL, mc6, 17, udp6(PEER_LL, mc6, 1234, 5001, b"m6" * 5)))
mc6s = ip6("ff05::123")
udp_mc6s = eth(mac6(mc6s), 0x86DD, ipv6(PEER6, mc6s, 17, udp6(PEER6, mc6s, 1234, 5001, b"s6" * 5)))
unknown_nh6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 99, b"q" * 16))
dstopts = bytes([58, 0, 1, 0, 0x1E, 2, 0, 0])  # PadN, then an unknown skippable option
dst_echo6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 60, dstopts + icmp6(PEER6, OUR6, 128, 0, b"\0\5\0\5" + b"d" * 8)))
hbh_echo6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 0, dstopts + icmp6(PEER6, OUR6, 128, 0, b"\0\6\0\6" + b"h" * 8)))
unknown_opt6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 60, bytes([58, 0, 0x9E, 4, 0, 0, 0, 0]) +
                                          icmp6(PEER6, OUR6, 128, 0, b"\0\7\0\7")))
routing6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 43, bytes([58, 0, 4, 1, 0, 0, 0, 0]) +
                                      icmp6(PEER6, OUR6, 128, 0, b"\0\7\0\7")))


def frags6(nh, payload, ident, chunk=1232, src=PEER6, dst=OUR6):
    out = []
    for off in range(0, len(payload), chunk):
        piece = payload[off:off + chunk]
        more = off + chunk < len(payload)
        fh = struct.pack("!BBHI", nh, 0, off | (1 if more else 0), ident)
        out.append(eth(OUR_MAC, 0x86DD, ipv6(src, dst, 44, fh + piece)))
    return out


udp_frags6 = frags6(17, udp6(PEER6, OUR6, 1234, 7, bytes(range(256)) * 12), 0x1234)
echo_frags6 = frags6(58, icmp6(PEER6, OUR6, 128, 0, b"\0\x08\0\x08" + b"g" * 1500), 0x1235, chunk=512)
atomic6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 44, struct.pack("!BBHI", 58, 0, 0, 9) +
                                     icmp6(PEER6, OUR6, 128, 0, b"\0\x09\0\x09")))
quoted6 = ipv6(OUR6, PEER6, 17, struct.pack("!HHHH", CONNECTED_PORT6, 9, 16, 0) + b"\0" * 8)
unreach6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 58, icmp6(PEER6, OUR6, 1, 4, b"\0" * 4 + quoted6)))
ptb6 = eth(OUR_MAC, 0x86DD, ipv6(PEER6, OUR6, 58, icmp6(PEER6, OUR6, 2, 0, struct.pack("!I", 1280) + quoted6)))
mld_general = eth(mac6(ALL_NODES), 0x86DD,
                  ipv6(ip6("fe80::fe"), ALL_NODES, 0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) +
                       icmp6(ip6("fe80::fe"), ALL_NODES, 130, 0, struct.pack("!HH", 1000, 0) + bytes(16) + bytes([2, 125, 0, 0])),
                       hop=1))
mld_v1 = eth(mac6(ALL_NODES), 0x86DD,
             ipv6(ip6("fe80::fe"), ALL_NODES, 0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) +
                  icmp6(ip6("fe80::fe"), ALL_NODES, 130, 0, struct.pack("!HH", 500, 0) + bytes(16)), hop=1))
mld_specific = eth(mac6(mc6), 0x86DD,
                   ipv6(ip6("fe80::fe"), mc6, 0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) +
                        icmp6(ip6("fe80::fe"), mc6, 130, 0, struct.pack("!HH", 0x8010, 0) + mc6 + bytes([2, 125, 0, 1]) + PEER_LL),
                        hop=1))

SEEDS = {
    "arp": [rec(arp_req), rec(arp_rep, step=2), rec(arp_gw, act=2)],
    "arp-resolve": [rec(b"\x05", act=2), rec(arp_rep, step=3), rec(b"\x07", act=2, step=5), rec(b"", step=5),
                    rec(b"", step=5)],
    "echo4": [rec(arp_req), rec(echo4), rec(opts4), rec(vlan)],
    "udp4": [rec(arp_rep), rec(udp_echo4, act=1), rec(udp_closed4), rec(udp_bc4, act=1), rec(udp_mc4, act=1),
             rec(proto_unreach)],
    "frag4": [rec(arp_rep)] + [rec(f, act=1) for f in udp_frags4] + [rec(f, step=2) for f in echo_frags4],
    "frag4-reverse": [rec(f, nopoll=True) for f in reversed(udp_frags4)] + [rec(b"", step=7)],
    "frag4-timeout": [rec(echo_frags4[0]), rec(b"", step=7), rec(echo_frags4[1], step=7)],
    "icmp4-errors": [rec(arp_rep), rec(b"", act=4), rec(port_unreach4), rec(time_exc4, act=1)],
    "igmp": [rec(igmp_general), rec(igmp_group, step=3), rec(igmp_v3_sources, step=4), rec(b"", step=5, act=6),
             rec(b"", step=5)],
    "ndp": [rec(ns), rec(ns_ll), rec(na, step=2), rec(na_unsol, step=3), rec(na_gw, act=3), rec(b"", step=6),
            rec(b"", step=7)],
    "ndp-dad": [rec(ns_dad), rec(b"", step=5)],
    "ndp-resolve": [rec(b"\x33", act=3), rec(b"", step=5), rec(b"", step=5), rec(b"", step=5)],
    "echo6": [rec(ns), rec(echo6), rec(echo6_mc), rec(dst_echo6), rec(hbh_echo6), rec(unknown_opt6),
              rec(routing6), rec(atomic6), rec(unknown_nh6)],
    "udp6": [rec(ns), rec(udp_echo6, act=1), rec(udp_closed6), rec(udp_mc6, act=1), rec(udp_mc6s, act=1)],
    "frag6": [rec(ns)] + [rec(f, act=1) for f in udp_frags6] + [rec(f, step=2) for f in echo_frags6],
    "frag6-timeout": [rec(echo_frags6[0]), rec(b"", step=7), rec(echo_frags6[1], step=7)],
    "icmp6-errors": [rec(ns), rec(na), rec(b"", act=5), rec(unreach6), rec(ptb6)],
    "mld": [rec(mld_general), rec(mld_v1, step=3), rec(mld_specific, step=4), rec(b"", step=5, act=6),
            rec(b"", step=5)],
    "mixed": [rec(arp_req), rec(ns), rec(echo4, keep=True), rec(echo6, keep=True), rec(udp_frags4[0]),
              rec(udp_frags6[0]), rec(b"", act=7), rec(b"", step=6)],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, records in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(b"".join(records))


if __name__ == "__main__":
    main()
