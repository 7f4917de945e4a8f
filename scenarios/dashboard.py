"""`shunt dashboard`: a static HTML page of the stored results (docs/dashboard.md).

One section per scenario and backend; in it, for each parameter point, plots of every metric
over commits (x: the commits in the order they were first measured), with the tail percentiles
(p50, p99, p99.9...) of one quantity drawn together, a table of the latest values and the latest
latency histograms. Changes between consecutive commits are flagged:

- virtual-time metrics are exact: any change is flagged (worse: regression, better:
  improvement, a metric without direction: change), and repeats at one commit that differ are
  flagged as nondeterministic;
- real-time metrics are flagged only beyond the noise band of the previous commit, measured
  from its repeated runs: mean +- K_SIGMA * stddev, widened to the repeats' min..max; a commit
  measured once borrows the series' pooled stddev; with no repeats anywhere there is no band
  and nothing is flagged (the page says so).

The page is one self-contained file: inline CSS, inline SVG drawn here, a few lines of inline
script; it loads nothing from the network. Plain Python: it works without the compiled module.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import html
import json
import math
import re
import statistics
import sys
import webbrowser
from pathlib import Path
from typing import Iterable, Sequence

from .result import REAL, VIRTUAL, Result, better

K_SIGMA = 3.0  # width of the real-time noise band, in standard deviations of the repeats

REGRESSION, IMPROVEMENT, CHANGE, NONDETERMINISTIC = "regression", "improvement", "change", "nondeterministic"
_FLAG_ORDER = {REGRESSION: 0, NONDETERMINISTIC: 1, CHANGE: 2, IMPROVEMENT: 3}
_FLAG_COLOUR = {REGRESSION: "#d62728", NONDETERMINISTIC: "#9467bd", CHANGE: "#ff7f0e",
                IMPROVEMENT: "#2ca02c"}
_LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#d62728", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f",
                 "#e377c2"]
_NO_COMMIT = "(no commit)"

# "<base>_<stat>_<unit>": the statistics of one quantity share a plot (rtt_p50_ns, rtt_p99_ns...).
_STAT_RE = re.compile(r"^(?P<base>.*?)_?(?P<stat>p\d+|min|max|mean|median|avg|stddev)_(?P<unit>ns|us)$")


# ----------------------------------------------------------------------------- analysis

@dataclasses.dataclass
class Flag:
    """A flagged change of one metric of one series between two consecutive commits (or, for
    NONDETERMINISTIC, between repeats at one commit: before_commit == after_commit)."""
    scenario: str
    backend: str
    params: dict
    metric: str
    time_kind: str
    kind: str
    before_commit: str
    after_commit: str
    before: float
    after: float
    band: tuple[float, float] | None = None  # the noise band `after` left (real time)

    def line(self) -> str:
        p = json.dumps(self.params, sort_keys=True)
        where = (f"at {_short(self.after_commit)}" if self.kind == NONDETERMINISTIC
                 else f"{_short(self.before_commit)} -> {_short(self.after_commit)}")
        band = f" (band {fmt(self.band[0])}..{fmt(self.band[1])})" if self.band else ""
        return (f"{self.kind}: {self.scenario} {self.backend} {p} {self.metric}: "
                f"{fmt(self.before)} -> {fmt(self.after)}{band} {where}")


@dataclasses.dataclass
class Series:
    """The results of one scenario, backend and parameter point, by commit (in commit order)."""
    scenario: str
    backend: str
    params: dict
    time_kind: str
    by_commit: dict[str, list[Result]]
    metrics: list[str]
    flags: list[Flag] = dataclasses.field(default_factory=list)
    no_band: list[str] = dataclasses.field(default_factory=list)  # real metrics without repeats

    def values(self, metric: str) -> list[tuple[str, list[float]]]:
        """(commit, values at that commit) for the commits that measured the metric."""
        out = []
        for commit, rs in self.by_commit.items():
            vs = [r.metrics[metric] for r in rs if metric in r.metrics and _finite(r.metrics[metric])]
            if vs:
                out.append((commit, vs))
        return out


def _finite(v: float) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _short(commit: str) -> str:
    return commit[:10] if commit else _NO_COMMIT


def direction_of(metric: str, before: float, after: float) -> str:
    """REGRESSION, IMPROVEMENT or CHANGE (no direction) for a change before -> after."""
    d = better(metric)
    if d == 0:
        return CHANGE
    return IMPROVEMENT if (after - before) * d > 0 else REGRESSION


def commit_order(results: Iterable[Result]) -> list[str]:
    """Commits in the order they were first measured (by `created`, then by position)."""
    first: dict[str, tuple[str, int]] = {}
    for i, r in enumerate(results):
        c = r.commit or _NO_COMMIT
        key = (r.created or "", i)
        if c not in first or key < first[c]:
            first[c] = key
    return sorted(first, key=lambda c: first[c])


def noise_band(values: Sequence[float], pooled_sd: float | None,
               k: float = K_SIGMA) -> tuple[float, float] | None:
    """The band a real-time value at the next commit may fall in without being flagged:
    mean +- k * stddev of the repeats, widened to their min..max; one value borrows the series'
    pooled stddev; None when there is nothing to measure the noise from."""
    mean = statistics.fmean(values)
    if len(values) >= 2:
        sd = statistics.stdev(values)
    elif pooled_sd is not None:
        sd = pooled_sd
    else:
        return None
    return (min(mean - k * sd, min(values)), max(mean + k * sd, max(values)))


def pooled_stddev(per_commit: Sequence[Sequence[float]]) -> float | None:
    """The pooled standard deviation of the commits measured more than once (None if none)."""
    num = den = 0.0
    for vs in per_commit:
        if len(vs) >= 2:
            num += statistics.variance(vs) * (len(vs) - 1)
            den += len(vs) - 1
    return math.sqrt(num / den) if den else None


def flag_series(s: Series, k: float = K_SIGMA) -> None:
    """Fills s.flags (and s.no_band) per the rules in this module's docstring."""
    s.flags, s.no_band = [], []
    for m in s.metrics:
        pts = s.values(m)

        def flag(kind: str, a: str, b: str, before: float, after: float, band=None) -> None:
            s.flags.append(Flag(s.scenario, s.backend, s.params, m, s.time_kind, kind, a, b,
                                before, after, band))
        if s.time_kind == VIRTUAL:
            for commit, vs in pts:
                if any(v != vs[0] for v in vs):
                    flag(NONDETERMINISTIC, commit, commit, min(vs), max(vs))
            for (ca, va), (cb, vb) in zip(pts, pts[1:]):
                if va[-1] != vb[0]:  # exact: virtual time gives the same numbers every time
                    flag(direction_of(m, va[-1], vb[0]), ca, cb, va[-1], vb[0])
        else:
            pooled = pooled_stddev([vs for _, vs in pts])
            if pooled is None and len(pts) >= 2:
                s.no_band.append(m)
            for (ca, va), (cb, vb) in zip(pts, pts[1:]):
                band = noise_band(va, pooled, k)
                if band is None:
                    continue
                after = statistics.fmean(vb)
                if not band[0] <= after <= band[1]:
                    flag(direction_of(m, statistics.fmean(va), after), ca, cb,
                         statistics.fmean(va), after, band)


