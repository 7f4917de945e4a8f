#!/bin/bash
# ns3.bench: one TCP flow at 10 Gbit/s inside ns-3, between two Shunt hosts (stack + mlx5 driver +
# simulated ConnectX) and between two ns-3-native hosts (ns-3's own TCP), on the same link
# (docs/ns3.md). Prints, for each: the wall time of one simulated second and the goodput; then
# instructions per delivered segment (callgrind, over a shorter window after a warm-up that
# covers ARP's random delay of up to 10 ms before ns-3's first segment).
# Prints figures; fails only if a run does not complete.
#   run_ns3_bench.sh <bench_ns3> [simulated ms] [callgrind window ms]
set -u
bench=$1
sim_ms=${2:-1000}
window_ms=${3:-10}
warmup_ms=25

field() { awk -v k="$1" '$1==k{print $2}'; }

declare -A wall segs gbps
for hosts in shunt ns3; do
  out=$("$bench" --hosts "$hosts" --sim-ms "$sim_ms") || { echo "bench: $hosts run failed"; exit 1; }
  wall[$hosts]=$(echo "$out" | field wall_s)
  segs[$hosts]=$(echo "$out" | field segments)
  gbps[$hosts]=$(echo "$out" | field goodput_gbps)
done
echo "== one TCP flow, 10 Gbit/s EthLink, 5 us, ${sim_ms} ms simulated"
printf "  %-34s %12s %12s\n" "" "Shunt hosts" "ns-3 hosts"
printf "  %-34s %12s %12s\n" "wall time (s)" "${wall[shunt]}" "${wall[ns3]}"
printf "  %-34s %12s %12s\n" "goodput (Gbit/s, simulated)" "${gbps[shunt]}" "${gbps[ns3]}"
printf "  %-34s %12s %12s\n" "segments delivered" "${segs[shunt]}" "${segs[ns3]}"
awk -v a="${wall[shunt]}" -v b="${segs[shunt]}" -v c="${wall[ns3]}" -v d="${segs[ns3]}" 'BEGIN{
  printf "  %-34s %12.0f %12.0f\n", "wall ns per delivered segment", a * 1e9 / b, c * 1e9 / d }'

if ! command -v valgrind > /dev/null; then
  echo "valgrind not installed: instruction counts skipped"
  exit 77
fi
if [ "$("$bench" --hosts shunt --sim-ms 5 | field callgrind_support)" != 1 ]; then
  echo "built without <valgrind/callgrind.h>: instruction counts skipped"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
declare -A instr wsegs
for hosts in shunt ns3; do
  valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$dir/$hosts.out" \
    "$bench" --hosts "$hosts" --sim-ms $((warmup_ms + window_ms)) --warmup-ms "$warmup_ms" --collect 1 \
    > "$dir/$hosts.log" 2>&1 || { echo "bench: callgrind run ($hosts) failed:"; cat "$dir/$hosts.log"; exit 1; }
  instr[$hosts]=$(awk '/^(summary|totals):/{print $2; exit}' "$dir/$hosts.out")
  wsegs[$hosts]=$(field window_segments < "$dir/$hosts.log")
done
echo "== instructions (callgrind), ${window_ms} ms simulated after ${warmup_ms} ms warm-up"
awk -v a="${instr[shunt]}" -v b="${wsegs[shunt]}" -v c="${instr[ns3]}" -v d="${wsegs[ns3]}" 'BEGIN{
  printf "  %-34s %12.0f %12.0f\n", "instructions per delivered segment", a / b, c / d;
  printf "  %-34s %12.3f\n", "Shunt / ns-3", (a / b) / (c / d) }'
