"""The scenarios (docs/scenarios.md lists each with its parameters and metrics).

Each scenario has a virtual-time implementation (sim, ns3: the compiled module's workloads) and,
where a standard program measures the same thing, a real-time one (cable, afxdp, tap: sockperf,
iperf3, a small Python program under the preload library). Both report the same metric names.
"""
from __future__ import annotations

from typing import Any

from .result import REAL as REAL_TIME, VIRTUAL
from .scenario import Param, Scenario, ScenarioError, register

SIM_NS3 = ("sim", "ns3")
REAL = ("cable", "afxdp", "tap")
HIL = ("rxe", "mlx5")  # run the real-time implementations where the device is (hil.py)

# Parameters several scenarios share.
SEED = Param("seed", int, 1, "seed of the stacks and the link (virtual time)", min=0,
             only=VIRTUAL)
RATE = Param("rate_gbps", float, 10.0, "link rate, Gbit/s (virtual time)", min=0.001, max=800,
             only=VIRTUAL)
DELAY = Param("delay_ns", int, 1000, "one-way link delay, ns (virtual time)", min=0, max=10**9,
              only=VIRTUAL)
COUNT = Param("count", int, 1000, "round trips measured (virtual time)", min=1, max=10**7,
              only=VIRTUAL)
SECONDS = Param("duration_s", float, 2.0, "seconds each real-time run lasts (real time)",
                min=1, max=3600, only=REAL_TIME)
PROFILE = Param("profile", str, "", "SHUNT_PROFILE of the stacks ('' = defaults, latency, "
                "throughput)", choices=("", "latency", "throughput"))


def _cfg(ctx: Any, p: dict[str, Any], **vars: Any) -> Any:
    return ctx.config(profile=p.get("profile") or None, **vars)


def _env(p: dict[str, Any], **vars: Any) -> dict[str, str]:
    """SHUNT_* environment of the real-time programs for the same settings."""
    env = {}
    if p.get("profile"):
        env["SHUNT_PROFILE"] = p["profile"]
    for k, v in vars.items():
        if v is not None:
            env["SHUNT_" + k.upper()] = str(v)
    return env


def _stats(prefix: str, s: Any) -> dict[str, float]:
    if s.count == 0:
        return {}
    return {f"{prefix}_p50_ns": s.p50, f"{prefix}_p90_ns": s.p90, f"{prefix}_p99_ns": s.p99,
            f"{prefix}_p999_ns": s.p999, f"{prefix}_min_ns": s.min, f"{prefix}_max_ns": s.max,
            f"{prefix}_mean_ns": round(s.mean, 1)}


def _pingpong_metrics(r: Any) -> dict[str, Any]:
    if not r.ok():
        raise ScenarioError(f"ping-pong failed: {r.error}")
    m = _stats("rtt", r.latency)
    m["round_trips"] = r.completed
    m["messages_lost"] = r.lost
    span = r.finished - r.started
    if span > 0:
        m["round_trips_per_s"] = round(r.completed * 1e9 / span, 1)
    return {"metrics": m, "histograms": {"rtt": r.latency.histogram(40)}}


# ----- UDP and TCP ping-pong

