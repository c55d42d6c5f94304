"""The counting bench (``python -m swiftsocket bench --count``).

Every operation of the table must run, and leave its sockets as it found
them, on both implementations (plain runs of the worker, no valgrind). Under
valgrind, a small count on two operations must give sane numbers and the very
same numbers twice: CI gates on them."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from swiftsocket import _count, _countworker

TIME_LIMIT = 150   # seconds, for any one command
VALGRIND = shutil.which("valgrind")
needs_valgrind = pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed "
                                    "(apt-get install valgrind)")


def run(args, env=None):
    env = dict(os.environ if env is None else env)
    env.pop("SWIFTSOCKET", None)
    return subprocess.run([sys.executable] + args, capture_output=True, text=True,
                          timeout=TIME_LIMIT, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("impl", _countworker.IMPLS)
def test_every_operation_runs(impl):
    names = [op.name for op in _countworker.OPS]
    proc = run([_countworker.__file__, impl, "3", "5", "2"] + names)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["backend"].split()[0] == ("_socket" if impl == "stdlib" else "swiftsocket")


def test_table_is_well_formed():
    names = [op.name for op in _countworker.OPS]
    assert len(names) == len(set(names)) >= 25
    families = {op.family for op in _countworker.OPS}
    assert families == set(_countworker.TARGETS)
    assert all(op.target >= 1.00 for op in _countworker.OPS)


def test_known_file_and_verdicts(tmp_path):
    known = tmp_path / "known.txt"
    known.write_text("# comment\n\nfileno | being fixed\ngethostname|x\n")
    assert _count.read_known(str(known)) == {"fileno": "being fixed", "gethostname": "x"}
    row = {"ratio": 0.996, "target": 1.00, "allocs_stdlib": 1.0, "allocs_swiftsocket": 1.001}
    assert _count.verdicts(row) == ([], False)      # both round to the stdlib's figures
    row = {"ratio": 1.05, "target": 1.10, "allocs_stdlib": 1.0, "allocs_swiftsocket": 2.0}
    assert _count.verdicts(row) == (["more allocs"], True)
    row = {"ratio": 0.99, "target": 1.00, "allocs_stdlib": 3.0, "allocs_swiftsocket": 2.0}
    assert _count.verdicts(row) == (["ratio < 1.00"], True)


def test_without_valgrind_says_how_to_install(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))     # nothing on PATH
    proc = run(["-m", "swiftsocket", "bench", "--count", "--quick"], env=env)
    assert proc.returncode == 2
    assert "apt-get install valgrind" in proc.stderr


@needs_valgrind
@pytest.mark.watchdog(2 * TIME_LIMIT + 30)
def test_counts_are_sane_and_deterministic(tmp_path):
    ops = ["fileno", "send+recv(1)"]
    results = []
    for i in range(2):
        out = tmp_path / ("run%d.json" % i)
        args = ["-m", "swiftsocket", "bench", "--count", "--n", "40", "120", "--json", str(out)]
        for op in ops:
            args += ["--op", op]
        proc = run(args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results.append(json.loads(out.read_text()))
    first, second = results
    assert [r["operation"] for r in first["results"]] == ops
    assert first["backends"]["stdlib"].startswith("_socket ")
    assert first["backends"]["swiftsocket"].startswith("swiftsocket ")
    keys = ("instr_stdlib", "instr_swiftsocket", "allocs_stdlib", "allocs_swiftsocket")
    for a, b in zip(first["results"], second["results"]):
        assert [a[k] for k in keys] == [b[k] for k in keys], a["operation"]
        # a Python-level call costs hundreds of instructions, not nothing and
        # not the start-up's millions
        assert 50 < a["instr_stdlib"] < 50_000
        assert 50 < a["instr_swiftsocket"] < 50_000
        if first["allocations_by"] is None:     # free-threaded: not counted
            assert a["allocs_stdlib"] is None and a["allocs_swiftsocket"] is None
            continue
        for k in ("allocs_stdlib", "allocs_swiftsocket"):
            assert 0 <= a[k] < 100
            assert a[k] == pytest.approx(round(a[k]), abs=0.05)   # whole blocks per call
    fileno, pingpong = first["results"]
    assert pingpong["instr_stdlib"] > fileno["instr_stdlib"]
    if first["allocations_by"] is None:
        return
    # fileno() allocates nothing on either side (the small int is cached);
    # recv(1) must return a new bytes object on both
    assert fileno["allocs_stdlib"] == fileno["allocs_swiftsocket"] == 0
    assert pingpong["allocs_stdlib"] >= 1 and pingpong["allocs_swiftsocket"] >= 1
