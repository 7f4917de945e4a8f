#!/bin/bash
# mlx5.bench: the simulated ConnectX under a 64-byte UDP ping-pong (docs/nicmodel.md).
#  1. virtual-time round trip through two modelled NICs with the default timing, and where the
#     time of one ping went; the same with BlueFlame, without inlining, and with no NIC model;
#  2. round trips and NIC packets per wall-clock second;
#  3. instructions per packet the model adds (callgrind; skipped without valgrind).
# Prints figures; fails only if a run does not complete.
#   run_mlx5_bench.sh <bench_mlx5> [count]
set -u
bench=$1
count=${2:-20000}
warmup=1000

run() { "$bench" --warmup "$warmup" "$@" || { echo "bench: run failed: $*"; exit 1; }; }
field() { awk -v k="$1" '$1==k{print $2}'; }

echo "== 64-byte UDP ping-pong through two simulated ConnectX NICs (10 Gbit/s link, 1 us one way), default timing"
out=$(run --count 200000)
echo "$out" | sed -n '/^breakdown/,$p'
printf "  %-44s %8s ns\n" "round-trip time p50 (virtual)" "$(echo "$out" | field rtt_p50_ns)"
printf "  %-44s %8s\n" "round trips per wall-clock second" "$(echo "$out" | field round_trips_per_second)"
printf "  %-44s %8s\n" "NIC packets per wall-clock second" "$(echo "$out" | field nic_packets_per_second)"
for variant in "--blueflame 1" "--inline 0" "--nic sim"; do
  # shellcheck disable=SC2086
  o=$(run --count 20000 $variant)
  printf "  %-44s %8s ns\n" "round-trip time p50 with $variant" "$(echo "$o" | field rtt_p50_ns)"
done
sim_rate=$(run --count 200000 --nic sim | field round_trips_per_second)
printf "  %-44s %8s\n" "round trips per wall second without the model" "$sim_rate"

if ! command -v valgrind > /dev/null; then
  echo "valgrind not installed: instruction counts skipped"
  exit 77
fi
if [ "$(run --count 1 --nic sim | field callgrind_support)" != 1 ]; then
  echo "built without <valgrind/callgrind.h>: instruction counts skipped"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
instr() {  # total instructions callgrind collected; bench options follow
  local tag=$1
  shift
  valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$dir/$tag.out" \
    "$bench" --count "$count" --warmup "$warmup" "$@" > "$dir/$tag.log" 2>&1 ||
    { echo "bench: callgrind run ($tag) failed:" >&2; cat "$dir/$tag.log" >&2; exit 1; }
  awk '/^(summary|totals):/{print $2; exit}' "$dir/$tag.out"
}
with=$(instr with --collect all) || exit 1
without=$(instr without --collect all --nic sim) || exit 1
model=$(instr model --collect nic) || exit 1
# A round trip is two frames; each leaves one NIC and enters another.
echo "== instructions (callgrind), $count round trips after $warmup warm-up"
awk -v w="$with" -v o="$without" -v m="$model" -v k="$count" 'BEGIN{
  printf "  %-52s %8.0f\n", "per round trip, mlx5 driver + model", w / k;
  printf "  %-52s %8.0f\n", "per round trip, no NIC model (harness port)", o / k;
  printf "  %-52s %8.0f\n", "added per packet (driver + model - harness port)", (w - o) / (2 * k);
  printf "  %-52s %8.0f\n", "model alone per packet (its events: TX and RX side)", m / (2 * k);
}'
