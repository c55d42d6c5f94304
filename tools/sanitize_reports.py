"""Sorts the reports of one tools/sanitize.sh run: those that involve
swiftsocket's extension and those that do not.

    python3 tools/sanitize_reports.py address|thread|valgrind LOG_DIR

A report involves the module when a frame of one of its stacks lies in the
extension (its file name, or the Swift and C sources it is built from; the
Swift runtime is linked into it statically, so its frames count too). Those
are printed in full; the others are counted and summarised in one line each
(the interpreter is not instrumented and not ours to judge). Prints one line
of counts last:

    module=N other=N errors_elsewhere=N suppressed=N

errors_elsewhere counts memory errors (not leaks, not races) outside the
module: with the interpreter uninstrumented, AddressSanitizer only sees those
through its interceptors, so any is worth a look and fails the run too.
Standard library only.
"""

import glob
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

MODULE_FRAME = re.compile(
    r"_swiftsocket\.|SwiftSocketExt|PyInit__swiftsocket|swsock_|/Sources/(CPythonShim|CSystem)/")
CANARY_FRAME = re.compile(r"sanitize_canary")
SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sanitize-suppressions.txt")


def load_suppressions(form):
    """The patterns of tools/sanitize-suppressions.txt that apply to form:
    a leak report any line of which matches one is known and not counted
    (never a memory error or a race)."""
    patterns = []
    with open(SUPPRESSIONS) as lines:
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                forms, pattern = line.split(None, 1)
                if form in forms.split(","):
                    patterns.append(re.compile(pattern))
    return patterns


def read(path):
    with open(path, errors="replace") as log:
        return log.read()


def summary_line(lines):
    """The first line that says what happened, and the first frame outside
    the sanitizer's runtime."""
    head = next((line.strip() for line in lines if line.strip() and not line.startswith("=" * 10)), "?")
    frames = [line.strip() for line in lines[1:] if line.startswith("    ")
              and not re.search(r"compiler-rt|vgpreload|libclang_rt", line)]
    # Addresses differ from process to process; the kind is the same.
    return re.sub(r"0x[0-9a-f]+ ", "", head + (" | " + frames[0] if frames else ""))


def address_reports(text):
    """(kind, lines) for each leak of a LeakSanitizer report and each other
    AddressSanitizer report in one log."""
    reports = []
    for chunk in re.split(r"^==\d+==ERROR: ", text, flags=re.M)[1:]:
        lines = chunk.splitlines()
        if lines[0].startswith("LeakSanitizer"):
            leak = None
            for line in lines[1:]:
                if line.startswith(("Direct leak", "Indirect leak")):
                    leak = [line]
                    reports.append(("leak", leak))
                elif line.startswith("SUMMARY") or line.startswith("-----"):
                    leak = None
                elif leak is not None:
                    leak.append(line)
        else:
            reports.append(("error", lines))
    return reports


def thread_reports(text):
    reports = []
    for chunk in re.split(r"^={18}$", text, flags=re.M):
        if "WARNING: ThreadSanitizer:" in chunk:
            lines = chunk.strip("\n").splitlines()
            kind = "race" if "data race" in lines[0] else "error"
            reports.append((kind, lines))
    return reports


# Valgrind memcheck kinds that are errors (leaks other than definite are
# not reported: --show-leak-kinds=definite).
def valgrind_reports(path):
    reports = []
    text = read(path)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        # A process that never finished its log (a forked worker a test
        # killed): its complete error records still count.
        end = text.rfind("</error>")
        start = text.find("<valgrindoutput>")
        complete = text[:end + len("</error>")] if end >= 0 else text[:start + len("<valgrindoutput>")]
        root = ElementTree.fromstring(complete + "</valgrindoutput>")
    for error in root.iter("error"):
        kind = error.findtext("kind")
        what = error.findtext("what") or error.findtext("xwhat/text") or kind
        lines = ["%s: %s" % (kind, what)]
        for stack in error.findall("stack"):
            for frame in stack.findall("frame"):
                location = frame.findtext("file")
                location = "%s:%s" % (location, frame.findtext("line")) if location else frame.findtext("obj", "?")
                lines.append("    %s %s {%s}" % (frame.findtext("fn", "?"), location, frame.findtext("obj", "")))
            if stack is not error.findall("stack")[-1]:
                lines.append("  (origin / other stack)")
        reports.append(("leak" if kind.startswith("Leak_") else "error", lines))
    return reports


def main():
    form, log_dir = sys.argv[1], sys.argv[2]
    module, other, errors_elsewhere, suppressed = [], [], [], []
    suppressions = load_suppressions(form)
    for path in sorted(glob.glob(os.path.join(log_dir, "*"))):
        if form == "valgrind":
            reports = valgrind_reports(path)
        else:
            text = read(path)
            reports = address_reports(text) if form == "address" else thread_reports(text)
        for kind, lines in reports:
            if any(CANARY_FRAME.search(line) for line in lines):
                continue  # the check that the sanitizer is live (tools/sanitize.sh)
            if kind == "leak" and any(pattern.search(line) for pattern in suppressions for line in lines):
                suppressed.append((path, lines))
            elif any(MODULE_FRAME.search(line) for line in lines):
                module.append((path, lines))
            elif kind == "error" and form != "valgrind":
                errors_elsewhere.append((path, lines))
            else:
                other.append((path, lines))
    for title, reports in (("IN THE MODULE", module), ("MEMORY ERROR OUTSIDE THE MODULE", errors_elsewhere)):
        for path, lines in reports:
            print("---- %s (%s)" % (title, os.path.basename(path)))
            print("\n".join(lines))
    for title, reports in (("suppressed (tools/sanitize-suppressions.txt)", suppressed),
                           ("outside the module, not counted", other)):
        if reports:
            print("---- %d report(s) %s; first line and frame of each kind:" % (len(reports), title))
            kinds = {}
            for path, lines in reports:
                kinds.setdefault(summary_line(lines)[:220], []).append(path)
            for line, paths in sorted(kinds.items(), key=lambda item: -len(item[1])):
                print("  %4d x %s" % (len(paths), line))
    print("module=%d other=%d errors_elsewhere=%d suppressed=%d"
          % (len(module), len(other), len(errors_elsewhere), len(suppressed)))


if __name__ == "__main__":
    main()
