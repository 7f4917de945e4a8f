"""The command line of the scenarios (`shunt scenario ...`, `shunt dashboard ...`, or
`python3 -m shunt.scenarios ...`; docs/scenarios.md):

  scenario list                          the scenarios, their backends and descriptions
  scenario info NAME                     a scenario's parameters (defaults, ranges) and metrics
  scenario run NAME --backend B [--param k=v ...] [--store PATH | --no-store] [--repeat N]
               [--jobs N | --dask ADDRESS] [--lib LIBSHUNT] [--json]
  scenario gate ...                      the regression gate (gate.main)
  dashboard ...                          the static dashboard (dashboard.main)

A parameter given as a comma list sweeps it (size=64,256,1024); several swept parameters give
their cartesian product. The points of a virtual-time matrix run on a local process pool (--jobs,
default: the machine's cores) or on a Dask cluster (--dask tcp://host:8786); real-time points
run one after another (they would disturb each other).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import multiprocessing
import os
import sys
from typing import Any, Sequence

from . import scenario as sc
from .result import Result
from .store import Store, default_store_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"shunt scenario: {msg}", file=sys.stderr)


def print_table(header: list[str], rows: list[list[str]], out: Any = None) -> None:
    out = out or sys.stdout
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)), file=out)


def cmd_list(args: argparse.Namespace) -> int:
    ss = sc.scenarios()
    if args.json:
        print(json.dumps([{"name": s.name, "description": s.description,
                           "backends": list(s.backends),
                           "params": {p.name: p.default_values() for p in s.params}}
                          for s in ss], indent=1))
        return EXIT_OK
    rows = [[s.name, ",".join(s.backends), s.description] for s in ss]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'SCENARIO'.ljust(w0)}  {'BACKENDS'.ljust(w1)}  DESCRIPTION")
    for r in rows:
        print(f"{r[0].ljust(w0)}  {r[1].ljust(w1)}  {r[2]}")
    print("\nbackends rxe (a soft-RoCE guest) and mlx5 (ConnectX hosts, --inventory) run the "
          "real-time scenarios through hil/. `scenario info NAME` lists a scenario's parameters.")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    s = sc.get(args.name)
    print(f"{s.name}: {s.description}")
    print(f"backends: {', '.join(s.backends)}")
    print("parameters (--param NAME=VALUE; a comma list sweeps):")
    for p in s.params:
        rng = []
        if p.choices is not None:
            rng.append("one of " + "|".join(repr(c) if c == "" else str(c) for c in p.choices))
        if p.min is not None:
            rng.append(f">= {p.min:g}")
        if p.max is not None:
            rng.append(f"<= {p.max:g}")
        t = {int: "int", float: "float", str: "text", bool: "bool"}[p.type]
        default = p.describe_default() or "''"
        print(f"  {p.name:<13} {t:<5} default {default:<16} "
              f"{p.help}{' (' + ', '.join(rng) + ')' if rng else ''}")
    for b, d in s.backend_defaults.items():
        print(f"  on {b}: defaults " + ", ".join(f"{k}={v}" for k, v in d.items()))
    print("metrics: " + ", ".join(s.metrics))
    return EXIT_OK


def _progress(total: int, desc: str, quiet: bool) -> Any:
    class _Null:
        def update(self, n: int = 1) -> None: ...
        def close(self) -> None: ...
        def write(self, s: str) -> None:
            print(s, file=sys.stderr)
    if quiet:
        return _Null()
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        return _Null()
    return tqdm(total=total, desc=desc, unit="point", file=sys.stderr, dynamic_ncols=True)


def _open_store(path: str) -> Store:
    try:
        return Store(path)
    except Exception as e:  # noqa: BLE001  (store.StoreError and OSError: one line each)
        raise sc.ScenarioError(f"results store {path}: {e}") from None


def run_matrix(name: str, backend: str, points: list[dict[str, Any]], repeat: int, jobs: int,
               dask: str | None, options: dict[str, Any], quiet: bool = False
               ) -> tuple[list[Result], list[str]]:
    """Runs every point `repeat` times; (results in point order, error messages)."""
    if backend in sc.HIL_BACKENDS:  # the whole matrix goes where the device is (hil.py)
        from . import hil  # noqa: PLC0415
        return hil.run_matrix(name, backend, points, repeat, options, quiet=quiet)
    tasks = [(i, pt) for i, pt in enumerate(points) for _ in range(repeat)]
    out: list[tuple[int, dict[str, Any]]] = []
    bar = _progress(len(tasks), f"{name} on {backend}", quiet)
    real = backend not in sc.VIRTUAL_BACKENDS
    try:
        if dask:
            try:
                from dask.distributed import Client, as_completed  # noqa: PLC0415
            except ImportError:
                raise sc.ScenarioError("--dask needs dask.distributed (Debian: python3-distributed),"
                                       " which is not importable here") from None
            client = Client(dask)
            try:
                futs = {client.submit(sc.run_point_json, name, backend, pt, options, pure=False): i
                        for i, pt in tasks}
                for f in as_completed(futs):
                    out.append((futs[f], f.result()))
                    bar.update(1)
            finally:
                client.close()
        elif real or jobs <= 1 or len(tasks) == 1:
            for i, pt in tasks:
                out.append((i, sc.run_point_json(name, backend, pt, options)))
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
                futs2 = {ex.submit(sc.run_point_json, name, backend, pt, options): i
                         for i, pt in tasks}
                for f in concurrent.futures.as_completed(futs2):
                    try:
                        d = f.result()
                    except concurrent.futures.process.BrokenProcessPool:
                        d = {"error": "the worker process died (a crash in the simulation)"}
                    out.append((futs2[f], d))
                    bar.update(1)
    finally:
        bar.close()
    out.sort(key=lambda t: t[0])
    results, errors = [], []
    for i, d in out:
        if "error" in d:
            errors.append(f"point {points[i]}: {d['error']}")
        else:
            results.append(Result.from_json(d))
    return results, errors


def cmd_run(args: argparse.Namespace) -> int:
    s = sc.get(args.name)
    sc.check_backend(s, args.backend)
    points = s.matrix(args.param or [], args.backend)
    if args.repeat < 1:
        raise sc.ScenarioError("--repeat must be at least 1")
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if args.backend not in sc.VIRTUAL_BACKENDS and args.dask:
        raise sc.ScenarioError("--dask runs virtual-time backends only (real-time runs need this "
                               "machine's programs and library)")
    options: dict[str, Any] = {}
    if args.lib:
        options["lib"] = os.path.abspath(args.lib)
    if args.inventory:
        options["inventory"] = os.path.abspath(args.inventory)
    if args.backend not in sc.VIRTUAL_BACKENDS:
        # Fail early, once, when the backend cannot run here.
        from . import backends  # noqa: PLC0415
        backends.context(args.backend, options)
    elif not args.dask:
        from . import backends  # noqa: PLC0415
        backends.context(args.backend, options)  # the compiled module is there
    store = None
    store_path = None
    if not args.no_store:
        store_path = args.store or str(default_store_path())
        store = _open_store(store_path)
    results, errors = run_matrix(s.name, args.backend, points, args.repeat, jobs, args.dask,
                                 options, quiet=args.quiet)
    if store is not None:
        try:
            for r in results:
                store.add(r)
        except Exception as e:  # noqa: BLE001
            errors.append(f"storing the results in {store_path}: {e}")
            store_path = None
    if args.json:
        for r in results:
            print(json.dumps(r.to_json()))
    else:
        header, rows = sc.metric_table(results)
        if rows:
            kind = sc.time_kind(args.backend)
            print(f"{s.name} on {args.backend} ({kind} time), {len(results)} point(s), "
                  f"commit {(results[0].commit or '?')[:12]}")
            print_table(header, rows)
    for e in errors:
        _err(e)
    if store is not None and store_path is not None:
        print(f"{len(results)} result(s) stored in {store_path}", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def _hand_over(module: str, argv: Sequence[str]) -> int:
    try:
        m = importlib.import_module(f"{__package__}.{module}")
    except ImportError as e:
        _err(f"scenarios/{module}.py cannot be imported: {e}")
        return EXIT_FAILED
    rc = m.main(list(argv))
    return int(rc or 0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shunt scenario", description=(
        "Run Shunt's scenarios on a backend, print and store their results (docs/scenarios.md)."))
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("list", help="the scenarios and their backends")
    lp.add_argument("--json", action="store_true", help="as JSON")
    ip = sub.add_parser("info", help="a scenario's parameters and metrics")
    ip.add_argument("name")
    rp = sub.add_parser("run", help="run a scenario's parameter points on a backend")
    rp.add_argument("name")
    rp.add_argument("--backend", "-b", required=True, choices=sc.ALL_BACKENDS)
    rp.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                    help="a parameter; a comma list sweeps it (repeatable)")
    rp.add_argument("--store", metavar="PATH", help="results database (default: SHUNT_RESULTS "
                    "or the store's default)")
    rp.add_argument("--no-store", action="store_true", help="do not store the results")
    rp.add_argument("--repeat", type=int, default=1, help="runs of each point (real time: the "
                    "noise band of the gate and dashboard)")
    rp.add_argument("--jobs", "-j", type=int, help="worker processes for a virtual-time matrix "
                    "(default: the number of cores)")
    rp.add_argument("--dask", metavar="ADDRESS", help="run the points on this dask.distributed "
                    "scheduler instead of local processes")
    rp.add_argument("--lib", metavar="LIBSHUNT", help="the preload library (real time; default "
                    "<build>/lib/libshunt.so)")
    rp.add_argument("--inventory", metavar="FILE", help="mlx5: the Ansible inventory of "
                    "ConnectX hosts (default SHUNT_HIL_INVENTORY; docs/hardware.md)")
    rp.add_argument("--json", action="store_true", help="print each Result as a JSON line "
                    "instead of the table")
    rp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sub.add_parser("gate", help="the regression gate (arguments go to the gate)", add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "dashboard":
        return _hand_over("dashboard", argv[1:])
    if argv and argv[0] == "scenario":
        argv = argv[1:]
    if argv and argv[0] == "gate":
        return _hand_over("gate", argv[1:])
    if not argv:
        parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        if args.cmd == "list":
            return cmd_list(args)
        if args.cmd == "info":
            return cmd_info(args)
        return cmd_run(args)
    except sc.BackendUnavailable as e:
        _err(str(e))
        return EXIT_FAILED
    except sc.ScenarioError as e:
        _err(str(e))
        return EXIT_USAGE
