"""The benchmark: every workload runs to completion on both implementations
and on the no-Python limit program, and the driver prints the A/A and limit
columns. Numbers are not judged here (they are wall-clock times on a shared
machine); that each measurement did real work is."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import swiftsocket
from swiftsocket import _benchworker

TIME_LIMIT = 120
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = sorted(_benchworker.WORKLOADS)
# Workloads that only Python has: the limit program answers them with exit status 2.
PYTHON_ONLY = {"tcp-pingpong-poll-busy", "asyncio-echo", "asyncio-echo-busy"}


def run(cmd, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=TIME_LIMIT, stdin=subprocess.DEVNULL, **kwargs)


def check_result(result, workload):
    assert result["workload"] == workload
    assert result["ops"] > 0 and result["seconds"] > 0
    assert result["rate"] == pytest.approx(result["ops"] / result["seconds"])


@pytest.mark.parametrize("impl", ["stdlib", "swiftsocket"])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_runs(impl, workload):
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(swiftsocket.__file__)))
    proc = run([sys.executable, _benchworker.__file__, impl, workload, "--duration", "0.02",
                "--pkg-root", pkg_root])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    check_result(result, workload)
    assert result["impl"] == impl
    assert result["backend"].startswith("swiftsocket (" if impl == "swiftsocket" else "_socket (")


def test_driver_prints_the_aa_band():
    proc = run([sys.executable, "-m", "swiftsocket", "bench", "--rounds", "2", "--duration", "0.02",
                "--aa", "--no-limit", "--workloads", "create-close,udp-pingpong"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.startswith("workload"))
    assert header.split()[-2:] == ["swiftsocket/stdlib", "A/A"]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("socket() + close()", "UDP 1-byte"))]
    assert len(rows) == 2 and all(row.rstrip().endswith("x") for row in rows)


@pytest.fixture(scope="module")
def limit_exe():
    if not os.path.isfile(os.path.join(SOURCE, "Package.swift")):
        pytest.skip("not a source tree: the limit program is built from the sources")
    if not (shutil.which("swift") or os.access("/opt/swift/usr/bin/swift", os.X_OK)):
        pytest.skip("no Swift toolchain to build swiftsocket-limit")
    from swiftsocket.__main__ import build_limit
    exe = build_limit(SOURCE)
    assert exe, "swiftsocket-limit did not build"
    return exe


@pytest.mark.parametrize("workload", WORKLOADS)
def test_limit_runs(limit_exe, workload):
    proc = run([limit_exe, workload, "--duration", "0.02"])
    if workload in PYTHON_ONLY:
        assert proc.returncode == 2 and "usage" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    check_result(result, workload)
    assert result["impl"] == "limit"
