"""The hardware-in-the-loop backends without hardware (scenarios/hil.py, hil/ansible/): the
preflight checks' parsing of canned ibv_devinfo outputs, the playbook's syntax, the ends a
DeviceContext gives each side, the job runner's result lines, and the clear errors when a
backend cannot run. The soft-RoCE guest itself runs in verbs.rxe_guest (hil/rxe/ci.sh)."""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from shunt.scenarios import hil
from shunt.scenarios import scenario as sc

SRC = pathlib.Path(os.environ.get("SHUNT_SOURCE_DIR") or pathlib.Path(__file__).parents[2])
ANSIBLE = SRC / "hil" / "ansible"


def _preflight():
    spec = importlib.util.spec_from_file_location("preflight", ANSIBLE / "preflight.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


PF = _preflight()

CX6_ACTIVE = """hca_id:\tmlx5_0
\ttransport:\t\t\tInfiniBand (0)
\tfw_ver:\t\t\t\t22.36.1010
\tnode_guid:\t\t\tb8ce:f603:00a4:1b2c
\tvendor_id:\t\t\t0x02c9
\tvendor_part_id:\t\t\t4125
\thw_ver:\t\t\t\t0x0
\tboard_id:\t\t\tMT_0000000359
\tphys_port_cnt:\t\t\t1
\tmax_mr_size:\t\t\t0xffffffffffffffff
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_ACTIVE (4)
\t\t\tmax_mtu:\t\t4096 (5)
\t\t\tactive_mtu:\t\t1024 (3)
\t\t\tsm_lid:\t\t\t0
\t\t\tport_lid:\t\t0
\t\t\tlink_layer:\t\tEthernet
\t\t\tmax_msg_sz:\t\t0x40000000
\t\t\tphys_state:\t\tLINK_UP (5)
\t\t\tGID[  0]:\t\tfe80:0000:0000:0000:bace:f6ff:fea4:1b2c, RoCE v1

hca_id:\tmlx5_1
\ttransport:\t\t\tInfiniBand (0)
\tfw_ver:\t\t\t\t22.36.1010
\tvendor_id:\t\t\t0x02c9
\tvendor_part_id:\t\t\t4125
\tphys_port_cnt:\t\t\t1
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_DOWN (1)
\t\t\tlink_layer:\t\tEthernet
\t\t\tphys_state:\t\tDISABLED (3)
"""

CX3_IB = """hca_id:\tmlx4_0
\ttransport:\t\t\tInfiniBand (0)
\tfw_ver:\t\t\t\t2.42.5000
\tvendor_id:\t\t\t0x02c9
\tvendor_part_id:\t\t\t4099
\tphys_port_cnt:\t\t\t2
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_ACTIVE (4)
\t\t\tlink_layer:\t\tInfiniBand
\t\tport:\t2
\t\t\tstate:\t\t\tPORT_INIT (2)
\t\t\tlink_layer:\t\tInfiniBand
"""

RXE = """hca_id:\trxe0
\ttransport:\t\t\tInfiniBand (0)
\tfw_ver:\t\t\t\t0.0.0
\tvendor_id:\t\t\t0xffffff
\tvendor_part_id:\t\t\t0
\tphys_port_cnt:\t\t\t1
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_ACTIVE (4)
\t\t\tlink_layer:\t\tEthernet
"""


def _failed(checks):
    return [name for name, ok, _ in checks if not ok]


def test_preflight_parses_a_connectx_and_its_ports():
    devs = PF.parse_devinfo(CX6_ACTIVE)
    assert sorted(devs) == ["mlx5_0", "mlx5_1"]
    d = devs["mlx5_0"]
    assert d["vendor_id"] == 0x02C9 and d["vendor_part_id"] == 4125 and d["fw_ver"] == "22.36.1010"
    assert d["ports"][1] == {"state": "PORT_ACTIVE", "phys_state": "LINK_UP",
                             "link_layer": "Ethernet"}
    assert devs["mlx5_1"]["ports"][1]["phys_state"] == "DISABLED"


def test_preflight_passes_an_active_ethernet_connectx_port():
    checks = PF.check_device(PF.parse_devinfo(CX6_ACTIVE), "mlx5_0", 1, "mlx5_core")
    assert _failed(checks) == []
    assert [n for n, _, _ in checks] == ["mlx5_0: present", "mlx5_0: mlx5 adapter",
                                         "mlx5_0 port 1: link up", "mlx5_0 port 1: Ethernet"]


def test_preflight_fails_a_port_that_is_down():
    checks = PF.check_device(PF.parse_devinfo(CX6_ACTIVE), "mlx5_1", 1)
    assert _failed(checks) == ["mlx5_1 port 1: link up"]
    assert "PORT_DOWN" in dict((n, d) for n, _, d in checks)["mlx5_1 port 1: link up"]


def test_preflight_fails_a_missing_device_and_a_missing_port():
    devs = PF.parse_devinfo(CX6_ACTIVE)
    checks = PF.check_device(devs, "mlx5_7", 1)
    assert _failed(checks) == ["mlx5_7: present"]
    assert "mlx5_0, mlx5_1" in checks[0][2]
    assert _failed(PF.check_device(devs, "mlx5_0", 2)) == ["mlx5_0 port 2: link up"]
    assert _failed(PF.check_device({}, "mlx5_0", 1)) == ["mlx5_0: present"]


def test_preflight_refuses_mlx4_infiniband_and_soft_roce():
    checks = PF.check_device(PF.parse_devinfo(CX3_IB), "mlx4_0", 1, "mlx4_core")
    assert _failed(checks) == ["mlx4_0: mlx5 adapter", "mlx4_0 port 1: Ethernet"]
    assert "LINK_TYPE_P1=2" in dict((n, d) for n, _, d in checks)["mlx4_0 port 1: Ethernet"]
    assert _failed(PF.check_device(PF.parse_devinfo(RXE), "rxe0", 1, "rdma_rxe")) == \
        ["rxe0: mlx5 adapter"]


def test_preflight_checks_cap_net_raw_and_locked_memory():
    status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000002000\n"
    caps = PF.effective_caps(status)
    assert caps == 1 << PF.CAP_NET_RAW
    assert _failed(PF.check_process(caps, 64 << 20)) == []
    assert _failed(PF.check_process(0, 8 << 20)) == ["CAP_NET_RAW", "locked memory"]
    import resource
    assert _failed(PF.check_process(caps, resource.RLIM_INFINITY)) == []
    assert _failed(PF.check_process(caps | 1 << PF.CAP_IPC_LOCK, 64 << 10)) == []


def test_preflight_reads_device_specs_and_the_library_open_line():
    assert PF.parse_spec("mlx5:mlx5_0") == ("mlx5_0", 1)
    assert PF.parse_spec("mlx5:mlx5_1,port=2,mac=02:00:00:00:00:01") == ("mlx5_1", 2)
    with pytest.raises(ValueError):
        PF.parse_spec("verbs:rxe0")
    line = ("shunt: mlx5: ibv_create_qp(IBV_QPT_RAW_PACKET) on mlx5_0 failed: Operation not "
            "permitted (needs CAP_NET_RAW); sockets stay on the kernel")
    name, ok, detail = PF.check_open("lib", "mlx5:mlx5_0", "10.77.0.1/24", line + "\n")
    assert not ok and "CAP_NET_RAW" in detail
    assert PF.check_open("lib", "mlx5:mlx5_0", "10.77.0.1/24", "")[1]


def test_preflight_command_line_with_canned_output(tmp_path):
    f = tmp_path / "devinfo.txt"
    f.write_text(CX6_ACTIVE)
    cp = subprocess.run([sys.executable, str(ANSIBLE / "preflight.py"), "--devinfo-file", str(f),
                         "--device", "mlx5:mlx5_0", "--device", "mlx5:mlx5_1"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "ok   mlx5_0 port 1: link up" in cp.stdout
    assert "FAIL mlx5_1 port 1: link up: state PORT_DOWN" in cp.stdout


@pytest.mark.skipif(shutil.which("ansible-playbook") is None,
                    reason="ansible-playbook (Debian ansible-core) is not installed")
def test_the_playbook_and_the_example_inventory_pass_ansible_syntax_check():
    cp = subprocess.run(["ansible-playbook", "--syntax-check", "-i",
                         str(ANSIBLE / "inventory.example.yml"), str(ANSIBLE / "site.yml")],
                        capture_output=True, text=True, timeout=120,
                        env={**os.environ, "ANSIBLE_LOCAL_TEMP": "/tmp",
                             "ANSIBLE_HOME": "/tmp/shunt-ansible-home"})
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_mlx5_without_an_inventory_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("SHUNT_HIL_INVENTORY", raising=False)
    monkeypatch.delenv("SHUNT_HIL", raising=False)
    with pytest.raises(sc.BackendUnavailable, match="--inventory FILE or SHUNT_HIL_INVENTORY"):
        hil.context("mlx5", {})
    with pytest.raises(sc.BackendUnavailable, match="does not exist"):
        hil.context("mlx5", {"inventory": "/nonexistent/inventory.yml"})


def test_rxe_and_mlx5_take_the_real_time_scenarios_only():
    sc.check_backend(sc.get("udp_pingpong"), "rxe")
    sc.check_backend(sc.get("churn"), "mlx5")
    with pytest.raises(sc.ScenarioError, match="no real-time implementation"):
        sc.check_backend(sc.get("multicast"), "mlx5")
    # No delay or loss of their own: the bulk matrix defaults to none.
    assert sc.get("tcp_bulk").matrix([], "rxe") == [
        {"rtt_us": 0, "loss": 0.0, "duration_s": 2.0, "profile": ""}]


def test_where_the_device_is_each_end_gets_its_device_and_address(monkeypatch):
    monkeypatch.setenv("SHUNT_HIL", "rxe")
    monkeypatch.setenv("SHUNT_HIL_CLIENT_DEVICE", "verbs:rxe0,gid=1")
    ctx = hil.context("rxe", {"lib": sys.executable})
    assert isinstance(ctx, hil.DeviceContext)
    with ctx.topology(env={"SHUNT_PROFILE": "latency"}) as (server, client):
        assert server.ip == "10.9.0.1" and client.ip == "10.9.0.2"
        assert server.env["SHUNT_DEVICE"] == "verbs:rxe0"
        assert client.env["SHUNT_DEVICE"] == "verbs:rxe0,gid=1"
        assert client.env["SHUNT_IPV4"] == "10.9.0.2/24"
        assert client.env["LD_PRELOAD"] == str(pathlib.Path(sys.executable).resolve())
        assert server.env["SHUNT_PROFILE"] == "latency"
    with pytest.raises(sc.ScenarioError, match="no delay or loss"):
        with ctx.topology(rtt_us=100):
            pass


def test_a_job_writes_one_line_per_run_and_errors_come_back(tmp_path, monkeypatch):
    # A point the device cannot run (a delay on rxe) comes back as an error line, not a crash.
    monkeypatch.setenv("SHUNT_PRELOAD_LIB", sys.executable)
    job = {"scenario": "tcp_bulk", "backend": "rxe", "repeat": 2, "commit": "abc",
           "points": [{"rtt_us": 100.0, "loss": 0.0, "duration_s": 1.0, "profile": ""}]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    rc = hil.run_job(str(tmp_path / "job.json"), str(tmp_path / "r.jsonl"))
    assert rc == 1
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["point"] == 0 for x in lines)
    got, errors = hil.read_results(tmp_path / "r.jsonl", job["points"], "test")
    assert got == [] and len(errors) == 2 and "no delay or loss" in errors[0]
    # A Result line comes back as a Result with its point's index.
    r = {"scenario": "udp_pingpong", "backend": "rxe", "params": {"size": 64},
         "metrics": {"rtt_p50_ns": 1.0}, "time_kind": "real", "point": 0}
    (tmp_path / "ok.jsonl").write_text(json.dumps(r) + "\nnot json\n")
    got, errors = hil.read_results(tmp_path / "ok.jsonl", [{"size": 64}], "test")
    assert [(i, x.metrics) for i, x in got] == [(0, {"rtt_p50_ns": 1.0})]
    assert len(errors) == 1 and "not JSON" in errors[0]
