#!/bin/bash
# preload.bench: unmodified Debian programs under libshunt.so on the shared-memory cable against
# the same programs on the kernel, side by side (docs/preload.md, Benchmark):
#  1. sockperf 64-byte UDP and TCP ping-pong, half round-trip time p50 / p99 / p99.9:
#     Shunt (both ends under the library on the two ends of a cable) against the kernel over
#     loopback (and Shunt with the simulated NIC untimed: software alone). Both busy-poll: sockperf --nonblocked (recvfrom() in a loop, never sleeping) on
#     both sides, and for Shunt SHUNT_PROFILE=latency with SHUNT_SPIN_US=10000000 as well; the
#     server is pinned to core 0, the client to core 1 (taskset).
#  2. iperf3, one TCP stream, sender on core 1, receiver on core 0: Shunt on the cable (three
#     settings: the throughput profile, the latency profile, and that with a receive window the
#     receiving NIC's posted buffers can hold) against
#     the kernel over a veth pair between two network namespaces this script creates (and
#     removes; without the right to, that row is skipped).
# Prints figures, never asserts a speed; fails only if a run fails. About a minute.
#   run_preload_bench.sh LIBSHUNT [seconds per sockperf run (default 3)] [iperf3 seconds (default 4)]
set -u
lib=$1
pp_seconds=${2:-3}
tp_seconds=${3:-4}
here=$(cd "$(dirname "$0")" && pwd)
pair="$here/../integration/cable_pair.sh"
# The simulated NIC's wire rate (SHUNT_NIC_LINK_GBPS; the cable's default is 25 Gbit/s): a
# 100 Gbit/s ConnectX, so that the model's wire is not what limits the throughput figure.
link_gbps=100

for p in sockperf iperf3 taskset /usr/bin/python3; do
  if ! command -v "$p" >/dev/null 2>&1; then
    echo "SKIPPED: $p is not installed"
    exit 77
  fi
done
if [ ! -f "$lib" ]; then
  echo "SKIPPED: $lib does not exist (build the shunt_preload target)"
  exit 77
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "SKIPPED: needs two cores to pin the two ends to"
  exit 77
fi

