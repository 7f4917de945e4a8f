#!/bin/bash
# Runs a real program under the preload library and judges what it did.
#
#   preload_run.sh [options] LIBSHUNT -- COMMAND [ARGS...]
#
# Options:
#   --need PROG          skip (exit 77) with the reason when PROG is not installed
#   --same               also run COMMAND without the library: exit status, stdout and stderr
#                        must be identical in both runs
#   --shunt-lines N|+    stderr lines starting "shunt:" under the library: exactly N, or at
#                        least one for "+" (default 0: no output unless asked)
#   --stderr-has REGEX   some stderr line under the library matches REGEX (grep -E); repeatable
#   --stdout-has REGEX   some stdout line under the library matches REGEX; repeatable
#   --also-preload LIB   a library to preload after libshunt.so
#
# Always: COMMAND must exit 0 under the library. SHUNT_* variables are cleared first; give
# them to COMMAND with `env SHUNT_X=... COMMAND`. Every run is bounded by a timeout.
set -u

need=()
same=0
shunt_lines=0
stderr_res=()
stdout_res=()
also=""
while [ $# -gt 0 ]; do
  case "$1" in
    --need) need+=("$2"); shift 2 ;;
    --same) same=1; shift ;;
    --shunt-lines) shunt_lines="$2"; shift 2 ;;
    --stderr-has) stderr_res+=("$2"); shift 2 ;;
    --stdout-has) stdout_res+=("$2"); shift 2 ;;
    --also-preload) also="$2"; shift 2 ;;
    --) shift; break ;;
    *) lib="$1"; shift ;;
  esac
done
[ "${1:-}" = "--" ] && shift
if [ -z "${lib:-}" ] || [ $# -eq 0 ]; then
  echo "usage: preload_run.sh [options] LIBSHUNT -- COMMAND [ARGS...]" >&2
  exit 2
fi

for p in "${need[@]}"; do
  if ! command -v "$p" >/dev/null 2>&1; then
    echo "SKIPPED: $p is not installed"
    exit 77
  fi
done
if [ ! -f "$lib" ]; then
  echo "FAIL: $lib does not exist (build the shunt_preload target)"
  exit 1
fi

for v in $(env | sed -n 's/^\(SHUNT_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# A sanitizer build of the library needs its runtime first in the preload list.
preload="$lib"
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
if [ -n "$asan" ]; then
  preload="$asan $lib"
  export ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
[ -n "$also" ] && preload="$preload $also"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limit=120

echo "+ LD_PRELOAD=\"$preload\" $*"
LD_PRELOAD="$preload" timeout -k 5 $limit "$@" >"$work/out.pre" 2>"$work/err.pre" </dev/null
rc_pre=$?
echo "--- stdout (with libshunt.so)"; cat "$work/out.pre"
echo "--- stderr (with libshunt.so)"; cat "$work/err.pre"

fail=0
complain() { echo "FAIL: $*"; fail=1; }

[ $rc_pre -eq 0 ] || complain "exit status $rc_pre under the preload library (124: timed out)"

if [ $same -eq 1 ]; then
  timeout -k 5 $limit "$@" >"$work/out.plain" 2>"$work/err.plain" </dev/null
  rc_plain=$?
  [ $rc_plain -eq $rc_pre ] || complain "exit status $rc_plain without the library, $rc_pre with it"
  if ! diff -u "$work/out.plain" "$work/out.pre" >"$work/diff"; then
    complain "stdout differs with the library:"; cat "$work/diff"
  fi
  if ! diff -u "$work/err.plain" "$work/err.pre" >"$work/diff"; then
    complain "stderr differs with the library:"; cat "$work/diff"
  fi
fi

n=$(grep -c '^shunt' "$work/err.pre")
if [ "$shunt_lines" = "+" ]; then
  [ "$n" -ge 1 ] || complain "expected output from the library on stderr, got none"
else
  [ "$n" -eq "$shunt_lines" ] || complain "expected $shunt_lines line(s) from the library on stderr, got $n"
fi
for re in "${stderr_res[@]}"; do
  grep -Eq -- "$re" "$work/err.pre" || complain "no stderr line matches: $re"
done
for re in "${stdout_res[@]}"; do
  grep -Eq -- "$re" "$work/out.pre" || complain "no stdout line matches: $re"
done

[ $fail -eq 0 ] && echo "PASS"
exit $fail
