#!/bin/bash
# Runs a server program and a client program, each under the preload library, on the two ends of
# one shared-memory cable (two simulated ConnectX NICs joined in real time, docs/cable.md):
#
#   server: SHUNT_DEVICE=mlx5sim:cable=NAME,mac=02:53:48:00:00:01 SHUNT_IPV4=10.9.0.1/24
#   client: SHUNT_DEVICE=mlx5sim:cable=NAME,mac=02:53:48:00:00:02 SHUNT_IPV4=10.9.0.2/24
#
# NAME is unique per run. 10.9.0.0/24 is on no kernel interface, so a socket left on the kernel
# could not reach the peer: traffic that gets through went through Shunt.
#
#   cable_pair.sh [options] LIBSHUNT --server CMD [ARGS...] --client CMD [ARGS...]
#
# In CMD and ARGS, @SERVER_IP@, @CLIENT_IP@ and @OUT@ (the output folder) are replaced.
#
# Options:
#   --out DIR          keep server.out/.err, client.out/.err and summary in DIR (default: a
#                      temporary folder, removed at exit)
#   --need PROG        exit 77 (skipped) with the reason when PROG is not installed; repeatable
#   --kernel           no library: both programs on the kernel over loopback (@SERVER_IP@ =
#                      @CLIENT_IP@ = 127.0.0.1); validates a test's commands, or gives the kernel's
#                      figures for a benchmark
#   --ready REGEX      start the client once the server's stdout or stderr has a line matching
#                      REGEX (grep -E); without it, after --ready-delay
#   --ready-delay S    seconds to wait for the server without --ready (default 1)
#   --server-exits     the server ends by itself (exit 0) after the client; otherwise it is
#                      stopped with --stop-signal once the client is done
#   --server-any-end   the server may end by itself or be stopped: its end is not judged (for
#                      benchmarks, which read only the client's figures)
#   --stop-signal SIG  default INT
#   --stop-delay S     seconds between the client's end and stopping the server (default 0.5:
#                      what the client sent last is still on its way)
#   --limit S          time limit of each program in seconds (default 60)
#   --server-cpu LIST, --client-cpu LIST   pin a side with taskset -c LIST
#   --env VAR=VALUE, --server-env VAR=VALUE, --client-env VAR=VALUE   extra environment for
#                      both sides / one side (repeatable; given after the cable's variables, so
#                      they win)
#   --offloaded        SHUNT_DEBUG=1 on both sides, and each side's stderr must say that one of
#                      its sockets was offloaded ("shunt: CALL(FD, ...)[ = FD]: offloaded")
#   --quiet            do not print the programs' outputs
#
# Exit: 0 when the client exited 0, the server exited as expected and (with --offloaded) both
# sides offloaded; 77 when a program or the library is missing; 1 otherwise. Only this script's
# own children are ever signalled, by pid.
set -u

need=()
kernel=0
out=""
ready=""
ready_delay=1
server_exits=0
stop_signal=INT
stop_delay=0.5
limit=60
server_cpu=""
client_cpu=""
both_env=()
server_env=()
client_env=()
offloaded=0
quiet=0
lib=""
while [ $# -gt 0 ]; do
  case "$1" in
    --need) need+=("$2"); shift 2 ;;
    --kernel) kernel=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --ready) ready="$2"; shift 2 ;;
    --ready-delay) ready_delay="$2"; shift 2 ;;
    --server-exits) server_exits=1; shift ;;
    --server-any-end) server_exits=2; shift ;;
    --stop-signal) stop_signal="$2"; shift 2 ;;
    --stop-delay) stop_delay="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --server-cpu) server_cpu="$2"; shift 2 ;;
    --client-cpu) client_cpu="$2"; shift 2 ;;
    --env) both_env+=("$2"); shift 2 ;;
    --server-env) server_env+=("$2"); shift 2 ;;
    --client-env) client_env+=("$2"); shift 2 ;;
    --offloaded) offloaded=1; shift ;;
    --quiet) quiet=1; shift ;;
    --server) shift; break ;;
    -*) echo "cable_pair.sh: unknown option $1" >&2; exit 2 ;;
    *) lib="$1"; shift ;;
  esac