def build_series(results: Sequence[Result], k: float = K_SIGMA) -> tuple[list[str], list[Series]]:
    """The commit order and every series (sorted by scenario, backend, parameters), flagged."""
    order = commit_order(results)
    rank = {c: i for i, c in enumerate(order)}
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.backend, json.dumps(r.params, sort_keys=True)), []).append(r)
    out = []
    for (sc, be, pj), rs in sorted(groups.items(), key=lambda kv: kv[0]):
        rs = sorted(rs, key=lambda r: (rank[r.commit or _NO_COMMIT], r.created or ""))
        by_commit: dict[str, list[Result]] = {}
        metrics: dict[str, None] = {}
        for r in rs:
            by_commit.setdefault(r.commit or _NO_COMMIT, []).append(r)
            for m in r.metrics:
                metrics.setdefault(m, None)
        s = Series(sc, be, rs[0].params, rs[-1].time_kind, by_commit, list(metrics))
        flag_series(s, k)
        out.append(s)
    return order, out


def analyse(results: Sequence[Result], k: float = K_SIGMA) -> list[Flag]:
    """Every flag over the results, regressions first."""
    _, series = build_series(results, k)
    flags = [f for s in series for f in s.flags]
    return sorted(flags, key=lambda f: _FLAG_ORDER[f.kind])


