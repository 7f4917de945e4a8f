#!/usr/bin/python3
"""Preflight checks of a ConnectX host before Shunt's scenarios run there (hil/ansible/site.yml;
docs/hardware.md, "ConnectX hosts"). Run as the user (and with the capabilities) the scenarios
will run with:

  preflight.py --device mlx5:mlx5_0,port=1 [--device mlx5:mlx5_1] [--ipv4 A/N ...] [--lib LIB]

Checks, for each device: ibv_devinfo shows it, it is an mlx5 (ConnectX-4 or later) device, the
port is PORT_ACTIVE with its physical link up and link layer Ethernet; for the process: the
locked-memory limit (RLIMIT_MEMLOCK, or CAP_IPC_LOCK) holds the packet buffer pool, CAP_NET_RAW
is effective (raw packet QPs and flow steering need it); with --lib: the preload library opens
each device for real (raw packet QP, steering rules: what `flow steering permitted` means on
that firmware and kernel). Prints one line per check ("ok" or "FAIL") and exits 1 if any failed.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys

MELLANOX_VENDOR_ID = 0x02C9
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
# The default pool (SHUNT_BUFFERS 4096 x 2112 bytes) plus the rings, with room: per process.
MEMLOCK_NEEDED = 32 << 20


def parse_devinfo(text: str) -> dict[str, dict]:
    """ibv_devinfo [-v] output -> {hca_id: {"vendor_id": int|None, "vendor_part_id": int|None,
    "fw_ver": str, "ports": {n: {"state": str, "phys_state": str|None, "link_layer": str}}}}."""
    devs: dict[str, dict] = {}
    dev: dict | None = None
    port: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"hca_id:\s*(\S+)", line)
        if m:
            dev = {"vendor_id": None, "vendor_part_id": None, "fw_ver": "", "ports": {}}
            devs[m.group(1)] = dev
            port = None
            continue
        if dev is None or ":" not in line:
            continue
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "port":
            try:
                n = int(val)
            except ValueError:
                continue
            port = {"state": "", "phys_state": None, "link_layer": ""}
            dev["ports"][n] = port
        elif port is None and key in ("vendor_id", "vendor_part_id"):
            try:
                dev[key] = int(val, 0)
            except ValueError:
                pass
        elif port is None and key == "fw_ver":
            dev["fw_ver"] = val
        elif port is not None and key in ("state", "phys_state", "link_layer"):
            port[key] = val.split(" (")[0]
    return devs


def parse_spec(spec: str) -> tuple[str, int]:
    """SHUNT_DEVICE=mlx5:NAME[,port=N][,...] -> (NAME, port)."""
    kind, _, rest = spec.partition(":")
    if kind != "mlx5" or not rest:
        raise ValueError(f"{spec}: expected mlx5:DEVICE[,port=N][,...]")
    parts = rest.split(",")
    port = 1
    for p in parts[1:]:
        if p.startswith("port="):
            port = int(p[5:])
    return parts[0], port


def check_device(devs: dict[str, dict], name: str, port: int, driver: str | None = None
                 ) -> list[tuple[str, bool, str]]:
    """The device checks from parsed ibv_devinfo: [(check, ok, detail)]."""
    out: list[tuple[str, bool, str]] = []
    d = devs.get(name)
    if d is None:
        found = ", ".join(sorted(devs)) or "none"
        out.append((f"{name}: present", False, f"ibv_devinfo does not list {name} (devices: {found}); "
                    f"needs mlx5_core, mlx5_ib and ib_uverbs loaded"))
        return out
    out.append((f"{name}: present", True, f"firmware {d['fw_ver'] or '?'}"))
    is_mlx5 = driver == "mlx5_core" if driver else name.startswith("mlx5")
    if d["vendor_id"] not in (None, MELLANOX_VENDOR_ID) or not is_mlx5:
        out.append((f"{name}: mlx5 adapter", False, f"driver {driver or '?'}, vendor "
                    f"{hex(d['vendor_id']) if d['vendor_id'] is not None else '?'}: Shunt's mlx5 "
                    f"driver needs a ConnectX-4 or later (mlx5_core)"))
    else:
        out.append((f"{name}: mlx5 adapter", True, f"part {d['vendor_part_id']}"))
    p = d["ports"].get(port)
    if p is None:
        out.append((f"{name} port {port}: link up", False,
                    f"{name} has no port {port} (ports: {', '.join(map(str, sorted(d['ports'])))})"))
        return out
    up = p["state"] == "PORT_ACTIVE" and p["phys_state"] in (None, "LINK_UP")
    out.append((f"{name} port {port}: link up", up,
                f"state {p['state'] or '?'}, physical {p['phys_state'] or '?'}" +
                ("" if up else ": connect the cable / bring the switch port up")))
    eth = p["link_layer"] == "Ethernet"
    out.append((f"{name} port {port}: Ethernet", eth, f"link layer {p['link_layer'] or '?'}" +
                ("" if eth else ": set the port to Ethernet (mlxconfig LINK_TYPE_P1=2) and reboot")))
    return out


def effective_caps(status_text: str) -> int:
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status_text, re.M)
    return int(m.group(1), 16) if m else 0


def check_process(caps: int, memlock_soft: int) -> list[tuple[str, bool, str]]:
    out = []
    raw = bool(caps & (1 << CAP_NET_RAW))
    out.append(("CAP_NET_RAW", raw, "effective" if raw else
                "not effective: raw packet QPs and flow rules need it (root, or an ambient "
                "capability: capsh --addamb=cap_net_raw; docs/hardware.md)"))
    ipc = bool(caps & (1 << CAP_IPC_LOCK))
    unlimited = memlock_soft == resource.RLIM_INFINITY
    ok = unlimited or ipc or memlock_soft >= MEMLOCK_NEEDED
    what = "unlimited" if unlimited else f"{memlock_soft >> 10} KiB"
    out.append(("locked memory", ok, f"RLIMIT_MEMLOCK {what}" + (", CAP_IPC_LOCK" if ipc else "") +
                ("" if ok else f": needs {MEMLOCK_NEEDED >> 20} MiB per process (ulimit -l, "
                 f"limits.d memlock, LimitMEMLOCK=; docs/hardware.md)")))
    return out


OPEN_PROBE = ("import socket, sys\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "s.bind((sys.argv[1], 0)); s.close()\n")


def check_open(lib: str, spec: str, ipv4: str, stderr_text: str | None = None
               ) -> tuple[str, bool, str]:
    """The preload library opens the device for real (QP, steering rules), or says why not."""
    name = f"{spec}: opens (raw packet QP, flow steering)"
    if stderr_text is None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHUNT_")},
               "LD_PRELOAD": lib, "SHUNT_DEVICE": spec, "SHUNT_IPV4": ipv4}
        try:
            cp = subprocess.run([sys.executable, "-c", OPEN_PROBE, ipv4.split("/")[0]], env=env,
                                capture_output=True, text=True, timeout=30)
            stderr_text = cp.stderr
        except subprocess.TimeoutExpired:
            return name, False, "the probe did not end in 30 s"
    for line in stderr_text.splitlines():
        if "sockets stay on the kernel" in line:
            return name, False, line.strip()
    return name, True, "opened"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", action="append", required=True, help="SHUNT_DEVICE value (mlx5:...)")
    ap.add_argument("--ipv4", action="append", default=[], help="each device's SHUNT_IPV4 (for --lib)")
    ap.add_argument("--lib", help="libshunt.so: also open each device for real")
    ap.add_argument("--devinfo-file", help="read ibv_devinfo -v output from this file (tests)")
    a = ap.parse_args(argv)
    checks: list[tuple[str, bool, str]] = []
    if a.devinfo_file:
        with open(a.devinfo_file) as f:
            text = f.read()
    elif shutil.which("ibv_devinfo") is None:
        text = None
        checks.append(("ibv_devinfo", False, "not installed (Debian/Ubuntu: ibverbs-utils)"))
    else:
        cp = subprocess.run(["ibv_devinfo", "-v"], capture_output=True, text=True, timeout=60)
        text = cp.stdout
        if cp.returncode != 0 and not text:
            checks.append(("ibv_devinfo", False, (cp.stderr or "failed").strip().splitlines()[0]))
    devs = parse_devinfo(text or "")
    seen = set()
    for spec in a.device:
        try:
            name, port = parse_spec(spec)
        except ValueError as e:
            checks.append((spec, False, str(e)))
            continue
        if (name, port) in seen or text is None:
            continue
        seen.add((name, port))
        drv = None
        link = f"/sys/class/infiniband/{name}/device/driver"
        if not a.devinfo_file and os.path.islink(link):
            drv = os.path.basename(os.readlink(link))
        checks += check_device(devs, name, port, drv)
    with open("/proc/self/status") as f:
        caps = effective_caps(f.read())
    checks += check_process(caps, resource.getrlimit(resource.RLIMIT_MEMLOCK)[0])
    if a.lib and all(ok for _, ok, _ in checks):
        for i, spec in enumerate(a.device):
            ip = a.ipv4[i] if i < len(a.ipv4) else f"10.77.0.{i + 1}/24"
            checks.append(check_open(a.lib, spec, ip))
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
