#!/bin/sh
# The rig's smoke test, run inside the soft-RoCE guest (hil/rxe/rig.sh smoke): rxe0 is there and
# ACTIVE, and rdma-core's own UD ping-pong (the transport the verbs driver uses) runs over it,
# client and server on the same device (rxe loops it back), GID index 1 (the IPv4-mapped GID).
fail=0
step() { echo "### $*"; }
step "rdma link"; rdma link show || fail=1
step "ibv_devinfo -d rxe0"
ibv_devinfo -d rxe0 > "$SHUNT_HIL_OUT/ibv_devinfo.txt" 2>&1 || fail=1
cat "$SHUNT_HIL_OUT/ibv_devinfo.txt"
grep -q "PORT_ACTIVE" "$SHUNT_HIL_OUT/ibv_devinfo.txt" || { echo "rxe0: port not active"; fail=1; }
for size in 64 1024; do
  step "ibv_ud_pingpong -g 1 -s $size -n 500"
  timeout 30 ibv_ud_pingpong -d rxe0 -g 1 -s $size -n 500 > /tmp/srv.log 2>&1 &
  sp=$!
  sleep 0.5
  if timeout 30 ibv_ud_pingpong -d rxe0 -g 1 -s $size -n 500 127.0.0.1 > /tmp/cli.log 2>&1 && wait $sp; then
    echo "ok: $(grep -h 'bytes in' /tmp/cli.log | tail -1)"
  else
    echo "FAILED"; cat /tmp/srv.log /tmp/cli.log; kill $sp 2> /dev/null; fail=1
  fi
done
exit $fail
