"""Run CPython's own regression tests on top of a given `_socket`.

    python tests/cpython_suite.py {stdlib|swiftsocket} test.test_socket [...]

Prints one JSON line: {"run", "failures", "errors", "skipped", "failed": [ids]}.
With `swiftsocket`, the module is installed as `_socket` before anything
imports `socket`, so socket.py and everything above it run on the Swift code.

Resources are denied (no internet) except `network` for the modules that only
use loopback with it (test_socketserver, test_timeout). Excluded, with either
implementation:
- test_socket's VSOCK tests: this machine has /dev/vsock and they talk to the
  VM host, hanging with the stdlib too;
- test_timeout's TCPTimeoutTestCase: it resolves a public host.
"""

import json
import signal
import sys
import unittest

LOOPBACK_NETWORK_MODULES = {"test.test_socketserver", "test.test_timeout"}
EXCLUDED_CLASSES = ("ThreadedVSOCKSocketStreamTest", "TCPTimeoutTestCase")


def _without_excluded(suite):
    kept = unittest.TestSuite()
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            kept.addTest(_without_excluded(test))
        elif type(test).__name__ not in EXCLUDED_CLASSES:
            kept.addTest(test)
    return kept


def main(implementation, module_names):
    # A runner started in the background inherits SIGINT as ignored; some
    # tests expect Python's default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if implementation == "swiftsocket":
        import swiftsocket
        swiftsocket.install()
    elif implementation != "stdlib":
        raise SystemExit("implementation must be stdlib or swiftsocket")
    import socket
    expected = "swiftsocket" if implementation == "swiftsocket" else "_socket"
    assert socket._socket.__name__ == expected, socket._socket

    from test import support
    support.use_resources = []
    if LOOPBACK_NETWORK_MODULES.intersection(module_names):
        support.use_resources = ["network"]

    suite = unittest.TestSuite()
    for name in module_names:
        suite.addTest(_without_excluded(unittest.defaultTestLoader.loadTestsFromName(name)))
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(suite)
    print(json.dumps({
        "run": result.testsRun,
        "failures": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "failed": [test.id() for test, _ in result.failures + result.errors],
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
