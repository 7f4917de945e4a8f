"""Backends: where a scenario's point runs (docs/scenarios.md, "Backends").

Virtual time (deterministic, results exact):
  sim    shunt.SimNetwork: Shunt hosts behind the simulated mlx5 NIC on one harness link
  ns3    shunt.Ns3Network: the same hosts in an ns-3 topology (two hosts, or a star)
Real time (real sockperf/iperf3 processes under build/lib/libshunt.so):
  cable  two processes on the two ends of a shared-memory cable (simulated ConnectX NICs)
  afxdp  the client on AF_XDP on one end of a veth pair, the kernel on the other (root)
  tap    the client on a TAP interface, the kernel on the other side (root)
Hardware in the loop (scenarios/hil.py, hil/, docs/hardware.md):
  rxe    sockperf/iperf3 under the library on soft-RoCE (rxe0) inside a qemu guest
  mlx5   the same on the ConnectX hosts of an Ansible inventory
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any, Iterator

from .scenario import (HIL_BACKENDS, REAL_BACKENDS, VIRTUAL_BACKENDS, BackendUnavailable,
                       ScenarioError, build_dir)


def context(backend: str, options: dict[str, Any]) -> Any:
    if backend in VIRTUAL_BACKENDS:
        return VirtualContext(backend, options)
    if backend in REAL_BACKENDS:
        return RealContext(backend, options)
    if backend in HIL_BACKENDS:
        from . import hil  # noqa: PLC0415
        return hil.context(backend, options)
    raise BackendUnavailable(f"unknown backend {backend}")


# ----- Virtual time

class VirtualContext:
    """Builds the virtual-time network of a point: SimNetwork or an ns-3 topology."""
    kind = "virtual"

    def __init__(self, backend: str, options: dict[str, Any]):
        self.backend = backend
        self.options = options
        try:
            import shunt  # noqa: PLC0415
            shunt.require_bindings()
        except ImportError as e:
            raise BackendUnavailable(f"backend {backend}: {e}") from None
        self.shunt = shunt

    def config(self, profile: str | None = None, **vars: Any) -> Any:
        """A shunt.Config: defaults, then `profile`, then SHUNT_* names without the prefix
        (None values are left out)."""
        try:
            c = self.shunt.Config(profile) if profile else self.shunt.Config()
        except self.shunt.ShuntError as e:
            raise ScenarioError(str(e)) from None
        for k, v in vars.items():
            if v is None:
                continue
            try:
                c.set(k, v)
            except self.shunt.ShuntError as e:
                raise ScenarioError(str(e)) from None
        return c

    @contextlib.contextmanager
    def network(self, hosts: int = 2, rate_bps: int = 10_000_000_000, delay_ns: int = 1000,
                loss: float = 0.0, mtu: int = 1500, seed: int = 1, config: Any = None,
                queue: int | None = None) -> Iterator[Any]:
        """`hosts` Shunt hosts; host i is 10.0.0.(i+1). sim: one shared link with `delay_ns` one
        way (RTT 2 x delay); with `queue` frames a switch whose port to each host serializes
        what comes for it at the link rate behind a drop-tail queue (default none: a segment
        where nothing limits what arrives at a host). ns3: two hosts on one link, or a star of
        `hosts` around a switch (each edge `delay_ns`, RTT 4 x delay), with `queue` packets
        (default 1000) at each device."""
        S = self.shunt
        try:
            if self.backend == "sim":
                net = S.SimNetwork(hosts=hosts, nic="mlx5sim", rate_bps=int(rate_bps),
                                   delay_ns=int(delay_ns), mtu=int(mtu), loss=float(loss),
                                   seed=int(seed), config=config, queue=int(queue or 0))
            elif hosts == 2:
                net = S.Ns3Network.two_hosts(rate_bps=int(rate_bps), delay_ns=int(delay_ns),
                                             mtu=int(mtu), queue=int(queue or 1000),
                                             loss=float(loss), seed=int(seed), config=config)
            else:
                net = S.Ns3Network.star(hosts=hosts, rate_bps=int(rate_bps),
                                        delay_ns=int(delay_ns), mtu=int(mtu),
                                        queue=int(queue or 1000), loss=float(loss),
                                        seed=int(seed), config=config)
        except S.ShuntError as e:
            raise ScenarioError(f"{self.backend}: cannot build the network: {e}") from None
        try:
            yield net
        finally:
            close = getattr(net, "close", None)
            if close is not None:
                close()

    @staticmethod
    def rtt_factor(backend: str, hosts: int) -> int:
        """RTT / one-way link delay of the topology network() builds."""
        return 4 if backend == "ns3" and hosts > 2 else 2


# ----- Real time

SERVER_READY_SOCKPERF = "to block on socket"
SERVER_READY_IPERF3 = "Server listening"


def find_library(options: dict[str, Any]) -> pathlib.Path:
    """libshunt.so: --lib, SHUNT_PRELOAD_LIB, or <build>/lib/libshunt.so."""
    cand = options.get("lib") or os.environ.get("SHUNT_PRELOAD_LIB")
    if not cand:
        b = build_dir()
        cand = str(b / "lib" / "libshunt.so") if b else ""
    if not cand or not os.path.isfile(cand):
        raise BackendUnavailable(f"the preload library {cand or 'libshunt.so'} does not exist "
                                 f"(build the shunt_preload target, or give --lib)")
    return pathlib.Path(cand).resolve()


def need_programs(*progs: str) -> None:
    for p in progs:
        if shutil.which(p) is None:
            raise BackendUnavailable(f"{p} is not installed")


def _clean_env() -> dict[str, str]:
    # The caller's SHUNT_* variables would change what is measured: start from none.
    return {k: v for k, v in os.environ.items() if not k.startswith("SHUNT_") and k != "LD_PRELOAD"}


class Side:
    """How one end runs: a command prefix (ip netns exec ...) and its environment."""

    def __init__(self, ip: str, prefix: list[str] | None = None, env: dict[str, str] | None = None):
        self.ip = ip
        self.prefix = prefix or []
        self.env = env or {}

    def argv(self, cmd: list[str], extra_env: dict[str, str]) -> list[str]:
        env = {**self.env, **extra_env}
        return self.prefix + ["env"] + [f"{k}={v}" for k, v in env.items()] + cmd


class RealContext:
    """Runs a server and a client program for one point on `backend`, under the preload library
    where Shunt is the end (cable: both ends; afxdp/tap: the client, the kernel serves)."""
    kind = "real"

    def __init__(self, backend: str, options: dict[str, Any]):
        self.backend = backend
        self.options = options
        need_programs("timeout", "env")
        self.lib = find_library(options)
        if backend in ("afxdp", "tap"):
            if os.geteuid() != 0:
                raise BackendUnavailable(f"backend {backend} needs root (network namespaces, "
                                         f"{'veth and AF_XDP' if backend == 'afxdp' else 'TAP'})")
            need_programs("ip", "tc")
            if backend == "afxdp":
                need_programs("ethtool")
        self.limit_s = float(options.get("limit_s", 120))

    # A topology for one run: yields (server Side, client Side). rtt_us/loss: netem on the
    # kernel's end where there is one (the cable has neither).
    @contextlib.contextmanager
    def topology(self, rtt_us: float = 0, loss: float = 0,
                 env: dict[str, str] | None = None) -> Iterator[tuple[Side, Side]]:
        env = dict(env or {})
        pid = os.getpid()
        if self.backend == "cable":
            if rtt_us or loss:
                raise ScenarioError("the cable has no delay or loss of its own: give rtt_us=0 and "
                                    "loss=0 (or use tap/afxdp, which add them with netem, or a "
                                    "virtual backend)")
            name = f"scn{pid}x{time.monotonic_ns() % 1000000}"
            pre = {"LD_PRELOAD": str(self.lib), **env}
            server = Side("10.9.0.1", env={**pre, "SHUNT_DEVICE":
                                           f"mlx5sim:cable={name},mac=02:53:48:00:00:01",
                                           "SHUNT_IPV4": "10.9.0.1/24"})
            client = Side("10.9.0.2", env={**pre, "SHUNT_DEVICE":
                                           f"mlx5sim:cable={name},mac=02:53:48:00:00:02",
                                           "SHUNT_IPV4": "10.9.0.2/24"})
            try:
                yield server, client
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(f"/dev/shm/shunt-cable-{name}")
            return
        tag = pid % 1000000
        subnet = pid % 250 + 1
        kns = f"shunt-scnk-{pid}"
        sns = f"shunt-scns-{pid}"
        made: list[str] = []

        def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
            r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
            if check and r.returncode != 0:
                raise BackendUnavailable(f"ip {' '.join(args)}: {r.stderr.strip()}")
            return r

        try:
            ip("netns", "add", kns)
            made.append(kns)
            ip("-n", kns, "link", "set", "lo", "up")
            kip = f"10.87.{subnet}.1"
            cip = f"10.87.{subnet}.2"
            if self.backend == "afxdp":
                ip("netns", "add", sns)
                made.append(sns)
                sif, kif = f"scs{tag}", f"sck{tag}"
                ip("-n", sns, "link", "add", sif, "type", "veth", "peer", "name", kif,
                   "netns", kns)
                ip("-n", kns, "addr", "add", f"{kip}/24", "dev", kif)
                ip("-n", kns, "link", "set", kif, "up")
                subprocess.run(["ip", "netns", "exec", kns, "ethtool", "-K", kif, "tx", "off",
                                "tso", "off", "gso", "off"], capture_output=True, timeout=20)
                subprocess.run(["ip", "netns", "exec", sns, "sh", "-c",
                                f"echo 1 > /proc/sys/net/ipv6/conf/{sif}/disable_ipv6"],
                               capture_output=True, timeout=20)
                ip("-n", sns, "link", "set", sif, "up")
                device, client_ns, kdev = f"afxdp:{sif}", sns, kif
            else:
                tif = f"sct{tag}"
                ip("-n", kns, "tuntap", "add", "dev", tif, "mode", "tap")
                ip("-n", kns, "addr", "add", f"{kip}/24", "dev", tif)
                ip("-n", kns, "link", "set", tif, "up")
                device, client_ns, kdev = f"tap:{tif}", kns, tif
            if rtt_us or loss:
                # The whole delay on the kernel's egress: RTT = rtt_us.
                netem = ["tc", "-n", kns, "qdisc", "add", "dev", kdev, "root", "netem",
                         "limit", "100000"]
                if rtt_us:
                    netem += ["delay", f"{int(rtt_us)}us"]
                if loss:
                    netem += ["loss", f"{loss * 100:g}%"]
                r = subprocess.run(netem, capture_output=True, text=True, timeout=20)
                if r.returncode != 0:
                    raise BackendUnavailable(f"{self.backend}: cannot add delay/loss with netem "
                                             f"(kernel module sch_netem): {r.stderr.strip()}")
            server = Side(kip, prefix=["ip", "netns", "exec", kns])
            client = Side(cip, prefix=["ip", "netns", "exec", client_ns],
                          env={"LD_PRELOAD": str(self.lib), "SHUNT_DEVICE": device,
                               "SHUNT_IPV4": f"{cip}/24", **env})
            yield server, client
        finally:
            for ns in reversed(made):
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=20)

    def run_pair(self, server: Side, server_cmd: list[str], client: Side, client_cmd: list[str],
                 ready: str, server_env: dict[str, str] | None = None,
                 client_env: dict[str, str] | None = None,
                 server_exits: bool = False) -> tuple[str, str, str]:
        """Starts the server, waits for a line matching `ready`, runs the client to its end,
        then stops the server (SIGINT) unless it exits by itself. Returns (client stdout,
        client stderr, server output); ScenarioError when a side fails."""
        with tempfile.TemporaryDirectory(prefix="shunt-scn-") as work:
            sout = open(os.path.join(work, "server.out"), "w+")
            lim = str(int(self.limit_s))
            sp = subprocess.Popen(["timeout", "-k", "5", lim] +
                                  server.argv(server_cmd, server_env or {}),
                                  stdout=sout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=_clean_env())
            try:
                deadline = time.monotonic() + 30
                while True:
                    sout.seek(0)
                    text = sout.read()
                    if re.search(ready, text):
                        break
                    if sp.poll() is not None:
                        raise ScenarioError(f"{self.backend}: the server exited with status "
                                            f"{sp.returncode} before it was ready: "
                                            f"{_tail(text)}")
                    if time.monotonic() > deadline:
                        raise ScenarioError(f"{self.backend}: the server was not ready in 30 s: "
                                            f"{_tail(text)}")
                    time.sleep(0.05)
                cp = subprocess.run(["timeout", "-k", "5", lim] +
                                    client.argv(client_cmd, client_env or {}),
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                    env=_clean_env())
                if server_exits:
                    try:
                        sp.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                if sp.poll() is None:
                    time.sleep(0.2)
                    sp.send_signal(2)  # SIGINT: timeout passes it on to the program
                    try:
                        sp.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        sp.kill()
                        sp.wait()
                sout.seek(0)
                server_text = sout.read()
                if cp.returncode != 0:
                    raise ScenarioError(f"{self.backend}: the client exited with status "
                                        f"{cp.returncode}{' (timed out)' if cp.returncode == 124 else ''}: "
                                        f"{_tail(cp.stderr or cp.stdout)}")
                return cp.stdout, cp.stderr, server_text
            finally:
                if sp.poll() is None:
                    sp.kill()
                    sp.wait()
                sout.close()

    # -- sockperf

    def sockperf_pingpong(self, tcp: bool, size: int, seconds: float,
                          env: dict[str, str] | None = None) -> dict[str, Any]:
        need_programs("sockperf")
        if size < 14:
            raise ScenarioError(f"sockperf needs messages of at least 14 bytes (size={size})")
        proto = ["--tcp"] if tcp else []
        port = "11411" if tcp else "11410"
        with self.topology(env=env) as (server, client):
            out, err, _ = self.run_pair(
                server, ["sockperf", "sr", *proto, "-i", server.ip, "-p", port],
                client, ["sockperf", "pp", *proto, "-i", server.ip, "-p", port, "-m", str(size),
                         "-t", str(max(1, int(round(seconds)))), "--full-rtt"],
                ready=SERVER_READY_SOCKPERF)
        return parse_sockperf_pingpong(out + "\n" + err)

    # -- iperf3

    def iperf3(self, seconds: float, parallel: int = 1, rtt_us: float = 0, loss: float = 0,
               env: dict[str, str] | None = None) -> dict[str, Any]:
        need_programs("iperf3")
        port = str(5400 + os.getpid() % 500)
        with self.topology(rtt_us=rtt_us, loss=loss, env=env) as (server, client):
            out, err, _ = self.run_pair(
                server, ["iperf3", "-s", "-1", "-B", server.ip, "-p", port, "--forceflush"],
                client, ["iperf3", "-c", server.ip, "-p", port, "-t",
                         str(max(1, int(round(seconds)))), "-P", str(parallel), "-J"],
                ready=SERVER_READY_IPERF3, server_exits=True)
        return parse_iperf3(out)

    # -- connection churn: a small Python client and server under the library

    def churn(self, count: int, request: int, env: dict[str, str] | None = None
              ) -> dict[str, Any]:
        py = "/usr/bin/python3"
        port = "6400"
        # On afxdp/tap the kernel serves; on the cable the server is under the library too.
        with self.topology(env=env) as (server, client):
            out, err, _ = self.run_pair(
                server, [py, "-u", "-c", _CHURN_SERVER, server.ip, port, str(request)],
                client, [py, "-c", _CHURN_CLIENT, server.ip, port, str(count), str(request)],
                ready="churn server ready")
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ScenarioError(f"{self.backend}: the churn client printed no result: "
                                f"{_tail(out + err)}") from None


def _tail(text: str, n: int = 400) -> str:
    t = " ".join((text or "").strip().split())
    return t[-n:] if t else "(no output)"


_CHURN_SERVER = r"""
import socket, sys
ip, port, req = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port)); s.listen(1024)
print("churn server ready", flush=True)
try:
    while True:
        c, _ = s.accept()
        got = 0
        while got < req:
            b = c.recv(req - got)
            if not b: break
            got += len(b); c.sendall(b)
        while c.recv(65536): pass
        c.close()
