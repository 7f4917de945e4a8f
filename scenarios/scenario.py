"""The scenario library: what a scenario is (name, description, typed parameters with defaults,
backends), the registry, `--param k=v` parsing into a parameter matrix, and running one
parameter point into a Result (docs/scenarios.md).

A scenario's function receives a backend context and one parameter point and returns its
metrics (and optional histograms); run_point() wraps that into a Result with commit, machine,
time kind, creation time and wall time filled in.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import pathlib
import platform
import socket
import subprocess
import time
from typing import Any, Callable, Iterable, Sequence

from .result import REAL, VIRTUAL, Result
from .store import now_iso

# Every backend a scenario can name, and whether its time is virtual or real.
VIRTUAL_BACKENDS = ("sim", "ns3")
REAL_BACKENDS = ("cable", "afxdp", "tap")
HIL_BACKENDS = ("rxe", "mlx5")
ALL_BACKENDS = VIRTUAL_BACKENDS + REAL_BACKENDS + HIL_BACKENDS


class ScenarioError(Exception):
    """A scenario, parameter or backend problem, with a one-line message for the user."""


class BackendUnavailable(ScenarioError):
    """The backend cannot run here (missing program, privilege, hardware); says why."""


def time_kind(backend: str) -> str:
    return VIRTUAL if backend in VIRTUAL_BACKENDS else REAL


# ----- Parameters

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a text", bool: "true or false"}


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    type: type                      # int, float, str or bool
    default: Any                    # a value, or a list of values (a sweep by default)
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    only: str | None = None         # VIRTUAL or REAL: the parameter means nothing elsewhere

    def applies(self, backend: str | None) -> bool:
        return backend is None or self.only is None or time_kind(backend) == self.only

    def parse_one(self, text: str) -> Any:
        """One value from text; ScenarioError with a clear message when it does not fit."""
        t = text.strip()
        try:
            if self.type is bool:
                low = t.lower()
                if low in ("1", "true", "yes", "on"):
                    v: Any = True
                elif low in ("0", "false", "no", "off"):
                    v = False
                else:
                    raise ValueError
            elif self.type is int:
                # 64k, 1M, 10G and 1e6 are accepted for counts and sizes.
                v = _parse_int(t)
            elif self.type is float:
                v = float(t)
                if not math.isfinite(v):
                    raise ValueError
            else:
                v = t
        except ValueError:
            raise ScenarioError(f"parameter {self.name}: '{text}' is not "
                                f"{_TYPE_NAMES.get(self.type, self.type.__name__)}") from None
        self.check(v)
        return v

    def check(self, v: Any) -> None:
        if self.choices is not None and v not in self.choices:
            raise ScenarioError(f"parameter {self.name}: '{v}' is not one of "
                                f"{', '.join(map(str, self.choices))}")
        if self.min is not None and v < self.min:
            raise ScenarioError(f"parameter {self.name}: {v} is below the minimum {self.min:g}")
        if self.max is not None and v > self.max:
            raise ScenarioError(f"parameter {self.name}: {v} is above the maximum {self.max:g}")

    def values(self, text: str) -> list[Any]:
        """A comma-separated list sweeps the parameter: 'size=64,256,1024'."""
        parts = text.split(",")
        if any(not p.strip() for p in parts):
            raise ScenarioError(f"parameter {self.name}: empty value in '{text}'")
        return [self.parse_one(p) for p in parts]

    def default_values(self) -> list[Any]:
        return list(self.default) if isinstance(self.default, (list, tuple)) else [self.default]

    def describe_default(self) -> str:
        return ",".join(str(v) for v in self.default_values())


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def _parse_int(t: str) -> int:
    low = t.lower().replace("_", "")
    mult = 1
    if low and low[-1] in _SUFFIXES and low[:-1]:
        mult = _SUFFIXES[low[-1]]
        low = low[:-1]
    if "e" in low or "." in low:
        f = float(low) * mult
        if f != int(f):
            raise ValueError
        return int(f)
    return int(low, 10) * mult


# ----- Scenarios and the registry

# fn(ctx, point) -> {"metrics": {...}, "histograms": {...}} (histograms optional).
ScenarioFn = Callable[[Any, dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass
class Scenario:
    name: str
    description: str
    params: tuple[Param, ...]
    backends: tuple[str, ...]                       # where it runs (besides rxe/mlx5 via hil/)
    virtual: ScenarioFn | None = None                # on sim and ns3
    real: ScenarioFn | None = None                   # on cable, afxdp, tap
    metrics: tuple[str, ...] = ()                    # what it reports (documentation)
    # Defaults that differ per backend, e.g. no RTT sweep where the link has no delay.
    backend_defaults: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ScenarioError(f"scenario {self.name} has no parameter '{name}' (it has: "
                            f"{', '.join(p.name for p in self.params)})")

    def matrix(self, assignments: Sequence[str] = (), backend: str | None = None
               ) -> list[dict[str, Any]]:
        """The parameter points for `--param k=v` assignments (comma lists sweep), in order: the
        cartesian product of every parameter's values, in declaration order."""
        chosen: dict[str, list[Any]] = {}
        for a in assignments:
            if "=" not in a:
                raise ScenarioError(f"--param '{a}': expected NAME=VALUE (e.g. size=64 or "
                                    f"size=64,1024 to sweep)")
            k, v = a.split("=", 1)
            k = k.strip()
            p = self.param(k)
            if not p.applies(backend):
                raise ScenarioError(f"parameter {k} applies to {p.only}-time backends only, not "
                                    f"to {backend}")
            if k in chosen:
                raise ScenarioError(f"parameter {k} is given twice")
            chosen[k] = p.values(v)
        overrides = self.backend_defaults.get(backend or "", {})
        axes = []
        params = [p for p in self.params if p.applies(backend)]
        for p in params:
            if p.name in chosen:
                axes.append(chosen[p.name])
            elif p.name in overrides:
                d = overrides[p.name]
                axes.append(list(d) if isinstance(d, (list, tuple)) else [d])
            else:
                axes.append(p.default_values())
        return [dict(zip((p.name for p in params), combo)) for combo in itertools.product(*axes)]


