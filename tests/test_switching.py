"""Switching a whole program to swiftsocket without editing it.

``python -m swiftsocket run`` is compared with plain ``python`` on the same
program (argv, sys.path[0], __main__, exit status, traceback,
KeyboardInterrupt); ``SWIFTSOCKET=1`` is checked in a new interpreter, its
subprocesses and multiprocessing's fork and spawn children; ``doctor`` on a
working install. Each check runs real interpreters on real sockets.
"""

import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

TIME_LIMIT = 60

# Prints what a program sees of how it was started, then does what argv says.
PROGRAM = textwrap.dedent("""\
    import json, os, sys
    import socket
    a, b = socket.socketpair()
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"
    a.close(); b.close()
    print(json.dumps({
        "argv": sys.argv, "path0": sys.path[0], "name": __name__,
        "main_file": getattr(sys.modules["__main__"], "__file__", None),
        "main_is_here": sys.modules["__main__"].__dict__ is globals(),
        "spec": __spec__ and [__spec__.name, __spec__.origin], "socket": socket._socket.__name__,
    }))
    sys.stdout.flush()
    if sys.argv[1:2] == ["exit"]:
        sys.exit(int(sys.argv[2]))
    if sys.argv[1:2] == ["raise"]:
        def inner():
            raise ValueError("boom")
        inner()
    if sys.argv[1:2] == ["interrupt"]:
        import atexit
        atexit.register(lambda: print("atexit ran", flush=True))
        raise KeyboardInterrupt
    """)


def run(args, env=None, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=TIME_LIMIT, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def environment(**changes):
    env = dict(os.environ)
    env.pop("SWIFTSOCKET", None)
    env.update(changes)
    return env


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    package = tmp_path / "progpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(PROGRAM)
    return path


def first_line(output):
    import json
    return json.loads(output.splitlines()[0])


@pytest.mark.parametrize("args", [[], ["x", "-m", "--y"], ["exit", "3"], ["exit", "0"], ["raise"]])
def test_run_script_behaves_as_python_script(program, args):
    plain = run([sys.executable, str(program), *args], env=environment())
    switched = run([sys.executable, "-m", "swiftsocket", "run", str(program), *args], env=environment())
    assert switched.returncode == plain.returncode
    assert switched.stderr == plain.stderr       # the traceback too, frame for frame
    expected, got = first_line(plain.stdout), first_line(switched.stdout)
    assert expected.pop("socket") == "_socket" and got.pop("socket") == "swiftsocket"
    assert got == expected
    if args[:1] == ["raise"]:
        assert 'in inner\n    raise ValueError("boom")\nValueError: boom' in plain.stderr


def test_run_module_behaves_as_python_dash_m(program):
    cwd = program.parent
    plain = run([sys.executable, "-m", "progpkg", "a", "b"], env=environment(), cwd=cwd)
    switched = run([sys.executable, "-m", "swiftsocket", "run", "-m", "progpkg", "a", "b"],
                   env=environment(), cwd=cwd)
    assert (switched.returncode, switched.stderr) == (plain.returncode, plain.stderr) == (0, "")
    expected, got = first_line(plain.stdout), first_line(switched.stdout)
    assert (expected.pop("socket"), got.pop("socket")) == ("_socket", "swiftsocket")
    assert got == expected


def test_run_keyboard_interrupt_ends_as_python_does(program):
    plain = run([sys.executable, str(program), "interrupt"], env=environment())
    switched = run([sys.executable, "-m", "swiftsocket", "run", str(program), "interrupt"], env=environment())
    assert plain.returncode == switched.returncode == -2   # killed by SIGINT, after clean-up
    assert plain.stderr == switched.stderr
    assert plain.stdout.splitlines()[1:] == switched.stdout.splitlines()[1:] == ["atexit ran"]


@pytest.mark.parametrize("args", [["no-such-file.py"], ["-m", "no_such_module_xyz"]])
def test_run_missing_program_fails_as_python_does(tmp_path, args):
    plain = run([sys.executable, *args], env=environment(), cwd=tmp_path)
    switched = run([sys.executable, "-m", "swiftsocket", "run", *args], env=environment(), cwd=tmp_path)
    assert (switched.returncode, switched.stderr) == (plain.returncode, plain.stderr)
    assert plain.returncode in (1, 2)


# ---------------------------------------------------------------- SWIFTSOCKET=1

CHILDREN = textwrap.dedent("""\
    import multiprocessing, socket, subprocess, sys

    def backend():
        import socket
        return socket._socket.__name__

    def report(queue):
        queue.put(backend())

    if __name__ == "__main__":
        seen = {"parent": backend()}
        seen["subprocess"] = subprocess.run(
            [sys.executable, "-c", "import socket; print(socket._socket.__name__)"],
            capture_output=True, text=True, timeout=60).stdout.strip()
        for method in ("fork", "spawn"):
            context = multiprocessing.get_context(method)
            queue = context.Queue()
            child = context.Process(target=report, args=(queue,))
            child.start()
            seen[method] = queue.get(timeout=60)
            child.join(60)
        print(seen)
    """)


def test_environment_variable_switches_a_program_and_its_children(tmp_path):
    script = tmp_path / "children.py"
    script.write_text(CHILDREN)
    done = run([sys.executable, str(script)], env=environment(SWIFTSOCKET="1"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert eval(done.stdout) == {name: "swiftsocket" for name in ("parent", "subprocess", "fork", "spawn")}
    unset = run([sys.executable, str(script)], env=environment())
    assert eval(unset.stdout) == {name: "_socket" for name in ("parent", "subprocess", "fork", "spawn")}


@pytest.mark.parametrize("value,expected", [("1", "swiftsocket"), ("yes", "swiftsocket"), ("0", "_socket"),
                                            ("", "_socket"), (None, "_socket")])
def test_environment_variable_values(value, expected):
    env = environment() if value is None else environment(SWIFTSOCKET=value)
    code = "import sys, socket, ssl; print(socket._socket.__name__, '_swiftsocket' in str(sys.modules.get('swiftsocket._swiftsocket')))"
    done = run([sys.executable, "-c", code], env=env)
    assert done.returncode == 0 and done.stderr == ""
    name, loaded = done.stdout.split()
    assert name == expected
    # Unset, the hook imports nothing of swiftsocket.
    assert loaded == ("True" if expected == "swiftsocket" else "False")


def test_hook_too_late_warns_once_and_never_half_switches():
    code = textwrap.dedent("""\
        import os, sys
        import socket
        os.environ["SWIFTSOCKET"] = "1"
        import swiftsocket._autoinstall
        import ssl
        print(socket._socket.__name__, sys.modules["_socket"].__name__)
        """)
    done = run([sys.executable, "-c", code], env=environment())
    assert done.returncode == 0
    assert done.stdout.split() == ["_socket", "_socket"]
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("swiftsocket: SWIFTSOCKET is set, but 'socket' was imported before")


def test_doctor_on_a_working_install():
    done = run([sys.executable, "-m", "swiftsocket", "doctor"], env=environment())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a new process's socket runs on swiftsocket, its _ssl accepts swiftsocket sockets" in done.stdout
    built_for = done.stdout.split("built for:")[1].splitlines()[0]
    assert sysconfig.get_config_var("EXT_SUFFIX") in built_for and "not this interpreter" not in built_for
    switched = run([sys.executable, "-m", "swiftsocket", "doctor"], env=environment(SWIFTSOCKET="1"))
    assert switched.returncode == 0
    assert "this process:          _socket is swiftsocket (SWIFTSOCKET is set)" in switched.stdout
