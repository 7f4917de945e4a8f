"""The dashboard (scenarios/dashboard.py): flagging rules on synthetic results over several
commits, the page's content, the command, and the page in headless Chromium with no network
(no console messages, plots in the DOM, a screenshot that shows them)."""
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from shunt.scenarios import dashboard
from shunt.scenarios.dashboard import (CHANGE, IMPROVEMENT, NONDETERMINISTIC, REGRESSION,
                                       analyse, noise_band, render)
from shunt.scenarios.result import REAL, VIRTUAL, Result
from shunt.scenarios.store import Store

COMMITS = [f"{i:x}" * 40 for i in range(1, 7)]  # six commits, in measuring order


def at(i, rep=0):
    return f"2026-01-{i + 1:02d}T00:00:{rep:02d}+00:00"


def virtual(i, size=64, rep=0, **metrics):
    m = {"rtt_p50_ns": 2000 + size, "rtt_p99_ns": 3000 + size, "rtt_p999_ns": 3500 + size,
         "round_trips_per_s": 250000.0, "round_trips": 200}
    m.update(metrics)
    return Result("udp_pingpong", "sim", {"size": size}, m, VIRTUAL, COMMITS[i], {}, at(i, rep), 0.1,
                  {"rtt": [(1000 * 2 ** (b / 4), 1000 * 2 ** ((b + 1) / 4), max(1, 60 - 6 * abs(b - 8)))
                           for b in range(20)]})


def real(i, values, metric="rtt_p99_ns"):
    return [Result("tcp_pingpong", "cable", {"size": 64}, {metric: v}, REAL, COMMITS[i], {},
                   at(i, rep), 2.0) for rep, v in enumerate(values)]


def kinds(flags):
    return sorted((f.kind, f.metric, f.after_commit[:1]) for f in flags)


# ----------------------------------------------------------------------------- the rules

def test_virtual_time_flags_any_change_between_consecutive_commits():
    rs = [virtual(0), virtual(1), virtual(2, rtt_p99_ns=3065), virtual(3, rtt_p99_ns=3065),
          virtual(4, rtt_p99_ns=3065, round_trips_per_s=250001.0), virtual(5, rtt_p99_ns=3065,
                                                                           round_trips=199, round_trips_per_s=250001.0)]
    flags = analyse(rs)
    assert kinds(flags) == [(CHANGE, "round_trips", "6"), (IMPROVEMENT, "round_trips_per_s", "5"),
                            (REGRESSION, "rtt_p99_ns", "3")]
    reg = flags[0]
    assert reg.kind == REGRESSION and (reg.before, reg.after) == (3064, 3065)
    assert reg.before_commit == COMMITS[1] and reg.after_commit == COMMITS[2]
    assert "regression: udp_pingpong sim" in reg.line() and "3,064 -> 3,065" in reg.line()


def test_virtual_time_repeats_that_differ_are_flagged_as_nondeterministic():
    rs = [virtual(0), virtual(0, rep=1, rtt_p50_ns=2065)]
    flags = analyse(rs)
    assert [(f.kind, f.metric) for f in flags] == [(NONDETERMINISTIC, "rtt_p50_ns")]


def test_real_time_within_the_noise_band_is_not_flagged():
    rs = (real(0, [10000, 10400, 9600]) + real(1, [10300, 9900, 10100])
          + real(2, [10500]) + real(3, [9900, 10100]))
    assert analyse(rs) == []


def test_real_time_beyond_the_noise_band_is_flagged_with_its_band():
    rs = real(0, [10000, 10400, 9600]) + real(1, [13000, 13100, 12900])
    flags = analyse(rs)
    assert [(f.kind, f.metric) for f in flags] == [(REGRESSION, "rtt_p99_ns")]
    lo, hi = flags[0].band
    assert lo == pytest.approx(10000 - 3 * 400) and hi == pytest.approx(10000 + 3 * 400)
    faster = real(0, [10000, 10400, 9600]) + real(1, [7000, 7100])
    assert [f.kind for f in analyse(faster)] == [IMPROVEMENT]


def test_a_commit_measured_once_borrows_the_pooled_noise_of_the_series():
    rs = real(0, [10000, 10200]) + real(1, [10100]) + real(2, [10150]) + real(3, [11000])
    flags = analyse(rs)
    # pooled stddev 141.4: 10150 +- 424 holds 10100 and 10150 but not 11000
    assert [(f.kind, f.after_commit) for f in flags] == [(REGRESSION, COMMITS[3])]


