#!/usr/bin/env bash
# The test suite under a memory or thread checker, one command each:
#
#   tools/sanitize.sh address [--quick] [--python VERSION] [PYTEST ARGS...]
#       the extension built with -sanitize=address (SWIFTSOCKET_SANITIZE=address,
#       setup.py) into .venv-asan (3.11; .venv-asan-VERSION otherwise), the suite
#       (CPython's suites aside) run with the AddressSanitizer runtime preloaded,
#       LeakSanitizer on at exit, PYTHONMALLOC=malloc
#   tools/sanitize.sh valgrind [--quick] [--python VERSION] [PYTEST ARGS...]
#       the normal build in .venv-valgrind, the suite under valgrind memcheck
#       (--errors-for-leak-kinds=definite); the full form takes over an hour
#       here, --quick runs a representative subset
#   tools/sanitize.sh thread [--quick] [--python VERSION] [PYTEST ARGS...]
#       on free-threaded 3.13t: the extension built with -sanitize=thread into
#       .venv-tsan-3.13t, tests/test_threads.py with the ThreadSanitizer runtime
#       preloaded
#
# --quick: a bounded form (fewer test files, SWIFTSOCKET_STRESS_SCALE=0.1);
# CI runs `tools/sanitize.sh address --quick`. PYTEST ARGS are added to the
# pytest command; if one names a path under tests/, they replace the default
# selection.
#
# Only reports that involve the module count (a frame in the extension, which
# holds the Swift runtime too); the interpreter is not instrumented, and its
# own reports and those of other programs the tests start are summarised but
# not counted. tools/sanitize_reports.py sorts them; known leaks of the
# module, each with its reason, are in tools/sanitize-suppressions.txt.
# Before the tests, a canary (tools/sanitize_canary.c) must draw a report, so
# a run with a dead sanitizer cannot pass. Ends with a one-line verdict; exits
# non-zero when a test fails or a report involves the module.
# Logs: .build-python/sanitize/FORM/.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[sanitize] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
FORM=$1; shift
case "$FORM" in address|valgrind|thread) ;; -h|--help) usage ;; *) die "unknown form '$FORM' (address, valgrind, thread)" ;; esac
QUICK=0
VERSION=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --python) VERSION=$2; shift 2 ;;
        *) break ;;
    esac
done
PYTEST_ARGS=("$@")
[ -n "$VERSION" ] || { [ "$FORM" = thread ] && VERSION=3.13t || VERSION=3.11; }

