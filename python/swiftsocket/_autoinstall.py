"""The start-up hook behind ``SWIFTSOCKET=1``.

``swiftsocket-autoinstall.pth``, installed into site-packages with the
package, runs one line when the interpreter starts::

    import os; os.environ.get("SWIFTSOCKET", "") not in ("", "0") and __import__("swiftsocket._autoinstall")

so that with the variable unset (or ``0``) start-up costs one dictionary
look-up and imports nothing. With it set, this module installs swiftsocket as
``_socket`` before the program imports ``socket``. The environment carries
the variable to every Python subprocess, ``multiprocessing``'s spawned and
forkserver workers included; forked children inherit the switched modules.

If ``socket`` or ``_ssl`` was imported before the hook ran (by another
start-up hook), the process cannot switch: it says so once on stderr and goes
on with the C ``_socket``, never with half of each.
"""

import sys


def _switch():
    if "socket" in sys.modules or "_ssl" in sys.modules:
        what = "socket" if "socket" in sys.modules else "_ssl"
        sys.stderr.write(
            "swiftsocket: SWIFTSOCKET is set, but %r was imported before swiftsocket's start-up "
            "hook ran, so this process runs on the C _socket. (python -m swiftsocket doctor "
            "says what this interpreter loads at start-up.)\n" % what)
        return
    try:
        import swiftsocket
        swiftsocket.install()
    except Exception as exc:   # never let start-up fail because of us
        sys.stderr.write("swiftsocket: SWIFTSOCKET is set, but swiftsocket could not be installed "
                         "(%s: %s); this process runs on the C _socket.\n" % (type(exc).__name__, exc))


_switch()
