"""Edge cases found in review, each compared with the stdlib `_socket`."""

import mmap
import struct
import threading
import time

import pytest



def test_socket_type_has_no_dup(mod):
    # socket.py defines dup(); CPython 3.11's _socket.socket does not.
    assert not hasattr(mod.socket, "dup")


def test_setsockopt_buffer_over_4_gib_does_not_crash(mod):
    # The option length is a socklen_t: CPython cuts it down as C does. The
    # mapping is never touched beyond what the kernel reads for the option.
    a, b = mod.socketpair()
    try:
        with mmap.mmap(-1, 2**32 + 4) as big:
            big[:4] = struct.pack("i", 4096)
            a.setsockopt(mod.SOL_SOCKET, mod.SO_RCVBUF, big)
        assert a.getsockopt(mod.SOL_SOCKET, mod.SO_RCVBUF) > 0
    finally:
        a.close()
        b.close()


def test_setsockopt_none_with_bad_optlen_reports_arity():
    import _socket
    import swiftsocket

    def attempt(m):
        a, b = m.socketpair()
        try:
            a.setsockopt(m.SOL_SOCKET, m.SO_RCVBUF, None, 1.0)
        except Exception as exc:
            return type(exc).__name__, str(exc)
        finally:
            a.close()
            b.close()
        return "ok", None

    assert attempt(swiftsocket) == attempt(_socket) == (
        "TypeError", "setsockopt() takes exactly 3 arguments (4 given)")


def test_finalizer_closes_without_holding_the_gil(mod):
    """An unclosed socket whose close() lingers (SO_LINGER with unsent data)
    must not stop other threads while the finalizer closes it."""
    listener = mod.socket(mod.AF_INET, mod.SOCK_STREAM)
    client = server = None
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = mod.socket(mod.AF_INET, mod.SOCK_STREAM)
        client.settimeout(5)
        client.connect(listener.getsockname())
        fd, _ = listener._accept()
        server = mod.socket(fileno=fd)
        # Fill the peer's receive queue and our send queue so close() lingers.
        client.setsockopt(mod.SOL_SOCKET, mod.SO_SNDBUF, 4096)
        server.setsockopt(mod.SOL_SOCKET, mod.SO_RCVBUF, 4096)
        client.setblocking(False)
        for _ in range(10_000):
            try:
                client.send(b"x" * 4096)
            except BlockingIOError:
                break
        client.setsockopt(mod.SOL_SOCKET, mod.SO_LINGER, struct.pack("ii", 1, 1))
        client.setblocking(True)

        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set() and len(ticks) < 1000:
                ticks.append(time.monotonic())
                time.sleep(0.01)

        thread = threading.Thread(target=ticker)
        thread.start()
        time.sleep(0.05)
        with pytest.warns(ResourceWarning):
            start = time.monotonic()
            del client  # the finalizer closes the fd: lingers ~1 s
            client = None
            elapsed = time.monotonic() - start
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
        during = [t for t in ticks if start <= t <= start + elapsed]
        if elapsed < 0.5:
            pytest.skip("close() did not linger on this kernel (%.2f s)" % elapsed)
        # The ticker runs every 10 ms: with the GIL released it ticks many times.
        assert len(during) >= 10, (elapsed, len(during))
    finally:
        for s in (client, server, listener):
            if s is not None:
                s.close()


def test_nonblocking_socket_follows_its_own_mode():
    """swiftsocket's documented deviation: a non-blocking socket object stays
    non-blocking even if its fd's O_NONBLOCK is cleared behind its back."""
    import os
    import swiftsocket

    a, b = swiftsocket.socketpair()
    try:
        a.setblocking(False)
        os.set_blocking(a.fileno(), True)
        with pytest.raises(BlockingIOError):
            a.recv(10)
        b.send(b"now")
        assert a.recv(10) == b"now"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("call", [
    lambda m, a: m.socketpair(family=m.AF_UNIX),
    lambda m, a: a.recv(bufsize=1),
    lambda m, a: a.settimeout(value=1),
], ids=["socketpair", "recv", "settimeout"])
def test_keyword_arguments_refused_with_cpythons_message(call):
    import _socket
    import swiftsocket

    def attempt(m):
        a, b = m.socketpair()
        try:
            call(m, a)
        except TypeError as exc:
            return str(exc)
        finally:
            a.close()
            b.close()
        return "no error"

    assert attempt(swiftsocket) == attempt(_socket)


def test_type_stub_names_exist():
    """Every name the type stub declares exists at run time, with the same kind."""
    import ast
    import os
    import swiftsocket

    stub = os.path.join(os.path.dirname(swiftsocket.__file__), "__init__.pyi")
    tree = ast.parse(open(stub).read())
    declared, methods = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            declared.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            declared.update(t.id for t in targets if isinstance(t, ast.Name) and t.id[0] != "_")
        if isinstance(node, ast.ClassDef) and node.name == "socket":
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    declared.discard("__getattr__")
    assert len(declared) > 30 and len(methods) > 25
    assert sorted(n for n in declared if not hasattr(swiftsocket, n)) == []
    assert sorted(n for n in methods if not hasattr(swiftsocket.socket, n)) == []
