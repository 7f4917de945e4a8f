#!/bin/bash
# hil/rxe/rig.sh - the soft-RoCE rig: a qemu guest running Debian's stock kernel with rdma_rxe
# (this machine's kernel has no RDMA), the host's / exported read-only over 9p so that the
# project's build, python3, sockperf, iperf3 and rdma-core run in it unchanged (chroot), rxe0 on
# the guest's virtio NIC, and a command script run inside with its output and exit status
# brought back. docs/hardware.md, "Soft-RoCE rig".
#
#   rig.sh build                      build (or reuse) the guest image in the work folder
#   rig.sh run [options] SCRIPT       boot, run SCRIPT (sh) in the guest, exit with its status
#   rig.sh run [options] -c 'CMDS'    the same with commands given inline
#   rig.sh smoke [options]            rxe0 and rdma-core's ibv_ud_pingpong over it
#   rig.sh clean                      remove the work folder
# run options:
#   --timeout S     the whole run, boot included (default 300); the guest kills the script at
#                   S - 20 s so that its output still comes back; qemu is killed at S
#   --out DIR       the run's folder (default WORK/runs/run-<time>-<pid>); it holds cmd.sh, env,
#                   console.log, output.log, rc and whatever the script writes to $SHUNT_HIL_OUT
#   --env K=V       an environment variable of the script (repeatable)
#   --quiet         do not copy the guest console to stdout
#   --smp N --mem M guest CPUs (default 4: with fewer, busy-polling programs starve rxe's
#                   softirq work under emulation) and memory (default 1G)
# Environment: SHUNT_HIL_WORK (work folder, default <repo>/build/hil), SHUNT_HIL_ACCEL
#   (auto|kvm|tcg, default auto: KVM only when the CPU shows vmx/svm), SHUNT_HIL_KERNEL_DEB (a
#   linux-image .deb to use instead of downloading Debian's current one).
# Inside the guest the script runs as root in the host's root (read-only; /tmp, /run, /dev/shm
# are tmpfs) with SHUNT_HIL=rxe, SHUNT_HIL_OUT=<the run's folder, writable>, SHUNT_HIL_RXE_IP.
# Exit status: the script's; 124 when the run timed out; 99 when the guest gave no result;
# 2 for usage errors; 3 when the image cannot be built.
# No packet leaves qemu: the guest NIC is slirp with restrict=on.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
WORK=${SHUNT_HIL_WORK:-$repo/build/hil}
IMAGE=$WORK/image
MODULES="virtio_pci virtio_net 9pnet_virtio 9p crc32_generic crc32-pclmul rdma_rxe rdma_ucm"

die() { echo "hil/rxe: $*" >&2; exit "${2:-2}"; }
log() { echo "hil/rxe: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

need() {
  local missing=()
  for p in "$@"; do command -v "$p" > /dev/null || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]} (Debian: qemu-system-x86 busybox-static kmod cpio; .ci/setup installs them)" 3
}

# ----- the image: vmlinuz + initramfs (busybox, the modules, /init), cached by a stamp