def test_real_time_without_repeats_has_no_band_and_is_not_flagged():
    rs = real(0, [10000]) + real(1, [20000])
    assert analyse(rs) == []
    _, series = dashboard.build_series(rs)
    assert series[0].no_band == ["rtt_p99_ns"]


def test_the_noise_band_is_mean_plus_minus_k_sigma_widened_to_the_repeats():
    assert noise_band([10.0, 10.0, 10.0], None) == (10.0, 10.0)
    lo, hi = noise_band([0.0, 0.0, 0.0, 100.0], None, k=0.1)  # k*sd smaller than the spread
    assert (lo, hi) == (0.0, 100.0)
    assert noise_band([5.0], None) is None
    assert noise_band([5.0], 1.0, k=2) == (3.0, 7.0)


def test_commits_are_ordered_by_when_they_were_first_measured():
    rs = [virtual(3), virtual(0), virtual(5), virtual(1, size=1024)]
    assert dashboard.commit_order(rs) == [COMMITS[0], COMMITS[1], COMMITS[3], COMMITS[5]]


# ----------------------------------------------------------------------------- the page

def synthetic():
    rs = []
    for i in range(6):
        for size in (64, 1024):
            slower = 80 if i >= 4 else 0  # a regression of the tail from commit 5 on
            rs.append(virtual(i, size, rtt_p99_ns=3000 + size + slower, rtt_p999_ns=3500 + size + slower))
        rs += real(i, [10000 + 150 * (rep % 3) + (2500 if i == 5 else 0) for rep in range(3)])
    return rs


def plots_expected(rs):
    _, series = dashboard.build_series(rs)
    return sum(len(dashboard._group_metrics(s.metrics)) for s in series)


def test_the_page_has_a_section_per_scenario_and_backend_and_plots_for_every_metric(tmp_path):
    rs = synthetic()
    path = render(rs, tmp_path / "out")
    page = path.read_text()
    assert path.name == "index.html"
    assert 'id="s-udp_pingpong-sim"' in page and 'id="s-tcp_pingpong-cable"' in page
    assert page.count('<svg class="plot"') == plots_expected(rs) == 2 * 3 + 1
    assert page.count('class="flag regression"') == 2 * 2 + 1  # p99 and p999 of both sizes; real p99
    assert page.count('<svg class="hist"') == 2
    assert "rtt_p999_ns" in page and 'class="tail"' in page  # tail percentiles in the latest table
    assert "4 regression" not in page and '5 regression</span>' in page
    assert all(f"<code>{c}</code>" in page for c in COMMITS)  # the commits table, in full


def test_a_plot_whose_values_span_decades_gets_a_log_scale():
    rs = real(0, [5000, 5200, 5100], "rtt_p50_ns") + real(1, [5100, 5000, 5200], "rtt_p50_ns")
    for r, tail in zip(rs, [9e6, 8e6, 7e6, 9e6, 8e6, 7e6]):
        r.metrics["rtt_max_ns"] = tail
    page = dashboard.render_html(rs)
    assert "log scale" in page and ">10 ms<" in page and ">5 µs<" in page
    assert "log scale" not in dashboard.render_html(synthetic()[:4])


def test_the_page_loads_nothing_from_the_network():
    page = dashboard.render_html(synthetic())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert not re.search(r"@import|url\(|<link|<iframe|fetch\(|XMLHttpRequest", page, re.I)
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}  # a name only


def test_hostile_names_are_escaped():
    r = virtual(0)
    r.scenario = '<script>alert("x")</script>'
    r.params = {"</h3><img onerror=alert(1) src=x>": 1}
    page = dashboard.render_html([r, virtual(1)])
    assert "<script>alert" not in page and "<img onerror" not in page
    assert "&lt;script&gt;" in page


def test_an_empty_store_gives_a_page_that_says_so(tmp_path):
    page = render([], tmp_path).read_text()
    assert "No results stored yet" in page


