"""The regression gate (scenarios/gate.py): exact comparison with the baseline, its messages and
exit codes, bad baseline files; and, where the compiled module is built, the gate itself on the
repository's baseline (what CI runs)."""
import json

import pytest

import shunt
from shunt.scenarios import gate
from shunt.scenarios.result import REAL, Result
from shunt.scenarios.store import Store


def point(scenario="udp_pingpong", size=64, **metrics):
    return Result(scenario, "sim", {"size": size, "count": 200},
                  metrics or {"rtt_p50_ns": 2100, "rtt_p99_ns": 2900, "round_trips_per_s": 4.5e5,
                              "round_trips": 200}, commit="abc")


def write(path, results):
    path.write_text(json.dumps([r.to_json() for r in results]))
    return str(path)


def run(capsys, *argv):
    rc = gate.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def base(tmp_path):
    return write(tmp_path / "baseline.json", [point(size=64), point(size=1024)])


def gate_with_one_metric(tmp_path, capsys, base, size, metric, value):
    """The gate on the baseline's two points with one metric of point `size` set to value."""
    now = [point(size=64), point(size=1024)]
    now[[64, 1024].index(size)].metrics[metric] = value
    return run(capsys, "--baseline", base, "--current", write(tmp_path / "now.json", now))


def test_equal_results_pass(tmp_path, capsys, base):
    now = write(tmp_path / "now.json", [point(size=64), point(size=1024)])
    rc, out, _ = run(capsys, "--baseline", base, "--current", now)
    assert rc == 0
    assert "gate: passed: 2 baseline points, every metric equal" in out


def test_a_worse_latency_fails_with_one_line_naming_everything(tmp_path, capsys, base):
    rc, out, _ = gate_with_one_metric(tmp_path, capsys, base, 1024, "rtt_p99_ns", 3000)
    assert rc == 1
    lines = [ln for ln in out.splitlines() if ln.startswith("REGRESSION")]
    assert lines == ['REGRESSION udp_pingpong sim {"count": 200, "size": 1024} rtt_p99_ns: '
                     '2900 -> 3000 (lower is better, +3.45%)']
    assert "gate: FAILED: 1 finding(s)" in out


def test_a_lower_throughput_is_a_regression_and_even_a_tiny_change_counts(tmp_path, capsys, base):
    # virtual time is exact: no tolerance
    rc, out, _ = gate_with_one_metric(tmp_path, capsys, base, 64, "round_trips_per_s", 4.5e5 - 0.1)
    assert rc == 1
    assert "round_trips_per_s: 450000 -> 449999.9 (higher is better" in out


def test_an_improvement_passes_and_says_to_update_the_baseline(tmp_path, capsys, base):
    rc, out, _ = gate_with_one_metric(tmp_path, capsys, base, 64, "rtt_p50_ns", 2000)
    assert rc == 0
    assert ("improved udp_pingpong sim {\"count\": 200, \"size\": 64} rtt_p50_ns: 2100 -> 2000 "
            "(lower is better, -4.76%); update the baseline with --update") in out
    assert "1 metric(s) improved" in out


def test_a_change_of_a_metric_without_direction_fails(tmp_path, capsys, base):
    rc, out, _ = gate_with_one_metric(tmp_path, capsys, base, 64, "round_trips", 199)
    assert rc == 1
    assert "CHANGED udp_pingpong sim" in out and "round_trips: 200 -> 199 (no direction" in out


def test_a_point_or_metric_no_longer_measured_fails_and_a_new_one_is_noted(tmp_path, capsys, base):
    fewer = point(size=64)
    del fewer.metrics["rtt_p99_ns"]
    fewer.metrics["rtt_p999_ns"] = 3100
    now = write(tmp_path / "now.json", [fewer, point(size=4096)])
    rc, out, _ = run(capsys, "--baseline", base, "--current", now)
    assert rc == 1
    assert 'MISSING udp_pingpong sim {"count": 200, "size": 1024}: in the baseline but not measured' in out
    assert "MISSING udp_pingpong sim {\"count\": 200, \"size\": 64} rtt_p99_ns: metric no longer reported" in out
    assert "new udp_pingpong sim {\"count\": 200, \"size\": 64} rtt_p999_ns" in out
    assert "new udp_pingpong sim {\"count\": 200, \"size\": 4096}: point not in the baseline" in out


def test_update_writes_the_current_results_as_the_baseline(tmp_path, capsys, base):
    changed = point(size=64)
    changed.metrics["rtt_p99_ns"] = 5000
    changed.machine = {"host": "here"}
    changed.histograms = {"rtt": [(1, 2, 3)]}
    now = write(tmp_path / "now.json", [changed, point(size=1024)])
    rc, out, _ = run(capsys, "--baseline", base, "--current", now, "--update")
    assert rc == 0 and "updated: 2 points" in out
    stored = json.loads(open(base).read())
    assert stored[1]["metrics"]["rtt_p99_ns"] == 5000 and stored[1]["machine"] == {}
    assert stored[1]["histograms"] == {}
    rc, out, _ = run(capsys, "--baseline", base, "--current", now)
    assert rc == 0, out


