"""python.cable_scenarios (label integration): scenarios in real time on the `cable` backend, real
sockperf and iperf3 processes under build/lib/libshunt.so on the two ends of a shared-memory
cable; their output becomes the same metric names as the virtual backends'. Skipped (exit 77)
when sockperf, iperf3 or the library is missing.

(Named test_rt_cable_*.py: test_rt_scenarios.py would become CTest python.scenarios, the name of
test_scenarios.py's test.)"""
import os
import subprocess

import pytest
import realtime_support

from shunt.scenarios import scenario as sc
from shunt.scenarios.result import REAL


def _missing():
    return realtime_support.missing(("sockperf", "iperf3", "timeout"))


if _missing():  # the whole file needs them: CTest sees 77 as skipped
    # os._exit: pytest turns SystemExit (and pytest.exit) during collection into exit status 2,
    # which CTest reports as a failure.
    print(f"SKIPPED: {_missing()}", flush=True)
    os._exit(77)


def test_udp_pingpong_on_the_cable_with_real_sockperf():
    (p,) = sc.get("udp_pingpong").matrix(["size=64", "duration_s=1"], "cable")
    r = sc.run_point("udp_pingpong", "cable", p)
    assert r.time_kind == REAL and r.backend == "cable" and r.wall_s >= 1
    m = r.metrics
    assert m["round_trips"] > 0 and m["messages_lost"] == 0
    assert 0 < m["rtt_min_ns"] <= m["rtt_p50_ns"] <= m["rtt_p99_ns"] <= m["rtt_max_ns"]
    print(f"cable udp 64 B: rtt p50 {m['rtt_p50_ns']} ns, p99 {m['rtt_p99_ns']} ns, "
          f"{m['round_trips']} round trips")


def test_tcp_bulk_on_the_cable_with_real_iperf3():
    (p,) = sc.get("tcp_bulk").matrix(["duration_s=1"], "cable")
    assert p["rtt_us"] == 0 and p["loss"] == 0
    r = sc.run_point("tcp_bulk", "cable", p)
    assert r.time_kind == REAL
    assert r.metrics["goodput_bps"] > 1e6 and r.metrics["received_bytes"] > 0
    print(f"cable iperf3: {r.metrics['goodput_bps'] / 1e9:.2f} Gbit/s")


def test_the_cable_refuses_delay_and_loss_it_cannot_make():
    (p,) = sc.get("tcp_bulk").matrix(["duration_s=1", "rtt_us=100", "loss=0"], "cable")
    with pytest.raises(sc.ScenarioError, match="cable has no delay or loss"):
        sc.run_point("tcp_bulk", "cable", p)


def test_the_command_runs_a_cable_point_into_a_store(tmp_path):
    db = tmp_path / "rt.sqlite"
    r = subprocess.run(["/usr/bin/python3", "-m", "shunt.scenarios", "scenario", "run",
                        "tcp_pingpong", "--backend", "cable", "--param", "duration_s=1",
                        "--store", str(db), "--quiet"], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "tcp_pingpong on cable (real time), 1 point(s)" in r.stdout
    assert "rtt_p50_ns" in r.stdout
    from shunt.scenarios.store import Store
    (got,) = list(Store(str(db)).results(scenario="tcp_pingpong", backend="cable"))
    assert got.time_kind == REAL and got.metrics["round_trips"] > 0
