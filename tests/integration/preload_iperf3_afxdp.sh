#!/bin/bash
# iperf3 under the preload library on AF_XDP, against a kernel iperf3 (CTest preload.iperf3_afxdp).
#
#   preload_iperf3_afxdp.sh LIBSHUNT
#
# Two network namespaces of its own joined by a veth: the kernel's end (10.86.N.1/24, iperf3 -s,
# tx checksum offload and TSO/GSO off so that the AF_XDP receiver gets wire frames) and the
# stack's end (no kernel address, IPv6 off), where iperf3 -c runs under the library with
# SHUNT_DEVICE=afxdp:IF,mode=M SHUNT_IPV4=10.86.N.2/24. In native and in generic mode, the client
# sends IPERF3_AFXDP_MB MiB (default 64), then the server sends as many back (-R). Both sides
# write JSON (-J); checked: the sender sent exactly that many bytes, the receiver counted all but
# at most 16 MiB (iperf3 3.12 stops counting when the test ends, with bytes still in flight),
# the client's view of the server's count equals the server's own, and the client's SHUNT_DEBUG
# lines say its TCP sockets were offloaded. Exit 77 (skipped) with the reason when it cannot run:
# not root, a program missing, no namespaces or veth, no AF_XDP.
set -u
if [ $# -ne 1 ]; then
  echo "usage: preload_iperf3_afxdp.sh LIBSHUNT" >&2
  exit 2
fi
lib="$1"
python=/usr/bin/python3
mib="${IPERF3_AFXDP_MB:-64}"
bytes=$((mib << 20))
skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth, AF_XDP)"
for p in ip iperf3 ethtool timeout "$python"; do
  command -v "$p" >/dev/null 2>&1 || skip "$p is not installed"
done
[ -f "$lib" ] || { echo "FAIL: $lib does not exist (build the shunt_preload target)"; exit 1; }
for v in $(env | sed -n 's/^\(SHUNT_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# Namespaces of killed runs: their names end in a pid that no longer exists.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^shunt-ip3[sk]-[0-9]+$'); do
  [ -d "/proc/${ns##*-}" ] || ip netns delete "$ns" 2>/dev/null