# ----------------------------------------------------------------------------- formatting

def fmt(v: float) -> str:
    """A number short enough for a label, exact enough to see a change."""
    if v is None or not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    a = abs(v)
    if a >= 1e5:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    return f"{v:.4g}"


_SCALES = {
    "ns": [(1e9, "s"), (1e6, "ms"), (1e3, "\u00b5s"), (1, "ns")],
    "us": [(1e6, "s"), (1e3, "ms"), (1, "\u00b5s")],
    "bps": [(1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s"), (1, "bit/s")],
    "per_s": [(1e6, "M/s"), (1e3, "k/s"), (1, "/s")],
}


def unit_of(metric: str) -> str:
    for u in ("per_s", "bps", "ns", "us"):
        if metric.endswith("_" + u):
            return u
    return ""


def human(v: float, unit: str, span: float | None = None) -> str:
    """v in the largest unit of its kind that keeps it >= 1 (span: the axis range, so ticks
    keep enough digits)."""
    if not math.isfinite(v):
        return str(v)
    for scale, name in _SCALES.get(unit, []):
        if abs(v) >= scale or scale == 1:
            x = v / scale
            ref = (span / scale) if span else abs(x)
            digits = 0 if ref >= 100 else 1 if ref >= 10 else 2 if ref >= 1 else 3
            return f"{x:,.{digits}f} {name}"
    return fmt(v) if span is None else f"{v:,.{0 if span >= 100 else 2}f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


LOG_SPAN = 20.0  # a plot's values spanning more than this factor get a log y axis


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade between lo and hi (> 0), thinned to at most 7."""
    out = []
    for d in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            t = m * 10.0 ** d
            if lo <= t <= hi:
                out.append(t)
    while len(out) > 7:
        out = out[::2]
    return out


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


# ----------------------------------------------------------------------------- SVG plots

_W, _H = 400, 210
_ML, _MR, _MT, _MB = 68, 12, 36, 40


def _group_metrics(metrics: Sequence[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Plots of a series: (title, [(label, metric)...]); a quantity's statistics together."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for m in metrics:
        mo = _STAT_RE.match(m)
        if mo:
            title = f"{mo.group('base') or 'latency'} ({mo.group('unit')})"
            groups.setdefault(title, []).append((mo.group("stat"), m))
        else:
            groups.setdefault(m, []).append((m, m))
    return list(groups.items())


def svg_plot(series: Series, title: str, lines: list[tuple[str, str]], order: list[str]) -> str:
    """One plot: each line's value per commit (virtual: the value; real: the mean, with the
    repeats as dots and their min..max as a bar), flagged points ringed in the flag's colour."""
    xs = [c for c in order if c in series.by_commit]
    xi = {c: i for i, c in enumerate(xs)}
    data = [(label, m, series.values(m)) for label, m in lines]
    flags = {(f.metric, f.after_commit): f for f in sorted(series.flags, key=lambda f: -_FLAG_ORDER[f.kind])}
    allv = [v for _, _, pts in data for _, vs in pts for v in vs]
    for f in series.flags:
        if f.band and any(f.metric == m for _, m in lines):
            allv += list(f.band)
    if not allv:
        return ""
    lo, hi = min(allv), max(allv)
    # A log scale when the values span more than LOG_SPAN (a max or p99.9 far above the median):
    # the median and the tail both stay readable.
    log = lo > 0 and hi / lo > LOG_SPAN
    if log:
        lo, hi = lo / 1.15, hi * 1.15
    else:
        pad = (hi - lo) * 0.08 if hi > lo else (abs(hi) * 0.05 or 1.0)
        lo, hi = lo - pad, hi + pad
    unit = unit_of(lines[0][1])
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def X(i: int) -> float:
        return _ML + (pw * (i + 0.5) / len(xs))

    def Y(v: float) -> float:
        if log:
            return _MT + ph * (1 - math.log(max(v, lo) / lo) / math.log(hi / lo))
        return _MT + ph * (1 - (v - lo) / (hi - lo))

    o = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
         f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}">',
         f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bbb"/>',
         f'<text x="{_W / 2:.0f}" y="15" text-anchor="middle" class="t">{_e(title)}</text>']
    for t in (log_ticks(lo, hi) if log else nice_ticks(lo, hi)):
        y = Y(t)
        o.append(f'<line x1="{_ML}" x2="{_ML + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
                 f'<text x="{_ML - 4}" y="{y + 4:.1f}" text-anchor="end" class="a">'
                 f'{_e(human(t, unit, t * 100 if log else hi - lo))}</text>')
    if log:
        o.append(f'<text x="{_ML + pw - 3}" y="{_MT + ph - 4}" text-anchor="end" class="a">log scale</text>')
    step = max(1, math.ceil(len(xs) / 8))
    for c, i in xi.items():
        if i % step == 0 or i == len(xs) - 1:
            o.append(f'<text x="{X(i):.1f}" y="{_MT + ph + 14}" text-anchor="middle" class="a">'
                     f'{_e(_short(c)[:7])}</text>')
    o.append(f'<text x="{_ML + pw / 2:.0f}" y="{_H - 6}" text-anchor="middle" class="a">commit</text>')
    real = series.time_kind == REAL
    for n, (label, m, pts) in enumerate(data):
        colour = _LINE_COLOURS[n % len(_LINE_COLOURS)]
        rep = [(xi[c], statistics.fmean(vs) if real else vs[0], vs, c) for c, vs in pts]
        if real:
            for i, _, vs, _ in rep:
                if len(vs) > 1:
                    o.append(f'<line x1="{X(i):.1f}" x2="{X(i):.1f}" y1="{Y(min(vs)):.1f}" '
                             f'y2="{Y(max(vs)):.1f}" stroke="{colour}" stroke-opacity="0.35" '
                             f'stroke-width="6"/>')
        if len(rep) > 1:
            o.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="'
                     + " ".join(f"{X(i):.1f},{Y(v):.1f}" for i, v, _, _ in rep) + '"/>')
        for i, v, vs, c in rep:
            f = flags.get((m, c))
            if f and f.band:
                o.append(f'<rect class="band" x="{X(i) - 9:.1f}" y="{Y(f.band[1]):.1f}" width="18" '
                         f'height="{max(1.0, Y(f.band[0]) - Y(f.band[1])):.1f}" fill="none" '
                         f'stroke="{_FLAG_COLOUR[f.kind]}" stroke-dasharray="3,2"/>')
            tip = f"{m} @ {_short(c)}: {fmt(v)}" + (f" (mean of {len(vs)})" if len(vs) > 1 else "")
            if f:
                tip += f" \u2014 {f.kind}: {fmt(f.before)} -> {fmt(f.after)}"
                o.append(f'<circle class="flag {f.kind}" cx="{X(i):.1f}" cy="{Y(v):.1f}" r="7" '
                         f'fill="none" stroke="{_FLAG_COLOUR[f.kind]}" stroke-width="2.5"/>')
            o.append(f'<circle class="pt" cx="{X(i):.1f}" cy="{Y(v):.1f}" r="3" fill="{colour}">'
                     f'<title>{_e(tip)}</title></circle>')
    if len(data) > 1:
        x = _ML + 4
        for n, (label, _, _) in enumerate(data):
            colour = _LINE_COLOURS[n % len(_LINE_COLOURS)]
            o.append(f'<rect x="{x}" y="{_MT - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 13}" y="{_MT - 5}" class="a">{_e(label)}</text>')
            x += 20 + 7 * len(label)
    o.append("</svg>")
    return "".join(o)


