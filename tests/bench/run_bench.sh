#!/bin/bash
# udp.bench_pingpong: instructions per UDP round trip under callgrind (in total, and for each
# stack's own work), and round trips per wall-clock second without valgrind. Prints figures;
# fails only if a run does not complete. Exit 77 (skipped) without valgrind.
#   run_bench.sh <bench_udp_pingpong> [count]
set -u
bench=$1
count=${2:-20000}
warmup=1000
target=2000

"$bench" --count 200000 --warmup "$warmup" > /tmp/shunt_bench_wall.$$ || { echo "bench: wall-clock run failed"; exit 1; }
rate=$(awk '$1=="round_trips_per_second"{print $2}' /tmp/shunt_bench_wall.$$)
p50=$(awk '$1=="rtt_p50_ns"{print $2}' /tmp/shunt_bench_wall.$$)
rm -f /tmp/shunt_bench_wall.$$
echo "udp ping-pong, 64-byte payload, 2 stacks on the virtual-time link (10 Gbit/s, 1 us)"
printf "  %-34s %s\n" "round trips per wall-clock second" "$rate"
printf "  %-34s %s ns (virtual)\n" "round-trip time p50" "$p50"

if ! command -v valgrind > /dev/null; then
  echo "valgrind not installed: instruction counts skipped"
  exit 77
fi
if [ "$(awk '$1=="callgrind_support"{print $2}' <("$bench" --count 1 --warmup 1))" != 1 ]; then
  echo "built without <valgrind/callgrind.h>: instruction counts skipped"
  exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
instr() {  # instructions callgrind collected for --collect $1 (more bench options after it)
  local what=$1
  shift
  valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$dir/$what.out" \
    "$bench" --count "$count" --warmup "$warmup" --collect "$what" "$@" > "$dir/$what.log" 2>&1 ||
    { echo "bench: callgrind run ($what) failed:" >&2; cat "$dir/$what.log" >&2; exit 1; }
  total=$(awk '/^(summary|totals):/{print $2; exit}' "$dir/$what.out")
  switches=$(awk '$1=="switches"{print $2}' "$dir/$what.log")
  awk -v t="$total" -v s="${switches:-0}" -v c="${switch_cost:-0}" 'BEGIN{printf "%.0f", t - s * c}'
}
# What one switch of collection on (and back off) costs by itself.
switch_cost=0
calibration=$(instr calibrate) || exit 1
switch_cost=$(awk -v t="$calibration" -v k="$count" 'BEGIN{printf "%.3f", t / k}')
per() { awk -v n="$1" -v k="$count" 'BEGIN{printf "%.0f", n / k}'; }
# Two configurations: the simulated NICs with checksum offload (as a ConnectX has it, the
# default), and without it (the stacks compute and verify every checksum themselves).
for mode in offload no-offload; do
  extra=()
  [ $mode = no-offload ] && extra=(--no-offload)
  all=$(instr all "${extra[@]}") || exit 1
  client=$(instr client "${extra[@]}") || exit 1
  server=$(instr server "${extra[@]}") || exit 1
  if [ $mode = offload ]; then
    echo "  with checksum offload (default):"
  else
    echo "  without checksum offload:"
  fi
  printf "  %-34s %s (over %s round trips after %s warm-up)\n" "instructions per round trip, total" "$(per "$all")" "$count" "$warmup"
  printf "  %-34s %s (target <= %s)\n" "  client stack (send, poll, recv)" "$(per "$client")" "$target"
  printf "  %-34s %s (target <= %s)\n" "  server stack (poll, recv, send)" "$(per "$server")" "$target"
  printf "  %-34s %s\n" "  harness, link and workload" "$(per $((all - client - server)))"
done
echo "  (a side counts its stack's poll() and socket calls, not the simulated NIC's and wire's work"
echo "   on the frames it sends; ${switch_cost} instructions per switch of callgrind collection removed)"
exit 0
