"""CPython's own regression tests, run on swiftsocket and on the stdlib.

The modules are the ones whose tests use real sockets: `_socket` itself,
socketserver, selectors, asyncio, and the protocols above them (ssl through
`_socket.CAPI`, http, urllib, xmlrpc, ftplib, wsgiref).

Each CPython test module runs twice in fresh interpreters (tests/cpython_suite.py):
on the stdlib `_socket`, and with swiftsocket installed as `_socket`. On
swiftsocket every test must pass that passes on the stdlib: no failures, no
errors, and no test skipped that the stdlib runs.
"""

import json
import os
import subprocess
import sys

import pytest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpython_suite.py")
TIME_LIMIT = 300  # seconds per run; the slowest module takes ~40 s here

MODULES = [
    "test.test_socket",
    "test.test_socketserver",
    "test.test_timeout",
    "test.test_selectors",
    "test.test_asyncio.test_sock_lowlevel",
    "test.test_asyncio.test_streams",
    "test.test_asyncio.test_events",
    "test.test_asyncio.test_base_events",
    "test.test_asyncio.test_unix_events",
    "test.test_asyncio.test_sendfile",
    "test.test_asyncio.test_ssl",
    "test.test_ssl",
    "test.test_httplib",
    "test.test_urllib2_localnet",
    "test.test_xmlrpc",
    "test.test_ftplib",
    "test.test_wsgiref",
]


def run_suite(implementation, module):
    completed = subprocess.run(
        [sys.executable, RUNNER, implementation, module],
        capture_output=True, text=True, timeout=TIME_LIMIT,
        cwd=os.path.dirname(RUNNER),
    )
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0 and lines, (
        "%s on %s did not complete (rc=%s):\n%s" % (module, implementation, completed.returncode,
                                                    completed.stderr[-4000:]))
    return json.loads(lines[-1]), completed.stderr


@pytest.mark.slow
@pytest.mark.watchdog(2 * TIME_LIMIT + 60)
@pytest.mark.parametrize("module", MODULES)
def test_cpython_suite_passes_on_swiftsocket(module):
    stdlib, _ = run_suite("stdlib", module)
    swift, log = run_suite("swiftsocket", module)
    print("%s: stdlib %s / swiftsocket %s" % (module, stdlib, swift))
    assert stdlib["run"] > 0
    # Oracle failures are environment problems, not swiftsocket's: only
    # tests that pass on the stdlib are required to pass here.
    newly_failing = sorted(set(swift["failed"]) - set(stdlib["failed"]))
    assert not newly_failing, "fail on swiftsocket only:\n%s\n\n%s" % ("\n".join(newly_failing), log[-6000:])
    assert swift["run"] == stdlib["run"]
    assert swift["skipped"] <= stdlib["skipped"], "swiftsocket skips tests the stdlib runs:\n" + log[-6000:]
