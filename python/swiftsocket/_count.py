"""``python -m swiftsocket bench --count``: instructions and heap allocations
per operation, stdlib ``_socket`` against swiftsocket, counted by valgrind.

Wall-clock rates on a shared machine move by tens of percent from run to run;
instruction counts do not move at all, so this mode can gate CI.  Per
implementation it runs ``_countworker.py`` under valgrind twice:

- callgrind (default allocator) for user-space instructions;
- callgrind under ``PYTHONMALLOC=malloc`` (so Python objects reach malloc too)
  for heap allocations: the calls to malloc, calloc, realloc and
  posix_memalign (and kin) made from outside the allocator.  That is the
  number memcheck's "total heap usage: N allocs" counts; ``--memcheck``
  measures it with memcheck itself instead, one process per operation and
  loop size (slow, for cross-checking).

Every operation runs WARM untimed iterations, then N1, then N2; each count is
(count over N2 iterations - count over N1) / (N2 - N1), so start-up, set-up and
the loop's entry and exit cancel out.  The worker runs with the garbage
collector off and ``PYTHONHASHSEED=0``: the counts are identical run to run.
Ratio = stdlib / swiftsocket instructions: above 1.00, swiftsocket does less.

This process never imports ``socket`` or ``_socket``.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

from . import _countworker as worker_mod

FULL = (1000, 5000)
QUICK = (200, 1000)
WARM = 200
IMPLS = ("stdlib", "swiftsocket")
# What memcheck counts as an allocation (operator new and strdup call malloc).
ALLOC_FUNCS = frozenset(("malloc", "calloc", "realloc", "reallocarray", "memalign",
                         "posix_memalign", "aligned_alloc", "valloc", "pvalloc"))
# Calls made by the allocator itself are part of one allocation: realloc(NULL)
# calls malloc, posix_memalign with a small alignment calls malloc via
# _mid_memalign.
ALLOCATOR_INTERNAL = ("_mid_memalign", "_int_", "__libc_")

NO_VALGRIND = """\
swiftsocket bench --count: valgrind was not found on PATH.
The counting mode runs every measurement under valgrind (callgrind, and
memcheck for --memcheck). Install it and run again:
    sudo apt-get install valgrind        (Debian, Ubuntu)
    sudo dnf install valgrind            (Fedora)"""


class CountError(RuntimeError):
    pass


def clean_env(allocator):
    """The worker's whole environment: a fixed hash seed and the allocator
    wanted ("" = the interpreter's default), nothing else. Inherited
    variables would change the counts: glibc's getenv() walks the whole
    environment (getnameinfo calls it), and the environment's size shifts
    the alignment of the stack buffers that memcpy and strlen work on."""
    env = {"PYTHONHASHSEED": "0"}
    if allocator:
        env["PYTHONMALLOC"] = allocator
    return env


def no_aslr_prefix():
    """`setarch ARCH -R`, when it works: with address randomization on,
    pointer-keyed hashing and buffer alignment can differ run to run."""
    setarch = shutil.which("setarch")
    if setarch:
        cmd = [setarch, platform.machine(), "-R"]
        try:
            if subprocess.run(cmd + ["true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return cmd
        except OSError:
            pass
    return []


def worker_cmd(impl, n1, n2, names):
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return ([sys.executable, worker_mod.__file__, impl, str(n1), str(n2), str(WARM)]
            + list(names) + ["--pkg-root", pkg_root])


_PREFIX: list[str] = []   # setarch -R when it works (main sets it)


def run_valgrind(tool_args, cmd, env, log, timeout):
    try:
        proc = subprocess.run(_PREFIX + [shutil.which("valgrind"), "--log-file=" + log]
                              + tool_args + cmd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CountError("valgrind timed out after %d s: %s" % (timeout, " ".join(cmd[:3])))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        try:
            with open(log) as fh:
                tail += fh.read().strip().splitlines()[-3:]
        except OSError:
            pass
        raise CountError("exit status %s: %s" % (proc.returncode, " | ".join(tail) or "no output"))
    return json.loads(lines[-1])


_NAME_RE = re.compile(r"\((\d+)\)(?: (.*))?$")


def part_totals(path):
    """(instructions, allocation calls) of one callgrind output part."""
    instructions = None
    allocs = 0
    names = {}
    caller = callee = None

    def resolve(value):
        m = _NAME_RE.match(value)
        if not m:                       # uncompressed name
            return value
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "")

    def base(name):                     # "malloc'2" is malloc at recursion depth 2
        return name.split("'", 1)[0]

    with open(path) as fh:
        for line in fh:
            if line.startswith("fn="):
                caller = base(resolve(line[3:].rstrip("\n")))
            elif line.startswith("cfn="):
                callee = base(resolve(line[4:].rstrip("\n")))
            elif line.startswith("calls="):
                if (callee in ALLOC_FUNCS and caller not in ALLOC_FUNCS
                        and not caller.startswith(ALLOCATOR_INTERNAL)):
                    allocs += int(line[6:].split()[0])
            elif line.startswith(("summary:", "totals:")) and instructions is None:
                instructions = int(line.split()[1])
    if instructions is None:
        raise CountError("no instruction total in %s" % path)
    return instructions, allocs


def callgrind_job(impl, kind, names, n1, n2, workdir, timeout):
    """One callgrind process over all `names`; returns (per-op value dict, worker errors)."""
    out = os.path.join(workdir, "%s-%s.out" % (impl, kind))
    env = clean_env("malloc" if kind == "allocs" else "")
    result = run_valgrind(["--tool=callgrind", "--dump-before=getppid",
                           "--callgrind-out-file=" + out],
                          worker_cmd(impl, n1, n2, names), env, out + ".log", timeout)
    parts = sorted((int(f.rsplit(".", 1)[1]) for f in os.listdir(workdir)
                    if f.startswith(os.path.basename(out) + ".") and f.rsplit(".", 1)[1].isdigit()))
    if parts != list(range(1, 3 * len(names) + 1)):
        raise CountError("%s: expected %d callgrind parts, found %d (did something else call "
                         "getppid?)" % (out, 3 * len(names), len(parts)))
    values = {}
    for k, name in enumerate(names):
        if name in result["errors"]:
            continue
        i1, a1 = part_totals("%s.%d" % (out, 3 * k + 2))
        i2, a2 = part_totals("%s.%d" % (out, 3 * k + 3))
        values[name] = ((i2 - i1) if kind == "instr" else (a2 - a1)) / (n2 - n1)
    return values, result


_HEAP_RE = re.compile(r"total heap usage: ([\d,]+) allocs")


def memcheck_job(impl, name, n1, n2, workdir, timeout):
    """Allocations per operation of one op, by memcheck's total at N1 and at N2."""
    totals = []
    for n in (n1, n2):
        log = os.path.join(workdir, "%s-memcheck-%d-%d.log" % (impl, worker_mod.OPS.index(
            worker_mod.OPS_BY_NAME[name]), n))
        result = run_valgrind(["--tool=memcheck", "--leak-check=no"],
                              worker_cmd(impl, n, 0, [name]), clean_env("malloc"), log, timeout)
        if name in result["errors"]:
            return None, result
        with open(log) as fh:
            m = _HEAP_RE.search(fh.read())
        if not m:
            raise CountError("no 'total heap usage' line in %s" % log)
        totals.append(int(m.group(1).replace(",", "")))
    return {name: (totals[1] - totals[0]) / (n2 - n1)}, result


def read_known(path):
    """{operation: reason} from a known-open file: `operation | reason` per line."""
    known = {}
    with open(path) as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition("|")
            known[name.strip()] = reason.strip()
    return known


def fmt_count(value, places):
    if value is None:
        return "-"
    if abs(value - round(value)) < 0.005:
        return "{:,}".format(int(round(value)))
    return "{:,.{}f}".format(value, places)


def verdicts(row):
    """What fails (CI) and what misses its target, for one complete row
    (allocations None: not counted)."""
    fails = []
    if round(row["ratio"], 2) < 1.00:
        fails.append("ratio < 1.00")
    if row["allocs_stdlib"] is not None and \
            round(row["allocs_swiftsocket"], 2) > round(row["allocs_stdlib"], 2):
        fails.append("more allocs")
    below = round(row["ratio"], 2) < row["target"]
    return fails, below


def count(args):
    if shutil.which("valgrind") is None:
        print(NO_VALGRIND, file=sys.stderr)
        return 2
    n1, n2 = args.n
    _PREFIX[:] = no_aslr_prefix()
    names = [op.name for op in worker_mod.OPS
             if not args.op or any(fnmatch.fnmatchcase(op.name, p) for p in args.op)]
    if not names:
        print("no operation matches %s" % " ".join(args.op), file=sys.stderr)
        return 2
    known = read_known(args.known) if args.known else {}
    unknown = sorted(set(known) - set(worker_mod.OPS_BY_NAME))
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    # A free-threaded CPython refuses PYTHONMALLOC=malloc (objects must come
    # from mimalloc), so there only instructions are counted.
    count_allocs = not free_threaded
    print("swiftsocket bench --count: %d operation(s), N1=%d N2=%d (warm-up %d), "
          "%d valgrind job(s) at a time" % (len(names), n1, n2, WARM, args.jobs))
    print("python %s%s (%s) on %s %s; allocations by %s; address randomization %s"
          % (platform.python_version(), " (free-threaded)" if free_threaded else "",
             sys.executable, platform.system(), platform.machine(),
             ("memcheck" if args.memcheck else "callgrind (PYTHONMALLOC=malloc)") if count_allocs
             else "nothing (a free-threaded build has no PYTHONMALLOC=malloc)",
             "off (setarch -R)" if _PREFIX else "on (no working setarch)"))
    print(flush=True)

    workdir = args.keep or tempfile.mkdtemp(prefix="swiftsocket-count-")
    os.makedirs(workdir, exist_ok=True)
    timeout = max(600, 20 * len(names))
    t_start = time.monotonic()
    values = {(impl, kind): {} for impl in IMPLS for kind in ("instr", "allocs")}
    worker_errors = {}
    job_errors = []
    backends = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {}
            for impl in IMPLS:
                futures[pool.submit(callgrind_job, impl, "instr", names, n1, n2,
                                    workdir, timeout)] = (impl, "instr")
                if not count_allocs:
                    pass
                elif args.memcheck:
                    for name in names:
                        futures[pool.submit(memcheck_job, impl, name, n1, n2,
                                            workdir, timeout)] = (impl, "allocs")
                else:
                    futures[pool.submit(callgrind_job, impl, "allocs", names, n1, n2,
                                        workdir, timeout)] = (impl, "allocs")
            for fut in concurrent.futures.as_completed(futures):
                impl, kind = futures[fut]
                try:
                    vals, result = fut.result()
                except CountError as exc:
                    job_errors.append("%s %s: %s" % (impl, kind, exc))
                    print("  %s %s FAILED: %s" % (impl, kind, exc), file=sys.stderr, flush=True)
                    continue
                values[(impl, kind)].update(vals or {})
                backends[impl] = result["backend"]
                for name, err in result["errors"].items():
                    worker_errors.setdefault((impl, name), err)
                if args.verbose or kind == "instr" or not args.memcheck:
                    print("  %-12s %-7s done at %5.1f s" % (impl, kind, time.monotonic() - t_start),
                          file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t_start

    rows = []
    for name in names:
        op = worker_mod.OPS_BY_NAME[name]
        row = {"operation": name, "family": op.family, "target": op.target}
        for impl in IMPLS:
            row["instr_" + impl] = values[(impl, "instr")].get(name)
            row["allocs_" + impl] = values[(impl, "allocs")].get(name)
        complete = all(row[k] is not None for k in
                       ("instr_stdlib", "instr_swiftsocket")
                       + (("allocs_stdlib", "allocs_swiftsocket") if count_allocs else ()))
        row["ratio"] = (row["instr_stdlib"] / row["instr_swiftsocket"]
                        if complete and row["instr_swiftsocket"] else None)
        errs = ["%s: %s" % (impl, worker_errors[(impl, name)]) for impl in IMPLS
                if (impl, name) in worker_errors]
        if row["ratio"] is None:
            row["fails"], row["below_target"] = ["not measured"] + errs, None
        else:
            row["fails"], row["below_target"] = verdicts(row)
        row["known"] = known.get(name)
        rows.append(row)

    head = ("operation", "stdlib instr/op", "swiftsocket instr/op", "ratio",
            "allocs/op stdlib -> swiftsocket", "target", "")
    cells = []
    for r in rows:
        if r["fails"]:
            status = ("known: " if r["known"] is not None else "FAIL: ") + ", ".join(r["fails"])
        elif r["below_target"]:
            status = "below target"
        else:
            status = "ok"
        cells.append((r["operation"], fmt_count(r["instr_stdlib"], 1),
                       fmt_count(r["instr_swiftsocket"], 1),
                       "%.2f" % r["ratio"] if r["ratio"] is not None else "-",
                       "%s -> %s" % (fmt_count(r["allocs_stdlib"], 2),
                                     fmt_count(r["allocs_swiftsocket"], 2))
                       if count_allocs else "n/a",
                       "%.2f" % r["target"], status))
    widths = [max(len(c[i]) for c in cells + [head]) for i in range(len(head))]
    fmt = "  ".join("%-*s" if i in (0, len(head) - 1) else "%*s" for i in range(len(head)))
    print((fmt % tuple(x for pair in zip(widths, head) for x in pair)).rstrip())
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print((fmt % tuple(x for pair in zip(widths, c) for x in pair)).rstrip())
    print("  ".join("-" * w for w in widths))
    print("Ratio = stdlib / swiftsocket instructions per operation (user space, callgrind):")
    print("above 1.00, swiftsocket executes fewer instructions. Allocations: heap blocks per")
    print("operation with PYTHONMALLOC=malloc. Each figure = (count at N2 - count at N1) / (N2 - N1).")
    for impl in IMPLS:
        if impl in backends:
            print("%s ran on %s" % (impl, backends[impl]))
    print("total time %.1f s" % total)
    if args.keep:
        print("callgrind output kept in %s: operation k (from 0, in table order) has its N1 "
              "loop in <impl>-instr.out.<3k+2> and N2 loop in .<3k+3>; e.g. "
              "callgrind_annotate --inclusive=yes %s/swiftsocket-instr.out.3" % (workdir, workdir))

    failing = [r for r in rows if r["fails"] and r["known"] is None]
    known_failing = [r for r in rows if r["fails"] and r["known"] is not None]
    fixed = [r for r in rows if not r["fails"] and r["known"] is not None]
    below = [r for r in rows if not r["fails"] and r["below_target"]]
    if below:
        print("below target (not a CI failure): %s" % "; ".join(
            "%s %.2f < %.2f" % (r["operation"], r["ratio"], r["target"]) for r in below))
    if known_failing:
        print("known open (%s): %s" % (args.known, "; ".join(
            "%s (%s)" % (r["operation"], ", ".join(r["fails"])) for r in known_failing)))
    if fixed:
        print("listed as known in %s but now meeting 1.00 and the stdlib's allocations, "
              "remove: %s" % (args.known, "; ".join(r["operation"] for r in fixed)))
    if unknown:
        print("%s names operations that do not exist: %s" % (args.known, "; ".join(unknown)))
    for err in job_errors:
        print("FAILED: %s" % err)
    for (impl, name), err in sorted(worker_errors.items()):
        print("FAILED: %s with %s: %s" % (name, impl, err))
    if failing and args.check:
        print("--check: %d operation(s) fail: %s" % (len(failing), "; ".join(
            "%s (%s)" % (r["operation"], ", ".join(r["fails"])) for r in failing)))

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"python": platform.python_version(), "free_threaded": free_threaded,
                       "executable": sys.executable, "n1": n1, "n2": n2, "warm": WARM,
                       "allocations_by": ("memcheck" if args.memcheck else "callgrind")
                       if count_allocs else None,
                       "backends": backends, "seconds": total, "results": rows,
                       "errors": job_errors + ["%s with %s: %s" % (n, i, e)
                                               for (i, n), e in sorted(worker_errors.items())]},
                      fh, indent=2)
    if job_errors or worker_errors:
        return 1
    if args.check and failing:
        return 1
    return 0