_REGISTRY: dict[str, Scenario] = {}


def register(s: Scenario) -> Scenario:
    if s.name in _REGISTRY:
        raise ScenarioError(f"scenario {s.name} is registered twice")
    for b in s.backends:
        if b not in ALL_BACKENDS:
            raise ScenarioError(f"scenario {s.name}: unknown backend {b}")
    _REGISTRY[s.name] = s
    return s


def scenarios() -> list[Scenario]:
    from . import library  # noqa: F401  (registers the scenarios)
    return sorted(_REGISTRY.values(), key=lambda s: s.name)


def get(name: str) -> Scenario:
    scenarios()
    if name not in _REGISTRY:
        raise ScenarioError(f"no scenario named '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def check_backend(s: Scenario, backend: str) -> None:
    if backend not in ALL_BACKENDS:
        raise ScenarioError(f"unknown backend '{backend}' (one of {', '.join(ALL_BACKENDS)})")
    if backend in HIL_BACKENDS:
        # rxe and mlx5 run a scenario's real-time implementation where the device is (hil.py).
        if s.real is None or not set(s.backends) & set(REAL_BACKENDS):
            raise ScenarioError(f"scenario {s.name} has no real-time implementation, which "
                                f"backend {backend} runs")
        return
    if backend not in s.backends:
        raise ScenarioError(f"scenario {s.name} does not run on backend {backend} (it runs on: "
                            f"{', '.join(s.backends)})")


# ----- Where and what was measured

def source_dir() -> pathlib.Path | None:
    """The source tree (this file is scenarios/scenario.py in it, reached through the build
    tree's link), or SHUNT_SOURCE_DIR."""
    env = os.environ.get("SHUNT_SOURCE_DIR")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(os.path.realpath(__file__)).parent.parent


def build_dir() -> pathlib.Path | None:
    """The build tree: SHUNT_BUILD_DIR, else the one whose python/shunt/scenarios this is."""
    env = os.environ.get("SHUNT_BUILD_DIR")
    if env:
        return pathlib.Path(env)
    here = pathlib.Path(os.path.abspath(__file__)).parent  # <build>/python/shunt/scenarios
    if here.parent.name == "shunt" and here.parent.parent.name == "python":
        return here.parent.parent.parent
    return None


_COMMIT: str | None = None


def commit() -> str:
    global _COMMIT
    if _COMMIT is None:
        _COMMIT = os.environ.get("SHUNT_COMMIT", "")
        src = source_dir()
        if not _COMMIT and src is not None and (src / ".git").exists():
            try:
                _COMMIT = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"],
                                         capture_output=True, text=True, timeout=10,
                                         check=True).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                _COMMIT = ""
    return _COMMIT


