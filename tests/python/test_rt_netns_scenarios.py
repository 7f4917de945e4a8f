"""python.netns_scenarios (label integration): scenarios in real time on the `tap` and `afxdp`
backends: the client under build/lib/libshunt.so drives a TAP interface (or an AF_XDP socket on
a veth) in a network namespace the backend creates, and the kernel in that namespace serves
(sockperf, iperf3). Needs root, /dev/net/tun, sockperf and iperf3; skipped (exit 77) otherwise.
Short runs: one second each."""
import os

import pytest
import realtime_support

from shunt.scenarios import scenario as sc
from shunt.scenarios.result import REAL


def _missing():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return realtime_support.missing(("sockperf", "iperf3", "ip", "timeout"))


if _missing():  # the whole file needs them: CTest sees 77 as skipped
    # os._exit: pytest turns SystemExit (and pytest.exit) during collection into exit status 2,
    # which CTest reports as a failure.
    print(f"SKIPPED: {_missing()}", flush=True)
    os._exit(77)


def _namespaces():
    out = os.popen("ip netns list 2>/dev/null").read()
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


@pytest.mark.parametrize("backend", ["tap", "afxdp"])
def test_udp_pingpong_against_the_kernel(backend):
    before = _namespaces()
    (p,) = sc.get("udp_pingpong").matrix(["size=64", "duration_s=1"], backend)
    r = sc.run_point("udp_pingpong", backend, p)
    assert r.time_kind == REAL and r.backend == backend
    m = r.metrics
    assert m["round_trips"] > 0
    assert 0 < m["rtt_min_ns"] <= m["rtt_p50_ns"] <= m["rtt_p99_ns"] <= m["rtt_max_ns"]
    assert _namespaces() == before  # the backend removed what it made
    print(f"{backend} udp 64 B: rtt p50 {m['rtt_p50_ns']} ns, {m['round_trips']} round trips")


@pytest.mark.parametrize("backend", ["tap", "afxdp"])
def test_tcp_bulk_against_the_kernel(backend):
    before = _namespaces()
    (p,) = sc.get("tcp_bulk").matrix(["duration_s=1", "rtt_us=0", "loss=0"], backend)
    r = sc.run_point("tcp_bulk", backend, p)
    assert r.time_kind == REAL
    assert r.metrics["goodput_bps"] > 1e6 and r.metrics["received_bytes"] > 0
    assert _namespaces() == before
    print(f"{backend} iperf3: {r.metrics['goodput_bps'] / 1e9:.2f} Gbit/s")


def test_delay_the_kernel_cannot_make_is_refused_with_the_reason():
    (p,) = sc.get("tcp_bulk").matrix(["duration_s=1", "rtt_us=100"], "tap")
    try:  # whether this kernel has netem shows by trying, as the backend does
        sc.run_point("tcp_bulk", "tap", p)
    except sc.ScenarioError as e:
        assert "netem" in str(e), e
    else:
        pytest.skip("this kernel has netem: the delay was made")