except KeyboardInterrupt:
    pass
"""

_CHURN_CLIENT = r"""
import json, socket, sys, time
ip, port, n, req = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
times, failed = [], 0
payload = b"x" * req
t0 = time.monotonic_ns()
for i in range(n):
    c = socket.socket()
    a = time.monotonic_ns()
    try:
        c.connect((ip, port))
        times.append(time.monotonic_ns() - a)
        if req:
            c.sendall(payload); got = 0
            while got < req:
                b = c.recv(req - got)
                if not b: raise OSError("eof")
                got += len(b)
    except OSError:
        failed += 1
    c.close()
t1 = time.monotonic_ns()
times.sort()
pct = lambda p: times[min(len(times) - 1, max(0, -(-len(times) * p // 100) - 1))] if times else 0
print(json.dumps({"opened": len(times), "failed": failed, "seconds": (t1 - t0) / 1e9,
                  "connect_p50_ns": pct(50), "connect_p99_ns": pct(99)}))
"""


# ----- Output parsers (the same metric names as the virtual backends)

def parse_sockperf_pingpong(text: str) -> dict[str, float]:
    """sockperf pp --full-rtt: percentiles in usec -> rtt_*_ns; observations; dropped."""
    m: dict[str, float] = {}
    pct = {"50.000": "rtt_p50_ns", "90.000": "rtt_p90_ns", "99.000": "rtt_p99_ns",
           "99.900": "rtt_p999_ns"}
    for p, v in re.findall(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)", text):
        if p in pct:
            m[pct[p]] = round(float(v) * 1000)
    mx = re.search(r"<MAX> observation\s*=\s*([\d.]+)", text)
    mn = re.search(r"<MIN> observation\s*=\s*([\d.]+)", text)
    if mx:
        m["rtt_max_ns"] = round(float(mx.group(1)) * 1000)
    if mn:
        m["rtt_min_ns"] = round(float(mn.group(1)) * 1000)
    avg = re.search(r"avg-(?:rtt|latency)\s*=\s*([\d.]+)", text)
    if avg:
        m["rtt_mean_ns"] = round(float(avg.group(1)) * 1000)
    obs = re.findall(r"Total (\d+) observations", text)
    dur = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec", text)
    if obs:
        m["round_trips"] = int(obs[-1])
        if dur and float(dur.group(1)) > 0:
            m["round_trips_per_s"] = round(int(obs[-1]) / float(dur.group(1)), 1)
    dropped = re.search(r"# dropped messages = (\d+)", text)
    if dropped:
        m["messages_lost"] = int(dropped.group(1))
    if "rtt_p50_ns" not in m:
        raise ScenarioError(f"sockperf printed no latency: {_tail(text)}")
    return m


def parse_iperf3(text: str) -> dict[str, Any]:
    """iperf3 -J of the client: goodput as the receiver counted it, bytes, retransmits, and
    per-stream receiver rates."""
    try:
        d = json.loads(text)
    except ValueError:
        raise ScenarioError(f"iperf3 printed no JSON: {_tail(text)}") from None
    if "error" in d:
        raise ScenarioError(f"iperf3: {d['error']}")
    end = d.get("end", {})
    rx = end.get("sum_received", {})
    tx = end.get("sum_sent", {})
    m: dict[str, float] = {"goodput_bps": round(float(rx.get("bits_per_second", 0.0))),
                           "received_bytes": int(rx.get("bytes", 0))}
    if "retransmits" in tx:
        m["tcp_retransmits"] = int(tx["retransmits"])
    flows = [float(s.get("receiver", {}).get("bits_per_second", 0.0))
             for s in end.get("streams", []) if s.get("receiver")]
    return {"metrics": m, "flows_bps": flows}