_MACHINE: dict[str, Any] | None = None


def machine() -> dict[str, Any]:
    global _MACHINE
    if _MACHINE is None:
        cpu = platform.processor() or ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _MACHINE = {"cpu": cpu, "cores": os.cpu_count() or 0, "kernel": platform.release(),
                    "host": socket.gethostname(), "python": platform.python_version()}
    return dict(_MACHINE)


# ----- Running a point

def run_point(name: str, backend: str, point: dict[str, Any],
              options: dict[str, Any] | None = None) -> Result:
    """Runs one parameter point of scenario `name` on `backend`: a Result, or ScenarioError."""
    s = get(name)
    check_backend(s, backend)
    from . import backends  # noqa: PLC0415 (imports the compiled module only when needed)
    ctx = backends.context(backend, options or {})
    fn = s.virtual if backend in VIRTUAL_BACKENDS else s.real
    if fn is None:
        raise ScenarioError(f"scenario {name} has no implementation for backend {backend}")
    created = now_iso()
    t0 = time.monotonic()
    out = fn(ctx, dict(point))
    wall = time.monotonic() - t0
    metrics, histograms = out["metrics"], out.get("histograms", {})
    return Result(scenario=name, backend=backend, params=dict(point),
                  metrics={k: float(v) for k, v in metrics.items()},
                  time_kind=time_kind(backend), commit=commit(), machine=machine(),
                  created=created, wall_s=round(wall, 3),
                  histograms={k: [tuple(b) for b in v] for k, v in histograms.items()})


def run_point_json(name: str, backend: str, point: dict[str, Any],
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
    """run_point for a worker process: the Result as JSON, or {"error": message}."""
    try:
        return run_point(name, backend, point, options).to_json()
    except ScenarioError as e:
        return {"error": str(e)}
    except Exception as e:  # noqa: BLE001  (a worker reports, the runner decides)
        return {"error": f"{type(e).__name__}: {e}"}


def metric_table(results: Iterable[Result]) -> tuple[list[str], list[list[str]]]:
    """Rows for printing: the parameters that vary, then every metric."""
    results = list(results)
    if not results:
        return [], []
    pnames = list(results[0].params)
    varying = [p for p in pnames if len({repr(r.params.get(p)) for r in results}) > 1] or pnames
    mnames: list[str] = []
    for r in results:
        for m in r.metrics:
            if m not in mnames:
                mnames.append(m)
    header = varying + mnames
    rows = []
    for r in results:
        rows.append([str(r.params.get(p)) for p in varying] +
                    [format_value(m, r.metrics[m]) if m in r.metrics else "-" for m in mnames])
    return header, rows


def format_value(name: str, v: float) -> str:
    if v != v:
        return "nan"
    if name.endswith("_bps"):
        return f"{v / 1e9:.3f}G" if v >= 1e8 else f"{v / 1e6:.3f}M"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.4g}"
