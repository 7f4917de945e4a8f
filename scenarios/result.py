"""One measured point of a scenario: what the runner produces, the store keeps and the
dashboard and the regression gate read (docs/scenarios.md, "Results").

A scenario run yields one Result per parameter point (a sweep over message sizes yields one per
size). Metric names carry their unit as a suffix and say which way is better:

  *_ns, *_us          latency or duration               lower is better
  *_bps, *_per_s      throughput or rate                higher is better
  *_lost, *_drops, *_retransmits, *_errors  counts of bad events  lower is better
  anything else       a plain figure                    no direction (any change is a change)
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

VIRTUAL = "virtual"  # deterministic: the same commit and parameters give the same numbers
REAL = "real"        # measured in real time: noisy, compared within a noise band

_LOWER = ("_ns", "_us", "_lost", "_drops", "_retransmits", "_errors")
_HIGHER = ("_bps", "_per_s")


def better(metric: str) -> int:
    """-1 if lower is better, +1 if higher is better, 0 if the metric has no direction."""
    if metric.endswith(_LOWER):
        return -1
    if metric.endswith(_HIGHER):
        return 1
    return 0


@dataclasses.dataclass
class Result:
    scenario: str                 # e.g. "udp_pingpong"
    backend: str                  # sim | ns3 | cable | afxdp | tap | rxe | mlx5
    params: dict[str, Any]        # the parameter point, JSON-serialisable scalars
    metrics: dict[str, float]     # name -> value, units per the suffix rules above
    time_kind: str = VIRTUAL      # VIRTUAL or REAL
    commit: str = ""              # git commit of the code measured ("" outside a checkout)
    machine: dict[str, Any] = dataclasses.field(default_factory=dict)  # cpu, cores, kernel, host
    created: str = ""             # ISO 8601 UTC time the point was measured
    wall_s: float = 0.0           # real seconds the point took
    # Optional distributions for plots: name -> [(lo_ns, hi_ns, count), ...]
    histograms: dict[str, list[tuple[float, float, int]]] = dataclasses.field(default_factory=dict)

    def key(self) -> str:
        """What identifies a series over commits: scenario, backend and parameters."""
        return f"{self.scenario}|{self.backend}|{json.dumps(self.params, sort_keys=True)}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Result":
        fields = {f.name for f in dataclasses.fields(Result)}
        r = Result(**{k: v for k, v in d.items() if k in fields})
        r.histograms = {k: [tuple(b) for b in v] for k, v in (r.histograms or {}).items()}
        return r
