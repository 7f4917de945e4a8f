"""The results store: every measured scenario point in one SQLite file (docs/results.md).

    store = Store(default_store_path())      # or Store("results.sqlite")
    store.add(result)                         # a scenarios.result.Result
    for r in store.results(scenario="udp_pingpong", backend="sim"): ...
    store.close()

Plain Python (stdlib sqlite3): it works without the compiled module. A file that is not a
Shunt results store (corrupt, another program's SQLite database, a newer schema) raises
StoreError with a message that says so; nothing in it is changed.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

from .result import REAL, VIRTUAL, Result

# PRAGMA application_id marks the file as ours ("SHNT"), so another program's database is
# refused instead of being written into; PRAGMA user_version is the schema's version.
APPLICATION_ID = 0x53484E54
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE points (
  id        INTEGER PRIMARY KEY,
  commit_id TEXT NOT NULL,          -- git commit measured ('' outside a checkout)
  backend   TEXT NOT NULL,          -- sim | ns3 | cable | afxdp | tap | rxe | mlx5
  scenario  TEXT NOT NULL,
  params    TEXT NOT NULL,          -- JSON object, keys sorted: the parameter point
  machine   TEXT NOT NULL,          -- JSON object: cpu, cores, kernel, host
  time_kind TEXT NOT NULL CHECK (time_kind IN ('virtual', 'real')),
  created   TEXT NOT NULL,          -- ISO 8601 UTC, when the point was measured
  wall_s    REAL NOT NULL           -- real seconds the point took
);
CREATE INDEX points_series ON points (scenario, backend, params);
CREATE INDEX points_created ON points (created);
CREATE TABLE metrics (
  point_id INTEGER NOT NULL REFERENCES points (id) ON DELETE CASCADE,
  name     TEXT NOT NULL,           -- unit suffix per scenarios/result.py (_ns, _bps, ...)
  value    REAL,                    -- NULL stands for NaN
  PRIMARY KEY (point_id, name)
);
CREATE TABLE histogram_bins (
  point_id INTEGER NOT NULL REFERENCES points (id) ON DELETE CASCADE,
  name     TEXT NOT NULL,           -- e.g. "rtt": the distribution's name
  idx      INTEGER NOT NULL,        -- bin order
  lo       REAL NOT NULL,           -- bin bounds (ns) and count
  hi       REAL NOT NULL,
  count    INTEGER NOT NULL,
  PRIMARY KEY (point_id, name, idx)
);
"""
_TABLES = {"points", "metrics", "histogram_bins"}


class StoreError(Exception):
    """The store cannot be used: not a results store, a newer schema, a bad record."""


def default_store_path() -> Path:
    """$SHUNT_RESULTS if set, else $XDG_DATA_HOME/shunt/results.sqlite, else
    ~/.local/share/shunt/results.sqlite (the commands' --store overrides it)."""
    explicit = os.environ.get("SHUNT_RESULTS")
    if explicit:
        return Path(explicit)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "shunt" / "results.sqlite"


