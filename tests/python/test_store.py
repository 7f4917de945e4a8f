"""The results store (scenarios/store.py): round trip, schema version, hostile files."""
import math
import sqlite3

import pytest

from shunt.scenarios.result import REAL, VIRTUAL, Result
from shunt.scenarios.store import (APPLICATION_ID, SCHEMA_VERSION, Store, StoreError,
                                   default_store_path)


def sample(commit="c1", created="2026-01-01T00:00:00+00:00", **metrics):
    return Result(scenario="udp_pingpong", backend="sim",
                  params={"size": 64, "profile": "", "rate_gbps": 10.0},
                  metrics=metrics or {"rtt_p50_ns": 2100.0, "rtt_p99_ns": 2900.0, "round_trips": 200},
                  time_kind=VIRTUAL, commit=commit, machine={"cpu": "x", "cores": 2},
                  created=created, wall_s=0.25,
                  histograms={"rtt": [(1000.0, 2000.0, 5), (2000.0, 4000.0, 195)]})


def test_results_come_back_as_they_were_stored(tmp_path):
    r1 = sample()
    r2 = Result("tcp_bulk", "cable", {"rtt_us": 0.0}, {"goodput_bps": 9.5e9, "odd": math.nan},
                REAL, "c2", {}, "2026-01-02T00:00:00+00:00", 2.0)
    with Store(tmp_path / "r.sqlite") as st:
        assert st.add_many([r1, r2]) == [1, 2]
    with Store(tmp_path / "r.sqlite") as st:
        got = st.results()
    assert [g.to_json() for g in got[:1]] == [r1.to_json()]
    assert got[1].scenario == "tcp_bulk" and got[1].time_kind == REAL
    assert got[1].metrics["goodput_bps"] == 9.5e9 and math.isnan(got[1].metrics["odd"])
    assert list(got[0].metrics) == ["rtt_p50_ns", "rtt_p99_ns", "round_trips"]  # order kept


def test_results_filter_by_scenario_backend_and_time_and_are_ordered_by_creation(tmp_path):
    with Store(tmp_path / "r.sqlite") as st:
        st.add(sample("c3", "2026-01-03T00:00:00+00:00"))
        st.add(sample("c1", "2026-01-01T00:00:00+00:00"))
        st.add(sample("c2", "2026-01-02T00:00:00+00:00"))
        other = sample("c2", "2026-01-02T00:00:00+00:00")
        other.backend = "ns3"
        st.add(other)
        assert [r.commit for r in st.results(backend="sim")] == ["c1", "c2", "c3"]
        assert st.commits() == ["c1", "c2", "c3"]
        assert [r.commit for r in st.results(backend="sim", since="2026-01-02")] == ["c2", "c3"]
        assert [r.backend for r in st.results(scenario="udp_pingpong", backend="ns3")] == ["ns3"]
        assert st.results(scenario="nothing") == []
        assert st.series() == [("udp_pingpong", "ns3"), ("udp_pingpong", "sim")]


def test_an_empty_created_is_set_to_the_time_of_storing(tmp_path):
    with Store(tmp_path / "r.sqlite") as st:
        st.add(sample(created=""))
        assert st.results()[0].created.startswith("20")


def test_the_schema_is_versioned_and_marked_as_a_shunt_store(tmp_path):
    path = tmp_path / "sub" / "dir" / "r.sqlite"  # parents are created
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"points", "metrics", "histogram_bins"} <= tables
    db.close()


def test_a_bad_result_is_refused_and_nothing_of_its_batch_is_stored(tmp_path):
    bad = sample(rtt_p50_ns="fast")
    with Store(tmp_path / "r.sqlite") as st:
        with pytest.raises(StoreError, match="not a number"):
            st.add_many([sample(), bad])
        bad_kind = sample()
        bad_kind.time_kind = "sometimes"
        with pytest.raises(StoreError, match="time_kind"):
            st.add(bad_kind)
        with pytest.raises(StoreError, match="not a Result"):
            st.add({"scenario": "x"})
        assert st.results() == []


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not SQLite at all\n" * 200)
    with pytest.raises(StoreError, match="not a Shunt results store"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not SQLite")  # untouched


def test_another_programs_database_is_refused_not_written_into(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    db = sqlite3.connect(path)
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} == {"customers"}
    db.close()


def test_a_store_with_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_a_damaged_store_gives_a_clear_error_not_a_traceback(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        st.add_many([sample(f"c{i}", f"2026-01-01T00:00:{i:02d}+00:00") for i in range(300)])
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    for i in range(4096, len(data), 7):  # scribble over every page but the first
        data[i] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=str(path.name)):
        with Store(path) as st:
            st.results()


def test_a_directory_or_a_missing_store_gives_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="no results store"):
        Store(tmp_path / "none.sqlite", create=False)


def test_the_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SHUNT_RESULTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "shunt" / "results.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "share" / "shunt" / "results.sqlite"
    monkeypatch.setenv("SHUNT_RESULTS", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