done
server_cmd=()
while [ $# -gt 0 ] && [ "$1" != "--client" ]; do server_cmd+=("$1"); shift; done
[ "${1:-}" = "--client" ] && shift
client_cmd=("$@")
if [ ${#server_cmd[@]} -eq 0 ] || [ ${#client_cmd[@]} -eq 0 ] || { [ $kernel -eq 0 ] && [ -z "$lib" ]; }; then
  echo "usage: cable_pair.sh [options] LIBSHUNT --server CMD [ARGS...] --client CMD [ARGS...]" >&2
  exit 2
fi

for p in "${need[@]}" timeout; do
  if ! command -v "$p" >/dev/null 2>&1; then
    echo "SKIPPED: $p is not installed"
    exit 77
  fi
done
if [ $kernel -eq 0 ] && [ ! -f "$lib" ]; then
  echo "SKIPPED: $lib does not exist (build the shunt_preload target)"
  exit 77
fi
if { [ -n "$server_cpu" ] || [ -n "$client_cpu" ]; } && ! command -v taskset >/dev/null 2>&1; then
  echo "SKIPPED: taskset is not installed"
  exit 77
fi

# The caller's SHUNT_* variables would change what is measured: start from none.
for v in $(env | sed -n 's/^\(SHUNT_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

if [ -z "$out" ]; then
  out=$(mktemp -d)
  remove_out=1
else
  mkdir -p "$out"
  rm -f "$out"/server.out "$out"/server.err "$out"/client.out "$out"/client.err "$out"/summary
  remove_out=0
fi
cable="pair$$x$RANDOM"

if [ $kernel -eq 1 ]; then
  server_ip=127.0.0.1
  client_ip=127.0.0.1
  server_side=()
  client_side=()
else
  server_ip=10.9.0.1
  client_ip=10.9.0.2
  # A sanitizer build of the library needs its runtime first in the preload list.
  preload="$lib"
  asan=$(ldd "$lib" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
  if [ -n "$asan" ]; then
    preload="$asan $lib"
    export ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  fi
  server_side=("LD_PRELOAD=$preload" "SHUNT_DEVICE=mlx5sim:cable=$cable,mac=02:53:48:00:00:01"
               "SHUNT_IPV4=$server_ip/24")
  client_side=("LD_PRELOAD=$preload" "SHUNT_DEVICE=mlx5sim:cable=$cable,mac=02:53:48:00:00:02"
               "SHUNT_IPV4=$client_ip/24")
  if [ $offloaded -eq 1 ]; then
    server_side+=(SHUNT_DEBUG=1)
    client_side+=(SHUNT_DEBUG=1)
  fi
fi
server_side+=("${both_env[@]}" "${server_env[@]}")
client_side+=("${both_env[@]}" "${client_env[@]}")

substitute() {  # the placeholders of one argument
  local a="$1"
  a="${a//@SERVER_IP@/$server_ip}"
  a="${a//@CLIENT_IP@/$client_ip}"
  a="${a//@OUT@/$out}"
  printf '%s' "$a"
}
server_args=()
for a in "${server_cmd[@]}"; do server_args+=("$(substitute "$a")"); done
client_args=()
for a in "${client_cmd[@]}"; do client_args+=("$(substitute "$a")"); done
pin_server=()
[ -n "$server_cpu" ] && pin_server=(taskset -c "$server_cpu")
pin_client=()
[ -n "$client_cpu" ] && pin_client=(taskset -c "$client_cpu")

server_pid=""
cleanup() {
  # Only our own child (timeout, which passes the signal on to its program), by pid.
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  # Both sides unlink the cable when they detach; one that died may have left it behind.
  rm -f "/dev/shm/shunt-cable-$cable"
  [ $remove_out -eq 1 ] && rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

show() {
  [ $quiet -eq 1 ] && return
  local f
  for f in server.out server.err client.out client.err; do
    echo "--- $f"
    cat "$out/$f"
  done
}

echo "+ server: ${pin_server[*]} ${server_side[*]} ${server_args[*]}"
echo "+ client: ${pin_client[*]} ${client_side[*]} ${client_args[*]}"

: >"$out/server.out"; : >"$out/server.err"; : >"$out/client.out"; : >"$out/client.err"
# -k: a program that ignores the signal is killed 5 s later. Only the program itself (not timeout
# or taskset) runs with the library.
timeout -k 5 "$limit" "${pin_server[@]}" env "${server_side[@]}" "${server_args[@]}" \
  >"$out/server.out" 2>"$out/server.err" </dev/null &
server_pid=$!

fail=0
complain() { echo "FAIL: $*"; echo "FAIL: $*" >>"$out/summary"; fail=1; }

if [ -n "$ready" ]; then
  waited=0
  while ! cat "$out/server.out" "$out/server.err" | grep -Eq -- "$ready"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid"
      complain "the server exited with status $? before it was ready (no line matching: $ready)"
      show
      exit 1
    fi
    if [ $waited -ge $((limit * 10)) ]; then
      complain "the server printed no line matching '$ready' in $limit s"
      show
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
else
  sleep "$ready_delay"
fi

timeout -k 5 "$limit" "${pin_client[@]}" env "${client_side[@]}" "${client_args[@]}" \
  >"$out/client.out" 2>"$out/client.err" </dev/null
client_rc=$?
[ $client_rc -eq 0 ] || complain "the client exited with status $client_rc (124: timed out)"

if [ $server_exits -eq 2 ]; then
  for _ in $(seq 20); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill "-$stop_signal" "$server_pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null
elif [ $server_exits -eq 1 ]; then
  # It should be finishing now; give it a few seconds.
  for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid"
    complain "the server did not exit by itself within 10 s of the client"
  else
    wait "$server_pid"
    server_rc=$?
    [ $server_rc -eq 0 ] || complain "the server exited with status $server_rc (124: timed out)"
  fi
else
  sleep "$stop_delay"
  if kill -0 "$server_pid" 2>/dev/null; then
    # timeout passes the signal on to the program.
    kill "-$stop_signal" "$server_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && complain "the server did not stop on SIG$stop_signal within 10 s"
  else
    wait "$server_pid"
    complain "the server exited (status $?) before it was stopped"
  fi
fi
wait "$server_pid" 2>/dev/null
server_pid=""

if [ $offloaded -eq 1 ] && [ $kernel -eq 0 ]; then
  # preload.cc's SHUNT_DEBUG lines where a socket is placed on the stack, e.g.
  # "shunt: bind(3, 10.9.0.1:7311): offloaded: the offload interface's address or route" or
  # "shunt: accept4(3) = 5: offloaded".
  for side in server client; do
    grep -Eq '^shunt: [a-z0-9_]+\([^)]*\)( = [0-9]+)?: offloaded' "$out/$side.err" ||
      complain "the $side's stderr has no line saying a socket was offloaded"
  done
fi

show
[ $fail -eq 0 ] && echo "cable_pair: ok" >>"$out/summary"
exit $fail
