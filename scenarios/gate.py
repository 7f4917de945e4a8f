"""`shunt scenario gate`: the regression gate CI runs (docs/dashboard.md, "The gate").

It runs a fixed set of quick virtual-time scenario points (GATE_POINTS) and compares every
metric with the baseline kept in the repository (scenarios/baseline.json: a JSON list of Result
records). Virtual time is exact, so the comparison is too:

  worse (per the metric's suffix, scenarios/result.py)   REGRESSION, exit 1
  a metric without direction that changed                 CHANGED, exit 1
  a baseline point or metric no longer measured           MISSING, exit 1
  a point that failed to run                              ERROR, exit 1
  better                                                  improved, exit 0: update the baseline
  equal everywhere                                        exit 0

One line per finding: scenario, backend, parameters, metric, baseline -> now, direction.
`--update` writes the current results as the new baseline (commit it with the change that
moved the numbers). A baseline file that cannot be read or is not a list of virtual-time Results
is an error (exit 2) with a message, as is a gate that cannot run at all.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from .result import VIRTUAL, Result, better

EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2

# The gate's points: (scenario, backend, --param assignments; a comma list sweeps). Quick: the
# whole set takes a few seconds of CPU. Changing it changes the baseline (--update).
GATE_POINTS: list[tuple[str, str, list[str]]] = [
    ("udp_pingpong", "sim", ["size=64,1024", "count=200"]),
    ("tcp_pingpong", "sim", ["size=64,4096", "count=200"]),
    ("tcp_bulk", "sim", ["rtt_us=100", "loss=0,0.01", "bytes=1048576"]),
    ("incast", "sim", ["senders=4", "bytes=262144"]),
    ("churn", "sim", ["connections=200"]),
    ("multicast", "sim", ["receivers=4", "count=200"]),
    ("nic_sweep", "sim", ["inline=0,256", "cq_mod_us=0", "doorbell_ns=100", "count=200"]),
    # ns-3 topologies: the adaptor, ns-3's channels and queues (incast queues at the switch there)
    ("udp_pingpong", "ns3", ["size=64", "count=200"]),
    ("tcp_bulk", "ns3", ["rtt_us=100", "loss=0", "bytes=1048576"]),
    ("incast", "ns3", ["senders=4", "bytes=262144"]),
]


class GateError(Exception):
    """The gate cannot judge: a bad baseline file, a gate that cannot run."""


def default_baseline_path() -> Path:
    """scenarios/baseline.json in the source tree (this file's real directory)."""
    return Path(os.path.realpath(__file__)).parent / "baseline.json"


# ----------------------------------------------------------------------------- the baseline

def _check(r: Result, where: str) -> None:
    from .store import StoreError, check_result  # noqa: PLC0415
    try:
        check_result(r)
    except StoreError as e:
        raise GateError(f"{where}: {e}") from None


def parse_results(text: str, where: str) -> list[Result]:
    """Results from a JSON list of Result objects (or JSON lines, one Result each)."""
    try:
        data = json.loads(text)
    except ValueError as e:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:  # JSON lines, as `shunt scenario run --json` prints
            data = [json.loads(ln) for ln in lines] if len(lines) > 1 else None
        except ValueError:
            data = None
        if data is None:
            raise GateError(f"{where}: not JSON ({e})") from None
    if not isinstance(data, list):
        raise GateError(f"{where}: expected a JSON list of results, found {type(data).__name__}")
    out = []
    for i, d in enumerate(data):
        w = f"{where}: entry {i}"
        if not isinstance(d, dict):
            raise GateError(f"{w}: expected an object, found {type(d).__name__}")
        missing = [k for k in ("scenario", "backend", "params", "metrics") if k not in d]
        if missing:
            raise GateError(f"{w}: missing {', '.join(missing)}")
        try:
            r = Result.from_json(d)
        except (TypeError, ValueError) as e:
            raise GateError(f"{w}: not a Result: {e}") from None
        _check(r, w)
        out.append(r)
    return out


def load_baseline(path: str | os.PathLike[str]) -> list[Result]:
    """The baseline's Results; GateError with a message if the file is missing or bad."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateError(f"{p}: no baseline there (create it: shunt scenario gate --update)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{p}: cannot read the baseline: {e}") from None
    results = parse_results(text, str(p))
    seen: set[str] = set()
    for i, r in enumerate(results):
        if r.time_kind != VIRTUAL:
            raise GateError(f"{p}: entry {i} ({r.scenario} on {r.backend}) is a real-time result; "
                            "the gate compares virtual-time results only")
        if r.key() in seen:
            raise GateError(f"{p}: entry {i}: point {_point(r)} is in the baseline twice")
        seen.add(r.key())
    return results


def baseline_json(results: Iterable[Result]) -> str:
    """The baseline file's text: the virtual-time results sorted by point, without what differs
    from machine to machine (machine, wall time) or bulks up diffs (histograms)."""
    out = []
    for r in sorted((r for r in results if r.time_kind == VIRTUAL), key=lambda r: r.key()):
        d = r.to_json()
        d["machine"], d["wall_s"], d["histograms"] = {}, 0.0, {}
        out.append(d)
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


def write_baseline(path: str | os.PathLike[str], results: Iterable[Result]) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(baseline_json(results), encoding="utf-8")
        tmp.replace(p)
    except OSError as e:
        raise GateError(f"{p}: cannot write the baseline: {e}") from None


# ----------------------------------------------------------------------------- comparing

REGRESSION, CHANGED, MISSING, ERROR, IMPROVED, NEW = (
    "REGRESSION", "CHANGED", "MISSING", "ERROR", "improved", "new")
FAILING = (REGRESSION, CHANGED, MISSING, ERROR)


def _point(r: Result) -> str:
    return f"{r.scenario} {r.backend} {json.dumps(r.params, sort_keys=True)}"


def _num(v: float) -> str:
    if v != v:
        return "nan"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


@dataclasses.dataclass
class Finding:
    kind: str          # REGRESSION, CHANGED, MISSING, ERROR, improved, new
    point: str         # "scenario backend {params}"
    metric: str = ""
    baseline: float | None = None
    now: float | None = None
    message: str = ""

    def line(self) -> str:
        head = f"{self.kind} {self.point}" + (f" {self.metric}" if self.metric else "")
        if self.baseline is not None and self.now is not None:
            d = better(self.metric)
            way = {-1: "lower is better", 1: "higher is better", 0: "no direction"}[d]
            pct = (f", {(self.now - self.baseline) / abs(self.baseline) * 100:+.2f}%"
                   if self.baseline and math.isfinite(self.baseline) and math.isfinite(self.now) else "")
            head += f": {_num(self.baseline)} -> {_num(self.now)} ({way}{pct})"
        if self.message:
            head += ": " + self.message if self.baseline is None else "; " + self.message
        return head


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # exact; NaN equals NaN here


def compare(baseline: Sequence[Result], current: Sequence[Result],
            errors: Sequence[str] = ()) -> list[Finding]:
    """The findings, failing ones first: every baseline point and metric against `current`."""
    now = {r.key(): r for r in current if r.time_kind == VIRTUAL}
    base_keys = {r.key() for r in baseline}
    out = [Finding(ERROR, " ".join(e.split())) for e in errors]  # one line each
    for b in baseline:
        c = now.get(b.key())
        if c is None:
            out.append(Finding(MISSING, _point(b), message="in the baseline but not measured now"
                               " (the gate's points or the scenario's parameters changed? --update)"))
            continue
        for m, bv in b.metrics.items():
            if m not in c.metrics:
                out.append(Finding(MISSING, _point(b), m, message="metric no longer reported"))
                continue
            cv = c.metrics[m]
            if _same(bv, cv):
                continue
            d = better(m)
            if d == 0 or bv != bv or cv != cv:
                out.append(Finding(CHANGED, _point(b), m, bv, cv,
                                   "virtual time is exact: a behaviour change (--update if intended)"))
            elif (cv - bv) * d > 0:
                out.append(Finding(IMPROVED, _point(b), m, bv, cv, "update the baseline with --update"))
            else:
                out.append(Finding(REGRESSION, _point(b), m, bv, cv))
        for m in c.metrics:
            if m not in b.metrics:
                out.append(Finding(NEW, _point(c), m, message="not in the baseline (--update adds it)"))
    for k, c in now.items():
        if k not in base_keys:
            out.append(Finding(NEW, _point(c), message="point not in the baseline (--update adds it)"))
    order = {REGRESSION: 0, CHANGED: 1, MISSING: 2, ERROR: 3, IMPROVED: 4, NEW: 5}
    return sorted(out, key=lambda f: order[f.kind])


# ----------------------------------------------------------------------------- running

def gate_points() -> list[tuple[str, str, dict[str, Any]]]:
    """GATE_POINTS expanded into full parameter points (scenario defaults filled in)."""
    from . import scenario as sc  # noqa: PLC0415
    out = []
    for name, backend, assignments in GATE_POINTS:
        try:
            s = sc.get(name)
            sc.check_backend(s, backend)
            out += [(name, backend, p) for p in s.matrix(assignments, backend)]
        except sc.ScenarioError as e:
            raise GateError(f"gate point {name} on {backend} {assignments}: {e}") from None
    return out


def run_gate_points(jobs: int | None = None, quiet: bool = True) -> tuple[list[Result], list[str]]:
    """Runs every gate point through the scenario runner: (results, error lines)."""
    import shunt  # noqa: PLC0415
    from .cli import run_matrix  # noqa: PLC0415  (a process pool over the points)
    try:
        shunt.require_bindings()
    except ImportError as e:
        raise GateError(f"the gate runs virtual-time scenarios and needs the compiled module: {e}") from None
    points = gate_points()
    by_scenario: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name, backend, p in points:
        by_scenario.setdefault((name, backend), []).append(p)
    results: list[Result] = []
    errors: list[str] = []
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    for (name, backend), pts in by_scenario.items():
        rs, es = run_matrix(name, backend, pts, 1, jobs, None, {}, quiet=quiet)
        results += rs
        errors += [f"{name} {backend} {e}" for e in es]
    return results, errors


# ----------------------------------------------------------------------------- the command

def main(argv: Sequence[str] | None = None) -> int:
    """shunt scenario gate [--baseline FILE] [--update] [--store PATH] [--current FILE]"""
    ap = argparse.ArgumentParser(
        prog="shunt scenario gate",
        description="Run the gate's virtual-time scenario points and compare them with the "
                    "baseline: exit 1 on any regression (docs/dashboard.md).")
    ap.add_argument("--baseline", default=None,
                    help=f"the baseline file (default: {default_baseline_path()})")
    ap.add_argument("--update", action="store_true",
                    help="write the current results as the new baseline (exit 0)")
    ap.add_argument("--store", metavar="PATH", help="also store the current results in this "
                    "results store (for the dashboard)")
    ap.add_argument("--current", metavar="FILE", help="compare the results in this JSON file "
                    "(a list, or the JSON lines of `scenario run --json`) instead of running")
    ap.add_argument("--jobs", "-j", type=int, help="worker processes (default: the cores)")
    ap.add_argument("--list", action="store_true", help="print the gate's points and exit")
    ap.add_argument("--verbose", "-v", action="store_true", help="a progress bar while running")
    try:
        args = ap.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:
        return int(e.code or 0) and EXIT_ERROR
    baseline_path = Path(args.baseline) if args.baseline else default_baseline_path()
    try:
        if args.list:
            for name, backend, p in gate_points():
                print(f"{name} {backend} {json.dumps(p, sort_keys=True)}")
            return EXIT_PASS
        try:
            baseline = load_baseline(baseline_path)
        except GateError as e:
            if not args.update:
                raise
            if baseline_path.exists():  # --update replaces a damaged baseline
                print(f"shunt scenario gate: replacing the unreadable baseline: {e}", file=sys.stderr)
            baseline = []
        if args.current:
            try:
                text = Path(args.current).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise GateError(f"{args.current}: cannot read: {e}") from None
            current, errors = parse_results(text, args.current), []
        else:
            current, errors = run_gate_points(args.jobs, quiet=not args.verbose)
        if args.store:
            from .store import Store, StoreError  # noqa: PLC0415
            try:
                with Store(args.store) as st:
                    st.add_many(current)
            except StoreError as e:
                raise GateError(str(e)) from None
    except GateError as e:
        print(f"shunt scenario gate: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    findings = compare(baseline, current, errors)
    for f in findings:
        print(f.line())
    failing = [f for f in findings if f.kind in FAILING]
    points = len({r.key() for r in baseline})
    if args.update:
        if errors:
            print(f"shunt scenario gate: not updating {baseline_path}: {len(errors)} point(s) failed",
                  file=sys.stderr)
            return EXIT_REGRESSION
        try:
            write_baseline(baseline_path, current)
        except GateError as e:
            print(f"shunt scenario gate: error: {e}", file=sys.stderr)
            return EXIT_ERROR
        n = len({r.key() for r in current if r.time_kind == VIRTUAL})
        print(f"gate: baseline {baseline_path} updated: {n} points ({len(findings)} differences)")
        return EXIT_PASS
    if failing:
        print(f"gate: FAILED: {len(failing)} finding(s) over {points} baseline points "
              f"({baseline_path})")
        return EXIT_REGRESSION
    improved = sum(1 for f in findings if f.kind == IMPROVED)
    print(f"gate: passed: {points} baseline points" +
          (f", {improved} metric(s) improved: update the baseline with --update" if improved else
           ", every metric equal"))
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
