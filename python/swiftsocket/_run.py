"""``python -m swiftsocket run``: a program run on swiftsocket, as Python would run it.

    python -m swiftsocket run script.py [args...]
    python -m swiftsocket run -m module [args...]

swiftsocket is installed as ``_socket`` first; then the program runs as
``python script.py`` (or ``python -m module``) would run it: the same
``sys.argv``, ``sys.path[0]``, ``__main__`` module, exit status, traceback
(without this runner's frames) and KeyboardInterrupt ending (the process dies
of SIGINT, after the usual clean-up). ``SWIFTSOCKET=1`` is set in the
environment, so the program's own Python subprocesses switch too (through the
start-up hook, see ``_autoinstall``).
"""

import builtins
import importlib.machinery
import os
import runpy
import sys
import types


def _trimmed(tb):
    """The traceback without this runner's frames and runpy's, which
    ``python script.py`` does not have."""
    own = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_frame.f_code.co_filename in own:
        tb = tb.tb_next
    return tb


def _run_file(path):
    """Runs a script file the way pymain_run_file does: a fresh __main__
    module, sys.argv[0] the path as given, sys.path[0] its directory."""
    try:
        with open(path, "rb") as source_file:
            source = source_file.read()
    except OSError as exc:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n"
                         % (sys.executable, os.path.abspath(path), exc.errno, exc.strerror))
        raise SystemExit(2)
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    sys.modules["__main__"] = main
    code = compile(source, path, "exec", dont_inherit=True)
    exec(code, main.__dict__)


def _run_package_path(path):
    """A directory or zip file with a __main__.py: Python puts it first on
    sys.path and runs its __main__ module."""
    sys.path[0] = path
    runpy._run_module_as_main("__main__", alter_argv=False)


def _run_module(name):
    # What `python -m` itself calls: the module's __main__, its argv[0] and
    # its error messages ("No module named ..."). sys.path[0] is already the
    # working directory, as `python -m` sets it.
    runpy._run_module_as_main(name, alter_argv=True)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 0 if argv else 2
    if argv[0] == "-m":
        if len(argv) < 2:
            sys.stderr.write("usage: python -m swiftsocket run -m module [args...]\n")
            return 2
        target, run = argv[1], _run_module
        sys.argv = ["-m", *argv[2:]]   # runpy replaces argv[0] with the module's path
    else:
        target = argv[0]
        is_package = os.path.isdir(target) or (os.path.isfile(target) and _is_zip(target))
        run = _run_package_path if is_package else _run_file
        sys.argv = list(argv)

    import swiftsocket
    swiftsocket.install()
    os.environ["SWIFTSOCKET"] = "1"   # subprocesses switch too

    try:
        run(target)
    except SystemExit:
        raise
    except BaseException as exc:
        # Report it as the interpreter would, then let it end the process
        # the interpreter's way (status 1, or death by SIGINT for
        # KeyboardInterrupt) after the usual clean-up, without a second report.
        # (The interpreter's hook prints exc.__traceback__, not its argument.)
        exc.__traceback__ = _trimmed(exc.__traceback__)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        sys.excepthook = lambda *args: None
        raise
    return 0


def _is_zip(path):
    import zipfile
    return zipfile.is_zipfile(path)
