"""``python -m swiftsocket doctor``: is this interpreter running on swiftsocket, and can it?

Reports the swiftsocket version, the interpreter and ABI it was built for
against the running one, the Swift compiler that built it and whether its
runtime is linked statically, whether this process's ``socket`` and ``_ssl``
run on it, and whether ``SWIFTSOCKET=1`` switches a new process. Exits 1,
with what to do, when something is wrong.
"""

import os
import subprocess
import sys
import sysconfig

# What a process started with SWIFTSOCKET=1 reports about itself.
_PROBE = r"""
import json, sys
report = {"hook": "swiftsocket._autoinstall" in sys.modules}
import socket, ssl
report["socket"] = socket._socket.__name__
try:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with socket.socket() as sock:
        context.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False).close()
    report["ssl"] = "ok"
except Exception as exc:
    report["ssl"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(report))
"""


def _abi():
    return sysconfig.get_config_var("EXT_SUFFIX") or "?"


def _interpreter():
    threads = " free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return "CPython %s%s" % (".".join(map(str, sys.version_info[:3])), threads)


def _swift_runtime_loaded():
    """Whether a shared Swift runtime is mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libswiftCore" in line for line in maps)
    except OSError:
        return None


def main(argv):
    problems = []
    lines = []

    def say(label, text):
        lines.append("%-22s %s" % (label + ":", text))

    # First, before anything here imports socket (importlib.metadata does).
    current = sys.modules.get("_socket")
    requested = os.environ.get("SWIFTSOCKET", "") not in ("", "0")
    name = getattr(current, "__name__", None)
    say("this process", "%s%s" % (
        {None: "no _socket loaded yet", "swiftsocket": "_socket is swiftsocket"}.get(name, "_socket is the C module"),
        " (SWIFTSOCKET is set)" if requested else " (SWIFTSOCKET is not set)"))
    if requested and name != "swiftsocket":
        problems.append("SWIFTSOCKET is set but this process did not switch: something imported "
                        "socket before swiftsocket's start-up hook ran")

    try:
        from importlib.metadata import version
        package_version = version("swiftsocket")
    except Exception:
        package_version = "unknown (not installed as a distribution)"
    package_dir = os.path.dirname(os.path.abspath(__file__))
    say("swiftsocket", "%s, in %s" % (package_version, package_dir))
    say("running on", "%s, extension suffix %s" % (_interpreter(), _abi()))

    try:
        from . import _build_info as built
    except ImportError:
        built = None
    if built is None:
        say("built for", "unknown: this copy has no _build_info (not built by setup.py)")
    else:
        matches = built.EXT_SUFFIX == _abi()
        say("built for", "%s, extension suffix %s%s" % (
            built.INTERPRETER, built.EXT_SUFFIX, "" if matches else "  <-- not this interpreter"))
        say("built with", "%s; Swift runtime %s" % (
            built.SWIFT_VERSION, "linked statically" if built.STATIC_SWIFT_RUNTIME else "shared"))
        if not matches:
            problems.append("this swiftsocket was built for %s, not for %s: reinstall it with this "
                            "interpreter (%s -m pip install --force-reinstall swiftsocket)"
                            % (built.INTERPRETER, _interpreter(), sys.executable))

    try:
        from . import _swiftsocket  # noqa: F401
    except ImportError as exc:
        say("extension", "does not load: %s" % exc)
        problems.append("the extension module does not load in this interpreter: reinstall "
                        "swiftsocket with %s -m pip install --force-reinstall swiftsocket" % sys.executable)
    else:
        loaded = _swift_runtime_loaded()
        say("extension", "loads; shared Swift runtime in this process: %s"
            % {True: "yes", False: "no", None: "unknown"}[loaded])

    env = dict(os.environ, SWIFTSOCKET="1")
    probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
    if probe.returncode != 0 or not probe.stdout.strip():
        say("SWIFTSOCKET=1", "a new process failed: %s" % (probe.stderr.strip().splitlines() or ["?"])[-1])
        problems.append("a process started with SWIFTSOCKET=1 fails (see above)")
    else:
        import json
        report = json.loads(probe.stdout.strip().splitlines()[-1])
        switched = report["socket"] == "swiftsocket"
        say("SWIFTSOCKET=1", "a new process's socket runs on %s, its _ssl %s%s" % (
            report["socket"], "accepts swiftsocket sockets" if report["ssl"] == "ok"
            else "refuses them (%s)" % report["ssl"],
            "" if report["hook"] else "; start-up hook not run"))
        if not report["hook"]:
            problems.append("the start-up hook (swiftsocket-autoinstall.pth) did not run: is "
                            "swiftsocket installed in this interpreter's site-packages?")
        elif not switched or report["ssl"] != "ok":
            problems.append("SWIFTSOCKET=1 does not switch a new process completely")
        if probe.stderr.strip():
            lines.append(probe.stderr.strip())

    print("\n".join(lines))
    if problems:
        print()
        for problem in problems:
            print("problem: " + problem)
        return 1
    print("\nall good: run a program on swiftsocket with SWIFTSOCKET=1 python app.py, "
          "or python -m swiftsocket run app.py")
    return 0