def test_the_command_renders_the_store(tmp_path, capsys):
    with Store(tmp_path / "r.sqlite") as st:
        st.add_many(synthetic())
    rc = dashboard.main(["--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "page")])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith(str(tmp_path / "page" / "index.html")) and "5 regressions" in out
    rc = dashboard.main(["--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "p2"),
                         "--backend", "cable"])
    assert rc == 0 and "1 regressions" in capsys.readouterr().out


def test_the_command_reports_a_missing_or_corrupt_store_in_one_line(tmp_path, capsys):
    rc = dashboard.main(["--store", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("shunt dashboard: error:") and "no results store" in err
    (tmp_path / "bad.sqlite").write_bytes(b"garbage" * 1000)
    rc = dashboard.main(["--store", str(tmp_path / "bad.sqlite"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a Shunt results store" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- headless Chromium

WIDTH, HEIGHT = 1200, 1800


def read_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG, decoded with zlib."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = ihdr
    assert depth == 8 and colour in (2, 6) and interlace == 0, ihdr
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def chromium_run(tmp_path, url, name):
    """Loads url in headless Chromium with no network: (stderr, DOM, screenshot, net log)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    shot, netlog = tmp_path / f"{name}.png", tmp_path / f"{name}-net.json"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / (name + '-profile')}", "--no-first-run",
           "--enable-logging=stderr", "--v=0", f"--window-size={WIDTH},{HEIGHT}",
           "--hide-scrollbars", f"--screenshot={shot}", "--dump-dom", f"--log-net-log={netlog}",
           # no network even where a private network namespace cannot be made
           "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           url]
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n"] + cmd  # a network namespace with nothing but a down loopback
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, HOME=str(tmp_path)))
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stderr, p.stdout, shot, netlog


def console_messages(stderr):
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


def page_requests(netlog):
    """URLs the page itself asked for beyond its own file (the browser's own background requests,
    initiator 'not an origin', are not the page's)."""
    try:
        events = json.loads(netlog.read_text())["events"]
    except ValueError:  # a log cut short at exit: its events are still one per line
        events = [json.loads(ln.rstrip(",")) for ln in netlog.read_text().splitlines()
                  if ln.startswith('{"params"') or ln.startswith('{"phase"')]
    urls = set()
    for e in events:
        prm = e.get("params") or {}
        if "url" in prm and "initiator" in prm and prm["initiator"] != "not an origin":
            if not prm["url"].startswith("file:"):
                urls.add(prm["url"])
    return urls


def test_the_harness_sees_console_errors_and_network_requests(tmp_path):
    """The check below would catch a broken page: a script error and a CDN request show up."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="https://cdn.example.com/x.png">'
                   "<script>console.error('oops'); notDefined();</script></body></html>")
    stderr, _, _, netlog = chromium_run(tmp_path, bad.as_uri(), "bad")
    msgs = console_messages(stderr)
    assert any("oops" in m for m in msgs) and any("notDefined" in m for m in msgs), msgs
    assert page_requests(netlog) == {"https://cdn.example.com/x.png"}


def test_the_page_in_headless_chromium_shows_its_plots_with_no_console_errors(tmp_path):
    rs = synthetic()
    path = render(rs, tmp_path / "dash")
    stderr, dom, shot, netlog = chromium_run(tmp_path, path.resolve().as_uri(), "dash")
    assert console_messages(stderr) == []
    assert page_requests(netlog) == set()
    # the DOM after the script ran: every plot there, the script reached its end
    assert 'data-ready="1"' in dom
    assert dom.count('<svg class="plot"') == plots_expected(rs)
    assert dom.count("<polyline") >= plots_expected(rs)
    assert len(re.findall(r'<circle class="flag regression"', dom)) == 5
    # the screenshot: a PNG of the window's size, with plot lines and red flag rings painted
    w, h, bpp, rows = read_png(shot)
    assert (w, h) == (WIDTH, HEIGHT)
    non_white = blue = red = 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r < 235 or g < 235 or b < 235:
                non_white += 1
            if abs(r - 0x1f) < 30 and abs(g - 0x77) < 30 and abs(b - 0xb4) < 30:
                blue += 1
            if abs(r - 0xd6) < 30 and abs(g - 0x27) < 30 and abs(b - 0x28) < 30:
                red += 1
    assert non_white > w * h // 50, non_white  # not blank
    assert blue > 500, blue    # the p50 lines and the histogram bars
    assert red > 100, red      # the regression rings and the flag table