kernel_package() {
  local k
  k=$(apt-cache depends linux-image-amd64 2> /dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [ -z "$k" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 > /dev/null 2>&1 || true
    k=$(apt-cache depends linux-image-amd64 2> /dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  echo "$k"
}

build() {
  need qemu-system-x86_64 busybox cpio depmod modprobe gzip dpkg
  mkdir -p "$WORK"
  exec 9> "$WORK/.build.lock"
  flock -w 600 9 || die "another build holds $WORK/.build.lock" 3
  local t0 kdeb kpkg stamp
  t0=$(now)
  if [ -n "${SHUNT_HIL_KERNEL_DEB:-}" ]; then
    kdeb=$SHUNT_HIL_KERNEL_DEB
    [ -f "$kdeb" ] || die "SHUNT_HIL_KERNEL_DEB=$kdeb: no such file" 3
    kpkg=$(basename "$kdeb")
  else
    kpkg=$(kernel_package)
    if [ -z "$kpkg" ]; then
      if [ -f "$IMAGE/stamp" ]; then
        log "apt knows no linux-image-amd64 (offline?): reusing the image built before"
        return 0
      fi
      die "cannot find Debian's kernel package (apt-cache depends linux-image-amd64 says nothing; run apt-get update)" 3
    fi
  fi
  stamp="$kpkg $(sha256sum "$here/rig.sh" "$here/guest-init.sh" /bin/busybox | sha256sum | cut -c1-16)"
  if [ -f "$IMAGE/stamp" ] && [ "$(cat "$IMAGE/stamp")" = "$stamp" ] &&
     [ -f "$IMAGE/vmlinuz" ] && [ -f "$IMAGE/initramfs.cpio.gz" ]; then
    return 0
  fi
  log "building the guest image in $IMAGE ($kpkg)"
  if [ -z "${SHUNT_HIL_KERNEL_DEB:-}" ]; then
    mkdir -p "$WORK/debs"
    kdeb=$(ls "$WORK/debs/${kpkg}"_*.deb 2> /dev/null | head -1 || true)
    if [ -z "$kdeb" ]; then
      rm -f "$WORK"/debs/*.deb
      # apt-get's "W: Download is performed unsandboxed as root" is harmless.
      (cd "$WORK/debs" && apt-get download -qq "$kpkg" 2>&1 | grep -v unsandboxed >&2 || true)
      kdeb=$(ls "$WORK/debs/${kpkg}"_*.deb 2> /dev/null | head -1 || true)
      [ -n "$kdeb" ] || die "apt-get download $kpkg failed" 3
    fi
    log "kernel package ready ($(since "$t0") s)"
  fi
  local kroot=$WORK/kroot R=$WORK/initramfs kv
  rm -rf "$kroot" "$R" "$IMAGE.new"
  mkdir -p "$kroot" "$IMAGE.new"
  dpkg -x "$kdeb" "$kroot"
  kv=$(ls "$kroot/lib/modules" | head -1)
  [ -n "$kv" ] && [ -f "$kroot/boot/vmlinuz-$kv" ] || die "$kdeb holds no kernel" 3
  depmod -b "$kroot" "$kv"
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,host,out,etc,lib/modules/"$kv"}
  cp /bin/busybox "$R/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
  ln -sf /bin/busybox "$R/sbin/modprobe"   # the kernel's request_module() runs /sbin/modprobe
  local m ko rel
  for m in $MODULES; do
    modprobe -d "$kroot" -S "$kv" --show-depends "$m" 2> /dev/null || { [ "$m" = crc32-pclmul ] || die "module $m not in $kpkg" 3; }
  done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r ko; do
    rel=${ko#"$kroot"/}
    mkdir -p "$R/$(dirname "$rel")"
    cp "$ko" "$R/$rel"
  done
  cp "$kroot/lib/modules/$kv"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$kv/"
  depmod -b "$R" "$kv"
  cp "$here/guest-init.sh" "$R/init"
  chmod 755 "$R/init"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$IMAGE.new/initramfs.cpio.gz"
  cp "$kroot/boot/vmlinuz-$kv" "$IMAGE.new/vmlinuz"
  echo "$stamp" > "$IMAGE.new/stamp"
  rm -rf "$IMAGE" "$kroot" "$R"
  mv "$IMAGE.new" "$IMAGE"
  log "image built: kernel $kv, initramfs $(du -h "$IMAGE/initramfs.cpio.gz" | cut -f1) ($(since "$t0") s)"
}

# ----- a run

accel_args() {
  local a=${SHUNT_HIL_ACCEL:-auto}
  if [ "$a" = auto ]; then
    # /dev/kvm may be a paravirtual hypervisor (PVM) that hangs stock kernels: KVM only with
    # hardware virtualisation visible.
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then a=kvm; else a=tcg; fi
  fi
  case $a in
    kvm) echo "-accel kvm -cpu host" ;;
    tcg) echo "-accel tcg,thread=multi -cpu max" ;;
    *) die "SHUNT_HIL_ACCEL=$a: expected auto, kvm or tcg" ;;
  esac
}

run() {
  local timeout=300 out="" quiet=0 smp=4 mem=1G script="" inline="" envs=()
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) timeout=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --env) envs+=("$2"); shift 2 ;;
      --quiet) quiet=1; shift ;;
      --smp) smp=$2; shift 2 ;;
      --mem) mem=$2; shift 2 ;;
      -c) inline=$2; shift 2 ;;
      -*) die "run: unknown option $1" ;;
      *) [ -z "$script" ] || die "run: one script only"; script=$1; shift ;;
    esac
  done
  [[ $timeout =~ ^[0-9]+$ ]] && [ "$timeout" -ge 40 ] || die "run: --timeout must be a whole number of seconds >= 40"
  [ -n "$script$inline" ] || die "run: give a SCRIPT or -c 'commands'"
  [ -z "$script" ] || [ -f "$script" ] || die "run: $script: no such file"
  build
  [ -f "$IMAGE/vmlinuz" ] || die "no guest image in $IMAGE" 3
  if [ -z "$out" ]; then
    out=$WORK/runs/run-$(date +%Y%m%d-%H%M%S)-$$
  fi
  mkdir -p "$out"
  out=$(cd "$out" && pwd -P)
  [[ $out != *[[:space:]]* ]] || die "run: the run folder's path may not contain spaces: $out"
  rm -f "$out/rc" "$out/console.log" "$out/output.log"
  if [ -n "$script" ]; then cp "$script" "$out/cmd.sh"; else printf '%s\n' "$inline" > "$out/cmd.sh"; fi
  : > "$out/env"
  local kv
  for kv in "${envs[@]+"${envs[@]}"}"; do
    [[ $kv == *=* ]] || die "run: --env $kv: expected NAME=VALUE"
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >> "$out/env"
  done
  # Host folders the guest must see through its writable tmpfs over /tmp, /run, /var/tmp and
  # /dev/shm: the project's tree and every --env value naming a folder (a build under /tmp).
  local keep kdir
  keep=$(cd "$here/../.." && pwd -P)
  for kv in "${envs[@]+"${envs[@]}"}"; do
    kdir=${kv#*=}
    if [[ $kdir == /* && -d $kdir && $kdir != *[[:space:]:]* ]]; then keep+=":$(cd "$kdir" && pwd -P)"; fi
  done
  local t0 qpid tpid=""
  t0=$(now)
  # qemu's own bound is the caller's; the guest stops the script 20 s before it.
  # shellcheck disable=SC2046
  timeout -k 5 "$timeout" qemu-system-x86_64 $(accel_args) -smp "$smp" -m "$mem" \
    -nodefaults -display none -no-reboot -monitor none -serial "file:$out/console.log" \
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 shunt_out=$out shunt_keep=$keep shunt_timeout=$((timeout - 20))" \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:12:34:56 \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot \
    -virtfs "local,path=$out,mount_tag=out,security_model=none,id=out" \
    < /dev/null > "$out/qemu.log" 2>&1 &
  qpid=$!
  if [ $quiet = 0 ]; then
    for _ in $(seq 50); do [ -f "$out/console.log" ] && break; sleep 0.1; done
    tail -n +1 -F --pid=$qpid "$out/console.log" 2> /dev/null &
    tpid=$!
  fi
  local qrc=0
  wait $qpid || qrc=$?
  [ -z "$tpid" ] || wait "$tpid" 2> /dev/null || true
  local rc
  rc=$(cat "$out/rc" 2> /dev/null || sed -n 's/^SHUNT-HIL-RESULT rc=\([0-9]*\).*/\1/p' "$out/console.log" 2> /dev/null | tail -1)
  if [ -z "$rc" ]; then
    if [ $qrc = 124 ] || [ $qrc = 137 ]; then
      log "the guest run took more than $timeout s and was stopped (console: $out/console.log)"
      rc=124
    else
      log "the guest gave no result (qemu status $qrc: $(tail -c 300 "$out/qemu.log" | tr '\n' ' '); console: $out/console.log)"
      rc=99
    fi
  fi
  log "run finished in $(since "$t0") s with status $rc (folder $out)"
  return "$rc"
}

smoke() {
  run "$@" "$here/smoke.sh"
}

case ${1:-} in
  build) shift; build "$@" ;;
  run) shift; run "$@" ;;
  smoke) shift; smoke "$@" ;;
  clean) rm -rf "$WORK" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
