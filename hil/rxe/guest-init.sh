#!/bin/sh
# PID 1 of the soft-RoCE guest (hil/rxe/rig.sh copies it into the initramfs as /init).
# Loads the virtio, 9p and rxe modules, mounts the host's / read-only at /host (with proc, sys,
# dev and writable tmpfs in it), mounts the run's output folder read-write at the same path
# inside /host, creates rxe0 on eth0, waits for its port to be ACTIVE, runs the run's cmd.sh in
# "chroot /host" bounded by shunt_timeout seconds, and powers off. The last console line is
# "SHUNT-HIL-RESULT rc=N" (also written to <out>/rc). Kernel command line (becomes the
# environment of this script): shunt_out=/abs/path shunt_timeout=SECONDS shunt_ip=A.B.C.D/N
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
rc=100
say() { echo "[hil-guest $(cut -d' ' -f1 /proc/uptime)s] $*"; }
finish() {
  echo "SHUNT-HIL-RESULT rc=$1"
  [ -d /out ] && echo "$1" > /out/rc
  sync
  poweroff -f
  sleep 5
  echo o > /proc/sysrq-trigger
}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
hostname shunt-rxe-guest
for m in virtio_pci virtio_net 9pnet_virtio 9p crc32-pclmul crc32_generic rdma_rxe rdma_ucm; do
  modprobe "$m" 2>/dev/null || case $m in crc32-pclmul|rdma_ucm) ;; *) say "modprobe $m failed" ;; esac
done

# The host's / read-only: the project's build, python3, sockperf, iperf3, rdma-core.
mkdir -p /host /out
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose hostroot /host; then
  say "cannot mount the host's / (9p tag hostroot)"; finish 101
fi
for d in proc sys dev dev/pts; do mount --bind "/$d" "/host/$d"; done
# Writable tmpfs covers the host's temporary folders; each is first bound at /hostro/<folder>, so
# the folders the run needs from under them (shunt_keep: the project's tree, a build under /tmp)
# can be bound back.
for d in tmp run dev/shm var/tmp; do
  mkdir -p "/hostro/$d" && mount --bind "/host/$d" "/hostro/$d" 2>/dev/null
  mount -t tmpfs tmp "/host/$d" 2>/dev/null
done
under_tmp() {
  case $1 in /tmp/*|/run/*|/dev/shm/*|/var/tmp/*) return 0 ;; *) return 1 ;; esac
}
old_ifs=$IFS; IFS=:
for k in $shunt_keep; do
  if [ -n "$k" ] && under_tmp "$k" && [ -d "/hostro$k" ]; then
    mkdir -p "/host$k" && mount --bind "/hostro$k" "/host$k" || say "cannot show $k to the run"
  fi
done
IFS=$old_ifs
if [ -z "$shunt_out" ] || ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out; then
  say "cannot mount the run's output folder (9p tag out)"; finish 102
fi
mkdir -p "/host$shunt_out" 2>/dev/null  # in the tmpfs when the folder is under /tmp
mount --bind /out "/host$shunt_out" || { say "cannot bind the output folder at $shunt_out"; finish 103; }

# rxe0 on eth0 (the restrict=on slirp NIC: nothing leaves qemu; rxe loops its own traffic).
ip link set lo up
ip addr add "${shunt_ip:-10.0.2.15/24}" dev eth0
ip link set eth0 up
if ! chroot /host rdma link add rxe0 type rxe netdev eth0; then
  say "rdma link add rxe0 failed"; finish 104
fi
i=0
until grep -qs ACTIVE /sys/class/infiniband/rxe0/ports/1/state; do
  i=$((i + 1))
  [ $i -gt 100 ] && { say "rxe0 port 1 not ACTIVE after 10 s"; finish 105; }
  sleep 0.1
done
say "rxe0 ACTIVE on eth0 ${shunt_ip:-10.0.2.15/24}"

# The run: cmd.sh in the host's root, its output on the console and in <out>/output.log.
echo "SHUNT-HIL-BEGIN"
( timeout -s KILL "${shunt_timeout:-240}" chroot /host /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 \
    SHUNT_HIL=rxe SHUNT_HIL_OUT="$shunt_out" SHUNT_HIL_RXE_IP="${shunt_ip:-10.0.2.15/24}" \
    /bin/sh -c '[ -f "$SHUNT_HIL_OUT/env" ] && . "$SHUNT_HIL_OUT/env"; cd "$SHUNT_HIL_OUT" && exec /bin/sh ./cmd.sh' \
    2>&1; echo $? > /tmp/rc ) | tee /out/output.log
rc=$(cat /tmp/rc 2>/dev/null || echo 106)
[ "$rc" = 137 ] && say "the run was killed after ${shunt_timeout:-240} s (guest-side time limit)"
finish "$rc"