def _pingpong_virtual(tcp: bool):
    def run(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
        with ctx.network(rate_bps=p["rate_gbps"] * 1e9, delay_ns=p["delay_ns"], seed=p["seed"],
                         config=_cfg(ctx, p)) as net:
            f = net.tcp_pingpong if tcp else net.udp_pingpong
            return _pingpong_metrics(f(payload=p["size"], count=p["count"]))
    return run


def _pingpong_real(tcp: bool):
    def run(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
        m = ctx.sockperf_pingpong(tcp, p["size"], p["duration_s"], env=_env(p))
        return {"metrics": _ordered(m, PINGPONG_METRICS)}
    return run


def _ordered(m: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {**{k: m[k] for k in names if k in m}, **{k: v for k, v in m.items() if k not in names}}


PINGPONG_METRICS = ("rtt_p50_ns", "rtt_p90_ns", "rtt_p99_ns", "rtt_p999_ns", "rtt_min_ns",
                    "rtt_max_ns", "rtt_mean_ns", "round_trips", "round_trips_per_s",
                    "messages_lost")

register(Scenario(
    name="udp_pingpong",
    description="UDP ping-pong round-trip time against message size",
    params=(Param("size", int, [64, 256, 1024, 4096], "UDP payload bytes (sockperf: >= 14)",
                  min=8, max=65000),
            COUNT, SECONDS, RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3 + REAL,
    virtual=_pingpong_virtual(False), real=_pingpong_real(False), metrics=PINGPONG_METRICS,
    backend_defaults={b: {"size": [64, 1024]} for b in REAL + HIL}))

register(Scenario(
    name="tcp_pingpong",
    description="TCP ping-pong round-trip time (TCP_NODELAY, one connection)",
    params=(Param("size", int, 64, "request and response bytes (sockperf: >= 14)", min=1,
                  max=1 << 20),
            COUNT, SECONDS, RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3 + REAL,
    virtual=_pingpong_virtual(True), real=_pingpong_real(True), metrics=PINGPONG_METRICS))


# ----- TCP bulk: throughput against RTT and loss

def _bulk_metrics(r: Any, net: Any) -> dict[str, Any]:
    if not r.ok():
        raise ScenarioError(f"bulk transfer failed: {r.error or 'not every flow completed'}")
    m: dict[str, Any] = {"goodput_bps": round(r.goodput_bps), "received_bytes": r.bytes,
                         "tcp_retransmits": r.retransmits, "network_drops": net.network_drops}
    if r.finished is not None:
        m["completion_ns"] = r.finished - r.started
    flows = [f.goodput_bps for f in r.flows]
    if len(flows) > 1:
        m.update(_fairness(flows))
    return {"metrics": m}


def _fairness(flows: list[float]) -> dict[str, float]:
    s = sum(flows)
    sq = sum(f * f for f in flows)
    return {"flow_min_goodput_bps": round(min(flows)), "flow_max_goodput_bps": round(max(flows)),
            "jain_fairness": round(s * s / (len(flows) * sq), 4) if sq else 0.0}


def _bulk_virtual(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    delay = int(p["rtt_us"] * 1000 / ctx.rtt_factor(ctx.backend, 2))
    with ctx.network(rate_bps=p["rate_gbps"] * 1e9, delay_ns=delay, loss=p["loss"],
                     seed=p["seed"], config=_cfg(ctx, p)) as net:
        r = net.tcp_bulk(flows=[(0, 1, p["bytes"])])
        return _bulk_metrics(r, net)


def _bulk_real(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    out = ctx.iperf3(p["duration_s"], 1, rtt_us=p["rtt_us"], loss=p["loss"], env=_env(p))
    return {"metrics": out["metrics"]}


register(Scenario(
    name="tcp_bulk",
    description="one TCP bulk flow: goodput against round-trip time and loss",
    params=(Param("rtt_us", float, [10, 100, 1000], "round-trip time of the path, us (cable: 0)",
                  min=0, max=10**6),
            Param("loss", float, [0.0, 0.001], "probability a frame is lost (cable: 0)", min=0,
                  max=0.5),
            Param("bytes", int, 4 << 20, "bytes sent (virtual time)", min=1, max=1 << 34,
                  only=VIRTUAL),
            SECONDS, RATE, SEED, PROFILE),
    backends=SIM_NS3 + REAL,
    virtual=_bulk_virtual, real=_bulk_real,
    metrics=("goodput_bps", "received_bytes", "tcp_retransmits", "network_drops", "completion_ns"),
    backend_defaults={"cable": {"rtt_us": 0, "loss": 0.0},
                      "afxdp": {"rtt_us": [0, 1000], "loss": 0.0},
                      "tap": {"rtt_us": [0, 1000], "loss": 0.0},
                      **{b: {"rtt_us": 0, "loss": 0.0} for b in HIL}}))


# ----- Incast: N senders to one receiver

def _incast_virtual(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    # Both backends queue at a switch: sim's link is one (queue > 0), ns3's is a star.
    n = p["senders"]
    with ctx.network(hosts=n + 1, rate_bps=p["rate_gbps"] * 1e9, delay_ns=p["delay_ns"],
                     seed=p["seed"], config=_cfg(ctx, p), queue=p["queue"]) as net:
        r = net.tcp_bulk(flows=[(i + 1, 0, p["bytes"]) for i in range(n)])
        return _bulk_metrics(r, net)


def _incast_real(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    # One client host on a point-to-point link: N parallel streams to one server.
    out = ctx.iperf3(p["duration_s"], p["senders"], env=_env(p))
    m = dict(out["metrics"])
    if len(out["flows_bps"]) > 1:
        m.update(_fairness(out["flows_bps"]))
    return {"metrics": m}


register(Scenario(
    name="incast",
    description="incast: N TCP senders to one receiver at once (real time: N parallel iperf3 "
                "streams from one client)",
    params=(Param("senders", int, [2, 4, 8], "sending hosts (flows)", min=1, max=64),
            Param("bytes", int, 1 << 20, "bytes per sender (virtual time)", min=1, max=1 << 32,
                  only=VIRTUAL),
            Param("queue", int, 100, "switch queue at the receiver's port, packets (virtual "
                  "time: sim and ns3)", min=1, max=100000, only=VIRTUAL),
            SECONDS, RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3 + REAL,
    virtual=_incast_virtual, real=_incast_real,
    metrics=("goodput_bps", "flow_min_goodput_bps", "flow_max_goodput_bps", "jain_fairness",
             "tcp_retransmits", "network_drops", "completion_ns", "received_bytes")))


# ----- Connection churn

def _churn_virtual(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.network(rate_bps=p["rate_gbps"] * 1e9, delay_ns=p["delay_ns"], seed=p["seed"],
                     config=_cfg(ctx, p)) as net:
        r = net.churn(count=p["connections"], parallel=p["parallel"], request=p["request"])
        if r.error:
            raise ScenarioError(f"churn failed: {r.error}")
        m: dict[str, Any] = {"connections_per_s": round(r.per_virtual_second, 1),
                             "opened": r.opened, "closed": r.closed, "connect_errors": r.failed}
        m.update({k: v for k, v in _stats("connect", r.connect_times).items()
                  if k in ("connect_p50_ns", "connect_p99_ns", "connect_max_ns")})
        m["duration_ns"] = r.finished - r.started
        return {"metrics": m}


def _churn_real(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    if p["parallel"] != 1:
        raise ScenarioError("real-time churn opens one connection at a time (parallel=1)")
    d = ctx.churn(p["connections"], p["request"], env=_env(p))
    secs = d["seconds"] or 1e-9
    return {"metrics": {"connections_per_s": round(d["opened"] / secs, 1),
                        "opened": d["opened"], "closed": d["opened"],
                        "connect_errors": d["failed"], "connect_p50_ns": d["connect_p50_ns"],
                        "connect_p99_ns": d["connect_p99_ns"],
                        "duration_ns": round(secs * 1e9)}}


register(Scenario(
    name="churn",
    description="connection churn: open, (exchange,) close TCP connections one after another",
    params=(Param("connections", int, 10000, "connections opened and closed", min=1,
                  max=10**6),
            Param("parallel", int, 1, "connections open at once", min=1, max=10000),
            Param("request", int, 0, "bytes echoed per connection (0: none)", min=0,
                  max=1 << 20),
            RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3 + REAL,
    virtual=_churn_virtual, real=_churn_real,
    metrics=("connections_per_s", "opened", "closed", "connect_errors", "connect_p50_ns",
             "connect_p99_ns", "connect_max_ns", "duration_ns"),
    backend_defaults={**{b: {"connections": 1000} for b in REAL + HIL},
                      "rxe": {"connections": 200}}))


# ----- Multicast fan-out

def _multicast_virtual(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    n = p["receivers"]
    with ctx.network(hosts=n + 1, rate_bps=p["rate_gbps"] * 1e9, delay_ns=p["delay_ns"],
                     seed=p["seed"], config=_cfg(ctx, p)) as net:
        r = net.multicast_fanout(sender=0, receivers=list(range(1, n + 1)), payload=p["size"],
                                 count=p["count"], interval_ns=p["interval_ns"])
        if not r.ok():
            raise ScenarioError(f"multicast fan-out failed: {r.error}")
        samples = [x for s in r.latency for x in s.samples]
        all_lat = ctx.shunt.LatencyStats(samples)
        m: dict[str, Any] = {"sent": r.sent, "received": sum(r.received),
                             "datagrams_lost": r.sent * n - sum(r.received),
                             "receiver_min_received": min(r.received) if r.received else 0,
                             "duplicate_errors": r.duplicates, "corrupt_errors": r.corrupt}
        m.update({k: v for k, v in _stats("one_way", all_lat).items()})
        worst = [s.p99 for s in r.latency if s.count]
        if worst:
            m["receiver_worst_p99_ns"] = max(worst)
        return {"metrics": m, "histograms": {"one_way": all_lat.histogram(40)} if samples else {}}


register(Scenario(
    name="multicast",
    description="UDP multicast fan-out from one sender to N receivers (IGMP joins through the "
                "stack); one-way latency",
    params=(Param("receivers", int, [1, 4, 8], "receiving hosts", min=1, max=64),
            Param("size", int, 64, "payload bytes", min=16, max=8000),
            Param("count", int, 1000, "datagrams sent", min=1, max=10**7),
            Param("interval_ns", int, 10000, "time between sends, ns", min=0, max=10**9),
            RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3,
    virtual=_multicast_virtual,
    metrics=("one_way_p50_ns", "one_way_p99_ns", "one_way_max_ns", "receiver_worst_p99_ns",
             "sent", "received", "datagrams_lost", "receiver_min_received",
             "duplicate_errors", "corrupt_errors")))


# ----- NIC parameter sweep with the latency breakdown

# Stages of a frame through the simulated NIC, from PacketTimeline fields: (name, from, to, tx).
STAGES = (
    ("tx_doorbell_to_seen", "doorbell", "doorbell_seen", True),    # MMIO write over PCIe
    ("tx_seen_to_fetch", "doorbell_seen", "wqe_fetched", True),    # decode + WQE fetch
    ("tx_fetch_to_dma", "wqe_fetched", "dma_done", True),          # payload DMA read
    ("tx_dma_to_wire", "dma_done", "wire_start", True),            # pipeline to the MAC
    ("tx_wire", "wire_start", "wire_end", True),                   # serialization
    ("tx_doorbell_to_wire", "doorbell", "wire_start", True),       # all of the send side
    ("tx_wire_to_cqe", "wire_end", "cqe", True),                   # send completion
    ("rx_wire_to_dma", "wire_end", "dma_done", False),             # receive DMA write
    ("rx_dma_to_cqe", "dma_done", "cqe", False),                   # CQE written, moderation
    ("rx_wire_to_cqe", "wire_end", "cqe", False),                  # all of the receive side
)


def breakdown(timelines: list[Any]) -> dict[str, float]:
    """Median and p99 of each stage over the frames whose two ends are known."""
    out: dict[str, float] = {}
    for name, a, b, tx in STAGES:
        d = sorted(getattr(t, b) - getattr(t, a) for t in timelines
                   if t.tx == tx and getattr(t, a) is not None and getattr(t, b) is not None)
        if d:
            out[f"nic_{name}_p50_ns"] = d[(len(d) - 1) // 2]
            out[f"nic_{name}_p99_ns"] = d[min(len(d) - 1, -(-len(d) * 99 // 100) - 1)]
    return out


def _nic_vars(p: dict[str, Any]) -> dict[str, Any]:
    return {"mlx5_inline": p["inline"], "nic_cq_mod_count": p["cq_mod_count"],
            "nic_cq_mod_us": p["cq_mod_us"], "nic_doorbell_ns": p["doorbell_ns"]}


def _nic_virtual(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.network(rate_bps=p["rate_gbps"] * 1e9, delay_ns=p["delay_ns"], seed=p["seed"],
                     config=_cfg(ctx, p, **_nic_vars(p))) as net:
        out = _pingpong_metrics(net.udp_pingpong(payload=p["size"], count=p["count"]))
        tl = list(net.timelines(0)) + list(net.timelines(1))
        out["metrics"].update(breakdown(tl))
        return out


def _nic_real(ctx: Any, p: dict[str, Any]) -> dict[str, Any]:
    if ctx.backend != "cable":
        raise ScenarioError("nic_sweep in real time runs on the cable (the simulated NIC)")
    m = ctx.sockperf_pingpong(False, p["size"], p["duration_s"], env=_env(p, **_nic_vars(p)))
    return {"metrics": _ordered(m, PINGPONG_METRICS)}


register(Scenario(
    name="nic_sweep",
    description="simulated NIC parameters (inline threshold, completion moderation, doorbell "
                "cost) against UDP ping-pong latency, with the per-stage NIC breakdown",
    params=(Param("inline", int, [0, 256], "SHUNT_MLX5_INLINE: bytes copied into the WQE",
                  min=0, max=880),
            Param("cq_mod_count", int, 1, "SHUNT_NIC_CQ_MOD_COUNT: CQEs per completion event",
                  min=1, max=65535),
            Param("cq_mod_us", int, [0, 8], "SHUNT_NIC_CQ_MOD_US: moderation period, us",
                  min=0, max=4095),
            Param("doorbell_ns", int, [100, 400], "SHUNT_NIC_DOORBELL_NS: doorbell decode, ns",
                  min=0, max=10**6),
            Param("size", int, 64, "UDP payload bytes", min=14, max=8000),
            COUNT, SECONDS, RATE, DELAY, SEED, PROFILE),
    backends=SIM_NS3 + ("cable",),
    virtual=_nic_virtual, real=_nic_real,
    metrics=PINGPONG_METRICS + tuple(f"nic_{s[0]}_p50_ns" for s in STAGES) +
    tuple(f"nic_{s[0]}_p99_ns" for s in STAGES)))
