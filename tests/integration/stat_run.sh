#!/bin/bash
# preload.stat: `shunt stat` lists what a running process publishes, with counters, for one pid,
# and removes the object of a process that was killed.
#   stat_run.sh SHUNT STAT_PUBLISHER
set -u
shunt="$1"
publisher="$2"
work=$(mktemp -d)
pub_pid=""
cleanup() {
  [ -n "$pub_pid" ] && kill "$pub_pid" 2>/dev/null
  exec 3>&- 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
complain() { echo "FAIL: $*"; fail=1; }

# The publisher runs until its stdin (a fifo we hold open) closes.
mkfifo "$work/in"
"$publisher" statprog <"$work/in" >"$work/pub.out" 2>"$work/pub.err" &
pub_pid=$!
exec 3>"$work/in"
for _ in $(seq 1 200); do
  grep -q '^ready ' "$work/pub.out" && break
  sleep 0.05
done
grep -q "^ready $pub_pid$" "$work/pub.out" || { complain "the publisher did not start"; cat "$work/pub.err"; exit 1; }
obj="/dev/shm/shunt-stat-$(id -u)-$pub_pid"
[ -f "$obj" ] || complain "no $obj"
[ "$(stat -c %a "$obj")" = 600 ] || complain "$obj has mode $(stat -c %a "$obj")"

timeout 20 "$shunt" stat >"$work/stat.out" 2>"$work/stat.err"; rc=$?
echo "--- shunt stat"; cat "$work/stat.out" "$work/stat.err"
[ $rc -eq 0 ] || complain "shunt stat exited $rc"
has() { grep -Eq -- "$2" "$work/$1" || complain "no line of $1 matches: $2"; }
has stat.out "^Proto +Recv-Q +Send-Q +Local Address +Foreign Address +State +PID:FD +Program$"
has stat.out "^tcp +0 +0 +0\.0\.0\.0:5001 +0\.0\.0\.0:\* +LISTEN +$pub_pid:10 +statprog$"
has stat.out "^tcp +11 +0 +10\.0\.0\.2:5001 +10\.0\.0\.1:[0-9]+ +ESTABLISHED +$pub_pid:11 +statprog$"
has stat.out "^udp +0 +0 +10\.0\.0\.2:7001 +0\.0\.0\.0:\* +$pub_pid:12 +statprog$"

timeout 20 "$shunt" stat --counters --pid "$pub_pid" >"$work/c.out" 2>"$work/c.err"; rc=$?
echo "--- shunt stat --counters --pid $pub_pid"; cat "$work/c.out" "$work/c.err"
[ $rc -eq 0 ] || complain "shunt stat --counters exited $rc"
has c.out "^Counters of process $pub_pid \(statprog\):$"
has c.out "^  tcp\.[a-z_.]+ +[1-9][0-9]*$"
grep -Eq "^  [a-z0-9_.-]+ +0$" "$work/c.out" && complain "--counters printed a zero counter"

timeout 20 "$shunt" stat --pid 999999999 >"$work/none.out" 2>"$work/none.err"; rc=$?
[ $rc -eq 1 ] || complain "shunt stat --pid of no publisher exited $rc, not 1"
timeout 20 "$shunt" stat --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || complain "shunt stat --bogus exited $rc, not 2"
timeout 20 "$shunt" stat --help | grep -q "^usage: shunt stat" || complain "shunt stat --help"

# Killed: its object stays until shunt stat sees the process is gone.
kill -9 "$pub_pid"
wait "$pub_pid" 2>/dev/null
[ -f "$obj" ] || complain "$obj vanished before shunt stat ran"
timeout 20 "$shunt" stat >"$work/after.out" 2>"$work/after.err"; rc=$?
echo "--- shunt stat after kill -9"; cat "$work/after.out" "$work/after.err"
[ $rc -eq 0 ] || complain "shunt stat exited $rc"
has after.err "^shunt: stat: removed the statistics of process $pub_pid, which has exited$"
grep -q " $pub_pid:" "$work/after.out" && complain "the dead process is still listed"
[ -e "$obj" ] && complain "$obj was not removed"
pub_pid=""

# A process that exits normally removes its own object.
"$publisher" statprog2 </dev/null >"$work/pub2.out" 2>&1
p2=$(sed -n 's/^ready //p' "$work/pub2.out")
[ -n "$p2" ] || complain "the second publisher did not run"
[ -e "/dev/shm/shunt-stat-$(id -u)-$p2" ] && complain "the object of an exited process remains"

[ $fail -eq 0 ] && echo PASS
exit $fail