def now_iso() -> str:
    """The current time as the store writes it: ISO 8601 UTC with microseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def check_result(r: Any) -> Result:
    """Raises StoreError unless r is a Result whose fields have the types the store keeps."""
    if not isinstance(r, Result):
        raise StoreError(f"not a Result: {type(r).__name__}")
    where = f"result {r.scenario!r}/{r.backend!r}"
    for field in ("scenario", "backend"):
        v = getattr(r, field)
        if not isinstance(v, str) or not v:
            raise StoreError(f"{where}: {field} must be a non-empty string")
    for field in ("commit", "created"):
        if not isinstance(getattr(r, field), str):
            raise StoreError(f"{where}: {field} must be a string")
    if r.time_kind not in (VIRTUAL, REAL):
        raise StoreError(f"{where}: time_kind must be {VIRTUAL!r} or {REAL!r}, not {r.time_kind!r}")
    if not isinstance(r.params, dict) or not isinstance(r.machine, dict):
        raise StoreError(f"{where}: params and machine must be objects")
    try:
        json.dumps(r.params, allow_nan=False)
        json.dumps(r.machine)
    except (TypeError, ValueError) as e:
        raise StoreError(f"{where}: params/machine are not JSON: {e}") from None
    if not isinstance(r.metrics, dict):
        raise StoreError(f"{where}: metrics must be an object")
    for name, value in r.metrics.items():
        if not isinstance(name, str) or not name:
            raise StoreError(f"{where}: metric names must be non-empty strings")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StoreError(f"{where}: metric {name!r} is not a number: {value!r}")
    if isinstance(r.wall_s, bool) or not isinstance(r.wall_s, (int, float)):
        raise StoreError(f"{where}: wall_s is not a number")
    if not isinstance(r.histograms, dict):
        raise StoreError(f"{where}: histograms must be an object")
    for name, bins in r.histograms.items():
        if not isinstance(name, str) or not isinstance(bins, (list, tuple)):
            raise StoreError(f"{where}: histogram {name!r} must be a list of (lo, hi, count)")
        for b in bins:
            if (not isinstance(b, (list, tuple)) or len(b) != 3
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in b)):
                raise StoreError(f"{where}: histogram {name!r} has a bin that is not (lo, hi, count): {b!r}")
    return r


def _params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class Store:
    """One SQLite results file. Use as a context manager or call close()."""

    def __init__(self, path: str | os.PathLike[str], create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: no results store there")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a results store")
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open: {e}") from None
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._open_schema()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{self.path}: not a Shunt results store (SQLite says: {e})") from None
        except StoreError:
            self._db.close()
            raise

    def _open_schema(self) -> None:
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and version == 0 and not tables:
            with self._db:  # a new (or empty) file: make the schema
                self._db.executescript(
                    "BEGIN;" + _SCHEMA
                    + f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
                    + "COMMIT;")
            return
        if app_id != APPLICATION_ID:
            raise StoreError(f"{self.path}: an SQLite database of another program (application_id "
                             f"{app_id:#x}), not a Shunt results store; pass another --store")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: results store schema {version} is newer than this Shunt "
                             f"reads ({SCHEMA_VERSION}); use a newer Shunt")
        if version < 1 or not _TABLES <= tables:
            raise StoreError(f"{self.path}: damaged results store (schema {version}, tables "
                             f"{sorted(tables)})")

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, result: Result) -> int:
        """Stores one result; returns its point id. An empty `created` is set to now."""
        return self.add_many([result])[0]

    def add_many(self, results: Iterable[Result]) -> list[int]:
        """Stores results in one transaction (all or none); returns their point ids."""
        results = [check_result(r) for r in results]
        ids = []
        try:
            with self._db:
                for r in results:
                    cur = self._db.execute(
                        "INSERT INTO points (commit_id, backend, scenario, params, machine, time_kind,"
                        " created, wall_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (r.commit, r.backend, r.scenario, _params_json(r.params),
                         json.dumps(r.machine, sort_keys=True), r.time_kind, r.created or now_iso(),
                         float(r.wall_s)))
                    pid = cur.lastrowid
                    self._db.executemany(
                        "INSERT INTO metrics (point_id, name, value) VALUES (?, ?, ?)",
                        [(pid, k, None if math.isnan(v) else float(v)) for k, v in r.metrics.items()])
                    self._db.executemany(
                        "INSERT INTO histogram_bins (point_id, name, idx, lo, hi, count)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [(pid, name, i, float(lo), float(hi), int(n))
                         for name, bins in r.histograms.items() for i, (lo, hi, n) in enumerate(bins)])
                    ids.append(pid)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot store results: {e}") from None
        return ids

    def results(self, scenario: str | None = None, backend: str | None = None,
                since: str | datetime.datetime | None = None) -> list[Result]:
        """The stored results, oldest first (by created, then by insertion), optionally only of
        one scenario and/or backend and measured at or after `since` (ISO 8601 or datetime)."""
        where, args = [], []
        if scenario is not None:
            where.append("p.scenario = ?")
            args.append(scenario)
        if backend is not None:
            where.append("p.backend = ?")
            args.append(backend)
        if since is not None:
            if isinstance(since, datetime.datetime):
                if since.tzinfo is None:
                    since = since.replace(tzinfo=datetime.timezone.utc)
                since = since.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")
            where.append("p.created >= ?")
            args.append(str(since))
        cond = " WHERE " + " AND ".join(where) if where else ""
        try:
            points = self._db.execute(
                "SELECT p.id, p.commit_id, p.backend, p.scenario, p.params, p.machine, p.time_kind,"
                " p.created, p.wall_s FROM points p" + cond + " ORDER BY p.created, p.id",
                args).fetchall()
            metrics: dict[int, dict[str, float]] = {}
            hists: dict[int, dict[str, list[tuple[float, float, int]]]] = {}
            for pid, name, value in self._db.execute(
                    "SELECT m.point_id, m.name, m.value FROM metrics m JOIN points p"
                    " ON p.id = m.point_id" + cond + " ORDER BY m.point_id, m.rowid", args):
                metrics.setdefault(pid, {})[name] = math.nan if value is None else value
            for pid, name, lo, hi, n in self._db.execute(
                    "SELECT h.point_id, h.name, h.lo, h.hi, h.count FROM histogram_bins h JOIN points p"
                    " ON p.id = h.point_id" + cond + " ORDER BY h.point_id, h.name, h.idx", args):
                hists.setdefault(pid, {}).setdefault(name, []).append((lo, hi, n))
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read results: {e}") from None
        out = []
        for pid, commit, be, sc, params, machine, kind, created, wall_s in points:
            try:
                params_v, machine_v = json.loads(params), json.loads(machine)
            except ValueError as e:
                raise StoreError(f"{self.path}: point {pid} has damaged JSON: {e}") from None
            out.append(Result(scenario=sc, backend=be, params=params_v,
                              metrics=metrics.get(pid, {}), time_kind=kind, commit=commit,
                              machine=machine_v, created=created, wall_s=wall_s,
                              histograms=hists.get(pid, {})))
        return out

    def commits(self, scenario: str | None = None, backend: str | None = None) -> list[str]:
        """The commits measured, in the order they were first measured."""
        seen: dict[str, None] = {}
        for r in self.results(scenario, backend):
            seen.setdefault(r.commit, None)
        return list(seen)

    def series(self) -> list[tuple[str, str]]:
        """The (scenario, backend) pairs the store holds, sorted."""
        try:
            return [tuple(row) for row in self._db.execute(
                "SELECT DISTINCT scenario, backend FROM points ORDER BY scenario, backend")]
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read results: {e}") from None