def main(argv):
    ap = argparse.ArgumentParser(
        prog="python -m swiftsocket bench --count",
        description="Count user-space instructions (callgrind) and heap allocations per "
                    "operation, stdlib _socket against swiftsocket, under valgrind.")
    ap.add_argument("--quick", action="store_true",
                    help="small form: N1=%d, N2=%d (default %d, %d)" % (QUICK + FULL))
    ap.add_argument("--n", type=int, nargs=2, metavar=("N1", "N2"),
                    help="the two loop sizes (N2 > N1)")
    ap.add_argument("--op", action="append", metavar="PATTERN",
                    help="only operations whose name matches this shell pattern (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the operations and exit")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a ratio is below 1.00 or swiftsocket allocates more than the "
                         "stdlib, for an operation not in --known")
    ap.add_argument("--known", metavar="FILE",
                    help="known-open exceptions for --check: one `operation | reason` a line")
    ap.add_argument("--memcheck", action="store_true",
                    help="count allocations with memcheck, one process per operation and size "
                         "(slow; a cross-check of the callgrind count)")
    ap.add_argument("--jobs", type=int, default=2, help="valgrind processes at a time (default 2)")
    ap.add_argument("--keep", metavar="DIR", help="keep valgrind's output in DIR")
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for op in worker_mod.OPS:
            print("%-10s %.2f  %s" % (op.family, op.target, op.name))
        return 0
    if args.n is None:
        args.n = QUICK if args.quick else FULL
    if not 0 <= args.n[0] < args.n[1]:
        ap.error("--n takes N1 < N2")
    args.jobs = max(1, min(args.jobs, 16))
    return count(args)
