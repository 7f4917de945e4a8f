"""The hardware-in-the-loop backends (docs/hardware.md): rxe and mlx5.

  rxe   the points run inside a qemu guest with Debian's kernel and soft-RoCE (hil/rxe/rig.sh):
        sockperf, iperf3 and the churn client, server and client each under the preload library
        on the guest's rxe0 (SHUNT_DEVICE=verbs:...); one guest boot per `scenario run`.
  mlx5  the points run on the ConnectX hosts of an Ansible inventory (hil/ansible/site.yml:
        deploy, preflight, run, fetch), server and client under the library on two ports of
        each host (SHUNT_DEVICE=mlx5:...).

Both hand the whole matrix to the place where the device is (a job: scenario, backend, points,
repeat, options); there `python3 -m shunt.scenarios.hil run-job JOB RESULTS` runs each point
through the ordinary scenario runner with SHUNT_HIL=rxe|mlx5 set, so that backends.context()
gives a DeviceContext: the real-time runner with both ends on the SHUNT_DEVICE values the rig
or the inventory names. The Results (JSON lines) come back and are stored by the caller, as for
any backend.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Iterator

from . import scenario as sc
from .backends import RealContext, Side, find_library
from .result import Result
from .scenario import BackendUnavailable, ScenarioError

# Set where the device is: "rxe" inside the soft-RoCE guest, "mlx5" on a ConnectX host.
INSIDE_ENV = "SHUNT_HIL"

# Each end's SHUNT_DEVICE and SHUNT_IPV4 where the device is (the rig and the playbook set them;
# these are the soft-RoCE guest's defaults: one rxe0 carries both ends, rxe loops it back).
DEFAULTS = {
    "rxe": {"SHUNT_HIL_SERVER_DEVICE": "verbs:rxe0", "SHUNT_HIL_CLIENT_DEVICE": "verbs:rxe0",
            "SHUNT_HIL_SERVER_IPV4": "10.9.0.1/24", "SHUNT_HIL_CLIENT_IPV4": "10.9.0.2/24"},
    "mlx5": {"SHUNT_HIL_SERVER_DEVICE": "mlx5:mlx5_0", "SHUNT_HIL_CLIENT_DEVICE": "mlx5:mlx5_1",
             "SHUNT_HIL_SERVER_IPV4": "10.77.0.1/24", "SHUNT_HIL_CLIENT_IPV4": "10.77.0.2/24"},
}

# Seconds a guest needs before and after the points (boot to rxe0 ACTIVE, power off) under
# emulation, and what each point may take on top of its duration.
RXE_BOOT_S = 90
POINT_EXTRA_S = 90


def source_dir() -> pathlib.Path:
    s = sc.source_dir()
    if s is None or not (s / "hil").is_dir():
        raise BackendUnavailable("the hil/ folder of the source tree is not found (set "
                                 "SHUNT_SOURCE_DIR to the checkout)")
    return s


def python_path() -> pathlib.Path:
    """The folder holding the `shunt` package this module was imported from."""
    import shunt  # noqa: PLC0415
    return pathlib.Path(os.path.abspath(list(shunt.__path__)[0])).parent


def inside(backend: str) -> bool:
    return os.environ.get(INSIDE_ENV) == backend


def context(backend: str, options: dict[str, Any]) -> Any:
    """Where the device is: a DeviceContext that runs the point. Elsewhere: a check that the
    backend can be reached (the rig's programs, an inventory), for an early clear error."""
    if inside(backend):
        return DeviceContext(backend, options)
    if backend == "rxe":
        return RxeRig(options)
    return Mlx5Hosts(options)


# ----- Where the device is

class DeviceContext(RealContext):
    """The real-time runner with server and client under the preload library, each on the
    SHUNT_DEVICE and SHUNT_IPV4 given by SHUNT_HIL_{SERVER,CLIENT}_{DEVICE,IPV4}."""

    def __init__(self, backend: str, options: dict[str, Any]):
        super().__init__(backend, options)
        d = DEFAULTS[backend]
        self.ends = {k: os.environ.get(k) or v for k, v in d.items()}

    @contextlib.contextmanager
    def topology(self, rtt_us: float = 0, loss: float = 0,
                 env: dict[str, str] | None = None) -> Iterator[tuple[Side, Side]]:
        if rtt_us or loss:
            raise ScenarioError(f"{self.backend}: the path has no delay or loss of its own: give "
                                f"rtt_us=0 and loss=0")
        pre = {"LD_PRELOAD": str(self.lib), **(env or {})}
        e = self.ends
        sip = e["SHUNT_HIL_SERVER_IPV4"]
        cip = e["SHUNT_HIL_CLIENT_IPV4"]
        yield (Side(sip.split("/")[0], env={**pre, "SHUNT_DEVICE": e["SHUNT_HIL_SERVER_DEVICE"],
                                             "SHUNT_IPV4": sip}),
               Side(cip.split("/")[0], env={**pre, "SHUNT_DEVICE": e["SHUNT_HIL_CLIENT_DEVICE"],
                                             "SHUNT_IPV4": cip}))


def run_job(job_path: str, results_path: str) -> int:
    """Runs a job's points here (where the device is), one JSON line per run in results_path:
    a Result with "point" (its index in the job), or {"point": i, "error": message}."""
    with open(job_path) as f:
        job = json.load(f)
    backend = job["backend"]
    os.environ[INSIDE_ENV] = backend
    if job.get("commit"):
        os.environ.setdefault("SHUNT_COMMIT", job["commit"])
    options = dict(job.get("options") or {})
    failed = 0
    with open(results_path, "a") as out:
        for i, point in enumerate(job["points"]):
            for _ in range(int(job.get("repeat", 1))):
                t0 = time.monotonic()
                d = sc.run_point_json(job["scenario"], backend, point, options)
                d["point"] = i
                failed += "error" in d
                out.write(json.dumps(d) + "\n")
                out.flush()
                print(f"hil: point {i} {json.dumps(point, sort_keys=True)}: "
                      f"{'error: ' + d['error'] if 'error' in d else 'ok'} "
                      f"({time.monotonic() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


def read_results(path: pathlib.Path, points: list[dict[str, Any]], where: str
                 ) -> tuple[list[tuple[int, Result]], list[str]]:
    results: list[tuple[int, Result]] = []
    errors: list[str] = []
    if not path.is_file():
        return results, errors
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            i = int(d.pop("point"))
        except (ValueError, KeyError, TypeError):
            errors.append(f"{where}: a result line is not JSON: {line[:200]}")
            continue
        if "error" in d:
            errors.append(f"point {points[i]} ({where}): {d['error']}")
        else:
            results.append((i, Result.from_json(d)))
    return results, errors


def _job(name: str, backend: str, points: list[dict[str, Any]], repeat: int,
         options: dict[str, Any]) -> dict[str, Any]:
    return {"scenario": name, "backend": backend, "points": points, "repeat": repeat,
            "commit": sc.commit(),
            "options": {k: v for k, v in options.items() if k in ("limit_s",)}}


def _limit_s(points: list[dict[str, Any]], repeat: int) -> int:
    return int(sum(float(p.get("duration_s", 2)) + POINT_EXTRA_S for p in points) * repeat)


def run_matrix(name: str, backend: str, points: list[dict[str, Any]], repeat: int,
               options: dict[str, Any], quiet: bool = False
               ) -> tuple[list[Result], list[str]]:
    """Runs the points where the device is: (Results in point order, error messages)."""
    if inside(backend):
        raise ScenarioError(f"run_matrix of backend {backend} is the controller's")
    runner = RxeRig(options) if backend == "rxe" else Mlx5Hosts(options)
    got, errors = runner.run(_job(name, backend, points, repeat, options), quiet)
    got.sort(key=lambda t: t[0])
    return [r for _, r in got], errors


# ----- rxe: the soft-RoCE guest

class RxeRig:
    """Runs a job in one soft-RoCE guest (hil/rxe/rig.sh run)."""

    def __init__(self, options: dict[str, Any]):
        self.options = options
        self.rig = source_dir() / "hil" / "rxe" / "rig.sh"
        for p in ("qemu-system-x86_64", "busybox", "cpio", "depmod"):
            if shutil.which(p) is None:
                raise BackendUnavailable(f"backend rxe needs {p} (Debian: qemu-system-x86 "
                                         f"busybox-static kmod cpio; .ci/setup installs them)")
        self.lib = find_library(options)
        self.pythonpath = python_path()

    def run(self, job: dict[str, Any], quiet: bool) -> tuple[list[tuple[int, Result]], list[str]]:
        limit = int(os.environ.get("SHUNT_HIL_TIMEOUT") or
                    RXE_BOOT_S + _limit_s(job["points"], job["repeat"]))
        work = pathlib.Path(os.environ.get("SHUNT_HIL_WORK") or
                            source_dir() / "build" / "hil")
        (work / "runs").mkdir(parents=True, exist_ok=True)
        out = pathlib.Path(tempfile.mkdtemp(prefix=f"scenario-{job['scenario']}-",
                                            dir=work / "runs"))
        (out / "job.json").write_text(json.dumps(job, indent=1))
        script = (f"export PYTHONPATH={shlex.quote(str(self.pythonpath))} "
                  f"PYTHONDONTWRITEBYTECODE=1 SHUNT_PRELOAD_LIB={shlex.quote(str(self.lib))}\n"
                  f"exec /usr/bin/python3 -m shunt.scenarios.hil run-job job.json results.jsonl\n")
        (out / "scenario.sh").write_text(script)
        argv = ["bash", str(self.rig), "run", "--timeout", str(limit), "--out", str(out)]
        for k, v in os.environ.items():   # the caller's choice of devices and addresses
            if k.startswith("SHUNT_HIL_") and k not in ("SHUNT_HIL_WORK", "SHUNT_HIL_TIMEOUT",
                                                        "SHUNT_HIL_INVENTORY",
                                                        "SHUNT_HIL_ANSIBLE_ARGS"):
                argv += ["--env", f"{k}={v}"]
        if quiet:
            argv.append("--quiet")
        argv.append(str(out / "scenario.sh"))
        env = {**os.environ, "SHUNT_HIL_WORK": str(work)}
        try:
            cp = subprocess.run(argv, stdout=sys.stderr if not quiet else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env,
                                timeout=limit + 600)  # + a first image build
        except subprocess.TimeoutExpired:
            return [], [f"rxe: the guest run did not end in {limit + 600} s (folder {out})"]
        got, errors = read_results(out / "results.jsonl", job["points"], "rxe guest")
        if cp.returncode not in (0, 1) or not (got or errors):
            tail = " ".join((cp.stderr or "").strip().splitlines()[-3:])
            errors.append(f"rxe: the guest run ended with status {cp.returncode}: {tail} "
                          f"(console: {out / 'console.log'})")
        elif not errors:
            shutil.rmtree(out, ignore_errors=True)
        return got, errors


# ----- mlx5: ConnectX hosts through Ansible

def inventory(options: dict[str, Any]) -> str | None:
    return options.get("inventory") or os.environ.get("SHUNT_HIL_INVENTORY") or None


class Mlx5Hosts:
    """Runs a job on every host of an Ansible inventory (hil/ansible/site.yml)."""

    def __init__(self, options: dict[str, Any]):
        self.options = options
        inv = inventory(options)
        if not inv:
            raise BackendUnavailable(
                "backend mlx5 runs on ConnectX hosts named in an Ansible inventory: give "
                "--inventory FILE or SHUNT_HIL_INVENTORY=FILE (example: "
                "hil/ansible/inventory.example.yml; docs/hardware.md, \"ConnectX hosts\")")
        if not os.path.exists(inv):
            raise BackendUnavailable(f"backend mlx5: the inventory {inv} does not exist")
        if shutil.which("ansible-playbook") is None:
            raise BackendUnavailable("backend mlx5 needs ansible-playbook (Debian: ansible-core)")
        self.inventory = os.path.abspath(inv)
        self.playbook = source_dir() / "hil" / "ansible" / "site.yml"
        self.lib = find_library(options)

    def bundle(self, path: pathlib.Path) -> None:
        """What the hosts get: lib/libshunt.so, bin/shunt (if built), python/shunt (the package
        without the compiled module: the real-time runner does not need it)."""
        pkg = python_path() / "shunt"
        with tarfile.open(path, "w:gz") as t:
            t.add(str(self.lib), "lib/libshunt.so")
            cli = self.lib.parent.parent / "bin" / "shunt"
            if cli.is_file():
                t.add(str(cli), "bin/shunt")
            for f in sorted(pkg.glob("*.py")) + sorted(pkg.glob("*.pyi")):
                t.add(os.path.realpath(f), f"python/shunt/{f.name}")
            for f in sorted((pkg / "scenarios").glob("*.py")) + [pkg / "scenarios" / "baseline.json"]:
                if f.is_file():
                    t.add(os.path.realpath(f), f"python/shunt/scenarios/{f.name}")
            t.add(str(source_dir() / "hil" / "ansible" / "preflight.py"), "hil/preflight.py")

    def run(self, job: dict[str, Any], quiet: bool) -> tuple[list[tuple[int, Result]], list[str]]:
        limit = int(os.environ.get("SHUNT_HIL_TIMEOUT") or 300 + _limit_s(job["points"],
                                                                          job["repeat"]))
        with tempfile.TemporaryDirectory(prefix="shunt-hil-mlx5-") as tmp:
            t = pathlib.Path(tmp)
            (t / "job.json").write_text(json.dumps(job, indent=1))
            self.bundle(t / "bundle.tar.gz")
            (t / "results").mkdir()
            argv = ["ansible-playbook", "-i", self.inventory, str(self.playbook),
                    "-e", f"shunt_bundle={t / 'bundle.tar.gz'}",
                    "-e", f"shunt_job={t / 'job.json'}",
                    "-e", f"shunt_results={t / 'results'}",
                    "-e", f"shunt_run_timeout={_limit_s(job['points'], job['repeat'])}",
                    *shlex.split(os.environ.get("SHUNT_HIL_ANSIBLE_ARGS", ""))]
            try:
                cp = subprocess.run(argv, stdout=sys.stderr if not quiet else subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, timeout=limit,
                                    stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return [], [f"mlx5: ansible-playbook did not end in {limit} s"]
            got: list[tuple[int, Result]] = []
            errors: list[str] = []
            for f in sorted((t / "results").glob("*.jsonl")):
                g, e = read_results(f, job["points"], f"host {f.stem}")
                got += g
                errors += e
            if cp.returncode != 0:
                tail = " ".join((cp.stdout or "").strip().splitlines()[-5:]) if quiet else ""
                errors.append(f"mlx5: ansible-playbook ended with status {cp.returncode} (a "
                              f"host failed its preflight checks or its run){': ' + tail if tail else ''}")
            return got, errors


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 3 and argv[0] == "run-job":
        return run_job(argv[1], argv[2])
    print("usage: python3 -m shunt.scenarios.hil run-job JOB.json RESULTS.jsonl", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