work=$(mktemp -d)
ns_a="shunt-bench-a-$$"
ns_b="shunt-bench-b-$$"
netns_made=0
cleanup() {
  if [ $netns_made -eq 1 ]; then
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
failed=0

echo "== machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows in the tails)"

# One sockperf ping-pong; prints "p50 p99 p99.9 observations" (us) or "- - - -".
pingpong() {  # name, proto (udp|tcp), mode (kernel|shunt)
  local name=$1 proto=() mode=$3 port=11511
  [ "$2" = tcp ] && { proto=(--tcp); port=11512; }
  local side=(--kernel)
  if [ "$mode" != kernel ]; then
    side=(--env SHUNT_PROFILE=latency --env SHUNT_SPIN_US=10000000)
  fi
  if [ "$mode" = shunt-untimed ]; then
    # The simulated NIC's steps take no time: what is left is software (stack, library, cable).
    local v
    for v in DOORBELL_NS PCIE_LATENCY_NS WQE_FETCH_NS DMA_READ_NS PIPELINE_NS CQE_WRITE_NS CQ_MOD_US; do
      side+=(--env "SHUNT_NIC_$v=0")
    done
    side+=(--env SHUNT_NIC_LINK_GBPS=800)
  fi
  local out="$work/$name"
  if ! bash "$pair" "${side[@]}" --quiet --out "$out" --server-cpu 0 --client-cpu 1 \
    --ready 'to block on socket' "$lib" \
    --server sockperf sr "${proto[@]}" -i @SERVER_IP@ -p $port --nonblocked \
    --client sockperf pp "${proto[@]}" -i @SERVER_IP@ -p $port --nonblocked -m 64 -t "$pp_seconds" \
    >"$out.log" 2>&1; then
    echo "bench: $name failed:" >&2
    cat "$out.log" "$out"/* >&2
    echo "- - - -"
    return
  fi
  awk '/percentile 50.000/ {p50=$NF} /percentile 99.000/ {p99=$NF} /percentile 99.900/ {p999=$NF}
       match($0, /Total [0-9]+ observations/) {obs=substr($0, RSTART + 6, RLENGTH - 19)}
       END {print p50, p99, p999, obs}' "$out/client.out"
}

echo
echo "== sockperf ping-pong, 64-byte messages, half round-trip time in us (${pp_seconds} s per run)"
echo "   mode: busy-polling (sockperf --nonblocked on both ends; Shunt also SHUNT_PROFILE=latency,"
echo "   SHUNT_SPIN_US=10000000), server pinned to core 0, client to core 1"
echo "   Shunt: both ends under libshunt.so on a shared-memory cable, simulated ConnectX NICs with"
echo "   the default timing (docs/nicmodel.md: modelled doorbell, PCIe, WQE fetch, DMA and CQE times);"
echo "   \"NIC untimed\": the same with every SHUNT_NIC_* step at 0 (software alone); kernel: 127.0.0.1"
printf "   %-5s %-22s %9s %9s %9s %12s\n" proto path p50 p99 p99.9 observations
for proto in udp tcp; do
  for mode in shunt shunt-untimed kernel; do
    read -r p50 p99 p999 obs < <(pingpong "$proto-$mode" "$proto" "$mode")
    label="Shunt (cable)"
    [ "$mode" = shunt-untimed ] && label="Shunt, NIC untimed"
    [ "$mode" = kernel ] && label="kernel (loopback)"
    printf "   %-5s %-22s %9s %9s %9s %12s\n" "$proto" "$label" "$p50" "$p99" "$p999" "$obs"
    eval "p50_${proto}_${mode//-/_}=\$p50"
    [ "$p50" = "-" ] && failed=1
  done
  eval "s=\$p50_${proto}_shunt k=\$p50_${proto}_kernel"
  awk -v s="$s" -v k="$k" -v p="$proto" 'BEGIN { if (s + 0 > 0 && k + 0 > 0)
    printf "   %-5s p50 Shunt / kernel = %.2f (target: at most 0.25)\n", p, s / k }'
done

# One iperf3 run; prints Gbit/s as the receiver counted it, or "-".
iperf3_json_rate() {
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d.get("end", {}).get("sum_received", {}).get("bits_per_second")
print("%.2f" % (r / 1e9) if r else "-")
' "$1" 2>/dev/null || echo "-"
}

echo
echo "== iperf3, one TCP stream, ${tp_seconds} s, MTU 1500, receiver on core 0, sender on core 1"
printf "   %-70s %10s\n" path "Gbit/s"
# One iperf3 run under Shunt on the cable; prints Gbit/s or "-". Arguments: a tag, then --env VAR=VALUE...
shunt_iperf3() {
  local out="$work/iperf3-$1"
  shift
  if bash "$pair" --quiet --out "$out" --server-cpu 0 --client-cpu 1 --server-any-end \
    --env SHUNT_NIC_LINK_GBPS=$link_gbps "$@" --ready 'Server listening' "$lib" \
    --server iperf3 -s -1 -B @SERVER_IP@ -p 5511 --forceflush \
    --client iperf3 -c @SERVER_IP@ -p 5511 -t "$tp_seconds" -J >"$out.log" 2>&1; then
    iperf3_json_rate "$out/client.out"
  else
    echo "bench: iperf3 under Shunt ($*) failed:" >&2
    cat "$out.log" "$out"/* >&2
    echo "-"
  fi
}
# The throughput profile; the latency profile (busy-polling); and the latency profile with a
# receive window (half of SHUNT_TCP_RCVBUF: 512 KiB, ~360 frames) that the receiving NIC's
# posted buffers (SHUNT_MLX5_RQ_SIZE=512) can hold: with the default 2 MiB window a burst
# overruns them and the drops cost retransmissions.
echo "   Shunt: cable with a ${link_gbps} Gbit/s simulated link"
shunt_rate="-"
for variant in "SHUNT_PROFILE=throughput" "SHUNT_PROFILE=latency" "SHUNT_PROFILE=latency SHUNT_TCP_RCVBUF=1048576"; do
  envs=()
  for v in $variant; do envs+=(--env "$v"); done
  rate=$(shunt_iperf3 "${variant// /_}" "${envs[@]}")
  [ "$rate" = "-" ] && failed=1
  printf "   %-70s %10s\n" "Shunt, $variant" "$rate"
  if [ "$rate" != "-" ] && awk -v a="$rate" -v b="$shunt_rate" 'BEGIN { exit !(b == "-" || a + 0 > b + 0) }'; then
    shunt_rate=$rate
  fi
done

# The kernel over a veth pair between two namespaces of our own.
kernel_rate="-"
if ip netns add "$ns_a" 2>/dev/null && ip netns add "$ns_b" 2>/dev/null; then
  netns_made=1
  ip link add veth-a netns "$ns_a" type veth peer name veth-b netns "$ns_b" &&
    ip -n "$ns_a" addr add 10.98.0.1/24 dev veth-a && ip -n "$ns_b" addr add 10.98.0.2/24 dev veth-b &&
    ip -n "$ns_a" link set veth-a up && ip -n "$ns_b" link set veth-b up &&
    ip -n "$ns_a" link set lo up && ip -n "$ns_b" link set lo up
  if [ $? -eq 0 ]; then
    ip netns exec "$ns_a" timeout 30 taskset -c 0 iperf3 -s -1 -B 10.98.0.1 -p 5512 \
      >"$work/veth-server.out" 2>&1 &
    server=$!
    for _ in $(seq 50); do grep -q 'Server listening' "$work/veth-server.out" && break; sleep 0.1; done
    ip netns exec "$ns_b" timeout 30 taskset -c 1 iperf3 -c 10.98.0.1 -p 5512 -t "$tp_seconds" -J \
      >"$work/veth-client.out" 2>&1
    kernel_rate=$(iperf3_json_rate "$work/veth-client.out")
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    [ "$kernel_rate" = "-" ] && { echo "bench: iperf3 over veth failed:" >&2; cat "$work"/veth-* >&2; failed=1; }
  else
    echo "   (could not set up the veth pair)"
  fi
else
  echo "   (cannot create network namespaces here: the kernel row is skipped)"
fi
printf "   %-70s %10s\n" "kernel (veth pair between two network namespaces)" "$kernel_rate"
awk -v s="$shunt_rate" -v k="$kernel_rate" 'BEGIN { if (s + 0 > 0 && k + 0 > 0)
  printf "   best Shunt / kernel = %.2f (target: at least 1)\n", s / k }'
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
