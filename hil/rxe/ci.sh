#!/bin/bash
# hil/rxe/ci.sh [BUILD_DIR] - the soft-RoCE rig in CI (docs/hardware.md, "Soft-RoCE rig"):
#  1. one guest runs hil/rxe/checks.sh: rxe0 and rdma-core's UD ping-pong, verbs_pingpong (two
#     stacks over rxe0), sockperf UDP/TCP and iperf3 under the preload library on verbs:rxe0;
#  2. `shunt scenario run udp_pingpong --backend rxe` (a second guest): a Result comes back and
#     is stored in BUILD_DIR/hil/results.sqlite.
# BUILD_DIR (default build) must hold lib/libshunt.so (and tests/verbs_pingpong, python/shunt).
# Bounded: each guest run has its own time limit; the whole script stops at SHUNT_HIL_CI_LIMIT
# seconds (default 540). Exit 0 when all passed, 1 when any failed, 77 when qemu is missing.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" 2> /dev/null && pwd) || { echo "hil/rxe/ci.sh: no build folder ${1:-$repo/build}"; exit 1; }
export SHUNT_HIL_WORK=${SHUNT_HIL_WORK:-$build/hil}
limit=${SHUNT_HIL_CI_LIMIT:-540}
start=$(date +%s)
left() { echo $((limit - ($(date +%s) - start))); }

for p in qemu-system-x86_64 busybox cpio depmod; do
  command -v "$p" > /dev/null || { echo "hil/rxe/ci.sh: $p is not installed (.ci/setup installs qemu-system-x86 busybox-static kmod cpio): skipped"; exit 77; }
done
for f in lib/libshunt.so tests/verbs_pingpong; do
  [ -f "$build/$f" ] || { echo "hil/rxe/ci.sh: $build/$f is not built"; exit 1; }
done
status=0

echo "== hil/rxe: guest image"
timeout 400 bash "$here/rig.sh" build || { echo "hil/rxe/ci.sh: the guest image could not be built"; exit 1; }

echo "== hil/rxe: rxe0, UD ping-pong, verbs_pingpong, sockperf and iperf3 under the library"
t=$(( $(left) < 300 ? $(left) : 300 ))
if [ "$t" -lt 60 ] || ! bash "$here/rig.sh" run --timeout "$t" --env "SHUNT_HIL_BUILD=$build" "$here/checks.sh"; then
  echo "== hil/rxe: the guest checks FAILED"
  status=1
fi

echo "== hil/rxe: shunt scenario run udp_pingpong --backend rxe"
t=$(( $(left) < 240 ? $(left) : 240 ))
if [ "$t" -lt 60 ]; then
  echo "hil/rxe/ci.sh: no time left for the scenario run"; status=1
elif ! SHUNT_HIL_TIMEOUT=$((t - 10)) PYTHONPATH="$build/python" SHUNT_BUILD_DIR="$build" \
     SHUNT_SOURCE_DIR="$repo" timeout "$t" /usr/bin/python3 -m shunt.scenarios scenario run \
     udp_pingpong --backend rxe --param size=64 --param duration_s=1 --quiet \
     --store "$SHUNT_HIL_WORK/results.sqlite"; then
  echo "== hil/rxe: the scenario run FAILED"
  status=1
fi

echo "== hil/rxe: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit $status