def svg_histogram(name: str, bins: Sequence[tuple[float, float, int]]) -> str:
    """A latency histogram (log-spaced x) with its bins as bars."""
    bins = [(lo, hi, n) for lo, hi, n in bins if hi > lo and math.isfinite(lo) and math.isfinite(hi)]
    if not bins:
        return ""
    w, h, ml, mb, mt = 400, 160, 50, 30, 22
    pw, ph = w - ml - 12, h - mt - mb
    xmin, xmax = max(min(b[0] for b in bins), 1e-9), max(b[1] for b in bins)
    logx = xmax / xmin > 20
    top = max(n for _, _, n in bins) or 1

    def X(v: float) -> float:
        v = max(v, xmin)
        f = (math.log(v / xmin) / math.log(xmax / xmin)) if logx else (v - xmin) / (xmax - xmin)
        return ml + pw * f

    o = [f'<svg class="hist" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
         f'viewBox="0 0 {w} {h}" role="img" aria-label="{_e(name)}">',
         f'<text x="{w / 2:.0f}" y="15" text-anchor="middle" class="t">{_e(name)} histogram (latest)</text>',
         f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="#888"/>']
    for lo, hi, n in bins:
        bh = ph * n / top
        o.append(f'<rect x="{X(lo):.1f}" y="{mt + ph - bh:.1f}" width="{max(1.0, X(hi) - X(lo) - 0.5):.1f}" '
                 f'height="{bh:.1f}" fill="#1f77b4"><title>{_e(f"{fmt(lo)}..{fmt(hi)} ns: {n}")}</title></rect>')
    last_x = -1e9
    for v, anchor in ((bins[0][0], "start"), (bins[len(bins) // 2][0], "middle"), (bins[-1][1], "end")):
        if X(v) - last_x < 70:  # labels would overlap: one bin, or a narrow range
            continue
        last_x = X(v)
        o.append(f'<text x="{X(v):.1f}" y="{mt + ph + 14}" text-anchor="{anchor}" class="a">'
                 f'{_e(human(v, "ns"))}</text>')
    o.append(f'<text x="{ml - 4}" y="{mt + 8}" text-anchor="end" class="a">{top}</text></svg>')
    return "".join(o)


# ----------------------------------------------------------------------------- the page

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em} h2{font-size:1.2em;margin:1.6em 0 .3em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em;font-family:monospace}
.meta{color:#666} .plots{display:flex;flex-wrap:wrap;gap:8px}
svg .t{font-size:12px;font-weight:600} svg .a{font-size:10px;fill:#555}
table{border-collapse:collapse;margin:.4em 0;font-size:12px} td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} .tail{background:#fff6e0}
.regression{color:#d62728} .improvement{color:#2ca02c} .change{color:#ff7f0e} .nondeterministic{color:#9467bd}
.badge{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px}
.badge.regression{background:#d62728}.badge.improvement{background:#2ca02c}.badge.change{background:#ff7f0e}.badge.nondeterministic{background:#9467bd}
.wrap{overflow-x:auto} body.only-flagged .series:not(.flagged){display:none}
.note{color:#666;font-size:12px}
"""

# The page's only script: a filter that hides series without flags. No network, no libraries.
_JS = """
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('only-flagged');
  if (!box) { return; }
  box.addEventListener('change', function () {
    document.body.classList.toggle('only-flagged', box.checked);
  });
  var n = document.querySelectorAll('svg.plot').length;
  var s = document.getElementById('plot-count');
  if (s) { s.textContent = String(n); }
  document.body.setAttribute('data-ready', '1');
});
"""


def _anchor(*parts: str) -> str:
    return "s-" + re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-")


def render_html(results: Sequence[Result], title: str = "Shunt results", source: str = "",
                k: float = K_SIGMA) -> str:
    """The whole page as a string."""
    order, series = build_series(results, k)
    flags = sorted((f for s in series for f in s.flags), key=lambda f: _FLAG_ORDER[f.kind])
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    o = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
         f"<h1>{_e(title)}</h1>",
         f'<p class="meta">{len(results)} results, {len(series)} series, {len(order)} commits '
         f'({_e(_short(order[0]) if order else "-")} \u2026 {_e(_short(order[-1]) if order else "-")}), '
         f'<span id="plot-count">{{plots}}</span> plots; generated {generated}'
         + (f" from {_e(source)}" if source else "") + "</p>",
         '<p class="note">Virtual-time metrics are exact: any change between consecutive commits '
         f'is flagged. Real-time metrics are flagged beyond the previous commit\'s noise band: mean '
         f'\u00b1 {k:g}\u00b7stddev of its repeated runs, widened to their min..max (docs/dashboard.md).</p>',
         '<p><label><input type="checkbox" id="only-flagged"> show only series with flags</label></p>']
    counts = {kind: sum(1 for f in flags if f.kind == kind) for kind in _FLAG_ORDER}
    o.append('<h2 id="flags">Flags</h2><p>' + " ".join(
        f'<span class="badge {kind}">{counts[kind]} {kind}</span>' for kind in _FLAG_ORDER) + "</p>")
    if flags:
        o.append('<div class="wrap"><table id="flag-table"><tr><th class="l">kind</th><th class="l">scenario</th>'
                 '<th class="l">backend</th><th class="l">params</th><th class="l">metric</th>'
                 '<th class="l">commits</th><th>before</th><th>after</th><th>change</th><th>band</th></tr>')
        for f in flags:
            pct = f"{(f.after - f.before) / f.before * 100:+.2f}%" if f.before else ""
            anchor = _anchor(f.scenario, f.backend)
            commits = (_short(f.after_commit) if f.kind == NONDETERMINISTIC
                       else f"{_short(f.before_commit)} \u2192 {_short(f.after_commit)}")
            o.append(f'<tr class="{f.kind}"><td class="l">{f.kind}</td><td class="l"><a href="#{anchor}">'
                     f'{_e(f.scenario)}</a></td><td class="l">{_e(f.backend)}</td>'
                     f'<td class="l">{_e(json.dumps(f.params, sort_keys=True))}</td><td class="l">{_e(f.metric)}</td>'
                     f'<td class="l">{_e(commits)}</td><td>{_e(fmt(f.before))}</td><td>{_e(fmt(f.after))}</td>'
                     f'<td>{pct}</td><td>{_e(f"{fmt(f.band[0])}..{fmt(f.band[1])}" if f.band else "")}</td></tr>')
        o.append("</table></div>")
    else:
        o.append("<p>No changes flagged.</p>" if results else
                 "<p>No results stored yet: <code>shunt scenario run NAME --backend sim</code> adds some.</p>")
    plots = 0
    sections: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        sections.setdefault((s.scenario, s.backend), []).append(s)
    for (sc, be), ss in sections.items():
        kinds = sorted({s.time_kind for s in ss})
        o.append(f'<section id="{_anchor(sc, be)}"><h2>{_e(sc)} \u2014 {_e(be)} '
                 f'<span class="meta">({_e(", ".join(kinds))} time)</span></h2>')
        for s in ss:
            cls = "series flagged" if s.flags else "series"
            o.append(f'<div class="{cls}"><h3>{_e(json.dumps(s.params, sort_keys=True))}</h3>')
            if s.flags:
                o.append("<p>" + "<br>".join(f'<span class="{f.kind}">{_e(f.line())}</span>'
                                             for f in sorted(s.flags, key=lambda f: _FLAG_ORDER[f.kind])) + "</p>")
            if s.no_band:
                o.append(f'<p class="note">No noise band for {_e(", ".join(s.no_band))}: no commit was '
                         "measured more than once (repeat runs to measure it); not flagged.</p>")
            o.append('<div class="plots">')
            for gtitle, lines in _group_metrics(s.metrics):
                svg = svg_plot(s, gtitle, lines, order)
                if svg:
                    plots += 1
                    o.append(svg)
            o.append("</div>")
            o.append(_latest_table(s))
            last = list(s.by_commit.values())[-1][-1]
            hs = [svg_histogram(name, bins) for name, bins in last.histograms.items()]
            if any(hs):
                o.append('<div class="plots">' + "".join(hs) + "</div>")
            o.append("</div>")
        o.append("</section>")
    if order:  # the x axes' commits in full, with when each was first measured
        first: dict[str, str] = {}
        count: dict[str, int] = {}
        for r in results:
            c = r.commit or _NO_COMMIT
            count[c] = count.get(c, 0) + 1
            if r.created and (c not in first or r.created < first[c]):
                first[c] = r.created
        o.append('<h2 id="commits">Commits</h2><div class="wrap"><table id="commit-table"><tr>'
                 '<th>#</th><th class="l">commit</th><th class="l">first measured</th><th>results</th></tr>')
        for i, c in enumerate(order):
            o.append(f'<tr><td>{i + 1}</td><td class="l"><code>{_e(c)}</code></td>'
                     f'<td class="l">{_e(first.get(c, ""))}</td><td>{count.get(c, 0)}</td></tr>')
        o.append("</table></div>")
    o.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(o).replace("{plots}", str(plots), 1)


def _latest_table(s: Series) -> str:
    """The latest commit's values (mean of its repeats), tail percentiles highlighted."""
    commit, rs = list(s.by_commit.items())[-1]
    cells = []
    for m in s.metrics:
        vs = [r.metrics[m] for r in rs if m in r.metrics and _finite(r.metrics[m])]
        if not vs:
            continue
        mo = _STAT_RE.match(m)
        tail = bool(mo and mo.group("stat") in ("p99", "p999", "p9999"))
        v = statistics.fmean(vs)
        unit = unit_of(m)
        shown = human(v, unit) if unit else fmt(v)
        spread = f" (\u00b1{human(statistics.stdev(vs), unit) if unit else fmt(statistics.stdev(vs))}, n={len(vs)})" \
            if len(vs) > 1 else ""
        cells.append((m, shown + spread, tail))
    if not cells:
        return ""
    head = "".join(f'<th class="{"tail" if t else ""}">{_e(m)}</th>' for m, _, t in cells)
    row = "".join(f'<td class="{"tail" if t else ""}" title="{_e(m)}">{_e(v)}</td>' for m, v, t in cells)
    return (f'<div class="wrap"><table class="latest"><tr><th class="l">latest ({_e(_short(commit))})</th>'
            f'{head}</tr><tr><td class="l">{len(rs)} run(s)</td>{row}</tr></table></div>')


def render(results: Sequence[Result], out_dir: str | Path, title: str = "Shunt results",
           source: str = "", k: float = K_SIGMA) -> Path:
    """Writes out_dir/index.html (creating out_dir) and returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(render_html(results, title, source, k), encoding="utf-8")
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- the command

def main(argv: Sequence[str] | None = None) -> int:
    """shunt dashboard [--store PATH] [--out DIR] [--open] [--scenario S] [--backend B] [--since T]"""
    from .store import Store, StoreError, default_store_path
    ap = argparse.ArgumentParser(prog="shunt dashboard",
                                 description="Render the stored scenario results as a static HTML page "
                                             "(plots over commits, tail percentiles, flagged regressions).")
    ap.add_argument("--store", help=f"the results store (default: {default_store_path()})")
    ap.add_argument("--out", default="shunt-dashboard", help="output directory (default: ./shunt-dashboard)")
    ap.add_argument("--open", action="store_true", help="open the page in a web browser")
    ap.add_argument("--scenario", help="only this scenario")
    ap.add_argument("--backend", help="only this backend")
    ap.add_argument("--since", help="only results measured at or after this ISO 8601 time")
    ap.add_argument("--sigma", type=float, default=K_SIGMA,
                    help=f"real-time noise band in standard deviations (default {K_SIGMA:g})")
    try:
        args = ap.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    path = Path(args.store) if args.store else default_store_path()
    try:
        with Store(path, create=False) as store:
            results = store.results(args.scenario, args.backend, args.since)
    except StoreError as e:
        msg = str(e)
        if "no results store there" in msg:
            msg += " (shunt scenario run stores results; --store picks another file)"
        print(f"shunt dashboard: error: {msg}", file=sys.stderr)
        return 2
    try:
        page = render(results, args.out, source=str(path), k=args.sigma)
    except OSError as e:
        print(f"shunt dashboard: error: cannot write {args.out}: {e}", file=sys.stderr)
        return 2
    flags = analyse(results, args.sigma)
    regressions = sum(1 for f in flags if f.kind in (REGRESSION, NONDETERMINISTIC))
    print(f"{page} ({len(results)} results, {len(flags)} flags, {regressions} regressions)")
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())
