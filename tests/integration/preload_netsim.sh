#!/bin/bash
# Two unmodified Python programs under libshunt.so as hosts of a `shunt netsim` network (issue 5's
# real-time mode): a TCP echo of 1 MiB through a simulated 1 Gbit/s, 50 us cable losing 2% of
# frames (so retransmissions run, also after the server has closed and is exiting), every byte
# compared, and both sides' sockets shown offloaded by SHUNT_DEBUG.
#   preload_netsim.sh LIBSHUNT SHUNT_NETSIM
set -u
lib=$1
netsim=$2
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: $py missing"; exit 77; }
dir=$(mktemp -d /tmp/shunt-netsim-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT

timeout 60 "$netsim" --dir "$dir/net" --rate 1Gbps --delay 50us --loss 0.02 --wait 30 >"$dir/netsim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/net/host1.sock" ] && break; sleep 0.1; done

cat >"$dir/server.py" <<'PY'
import socket
s = socket.socket()
s.bind(('10.9.0.1', 5000))
s.listen()
c, a = s.accept()
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    n += len(d)
    c.sendall(d)
c.close()
print("server echoed", n, flush=True)
PY
cat >"$dir/client.py" <<'PY'
import socket, time
for _ in range(100):
    try:
        s = socket.create_connection(('10.9.0.1', 5000))
        break
    except ConnectionRefusedError:
        time.sleep(0.05)
data = bytes((i * 7 + i // 251) & 255 for i in range(1 << 20))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
print("client echo", "ok" if got == data else "MISMATCH %d" % len(got), flush=True)
PY
env LD_PRELOAD="$lib" SHUNT_DEBUG=1 SHUNT_DEVICE="unix:path=$dir/net/host0.sock,mac=02:00:00:00:00:01" \
  SHUNT_IPV4=10.9.0.1/24 timeout 60 "$py" "$dir/server.py" >"$dir/server.out" 2>"$dir/server.err" &
server=$!
pids+=($server)
env LD_PRELOAD="$lib" SHUNT_DEBUG=1 SHUNT_DEVICE="unix:path=$dir/net/host1.sock,mac=02:00:00:00:00:02" \
  SHUNT_IPV4=10.9.0.2/24 timeout 60 "$py" "$dir/client.py" >"$dir/client.out" 2>"$dir/client.err"
crc=$?
wait "$server"
src=$?
fail=0
grep -q "^client echo ok$" "$dir/client.out" || { echo "FAIL: client (exit $crc)"; fail=1; }
grep -q "^server echoed 1048576$" "$dir/server.out" || { echo "FAIL: server (exit $src)"; fail=1; }
grep -qE "^shunt: bind\([0-9]+, 10\.9\.0\.1:5000\): offloaded" "$dir/server.err" || { echo "FAIL: server socket not offloaded"; fail=1; }
grep -qE "^shunt: connect\([0-9]+, 10\.9\.0\.1:5000\): offloaded" "$dir/client.err" || { echo "FAIL: client socket not offloaded"; fail=1; }
if [ $fail -ne 0 ]; then
  for f in netsim.log server.out server.err client.out client.err; do echo "--- $f"; tail -20 "$dir/$f"; done
  exit 1
fi
cat "$dir/client.out" "$dir/server.out"
tail -4 "$dir/netsim.log"
exit 0