done
sns="shunt-ip3s-$$"
kns="shunt-ip3k-$$"
sif="sis$(($$ % 1000000))"
kif="sik$(($$ % 1000000))"
subnet=$(($$ % 250 + 1))
kip="10.86.$subnet.1"
sip="10.86.$subnet.2"
work=$(mktemp -d)
cleanup() {
  ip netns delete "$sns" 2>/dev/null
  ip netns delete "$kns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$sns" 2>"$work/err" || skip "cannot create a network namespace: $(cat "$work/err")"
ip netns add "$kns" || exit 1
ip -n "$sns" link add "$sif" type veth peer name "$kif" netns "$kns" 2>"$work/err" ||
  skip "cannot create a veth pair: $(cat "$work/err")"
set -e
ip -n "$kns" link set lo up
ip -n "$kns" addr add "$kip/24" dev "$kif"
ip -n "$kns" link set "$kif" up
ip netns exec "$kns" ethtool -K "$kif" tx off tso off gso off >/dev/null
ip netns exec "$sns" sh -c "f=/proc/sys/net/ipv6/conf/$sif/disable_ipv6; [ ! -e \$f ] || echo 1 > \$f"
ip -n "$sns" link set "$sif" up
set +e

fail=0
complain() { echo "FAIL: $*"; fail=1; }

# One iperf3 run; $1 mode, $2 "" or -R. Leaves server.json, client.json, client.err in $work.
run() {
  local mode="$1" reverse="$2" port=$((5400 + RANDOM % 500))
  rm -f "$work/server.json" "$work/client.json" "$work/client.err"
  ip netns exec "$kns" timeout 120 iperf3 -s -1 -B "$kip" -p "$port" -J >"$work/server.json" 2>"$work/server.err" &
  local server=$!
  # The server is up when its port listens (with -J it prints nothing before the end).
  for _ in $(seq 100); do
    ip netns exec "$kns" ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && break
    sleep 0.05
  done
  ip netns exec "$sns" timeout 120 env SHUNT_DEVICE="afxdp:$sif,mode=$mode" SHUNT_IPV4="$sip/24" SHUNT_DEBUG=1 \
    LD_PRELOAD="$lib" iperf3 -c "$kip" -p "$port" -n "$bytes" $reverse -J >"$work/client.json" 2>"$work/client.err"
  local rc=$?
  wait "$server"
  local src=$?
  grep -v 'not an IP socket' "$work/client.err" | head -20
  if grep -q 'cannot open an AF_XDP socket\|no AF_XDP' "$work/client.err"; then
    skip "$(grep -m1 'AF_XDP' "$work/client.err")"
  fi
  [ $rc = 0 ] || complain "$mode $reverse: the client exited with $rc"
  [ $src = 0 ] || complain "$mode $reverse: the server exited with $src"
  grep -Eq "^shunt: connect\([0-9]+, $kip:$port\): offloaded" "$work/client.err" ||
    complain "$mode $reverse: the client's connection to $kip:$port was not offloaded"
  if grep -E "^shunt: [a-z0-9_]+\(.*: not offloaded" "$work/client.err" | grep -v 'not an IP socket'; then
    complain "$mode $reverse: the client left sockets on the kernel"
  fi
  "$python" - "$work/client.json" "$work/server.json" "$bytes" "$mode" "$reverse" <<'EOF' || fail=1
import json, sys
client_path, server_path, n, mode, reverse = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
what = f"{mode} mode, " + ("server -> stack (-R)" if reverse else "stack -> server")
try:
    c = json.load(open(client_path))
    s = json.load(open(server_path))
except Exception as e:
    sys.exit(f"FAIL: {what}: iperf3 JSON unreadable: {e}")
for side, d in (("client", c), ("server", s)):
    if "error" in d:
        sys.exit(f"FAIL: {what}: iperf3 {side}: {d['error']}")
# The sender's own count, and the receiver's own count.
sender, receiver = (s, c) if reverse else (c, s)
sent = sender["end"]["sum_sent"]["bytes"]
got = receiver["end"]["sum_received"]["bytes"]
secs = receiver["end"]["sum_received"]["seconds"] or 1
print(f"iperf3 AF_XDP {what}: {sent} bytes sent, {got} received, "
      f"{got * 8 / secs / 1e9:.2f} Gbit/s (receiver), retransmits {sender['end']['sum_sent'].get('retransmits', 'n/a')}")
# iperf3 3.12 checks -n only between sends, so a sender may overshoot by a block or a few
# (seen: one 128 KiB block from the kernel's server in -R mode); never by more than 1 MiB.
if not (n <= sent <= n + (1 << 20)):
    sys.exit(f"FAIL: {what}: the sender sent {sent} bytes, not the {n} asked for")
if not (sent - (16 << 20) <= got <= sent):
    sys.exit(f"FAIL: {what}: the receiver counted {got} bytes of {sent}")
# What the client reports for the far side (over iperf3's control connection) matches that
# side's own JSON.
if c["end"]["sum_received"]["bytes"] != s["end"]["sum_received"]["bytes"] and not reverse:
    sys.exit(f"FAIL: {what}: the client says the server got {c['end']['sum_received']['bytes']}, "
             f"the server says {s['end']['sum_received']['bytes']}")
if reverse and c["end"]["sum_sent"]["bytes"] != s["end"]["sum_sent"]["bytes"]:
    sys.exit(f"FAIL: {what}: the client says the server sent {c['end']['sum_sent']['bytes']}, "
             f"the server says {s['end']['sum_sent']['bytes']}")
EOF
}

for mode in native generic; do
  run "$mode" ""
  run "$mode" -R
done
[ $fail = 0 ] && echo "PASS: iperf3 both ways over AF_XDP in native and generic mode, byte counts agree"
exit $fail