SWIFT_DRIVER=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
[ -x "$SWIFT_DRIVER" ] || die "no Swift toolchain (swift on PATH, \$SWIFT or /opt/swift/usr/bin/swift)"
TOOLCHAIN_USR=$(dirname "$(dirname "$(readlink -f "$SWIFT_DRIVER")")")
RUNTIME_DIR=$(ls -d "$TOOLCHAIN_USR"/lib/clang/*/lib/linux 2>/dev/null | head -n 1)
CLANG=$TOOLCHAIN_USR/bin/clang
SYMBOLIZER=$TOOLCHAIN_USR/bin/llvm-symbolizer
[ -x "$SYMBOLIZER" ] || SYMBOLIZER=$(command -v llvm-symbolizer || true)

PYTHON=$(tools/interpreters.sh python "$VERSION")
[ -x "$PYTHON" ] || tools/interpreters.sh build "$VERSION"
case "$FORM" in
    address) SANITIZER=address; VENV=.venv-asan ;;
    thread) SANITIZER=thread; VENV=.venv-tsan ;;
    valgrind) SANITIZER=; VENV=.venv-valgrind ;;
esac
[ "$FORM:$VERSION" = address:3.11 ] || [ "$FORM:$VERSION" = valgrind:3.11 ] || VENV=$VENV-$VERSION
if [ "$FORM" = thread ] && [ "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("Py_GIL_DISABLED") or 0)')" != 1 ]; then
    die "the thread form needs a free-threaded interpreter (3.13t); $VERSION has a GIL"
fi

WORK=.build-python/sanitize/$FORM
LOGS=$WORK/logs
rm -rf "$WORK"
mkdir -p "$LOGS" "$WORK/canary-logs"
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs

# The selection: the whole suite but CPython's own suites, or a bounded part.
SELECTION=(tests --ignore=tests/test_cpython_suite.py)
SCALE=${SWIFTSOCKET_STRESS_SCALE:-1.0}
if [ "$FORM" = thread ]; then
    SELECTION=(tests/test_threads.py)
fi
if [ $QUICK = 1 ]; then
    SCALE=${SWIFTSOCKET_STRESS_SCALE:-0.1}
    case "$FORM" in
        address) SELECTION=(tests/test_io.py tests/test_msg.py tests/test_addresses.py tests/test_socket_object.py
                            tests/test_names.py tests/test_options.py tests/test_edge_cases.py tests/test_finalization.py
                            tests/test_module.py tests/test_threads.py tests/test_misc_io.py) ;;
        valgrind) SCALE=${SWIFTSOCKET_STRESS_SCALE:-0.05}
                  SELECTION=(tests/test_io.py tests/test_msg.py tests/test_addresses.py tests/test_socket_object.py
                             tests/test_names.py) ;;
    esac
fi
# It sets its own LD_PRELOAD (a bind() interposer) in a child, which drops the
# sanitizer runtime the instrumented extension needs to load.
[ -n "$SANITIZER" ] && SELECTION+=(--deselect tests/test_families.py::test_built_sockaddr_bytes)
# Its valgrind workers run with an environment of their own, which drops the
# sanitizer runtime too (and a sanitized build's counts would mean nothing).
[ -n "$SANITIZER" ] && SELECTION+=(--deselect tests/test_count.py::test_counts_are_sane_and_deterministic)
for arg in "${PYTEST_ARGS[@]}"; do
    case "$arg" in tests/*) SELECTION=() ;; esac
done

start=$SECONDS

# -- build --------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
say "building${SANITIZER:+ with -sanitize=$SANITIZER} for $VERSION into $VENV"
SWIFTSOCKET_SANITIZE=$SANITIZER "$VENV/bin/pip" install -q --disable-pip-version-check '.[test]'
# (Found without importing it: a sanitized build loads only with its runtime.)
EXTENSION=$(ls "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"/swiftsocket/_swiftsocket.*.so)
if [ -n "$SANITIZER" ]; then
    marker=$([ "$SANITIZER" = address ] && echo __asan_init || echo __tsan_init)
    nm -D "$EXTENSION" | grep " U $marker" >/dev/null || die "$EXTENSION is not built with -sanitize=$SANITIZER"
fi
build_seconds=$((SECONDS - start))

# -- environment and command ------------------------------------------------
RUN=()
CANARY=
case "$FORM" in
    address)
        RUNTIME=$RUNTIME_DIR/libclang_rt.asan-x86_64.so
        [ -f "$RUNTIME" ] || die "no AddressSanitizer runtime in the toolchain ($RUNTIME)"
        # Leaks never change an exit status (exitcode=0: the logs are judged,
        # and a leak in a program a test starts must not fail that test);
        # a memory error still ends the process (abort_on_error).
        # The frame format names each frame's file, so that frames of the
        # Swift runtime, linked into the extension, are seen to be ours.
        export LD_PRELOAD=$RUNTIME PYTHONMALLOC=malloc ASAN_SYMBOLIZER_PATH=$SYMBOLIZER
        export ASAN_OPTIONS="detect_leaks=1:exitcode=0:abort_on_error=1:disable_coredump=1:log_path=$LOGS/asan:stack_trace_format='    #%n %p %F %L {%m}'"
        CANARY=sanitize_canary_overflow
        ;;
    thread)
        RUNTIME=$RUNTIME_DIR/libclang_rt.tsan-x86_64.so
        [ -f "$RUNTIME" ] || die "no ThreadSanitizer runtime in the toolchain ($RUNTIME)"
        # The toolchain's TSan runtime intercepts libdispatch, so it needs
        # the toolchain's libdispatch and BlocksRuntime loaded with it.
        # PYTHONMALLOC stays unset: a free-threaded CPython refuses `malloc`
        # (mimalloc only).
        DISPATCH=$TOOLCHAIN_USR/lib/swift/linux
        export LD_PRELOAD="$RUNTIME $DISPATCH/libdispatch.so $DISPATCH/libBlocksRuntime.so"
        export TSAN_SYMBOLIZER_PATH=$SYMBOLIZER
        export TSAN_OPTIONS="exitcode=0:log_path=$LOGS/tsan"
        CANARY=sanitize_canary_race
        ;;
    valgrind)
        if ! command -v valgrind >/dev/null; then
            say "valgrind is not installed; installing Debian's package (apt-get install valgrind)"
            [ "$(id -u)" = 0 ] || die "valgrind is missing: install it (sudo apt-get install valgrind) and run again"
            apt-get -q update >&2 && DEBIAN_FRONTEND=noninteractive apt-get -q install -y valgrind >&2 ||
                die "could not install valgrind with apt-get"
        fi
        export PYTHONMALLOC=malloc
        # The tests' own subprocesses run natively (no --trace-children): the
        # interpreter under test is this one.
        RUN=(valgrind -q --tool=memcheck --leak-check=full --show-leak-kinds=definite
             --errors-for-leak-kinds=definite --num-callers=40
             --xml=yes "--xml-file=$LOGS/memcheck.%p.xml")
        ;;
esac
export SWIFTSOCKET_STRESS_SCALE=$SCALE
# Tests that bound RSS leave that bound out under a checker, whose own
# allocator (ASan's quarantine, valgrind's) decides what stays resident.
export SWIFTSOCKET_CHECKER=$FORM
# A test's hang watchdog (tests/conftest.py) sized for the checker's slowdown.
[ "$FORM" = valgrind ] && export SWIFTSOCKET_TEST_WATCHDOG=${SWIFTSOCKET_TEST_WATCHDOG:-1800} ||
    export SWIFTSOCKET_TEST_WATCHDOG=${SWIFTSOCKET_TEST_WATCHDOG:-300}

# -- canary: the sanitizer is live and its reports are read ------------------
if [ -n "$CANARY" ]; then
    CANARY_LIB=$WORK/libsanitize_canary.so
    # Like the extension, it leaves the runtime undefined: the preloaded one.
    "$CLANG" -shared -fPIC -g -O1 "-fsanitize=$SANITIZER" -o "$CANARY_LIB" tools/sanitize_canary.c
    # Its reports go to a folder of their own.
    options=${ASAN_OPTIONS:-${TSAN_OPTIONS:-}}
    canary_env=(env "$([ "$FORM" = address ] && echo ASAN_OPTIONS || echo TSAN_OPTIONS)=${options//$LOGS/$WORK/canary-logs}")
    "${canary_env[@]}" "$VENV/bin/python" - "$CANARY_LIB" "$CANARY" <<'EOF' >/dev/null 2>&1 || true
import ctypes, sys, threading
function = getattr(ctypes.CDLL(sys.argv[1]), sys.argv[2])
threads = [threading.Thread(target=function) for _ in range(2)]
for thread in threads: thread.start()
for thread in threads: thread.join()
EOF
    grep -qs "sanitize_canary" "$WORK"/canary-logs/* ||
        die "the $FORM sanitizer did not report the canary's bug ($CANARY): it is not active in this set-up; nothing tested"
fi

# -- the tests ---------------------------------------------------------------
say "running (${SELECTION[*]:-} ${PYTEST_ARGS[*]:-}) with SWIFTSOCKET_STRESS_SCALE=$SCALE; logs in $LOGS"
set +e
"${RUN[@]}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$WORK/junit.xml" \
    "${SELECTION[@]}" "${PYTEST_ARGS[@]}"
pytest_status=$?
set -e
unset LD_PRELOAD PYTHONMALLOC

# -- verdict -----------------------------------------------------------------
python3 tools/sanitize_reports.py "$FORM" "$LOGS" | tee "$WORK/reports.txt" | sed '$d'
read -r module other elsewhere suppressed < <(tail -n 1 "$WORK/reports.txt" |
    sed -E 's/module=([0-9]+) other=([0-9]+) errors_elsewhere=([0-9]+) suppressed=([0-9]+)/\1 \2 \3 \4/')
tests=$(python3 - "$WORK/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    suite = ET.parse(sys.argv[1]).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    print("%d run, %d passed, %d failed, %d errors, %d skipped/xfailed"
          % (n["tests"], n["tests"] - n["failures"] - n["errors"] - n["skipped"], n["failures"], n["errors"], n["skipped"]))
except (OSError, ET.ParseError):
    print("no results (pytest did not finish)")
EOF
)
verdict=PASS
[ "$pytest_status" = 0 ] && [ "$module" = 0 ] && [ "$elsewhere" = 0 ] || verdict=FAIL
echo "[sanitize] $FORM${VERSION:+ ($VERSION)}$([ $QUICK = 1 ] && echo ", quick"): $verdict in $((SECONDS - start)) s (build $build_seconds s)" \
     "— tests: $tests (pytest status $pytest_status); reports in the module: $module;" \
     "known module leaks suppressed: $suppressed; memory errors outside the module: $elsewhere;" \
     "reports outside the module (not counted): $other"
[ $verdict = PASS ]
