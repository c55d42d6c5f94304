"""Command line: ``python -m swiftsocket bench [--quick]``; also ``run`` (_run.py)
and ``doctor`` (_doctor.py).

Compares swiftsocket with the stdlib ``_socket`` in the same run.  Every
measurement runs in a fresh interpreter (``_benchworker.py``) that imports the
stdlib ``socket.py`` on top of one implementation; the implementations
alternate, with the first swapped every round (A B, B A, ...), and the median
of each is reported.

This process itself never imports ``socket`` or ``_socket``.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time

from . import _benchworker as worker_mod

DEFAULT_IMPLS = ("stdlib", "swiftsocket")
DEFAULT_WORKLOADS = ("tcp-pingpong", "tcp-pingpong-timeout", "tcp-pingpong-poll",
                     "tcp-pingpong-poll-busy", "unix-pingpong", "udp-pingpong",
                     "tcp-bulk", "create-close", "connect-accept", "socketpairs-500",
                     "asyncio-echo", "asyncio-echo-busy", "threads-1", "threads-2", "threads-4")


def run_one(impl, workload, duration, pkg_root, cpu, limit_exe=None):
    """Run one measurement in a fresh process; return its result dict, or
    None when the limit program has no such workload; raise on failure."""
    if impl == "limit":
        cmd = [limit_exe, workload, "--duration", repr(duration)]
    else:
        cmd = [sys.executable, worker_mod.__file__, impl, workload,
               "--duration", repr(duration), "--pkg-root", pkg_root]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=duration * 4 + 90,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError("timed out")
    if impl == "limit" and proc.returncode == 2:
        return None      # a workload only Python has (asyncio, a busy thread)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError("exit status %s: %s" % (proc.returncode, tail))
    return json.loads(lines[-1])


def build_limit(source):
    """Build swiftsocket-limit (Sources/swiftsocket-limit) from the source tree
    at `source`; return its path, or None with the reason printed."""
    manifest = os.path.join(source, "Package.swift")
    try:
        with open(manifest) as fh:
            if "swiftsocket-limit" not in fh.read():
                raise OSError
    except OSError:
        print("limit: no swiftsocket source tree at %s (run from the clone, or --limit-source DIR);"
              " the limit columns are left out" % os.path.abspath(source))
        return None
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    if not os.access(swift, os.X_OK):
        print("limit: no Swift toolchain to build swiftsocket-limit; the limit columns are left out")
        return None
    scratch = os.path.join(source, ".build-limit")
    cmd = [swift, "build", "-c", "release", "--product", "swiftsocket-limit",
           "--package-path", source, "--scratch-path", scratch, "-Xcc", "-D_GNU_SOURCE"]
    print("limit: building swiftsocket-limit (the same syscalls, no Python) ...", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    exe = os.path.join(scratch, "release", "swiftsocket-limit")
    if proc.returncode != 0 or not os.access(exe, os.X_OK):
        tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
        print("limit: the build failed; the limit columns are left out:\n" + tail)
        return None
    return exe


def fmt_rate(value):
    if value >= 100:
        return "{:,.0f}".format(value)
    return "{:,.1f}".format(value)


def spread(values):
    """Half the min..max range, as a percentage of the median."""
    if len(values) < 2:
        return ""
    med = statistics.median(values)
    if not med:
        return ""
    return "±%.0f%%" % (50.0 * (max(values) - min(values)) / med)


def bench(args):
    a_impl, b_impl = args.impls
    a, b = a_impl, b_impl
    if a == b:                           # A/A run, e.g. "stdlib,stdlib"
        a, b = a + "#1", b + "#2"
    # (implementation, label) per column; A/A adds A once more, measured in
    # the same rounds, and the limit is the program with no Python.
    columns = [(a_impl, a), (b_impl, b)]
    aa = a + " again" if args.aa else None
    if aa:
        columns.append((a_impl, aa))
    limit_exe = build_limit(args.limit_source) if args.limit else None
    if limit_exe:
        columns.append(("limit", "limit"))
    labels = [lab for _, lab in columns]
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cpu = None
    if args.pin and hasattr(os, "sched_getaffinity"):
        cpu = max(os.sched_getaffinity(0))

    print("swiftsocket bench: %d round(s) x %d workload(s), %.2f s per measurement, "
          "each in a fresh process; order %s in odd rounds, reversed in even ones"
          % (args.rounds, len(args.workloads), args.duration, ", ".join(labels)))
    try:
        load = "%.2f" % os.getloadavg()[0]
    except OSError:
        load = "?"
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    print("python %s%s on %s %s, %d CPU(s), load average %s; %s"
          % (platform.python_version(), " (free-threaded)" if free_threaded else "",
             platform.system(), platform.machine(), os.cpu_count() or 0, load,
             "both processes of a measurement pinned to CPU %d (threads-N: all CPUs)" % cpu
             if cpu is not None else "not pinned"))
    print(flush=True)

    results = {w: {lab: [] for lab in labels} for w in args.workloads}
    units = {}
    titles = {}
    backends = {}
    errors = {}
    t_start = time.monotonic()
    for rnd in range(1, args.rounds + 1):
        for w in args.workloads:
            # Reverse the order every other round, so no column always runs
            # on a machine another has just warmed (or loaded).
            order = columns if rnd % 2 else columns[::-1]
            for impl, lab in order:
                if (w, lab) in errors:
                    continue
                try:
                    r = run_one(impl, w, args.duration, pkg_root, cpu, limit_exe)
                except Exception as exc:  # report and keep going
                    errors[(w, lab)] = str(exc)
                    print("  round %d  %-22s %-14s FAILED: %s" % (rnd, w, lab, exc),
                          file=sys.stderr, flush=True)
                    continue
                if r is None:
                    continue
                results[w][lab].append(r["rate"])
                units[w] = r["unit"]
                titles.setdefault(w, r.get("title", w))
                backends[lab] = r["backend"]
                if args.verbose:
                    print("  round %d  %-22s %-14s %12s %s"
                          % (rnd, w, lab, fmt_rate(r["rate"]), r["unit"]),
                          file=sys.stderr, flush=True)
    total = time.monotonic() - t_start

    def med(w, lab):
        values = results[w].get(lab) if lab else None
        return statistics.median(values) if values else None

    def ratio(x, y):
        return "%.2fx" % (x / y) if (x and y) else "-"

    head = ["workload", "unit", a, b, "%s/%s" % (b, a)]
    if aa:
        head.append("A/A")
    if limit_exe:
        head += ["limit", "%s/limit" % b, "%s/limit" % a]
    rows = []
    summary = []
    for w in args.workloads:
        va, vb = results[w][a], results[w][b]
        ma, mb, maa, ml = med(w, a), med(w, b), med(w, aa), med(w, "limit" if limit_exe else None)
        row = [titles.get(w, w), units.get(w, "?"),
               (fmt_rate(ma) + " " + spread(va)).strip() if va else "FAILED",
               (fmt_rate(mb) + " " + spread(vb)).strip() if vb else "FAILED",
               ratio(mb, ma)]
        if aa:
            row.append(ratio(maa, ma))
        if limit_exe:
            row += [fmt_rate(ml) if ml else "-", ratio(mb, ml), ratio(ma, ml)]
        rows.append(row)
        entry = {"workload": w, "unit": units.get(w), "ratio": (mb / ma) if (ma and mb) else None}
        for lab in labels:
            entry[lab] = results[w][lab]
            entry["median_" + lab] = med(w, lab)
        if aa:
            entry["aa_ratio"] = (maa / ma) if (ma and maa) else None
        summary.append(entry)

    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join("%-*s" if i < 2 else "%*s" for i in range(len(head)))
    sep = "  ".join("-" * wd for wd in widths)
    print(line % tuple(x for pair in zip(widths, head) for x in pair))
    print(sep)
    for r in rows:
        print(line % tuple(x for pair in zip(widths, r) for x in pair))
    print(sep)
    print("All numbers are throughput: higher is better. %s/%s = the ratio of the medians;"
          % (b, a))
    print("above 1.00x means %s is faster, below 1.00x means it is slower." % b)
    if aa:
        print("A/A = %s measured again in the same rounds, against itself: a %s/%s ratio"
              " inside the A/A band's distance from 1.00x is noise." % (a, b, a))
    if limit_exe:
        print("limit = the same system calls from Swift with no Python (swiftsocket-limit);"
              " X/limit = how much of it X reaches; '-' = a workload only Python has.")
    print("± = half the min..max range over the rounds, relative to the median.")
    for lab in labels:
        if lab in backends:
            print("%s ran on %s" % (lab, backends[lab]))
    if args.quick:
        print("--quick: short measurements, indicative only; run without --quick "
              "for numbers to quote.")
    print("total time %.1f s" % total)
    for (w, lab), msg in errors.items():
        print("FAILED: %s with %s: %s" % (w, lab, msg))

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rounds": args.rounds, "duration": args.duration, "cpu": cpu,
                       "labels": labels, "results": summary,
                       "errors": {"%s/%s" % k: v for k, v in errors.items()}},
                      fh, indent=2)
    return 1 if errors else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # `run` takes the program's own arguments, and `doctor` imports nothing
    # of the bench: both are dispatched before argparse.
    if argv[:1] == ["run"]:
        from . import _run
        return _run.main(argv[1:])
    if argv[:1] == ["doctor"]:
        from . import _doctor
        return _doctor.main(argv[1:])
    if argv[:1] == ["bench"] and "--count" in argv:   # its own options: _count.py
        from . import _count
        return _count.main([a for a in argv[1:] if a != "--count"])
    ap = argparse.ArgumentParser(
        prog="python -m swiftsocket",
        epilog="also: python -m swiftsocket run script.py [args...] | run -m module [args...]"
               " (the program on swiftsocket), python -m swiftsocket doctor (what runs on what)")
    sub = ap.add_subparsers(dest="command", required=True)
    bp = sub.add_parser("bench", help="compare swiftsocket with the stdlib _socket",
                        description="Compare swiftsocket with the stdlib _socket, "
                                    "alternating implementations round by round.")
    bp.add_argument("--quick", action="store_true",
                    help="short run (3 rounds x 0.1 s, well under 10 s)")
    bp.add_argument("--rounds", type=int, default=None,
                    help="rounds per implementation (default 5, quick 3)")
    bp.add_argument("--duration", type=float, default=None,
                    help="seconds per measurement (default 0.6, quick 0.1)")
    bp.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help="comma-separated subset of: %s" % ", ".join(sorted(worker_mod.WORKLOADS)))
    bp.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                    help="two implementations A,B to compare (default stdlib,swiftsocket;"
                         " stdlib,stdlib gives an A/A noise check)")
    bp.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin each measurement (worker and its peer) to one CPU")
    bp.add_argument("--aa", action="store_true",
                    help="also measure the first implementation again in the same rounds and"
                         " print its ratio to itself (the noise band) beside each ratio")
    bp.add_argument("--no-limit", dest="limit", action="store_false",
                    help="leave out the limit columns (swiftsocket-limit: the same syscalls,"
                         " no Python; built from the source tree with Swift)")
    bp.add_argument("--limit-source", default=".", metavar="DIR",
                    help="the swiftsocket source tree to build swiftsocket-limit from"
                         " (default: the current directory)")
    bp.add_argument("--json", metavar="FILE", help="also write raw results to FILE")
    bp.add_argument("--count", action="store_true",
                    help="count instructions and allocations per operation under valgrind "
                         "instead (options: bench --count --help)")
    bp.add_argument("-v", "--verbose", action="store_true",
                    help="print every measurement as it completes")
    args = ap.parse_args(argv)

    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.duration is None:
        args.duration = 0.1 if args.quick else 0.6
    args.rounds = max(1, min(args.rounds, 100))
    args.duration = max(0.01, min(args.duration, 30.0))
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in args.workloads:
        if w not in worker_mod.WORKLOADS:
            ap.error("unknown workload %r" % w)
    args.impls = [i.strip() for i in args.impls.split(",")]
    if len(args.impls) != 2 or any(i not in worker_mod.IMPLS for i in args.impls):
        ap.error("--impls takes two of: %s" % ", ".join(worker_mod.IMPLS))
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
