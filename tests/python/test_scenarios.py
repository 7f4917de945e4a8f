"""python.scenarios: the scenario library, every scenario on the `sim` backend (small parameters),
a short one on `ns3`, parameter parsing errors, the output parsers of the real-time backends and
the command line (list, info, run into a temporary store, the printed table)."""
import json
import os
import subprocess
import types

import pytest

import shunt
from shunt.scenarios import backends, cli, library
from shunt.scenarios import scenario as sc
from shunt.scenarios.result import REAL, VIRTUAL, Result

needs_bindings = pytest.mark.skipif(shunt.BINDINGS_ERROR is not None,
                                    reason=f"compiled module missing: {shunt.BINDINGS_ERROR}")
PY = "/usr/bin/python3"


def run_cli(*args, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([PY, "-m", "shunt.scenarios", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


# ----- Parameters

def test_every_scenario_of_the_issue_is_registered():
    names = {s.name for s in sc.scenarios()}
    assert {"udp_pingpong", "tcp_pingpong", "tcp_bulk", "incast", "churn", "multicast",
            "nic_sweep"} <= names
    for s in sc.scenarios():
        assert s.description and s.params and s.metrics
        assert set(s.backends) <= set(sc.ALL_BACKENDS)
        assert "sim" in s.backends and "ns3" in s.backends
        for m in s.metrics:  # names carry a unit suffix or are plain figures, never spaces
            assert m == m.strip() and " " not in m


def test_defaults_and_comma_lists_give_the_cartesian_product_in_order():
    s = sc.get("nic_sweep")
    pts = s.matrix(["inline=0,256", "doorbell_ns=100", "cq_mod_us=0,8"])
    assert [(p["inline"], p["cq_mod_us"]) for p in pts] == [(0, 0), (0, 8), (256, 0), (256, 8)]
    assert all(p["doorbell_ns"] == 100 and p["size"] == 64 for p in pts)
    u = sc.get("udp_pingpong").matrix([])
    assert [p["size"] for p in u] == [64, 256, 1024, 4096]
    assert [p["size"] for p in sc.get("udp_pingpong").matrix([], "cable")] == [64, 1024]
    assert sc.get("udp_pingpong").matrix(["size=1k", "count=2e3"])[0]["size"] == 1000
    assert sc.get("udp_pingpong").matrix(["count=2e3"])[0]["count"] == 2000
    assert sc.get("tcp_bulk").matrix(["loss=0.01", "rtt_us=50"]) == [
        {"rtt_us": 50.0, "loss": 0.01, "bytes": 4 << 20, "duration_s": 2.0, "rate_gbps": 10.0,
         "seed": 1, "profile": ""}]


@pytest.mark.parametrize("arg, message", [
    ("size=abc", "parameter size: 'abc' is not an integer"),
    ("size=2", "parameter size: 2 is below the minimum 8"),
    ("size=70000", "above the maximum"),
    ("size=64,", "empty value"),
    ("sz=64", "has no parameter 'sz' (it has: size, count"),
    ("size", "expected NAME=VALUE"),
    ("rate_gbps=fast", "'fast' is not a number"),
    ("profile=turbo", "one of"),
])
def test_bad_parameters_are_refused_with_a_clear_message(arg, message):
    with pytest.raises(sc.ScenarioError) as e:
        sc.get("udp_pingpong").matrix([arg])
    assert message in str(e.value)


def test_parameters_of_the_other_time_kind_are_left_out_or_refused():
    (p,) = sc.get("tcp_pingpong").matrix([], "cable")
    assert "duration_s" in p and "count" not in p and "seed" not in p
    (p,) = sc.get("tcp_pingpong").matrix([], "sim")
    assert "count" in p and "duration_s" not in p
    with pytest.raises(sc.ScenarioError, match="count applies to virtual-time backends only"):
        sc.get("tcp_pingpong").matrix(["count=5"], "cable")


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(sc.ScenarioError, match="given twice"):
        sc.get("udp_pingpong").matrix(["size=64", "size=128"])


def test_unknown_scenario_and_backends_are_refused():
    with pytest.raises(sc.ScenarioError, match="no scenario named 'nope'"):
        sc.get("nope")
    with pytest.raises(sc.ScenarioError, match="unknown backend 'warp'"):
        sc.check_backend(sc.get("udp_pingpong"), "warp")
    # rxe and mlx5 run the real-time implementations (through hil/: tests/python/test_hil.py).
    sc.check_backend(sc.get("udp_pingpong"), "rxe")
    sc.check_backend(sc.get("tcp_bulk"), "mlx5")
    with pytest.raises(sc.ScenarioError, match="no real-time implementation"):
        sc.check_backend(sc.get("multicast"), "rxe")
    with pytest.raises(sc.ScenarioError, match="does not run on backend cable"):
        sc.check_backend(sc.get("multicast"), "cable")
    assert sc.time_kind("sim") == VIRTUAL and sc.time_kind("cable") == REAL


def test_machine_and_commit_describe_where_a_point_ran():
    m = sc.machine()
    assert m["cores"] >= 1 and m["kernel"] and m["host"] and "cpu" in m
    c = sc.commit()
    src = os.environ.get("SHUNT_SOURCE_DIR")
    if src and os.path.exists(os.path.join(src, ".git")):
        assert len(c) == 40


# ----- Output parsers of the real-time backends

SOCKPERF = """sockperf: [Valid Duration] RunTime=0.542 sec; SentMessages=18267; ReceivedMessages=18267
sockperf: \x1b[2;35m====> avg-rtt=29.621 (std-dev=318.702)\x1b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: \x1b[2;35mTotal 18267 observations\x1b[0m; each percentile contains 182.67 observations
sockperf: ---> <MAX> observation = 12795.514
sockperf: ---> percentile 99.999 = 12795.514
sockperf: ---> percentile 99.900 = 5272.456
sockperf: ---> percentile 99.000 =   17.091
sockperf: ---> percentile 90.000 =   10.306
sockperf: ---> percentile 50.000 =    9.941
sockperf: ---> <MIN> observation =    7.967
"""


def test_sockperf_output_becomes_the_virtual_backends_metric_names():
    m = backends.parse_sockperf_pingpong(SOCKPERF)
    assert m["rtt_p50_ns"] == 9941 and m["rtt_p99_ns"] == 17091 and m["rtt_p999_ns"] == 5272456
    assert m["rtt_min_ns"] == 7967 and m["rtt_max_ns"] == 12795514 and m["rtt_mean_ns"] == 29621
    assert m["round_trips"] == 18267 and m["messages_lost"] == 0
    assert m["round_trips_per_s"] == pytest.approx(18267 / 0.542, rel=1e-3)
    with pytest.raises(sc.ScenarioError, match="no latency"):
        backends.parse_sockperf_pingpong("sockperf: error")


def test_iperf3_json_becomes_goodput_and_retransmits():
    d = {"end": {"sum_sent": {"bytes": 1000, "retransmits": 3},
                 "sum_received": {"bytes": 990, "bits_per_second": 2.5e9},
                 "streams": [{"receiver": {"bits_per_second": 1e9}},
                             {"receiver": {"bits_per_second": 1.5e9}}]}}
    out = backends.parse_iperf3(json.dumps(d))
    assert out["metrics"] == {"goodput_bps": 2500000000, "received_bytes": 990, "tcp_retransmits": 3}
    assert out["flows_bps"] == [1e9, 1.5e9]
    with pytest.raises(sc.ScenarioError, match="unable to connect"):
        backends.parse_iperf3(json.dumps({"error": "unable to connect"}))
    with pytest.raises(sc.ScenarioError, match="no JSON"):
        backends.parse_iperf3("garbage")


def test_breakdown_takes_each_stage_from_the_timelines():
    def t(tx, **kw):
        d = dict(tx=tx, doorbell=None, doorbell_seen=None, wqe_fetched=None, dma_done=None,
                 wire_start=None, wire_end=None, cqe=None)
        d.update(kw)
        return types.SimpleNamespace(**d)
    tl = [t(True, doorbell=0, doorbell_seen=100, wqe_fetched=300, dma_done=500, wire_start=600,
            wire_end=700, cqe=900),
          t(True, doorbell=0, doorbell_seen=100, wqe_fetched=300, dma_done=500, wire_start=600,
            wire_end=700, cqe=None),  # unsignalled: no CQE
          t(False, wire_end=1000, dma_done=1200, cqe=1500)]
    b = library.breakdown(tl)
    assert b["nic_tx_doorbell_to_seen_p50_ns"] == 100
    assert b["nic_tx_doorbell_to_wire_p50_ns"] == 600
    assert b["nic_tx_wire_p50_ns"] == 100
    assert b["nic_tx_wire_to_cqe_p50_ns"] == 200
    assert b["nic_rx_wire_to_cqe_p50_ns"] == 500 and b["nic_rx_dma_to_cqe_p99_ns"] == 300


# ----- The command line without simulation

def test_cli_lists_scenarios_and_their_parameters():
    r = run_cli("scenario", "list")
    assert r.returncode == 0, r.stderr
    for name in ("udp_pingpong", "nic_sweep", "churn", "multicast"):
        assert name in r.stdout
    r = run_cli("scenario", "list", "--json")
    assert {d["name"] for d in json.loads(r.stdout)} >= {"incast", "tcp_bulk"}
    r = run_cli("scenario", "info", "tcp_bulk")
    assert r.returncode == 0 and "rtt_us" in r.stdout and "goodput_bps" in r.stdout


def test_cli_reports_bad_parameters_and_backends_in_one_line():
    r = run_cli("scenario", "run", "udp_pingpong", "--backend", "sim", "--param", "size=huge",
                "--no-store")
    assert r.returncode == 2
    assert "parameter size: 'huge' is not an integer" in r.stderr
    r = run_cli("scenario", "run", "udp_pingpong", "--backend", "mlx5", "--no-store",
                env_extra={"SHUNT_HIL_INVENTORY": ""})
    assert r.returncode == 1 and "--inventory FILE or SHUNT_HIL_INVENTORY" in r.stderr
    r = run_cli("scenario", "run", "nope", "--backend", "sim", "--no-store")
    assert r.returncode == 2 and "no scenario named 'nope'" in r.stderr


def test_cli_run_prints_a_table_and_stores_every_point(tmp_path, monkeypatch, capsys):
    """A stand-in scenario and backend (no simulation): the runner, table and store."""
    calls = []

    def fake(ctx, p):
        calls.append(p)
        return {"metrics": {"rtt_p50_ns": 1000 + p["size"], "goodput_bps": 2.5e9},
                "histograms": {"rtt": [(900, 1100, 5)]}}
    s = sc.Scenario(name="_fake", description="stand-in", backends=("sim",), virtual=fake,
                    params=(sc.Param("size", int, [64, 128], "bytes"),), metrics=("rtt_p50_ns",))
    sc.scenarios()
    monkeypatch.setitem(sc._REGISTRY, "_fake", s)
    monkeypatch.setattr(backends, "context", lambda b, o: types.SimpleNamespace(backend=b))
    db = tmp_path / "r.sqlite"
    rc = cli.main(["scenario", "run", "_fake", "--backend", "sim", "--param", "size=64,128,256",
                   "--store", str(db), "--jobs", "1", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert [c["size"] for c in calls] == [64, 128, 256]
    lines = out.out.splitlines()
    assert "size" in lines[1] and "rtt_p50_ns" in lines[1] and "goodput_bps" in lines[1]
    assert "1064" in out.out and "1256" in out.out and "2.500G" in out.out
    assert "3 result(s) stored" in out.err
    from shunt.scenarios.store import Store
    got = list(Store(str(db)).results(scenario="_fake"))
    assert sorted(r.params["size"] for r in got) == [64, 128, 256]
    assert all(r.time_kind == VIRTUAL and r.machine["cores"] >= 1 for r in got)


def test_dask_without_dask_distributed_is_a_clear_error(monkeypatch, capsys):
    try:
        import dask.distributed  # noqa: F401
        pytest.skip("dask.distributed is installed")
    except ImportError:
        pass
    monkeypatch.setattr(backends, "context", lambda b, o: types.SimpleNamespace(backend=b))
    rc = cli.main(["scenario", "run", "udp_pingpong", "--backend", "sim", "--no-store",
                   "--dask", "tcp://127.0.0.1:1", "--quiet"])
    assert rc == 2 and "python3-distributed" in capsys.readouterr().err


# ----- Every scenario on sim (virtual time, small parameters)

SMALL = {
    "udp_pingpong": ["size=64,1024", "count=200"],
    "tcp_pingpong": ["size=64", "count=200"],
    "tcp_bulk": ["rtt_us=10,200", "loss=0,0.05", "bytes=262144"],
    "incast": ["senders=2,4", "bytes=131072"],
    "churn": ["connections=300", "parallel=1,8"],
    "multicast": ["receivers=1,3", "count=200"],
    "nic_sweep": ["inline=0,256", "cq_mod_us=0,8", "doorbell_ns=100,400", "count=100"],
}


def run_all(name, backend="sim", extra=()):
    s = sc.get(name)
    return [sc.run_point(name, backend, p) for p in s.matrix(SMALL[name] + list(extra), backend)]


@needs_bindings
def test_udp_pingpong_on_sim_grows_with_message_size_and_is_exact():
    rs = run_all("udp_pingpong")
    small, big = rs
    for r in rs:
        assert r.time_kind == VIRTUAL and r.backend == "sim" and r.commit == sc.commit()
        assert r.metrics["round_trips"] == 200 and r.metrics["messages_lost"] == 0
        assert 0 < r.metrics["rtt_min_ns"] <= r.metrics["rtt_p50_ns"] <= r.metrics["rtt_p99_ns"]
        assert r.metrics["rtt_p99_ns"] <= r.metrics["rtt_max_ns"]
        assert r.metrics["rtt_p50_ns"] >= 2000  # two 1 us link crossings at least
        assert sum(b[2] for b in r.histograms["rtt"]) == 200
    assert big.metrics["rtt_p50_ns"] > small.metrics["rtt_p50_ns"]
    again = sc.run_point("udp_pingpong", "sim", small.params)
    assert again.metrics == small.metrics  # virtual time: the same numbers every time


@needs_bindings
def test_tcp_pingpong_on_sim():
    (r,) = run_all("tcp_pingpong")
    assert r.metrics["round_trips"] == 200 and r.metrics["rtt_p50_ns"] >= 2000


@needs_bindings
def test_tcp_bulk_on_sim_slows_with_rtt_and_loss():
    rs = {(r.params["rtt_us"], r.params["loss"]): r for r in run_all("tcp_bulk")}
    for r in rs.values():
        assert r.metrics["received_bytes"] == 256 << 10 and r.metrics["goodput_bps"] > 0
    assert rs[(10, 0)].metrics["goodput_bps"] > rs[(200, 0)].metrics["goodput_bps"]
    assert rs[(10, 0)].metrics["tcp_retransmits"] == 0
    assert rs[(200, 0.05)].metrics["network_drops"] > 0
    assert rs[(200, 0.05)].metrics["goodput_bps"] < rs[(200, 0)].metrics["goodput_bps"]


@needs_bindings
def test_incast_on_sim_reports_every_flow():
    for r in run_all("incast"):
        n = r.params["senders"]
        assert r.metrics["received_bytes"] == n * (128 << 10)
        assert 0 < r.metrics["jain_fairness"] <= 1
        assert r.metrics["flow_min_goodput_bps"] <= r.metrics["flow_max_goodput_bps"]


@needs_bindings
def test_incast_on_sim_queues_at_the_switch_drops_and_keeps_to_the_link_rate():
    (point,) = sc.get("incast").matrix(["senders=8", "bytes=131072", "queue=16"], "sim")
    r = sc.run_point("incast", "sim", point)
    assert r.metrics["received_bytes"] == 8 * (128 << 10)
    assert r.metrics["network_drops"] > 0 and r.metrics["tcp_retransmits"] > 0
    assert r.metrics["goodput_bps"] <= 10e9  # rate_gbps=10: one downlink into the receiver
    assert r.metrics["flow_max_goodput_bps"] <= 10e9


@needs_bindings
def test_churn_on_sim_opens_and_closes_every_connection():
    for r in run_all("churn"):
        assert r.metrics["opened"] == 300 and r.metrics["closed"] == 300
        assert r.metrics["connect_errors"] == 0 and r.metrics["connections_per_s"] > 0


@needs_bindings
def test_multicast_on_sim_reaches_every_receiver():
    for r in run_all("multicast"):
        n = r.params["receivers"]
        assert r.metrics["sent"] == 200 and r.metrics["received"] == 200 * n
        assert r.metrics["datagrams_lost"] == 0 and r.metrics["duplicate_errors"] == 0
        assert r.metrics["one_way_p50_ns"] >= 1000


@needs_bindings
def test_nic_sweep_on_sim_shows_the_parameters_in_the_breakdown():
    rs = {(r.params["inline"], r.params["cq_mod_us"], r.params["doorbell_ns"]): r
          for r in run_all("nic_sweep")}
    assert len(rs) == 8
    for r in rs.values():
        for stage in ("tx_doorbell_to_wire", "tx_wire", "rx_wire_to_cqe"):
            assert r.metrics[f"nic_{stage}_p50_ns"] > 0
    # A dearer doorbell shows on the send side; a moderation period on the receive side.
    assert (rs[(0, 0, 400)].metrics["nic_tx_doorbell_to_wire_p50_ns"] >
            rs[(0, 0, 100)].metrics["nic_tx_doorbell_to_wire_p50_ns"])
    assert rs[(0, 8, 100)].metrics["rtt_p50_ns"] >= rs[(0, 0, 100)].metrics["rtt_p50_ns"]
    # Inline sends skip the payload DMA read.
    assert (rs[(256, 0, 100)].metrics["nic_tx_doorbell_to_wire_p50_ns"] <=
            rs[(0, 0, 100)].metrics["nic_tx_doorbell_to_wire_p50_ns"])


@needs_bindings
def test_a_short_udp_pingpong_on_ns3():
    (r,) = [sc.run_point("udp_pingpong", "ns3", p)
            for p in sc.get("udp_pingpong").matrix(["size=64", "count=100"])]
    assert r.backend == "ns3" and r.time_kind == VIRTUAL
    assert r.metrics["round_trips"] == 100 and r.metrics["rtt_p50_ns"] >= 2000


@needs_bindings
def test_cli_runs_a_sim_matrix_on_the_process_pool_into_a_store(tmp_path):
    db = tmp_path / "results.sqlite"
    r = run_cli("scenario", "run", "udp_pingpong", "--backend", "sim", "--param", "size=64,512",
                "--param", "count=100", "--store", str(db), "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "udp_pingpong on sim (virtual time), 2 point(s)" in r.stdout
    assert "rtt_p50_ns" in r.stdout and "rtt_p99_ns" in r.stdout
    assert "2 result(s) stored" in r.stderr
    from shunt.scenarios.store import Store
    got = list(Store(str(db)).results(scenario="udp_pingpong", backend="sim"))
    assert sorted(x.params["size"] for x in got) == [64, 512]
    r2 = run_cli("scenario", "run", "udp_pingpong", "--backend", "sim", "--param", "size=64",
                 "--param", "count=100", "--no-store", "--json", "--quiet")
    d = json.loads(r2.stdout.splitlines()[0])
    stored = [x for x in got if x.params["size"] == 64][0]
    assert Result.from_json(d).metrics == stored.metrics


def test_shunt_scenario_runs_the_package_from_the_build_tree(tmp_path):
    build = os.environ.get("SHUNT_BUILD_DIR")
    exe = os.path.join(build or "", "bin", "shunt")
    if not build or not os.path.exists(exe):
        pytest.skip("build/bin/shunt is not built")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([exe, "scenario", "list"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "udp_pingpong" in r.stdout
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert "scenario" in r.stdout and "dashboard" in r.stdout
