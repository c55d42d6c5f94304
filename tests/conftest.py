"""Shared fixtures for the swiftsocket test-suite.

Every behavioural test takes the ``mod`` fixture, parametrized over the
stdlib ``_socket`` (the reference oracle) and ``swiftsocket`` (the module
under test), so each scenario runs on both and must give the same results.

Safety nets installed here:

* a per-test faulthandler watchdog that dumps every thread's traceback and
  exits the process if one test runs longer than SWIFTSOCKET_TEST_WATCHDOG
  seconds (default 60), so a hung socket call cannot hang the suite;
* a per-test and a session-wide file-descriptor leak check;
* a per-test check that neither module's default socket timeout was left
  modified.
"""

import faulthandler
import gc
import os
import signal
import sys
import time
import types

# The stdlib _socket is the oracle: a run started with SWIFTSOCKET=1 (the
# start-up hook) would compare swiftsocket with itself, and pass it on to
# every interpreter the tests start.
os.environ.pop("SWIFTSOCKET", None)

import _socket  # noqa: E402

import pytest  # noqa: E402

if _socket.__name__ != "_socket":
    pytest.exit("the tests need the stdlib _socket as their oracle: run them without SWIFTSOCKET set",
                returncode=4)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    # Make tests/sockutil.py importable whatever pytest's import mode is.
    sys.path.insert(0, TESTS_DIR)

import sockutil  # noqa: E402

WATCHDOG_SECONDS = float(os.environ.get("SWIFTSOCKET_TEST_WATCHDOG", "60"))

_watchdog_fd = None


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: long-running stress test; size with SWIFTSOCKET_STRESS_SCALE "
        "(deselect with -m 'not slow')",
    )
    config.addinivalue_line(
        "markers", "watchdog(seconds): this test's hang watchdog limit")
    global _watchdog_fd
    # Output capturing is suspended while pytest_configure runs, so fd 2 is
    # the real stderr here: keep a duplicate for faulthandler's dumps.
    if _watchdog_fd is None:
        try:
            _watchdog_fd = os.dup(2)
        except OSError:
            _watchdog_fd = None


def pytest_unconfigure(config):
    config.addinivalue_line(
        "markers", "watchdog(seconds): this test's hang watchdog limit")
    global _watchdog_fd
    if _watchdog_fd is not None:
        faulthandler.cancel_dump_traceback_later()
        os.close(_watchdog_fd)
        _watchdog_fd = None


# ---------------------------------------------------------------- modules

class _UnimportableSwiftsocket(types.ModuleType):
    """Stands in for swiftsocket when it cannot be imported.

    Any attribute a test uses fails the test (pytest.fail raises a
    BaseException, so no helper swallows it): the swiftsocket-param tests
    FAIL in their call phase instead of erroring in setup or being skipped.
    """

    def __getattr__(self, name):
        pytest.fail("cannot import swiftsocket: %s"
                    % self.__dict__["_import_error"], pytrace=False)


def _swiftsocket_or_fail():
    module, error = sockutil.try_import_swiftsocket()
    if module is None:
        stand_in = _UnimportableSwiftsocket("swiftsocket")
        stand_in.__dict__["_import_error"] = error
        return stand_in
    return module


def _uses_swiftsocket(item):
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("mod") == "swiftsocket":
        return True
    return "swift" in getattr(item, "fixturenames", ())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Belt and braces: a swiftsocket test that passed without touching the
    # module still fails when swiftsocket cannot be imported.
    if report.when == "call" and report.passed and _uses_swiftsocket(item):
        module, error = sockutil.try_import_swiftsocket()
        if module is None:
            report.outcome = "failed"
            report.longrepr = "cannot import swiftsocket: %s" % error
    return report


@pytest.fixture(params=["stdlib", "swiftsocket"])
def mod(request):
    """The stdlib ``_socket`` module or ``swiftsocket``."""
    if request.param == "stdlib":
        return _socket
    return _swiftsocket_or_fail()


@pytest.fixture
def std():
    """The reference oracle, stdlib ``_socket``."""
    return _socket


@pytest.fixture
def swift():
    """``swiftsocket``; the test fails if it cannot be imported."""
    return _swiftsocket_or_fail()


@pytest.fixture
def track():
    """Registry of sockets closed at teardown (``track(sock)`` returns sock)."""
    registry = sockutil.SocketRegistry()
    try:
        yield registry
    finally:
        registry.close_all()


@pytest.fixture
def ipv6():
    """Skip unless ::1 is usable."""
    if not sockutil.ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) not available")


# ---------------------------------------------------------------- safety nets

@pytest.fixture(autouse=True)
def _hang_watchdog(request):
    # @pytest.mark.watchdog(seconds) gives a long test its own limit.
    marker = request.node.get_closest_marker("watchdog")
    seconds = marker.args[0] if marker else WATCHDOG_SECONDS
    if _watchdog_fd is not None:
        faulthandler.dump_traceback_later(
            seconds, exit=True, file=_watchdog_fd)
    try:
        yield
    finally:
        if _watchdog_fd is not None:
            faulthandler.cancel_dump_traceback_later()


def _fd_snapshot():
    return set(os.listdir("/proc/self/fd"))


def _describe_fds(fds):
    out = []
    for fd in sorted(fds, key=int):
        try:
            target = os.readlink("/proc/self/fd/%s" % fd)
        except OSError:
            target = "?"
        out.append("%s -> %s" % (fd, target))
    return ", ".join(out)


@pytest.fixture(scope="session", autouse=True)
def _session_fd_leak_check():
    # Import swiftsocket up front so that whatever its import keeps open is
    # part of the baseline rather than blamed on the first test using it.
    sockutil.try_import_swiftsocket()
    gc.collect()
    before = _fd_snapshot()
    yield
    gc.collect()
    after = _fd_snapshot()
    if len(after) > len(before):
        pytest.fail(
            "file descriptors leaked over the whole session: %d before, %d "
            "after; new: %s" % (len(before), len(after),
                                _describe_fds(after - before)),
            pytrace=False)


@pytest.fixture(autouse=True)
def _fd_leak_check():
    before = _fd_snapshot()
    yield
    after = _fd_snapshot()
    if len(after) > len(before):
        # A socket may still be referenced from a traceback cycle.
        gc.collect()
        after = _fd_snapshot()
    if len(after) > len(before):
        pytest.fail("test leaked file descriptors: %s"
                    % _describe_fds(after - before), pytrace=False)


@pytest.fixture(autouse=True)
def _default_timeout_check():
    yield
    changed = []
    for module in (_socket, sys.modules.get("swiftsocket")):
        if module is None or not hasattr(module, "getdefaulttimeout"):
            continue
        try:
            value = module.getdefaulttimeout()
        except Exception:  # a broken module is reported by its own tests
            continue
        if value is not None:
            changed.append("%s: %r" % (module.__name__, value))
            try:
                module.setdefaulttimeout(None)
            except Exception:
                pass
    if changed:
        pytest.fail("test left a default socket timeout set: %s"
                    % "; ".join(changed), pytrace=False)


# ---------------------------------------------------------------- signals

@pytest.fixture
def alarm():
    """Arms SIGALRM after sockutil.ALARM_AT seconds with a handler that records
    each call and, if asked, raises sockutil.Alarm; always disarms it and
    restores the old handler."""
    old_handler = signal.getsignal(signal.SIGALRM)
    calls = []

    def arm(raise_in_handler):
        def handler(signum, frame):
            calls.append(time.monotonic())
            if raise_in_handler:
                raise sockutil.Alarm("alarm %d" % len(calls))
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, sockutil.ALARM_AT)
        return calls

    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