def test_update_creates_a_missing_baseline(tmp_path, capsys):
    now = write(tmp_path / "now.json", [point()])
    rc, _, _ = run(capsys, "--baseline", str(tmp_path / "new.json"), "--current", now, "--update")
    assert rc == 0 and len(gate.load_baseline(tmp_path / "new.json")) == 1


def test_store_keeps_the_gates_results_for_the_dashboard(tmp_path, capsys, base):
    now = write(tmp_path / "now.json", [point(size=64), point(size=1024)])
    rc, _, _ = run(capsys, "--baseline", base, "--current", now, "--store", str(tmp_path / "r.sqlite"))
    assert rc == 0
    with Store(tmp_path / "r.sqlite") as st:
        assert len(st.results()) == 2


@pytest.mark.parametrize("text,message", [
    ("{not json", "not JSON"),
    ('{"scenario": "x"}', "expected a JSON list of results, found dict"),
    ("[1]", "entry 0: expected an object, found int"),
    ('[{"scenario": "x", "backend": "sim", "params": {}}]', "entry 0: missing metrics"),
    ('[{"scenario": "x", "backend": "sim", "params": {}, "metrics": {"a_ns": "slow"}}]',
     "metric 'a_ns' is not a number"),
    ('[{"scenario": "x", "backend": "sim", "params": [], "metrics": {}}]', "params and machine must be objects"),
    ('[{"scenario": "x", "backend": "sim", "params": {}, "metrics": {}, "colour": 1}]', None),
    ('[{"scenario": "x", "backend": "cable", "params": {}, "metrics": {}, "time_kind": "real"}]',
     "real-time result"),
    ('[{"scenario": "x", "backend": "sim", "params": {}, "metrics": {}},'
     ' {"scenario": "x", "backend": "sim", "params": {}, "metrics": {}}]', "in the baseline twice"),
    ('[{"scenario": "x", "backend": "sim", "params": {}, "metrics": {}, "histograms": {"h": [[1]]}}]',
     "not (lo, hi, count)"),
])
def test_a_bad_baseline_file_is_a_clear_error(tmp_path, capsys, text, message):
    path = tmp_path / "baseline.json"
    path.write_text(text)
    now = write(tmp_path / "now.json", [])
    rc, out, err = run(capsys, "--baseline", str(path), "--current", now)
    if message is None:  # unknown fields are ignored (a newer Result record)
        assert rc == 1 and "MISSING x sim {}" in out
        return
    assert rc == 2
    assert err.startswith(f"shunt scenario gate: error: {path}") and message in err, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_missing_or_binary_baseline_is_a_clear_error(tmp_path, capsys):
    rc, _, err = run(capsys, "--baseline", str(tmp_path / "none.json"), "--current", "x")
    assert rc == 2 and "no baseline there (create it: shunt scenario gate --update)" in err
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    rc, _, err = run(capsys, "--baseline", str(tmp_path / "bin.json"), "--current", "x")
    assert rc == 2 and "cannot read the baseline" in err


def test_real_time_results_are_not_compared(tmp_path, capsys, base):
    noisy = point(size=64)
    noisy.time_kind = REAL
    noisy.metrics["rtt_p99_ns"] = 1e9
    now = write(tmp_path / "now.json", [noisy, point(size=64), point(size=1024)])
    rc, out, _ = run(capsys, "--baseline", base, "--current", now)
    assert rc == 0, out


def test_the_gate_points_are_virtual_time_points_of_known_scenarios():
    points = gate.gate_points()
    assert len(points) >= 7
    assert {b for _, b, _ in points} == {"sim", "ns3"}
    assert {n for n, _, _ in points} >= {"udp_pingpong", "tcp_pingpong", "tcp_bulk", "incast",
                                         "churn", "multicast", "nic_sweep"}


def test_the_repository_baseline_is_valid_and_covers_the_gate_points():
    baseline = gate.load_baseline(gate.default_baseline_path())
    keys = {r.key() for r in baseline}
    wanted = {Result(n, b, p, {}).key() for n, b, p in gate.gate_points()}
    assert keys == wanted


@pytest.mark.skipif(shunt.BINDINGS_ERROR is not None, reason="the compiled module is not built")
def test_the_gate_passes_on_this_commit(capsys):
    """What CI runs: every gate point on sim, compared exactly with scenarios/baseline.json."""
    rc, out, err = run(capsys, "--jobs", "2")
    assert rc == 0, out + err


def test_update_replaces_a_damaged_baseline(tmp_path, capsys):
    path = tmp_path / "baseline.json"
    path.write_text("[{broken")
    now = write(tmp_path / "now.json", [point()])
    rc, _, err = run(capsys, "--baseline", str(path), "--current", now, "--update")
    assert rc == 0 and "replacing the unreadable baseline" in err
    assert len(gate.load_baseline(path)) == 1


def test_a_point_that_failed_to_run_is_one_error_line():
    findings = gate.compare([point()], [point()], ["udp_pingpong sim {}: TypeError: bad\n  1. f(x)\n"])
    assert [f.line() for f in findings] == ["ERROR udp_pingpong sim {}: TypeError: bad 1. f(x)"]
