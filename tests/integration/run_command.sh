#!/bin/bash
# preload.shunt_run: `shunt run` sets LD_PRELOAD (the libshunt.so next to the binary, after what
# LD_PRELOAD held) and SHUNT_* from its options, and execs; 127 for a missing program.
#   run_command.sh SHUNT LIBSHUNT OTHER_LIB
set -u
shunt="$1"
lib=$(realpath "$2")
other="$3"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
complain() { echo "FAIL: $*"; fail=1; }
for v in $(env | sed -n 's/^\(SHUNT_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset LD_PRELOAD

out=$(timeout 20 "$shunt" run -- env); rc=$?
[ $rc -eq 0 ] || complain "shunt run -- env exited $rc"
echo "$out" | grep -qx "LD_PRELOAD=$lib" || complain "LD_PRELOAD is not $lib: $(echo "$out" | grep LD_PRELOAD)"
echo "$out" | grep -q "^SHUNT_" && complain "SHUNT_* set without options: $(echo "$out" | grep ^SHUNT_)"

out=$(timeout 20 "$shunt" run --profile latency --device mlx5sim:cable=t$$ --ipv4 10.9.0.1/24 --config /dev/null --debug env); rc=$?
[ $rc -eq 0 ] || complain "shunt run with options exited $rc"
for want in SHUNT_PROFILE=latency SHUNT_DEVICE=mlx5sim:cable=t$$ SHUNT_IPV4=10.9.0.1/24 SHUNT_CONFIG=/dev/null SHUNT_DEBUG=1; do
  echo "$out" | grep -qx "$want" || complain "missing $want"
done
out=$(timeout 20 "$shunt" run --profile=throughput -- env); rc=$?
echo "$out" | grep -qx "SHUNT_PROFILE=throughput" || complain "--profile=throughput"

# An existing LD_PRELOAD is kept, ours after it, and not added twice.
out=$(LD_PRELOAD="$other" timeout 20 "$shunt" run -- env 2>/dev/null)
echo "$out" | grep -qx "LD_PRELOAD=$other:$lib" || complain "LD_PRELOAD not kept: $(echo "$out" | grep LD_PRELOAD)"
out=$(LD_PRELOAD="$lib" timeout 20 "$shunt" run -- env)
echo "$out" | grep -qx "LD_PRELOAD=$lib" || complain "LD_PRELOAD doubled: $(echo "$out" | grep LD_PRELOAD)"

# Arguments reach the program as given.
out=$(timeout 20 "$shunt" run -- printf '%s|' a "b c" --debug); rc=$?
[ "$out" = "a|b c|--debug|" ] || complain "arguments: got '$out'"
# The program's exit status is passed through.
timeout 20 "$shunt" run -- sh -c 'exit 7'; rc=$?
[ $rc -eq 7 ] || complain "exit status $rc, not 7"

# A missing program: 127 and one line.
timeout 20 "$shunt" run -- no-such-program-$$ >"$work/out" 2>"$work/err"; rc=$?
[ $rc -eq 127 ] || complain "missing program: exit $rc, not 127"
[ "$(wc -l <"$work/err")" -eq 1 ] || complain "missing program: $(wc -l <"$work/err") lines on stderr"
grep -qx "shunt: run: no-such-program-$$: command not found" "$work/err" || complain "message: $(cat "$work/err")"

# Usage errors: 2.
for bad in "--profile fast env" "--ipv4 10.9.0.1 env" "--bogus env" "--profile" ""; do
  timeout 20 "$shunt" run $bad >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] || complain "shunt run $bad: exit $rc, not 2"
done
timeout 20 "$shunt" run --help >"$work/help"; rc=$?
[ $rc -eq 0 ] || complain "--help exited $rc"
grep -q "^usage: shunt run" "$work/help" || complain "--help has no usage line"

# The installed layout: PREFIX/bin/shunt finds PREFIX/lib/libshunt.so.
mkdir -p "$work/prefix/bin" "$work/prefix/lib"
cp "$shunt" "$work/prefix/bin/shunt"
cp "$lib" "$work/prefix/lib/libshunt.so"
out=$(timeout 20 "$work/prefix/bin/shunt" run -- env)
echo "$out" | grep -qx "LD_PRELOAD=$work/prefix/lib/libshunt.so" || complain "installed layout: $(echo "$out" | grep LD_PRELOAD)"
rm "$work/prefix/lib/libshunt.so"
timeout 20 "$work/prefix/bin/shunt" run -- env >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 1 ] || complain "without libshunt.so: exit $rc, not 1"
grep -q "cannot find the preload library" "$work/err" || complain "without libshunt.so: $(cat "$work/err")"

[ $fail -eq 0 ] && echo PASS
exit $fail
