#!/bin/sh
# Run inside the soft-RoCE guest by hil/rxe/ci.sh (cwd: the run's folder; SHUNT_HIL_BUILD: the
# build tree). Each step is bounded; the script exits 1 if any failed.
#  1. rxe0 is there and ACTIVE; rdma-core's UD ping-pong runs over it (the transport the verbs
#     driver uses).
#  2. verbs_pingpong: two stacks on two UD QPs of rxe0, UDP ping-pong and TCP both ways.
#  3. Real programs under the preload library, server and client each on verbs:rxe0 with its own
#     address: sockperf UDP and TCP ping-pong, iperf3 TCP; their sockets must be offloaded.
B=${SHUNT_HIL_BUILD:?}
LIB=$B/lib/libshunt.so
fail=0
step() { echo "### $*"; }
bad() { echo "### FAILED: $*"; fail=1; }
t0=$(cut -d' ' -f1 /proc/uptime)
took() { awk -v a="$1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f s", b - a }'; }

step "rxe0"
rdma link show
ibv_devinfo -d rxe0 | grep -E 'hca_id|state|active_mtu|link_layer'
ibv_devinfo -d rxe0 | grep -q PORT_ACTIVE || bad "rxe0 port not active"

step "ibv_ud_pingpong (rdma-core) over rxe0, GID 1"
t=$(cut -d' ' -f1 /proc/uptime)
timeout 30 ibv_ud_pingpong -d rxe0 -g 1 -n 200 > srv-ud.log 2>&1 &
sp=$!
sleep 0.5
if timeout 30 ibv_ud_pingpong -d rxe0 -g 1 -n 200 127.0.0.1 > cli-ud.log 2>&1 && wait $sp; then
  echo "ok: $(grep -h 'bytes in' cli-ud.log | tail -1) ($(took "$t"))"
else
  bad "ibv_ud_pingpong"; cat srv-ud.log cli-ud.log; kill $sp 2> /dev/null
fi

if [ -x "$B/tests/verbs_pingpong" ]; then
  step "verbs_pingpong verbs:rxe0 (two stacks, UDP and TCP)"
  t=$(cut -d' ' -f1 /proc/uptime)
  if timeout 120 "$B/tests/verbs_pingpong" verbs:rxe0 --udp 200 --tcp-bytes 1048576 --limit 100 > vpp.log 2>&1; then
    echo "$(grep 'verbs_pingpong:' vpp.log | tail -1) ($(took "$t"))"
  else
    bad "verbs_pingpong"; tail -n 40 vpp.log
  fi
else
  bad "verbs_pingpong is not built in $B (ninja verbs_pingpong)"
fi

# A server and a client under the library, each on rxe0 with its own address.
S=10.9.0.1
C=10.9.0.2
under() {  # under SIDE CMD...: the side's environment (exec: the caller's pid is the program's)
  side=$1; shift
  if [ "$side" = server ]; then ip4=$S/24; else ip4=$C/24; fi
  exec env LD_PRELOAD="$LIB" SHUNT_DEVICE=verbs:rxe0 SHUNT_IPV4=$ip4 SHUNT_DEBUG=1 "$@"
}
offloaded() {  # offloaded NAME: both sides' stderr say a socket was offloaded, none stayed
  for f in "$1-server.err" "$1-client.err"; do
    grep -q ': offloaded' "$f" || { bad "$1: no socket offloaded in $f"; sed -n 1,20p "$f"; }
    if grep -E '^shunt: [a-z0-9_]+\(.*: not offloaded' "$f" | grep -v 'not an IP socket' | grep -q .; then
      bad "$1: sockets left on the kernel in $f"
    fi
  done
}
wait_ready() {  # wait_ready FILE PATTERN
  i=0
  until grep -q "$2" "$1" 2> /dev/null; do
    i=$((i + 1)); [ $i -gt 300 ] && return 1; sleep 0.1
  done
}
stop() {  # stop PID: SIGINT (timeout passes it on), then SIGKILL; the address is free afterwards
  kill -INT "$1" 2> /dev/null
  i=0
  while kill -0 "$1" 2> /dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$1" 2> /dev/null
  wait "$1" 2> /dev/null
}
pair() {  # pair NAME READY-PATTERN "SERVER CMD" "CLIENT CMD" CLIENT-OUTPUT-PATTERN
  name=$1
  t=$(cut -d' ' -f1 /proc/uptime)
  step "$name"
  under server timeout 90 $3 > "$name-server.out" 2> "$name-server.err" &
  sp=$!
  if ! wait_ready "$name-server.out" "$2"; then
    bad "$name: the server was not ready in 30 s"; cat "$name-server.out" "$name-server.err" | tail -n 20
    stop $sp; return
  fi
  if (under client timeout 90 $4 > "$name-client.out" 2> "$name-client.err") && grep -q "$5" "$name-client.out"; then
    echo "ok ($(took "$t"))"
  else
    bad "$name: the client failed"; cat "$name-client.out" "$name-client.err" | tail -n 20
  fi
  stop $sp
  offloaded "$name"
}
if command -v sockperf > /dev/null; then
  pair sockperf-udp "to block on socket" "sockperf sr -i $S -p 11410" \
    "sockperf pp -i $S -p 11410 -m 64 -t 2" "Summary: Latency"
  grep -E 'Summary: Latency|dropped messages' sockperf-udp-client.out
  grep -q 'dropped messages = 0;' sockperf-udp-client.out || bad "sockperf UDP lost messages"
  pair sockperf-tcp "to block on socket" "sockperf sr --tcp -i $S -p 11411" \
    "sockperf pp --tcp -i $S -p 11411 -m 64 -t 2" "Summary: Latency"
  grep -E 'Summary: Latency' sockperf-tcp-client.out
else
  bad "sockperf is not installed on the host"
fi
if command -v iperf3 > /dev/null; then
  pair iperf3 "Server listening" "iperf3 -s -1 -B $S -p 5201 --forceflush" \
    "iperf3 -c $S -p 5201 -t 2" "receiver"
  grep -E 'sender|receiver' iperf3-client.out
  grep -q receiver iperf3-client.out || bad "iperf3 reported no transfer"
else
  bad "iperf3 is not installed on the host"
fi
echo "### guest checks took $(took "$t0")"
exit $fail
