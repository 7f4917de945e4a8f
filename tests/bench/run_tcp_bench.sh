#!/bin/bash
# tcp.bench: the TCP figures of docs/benchmarks.md, from tests/bench/bench_tcp.cc in the
# virtual-time harness. Prints figures; fails only if a run does not complete. The callgrind
# part (instructions per segment and per request) needs valgrind: without it everything else is
# printed and the test reports skipped (exit 77).
#   run_tcp_bench.sh <bench_tcp> [quick]
# `quick` shrinks every run (a smoke test of the script).
set -u
bench=$1
quick=${2:-}
goodput_bytes=256000000
bulk_wall_bytes=200000000
rr_wall=100000
idle_conns=1000
churn=10000
cg_bytes=20000000
cg_warmup_bytes=20000000
cg_requests=20000
cg_warmup_requests=1000
if [ "$quick" = quick ]; then
  goodput_bytes=20000000 bulk_wall_bytes=20000000 rr_wall=5000 idle_conns=200 churn=1000
  cg_bytes=2000000 cg_warmup_bytes=2000000 cg_requests=1000 cg_warmup_requests=100
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() {  # run <log name> <bench args...>: prints its output, fails the script if it fails
  local name=$1
  shift
  if ! "$bench" "$@" > "$dir/$name" 2>&1; then
    echo "bench_tcp $*: failed:"
    cat "$dir/$name"
    exit 1
  fi
}
field() { awk -v k="$2" '$1==k{print $2; exit}' "$dir/$1"; }

echo "== TCP goodput, one flow, virtual time (bench_tcp goodput --bytes $goodput_bytes)"
run goodput goodput --bytes "$goodput_bytes"
cat "$dir/goodput"
run goodput6 goodput --bytes "$goodput_bytes" --ipv6
cat "$dir/goodput6"
echo
echo "== memory per idle established connection (bench_tcp idle --conns $idle_conns)"
run idle idle --conns "$idle_conns"
cat "$dir/idle"
echo
for p in 1 16; do
  echo "== connections opened and closed (bench_tcp churn --count $churn --parallel $p)"
  run churn$p churn --count "$churn" --parallel "$p"
  cat "$dir/churn$p"
done
echo
echo "== wall-clock rates without valgrind (10 Gbit/s link, 1 us one way)"
run bulkwall bulk --bytes "$bulk_wall_bytes"
run rrwall rr --count "$rr_wall"
printf "  %-44s %s (%s bytes, %s Gbit/s of virtual time)\n" "bulk: segments per wall-clock second" \
  "$(field bulkwall segments_per_second)" "$bulk_wall_bytes" "$(field bulkwall virtual_gbps)"
printf "  %-44s %s (virtual RTT p50 %s ns)\n" "64-byte request/response: per wall second" \
  "$(field rrwall requests_per_second)" "$(field rrwall rtt_p50_ns)"
printf "  %-44s bulk %s, rr %s (should be 0)\n" "readiness hook misses" "$(field bulkwall hook_misses)" \
  "$(field rrwall hook_misses)"

if ! command -v valgrind > /dev/null; then
  echo "valgrind not installed: instruction counts skipped"
  exit 77
fi
run support rr --count 1 --warmup 1
if [ "$(field support callgrind_support)" != 1 ]; then
  echo "built without <valgrind/callgrind.h>: instruction counts skipped"
  exit 77
fi

# instr <name> <bench args...>: instructions callgrind collected, minus the cost of switching
# collection (switches x the calibrated cost of one switch).
instr() {
  local name=$1
  shift
  valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$dir/$name.out" \
    "$bench" "$@" > "$dir/$name.log" 2>&1 ||
    { echo "bench: callgrind run ($name: $*) failed:" >&2; cat "$dir/$name.log" >&2; exit 1; }
  local total switches
  total=$(awk '/^(summary|totals):/{print $2; exit}' "$dir/$name.out")
  switches=$(awk '$1=="switches"{print $2}' "$dir/$name.log")
  awk -v t="$total" -v s="${switches:-0}" -v c="${switch_cost:-0}" 'BEGIN{printf "%.0f", t - s * c}'
}
div() { awk -v n="$1" -v k="$2" 'BEGIN{printf "%.0f", n / k}'; }
switch_cost=0
calibration=$(instr calibrate rr --collect calibrate --count 20000) || exit 1
switch_cost=$(awk -v t="$calibration" 'BEGIN{printf "%.3f", t / 20000}')

for mode in offload no-offload; do
  extra=()
  [ $mode = no-offload ] && extra=(--no-offload)
  if [ $mode = offload ]; then
    echo "== instructions (callgrind), with checksum offload (default)"
  else
    echo "== instructions (callgrind), without checksum offload"
  fi
  b=(bulk --bytes "$cg_bytes" --warmup-bytes "$cg_warmup_bytes" "${extra[@]}")
  all=$(instr bulk_all "${b[@]}" --collect all) || exit 1
  snd=$(instr bulk_sender "${b[@]}" --collect sender) || exit 1
  rcv=$(instr bulk_receiver "${b[@]}" --collect receiver) || exit 1
  segs=$(awk '$1=="segments"{print $2}' "$dir/bulk_all.log")
  acks=$(awk '$1=="acks"{print $2}' "$dir/bulk_all.log")
  mss=$(awk '$1=="mss"{print $2}' "$dir/bulk_all.log")
  printf "  bulk, one way, %s bytes in %s-byte segments (%s data segments, %s ACKs) after %s warm-up bytes:\n" \
    "$cg_bytes" "$mss" "$segs" "$acks" "$cg_warmup_bytes"
  printf "  %-44s %s\n" "  instructions per segment, total" "$(div "$all" "$segs")"
  printf "  %-44s %s\n" "  sender stack (send(), poll: ACKs in, segments out)" "$(div "$snd" "$segs")"
  printf "  %-44s %s\n" "  receiver stack (poll: segments in, ACKs out; recv())" "$(div "$rcv" "$segs")"
  printf "  %-44s %s\n" "  harness, link and workload" "$(div $((all - snd - rcv)) "$segs")"
  r=(rr --count "$cg_requests" --warmup "$cg_warmup_requests" "${extra[@]}")
  all=$(instr rr_all "${r[@]}" --collect all) || exit 1
  cli=$(instr rr_client "${r[@]}" --collect client) || exit 1
  srv=$(instr rr_server "${r[@]}" --collect server) || exit 1
  printf "  64-byte request/response, TCP_NODELAY, %s requests after %s warm-up:\n" "$cg_requests" "$cg_warmup_requests"
  printf "  %-44s %s\n" "  instructions per request, total" "$(div "$all" "$cg_requests")"
  printf "  %-44s %s\n" "  client stack (send, poll, recv)" "$(div "$cli" "$cg_requests")"
  printf "  %-44s %s\n" "  server stack (poll, recv, send)" "$(div "$srv" "$cg_requests")"
  printf "  %-44s %s\n" "  harness, link and workload" "$(div $((all - cli - srv)) "$cg_requests")"
done
echo "  (a side counts its stack's poll() and socket calls, not the simulated NIC's and wire's work on"
echo "   the frames it sends; ${switch_cost} instructions per switch of callgrind collection removed)"
exit 0
