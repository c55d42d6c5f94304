"""The stdlib built on top of the module: socket.py, socketserver,
http.server/http.client and asyncio, each run in a fresh interpreter.

With the ``swiftsocket`` param the child calls ``swiftsocket.install()``
before ``import socket``; with ``stdlib`` it runs the same scenario on the
stdlib ``_socket`` (the oracle).  Every child arms its own faulthandler
exit and runs under ``subprocess.run(timeout=...)``.
"""

import os
import subprocess
import sys
import textwrap

import pytest

CHILD_TIMEOUT = 45  # below the per-test watchdog (60 s)

PREAMBLE = r'''
import faulthandler, sys
faulthandler.dump_traceback_later(40, exit=True)
MOD = sys.argv[1]
if MOD == "swiftsocket":
    assert "socket" not in sys.modules
    import swiftsocket
    installed = swiftsocket.install()
    import socket
    assert socket._socket is sys.modules["_socket"], socket._socket
    assert socket._socket is installed, (socket._socket, installed)
    assert socket._socket.socket is swiftsocket.socket
    assert issubclass(socket.socket, swiftsocket.socket)
    BASE = swiftsocket.socket
else:
    import socket, _socket
    assert socket._socket is _socket
    BASE = _socket.socket
assert issubclass(socket.socket, BASE)
'''


def _child_env(mod):
    env = dict(os.environ)
    if mod.__name__ == "swiftsocket":
        # let the child import the very swiftsocket this process imported
        pkg_parent = os.path.dirname(os.path.dirname(
            os.path.abspath(mod.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            [pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(
                os.pathsep) if p])
    env.pop("PYTHONSTARTUP", None)
    return env


def run_child(mod, body, tmp_path, extra_args=()):
    code = PREAMBLE + textwrap.dedent(body) + '\nprint("CHILD-OK")\n'
    name = "swiftsocket" if mod.__name__ == "swiftsocket" else "stdlib"
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code, name,
         *extra_args],
        cwd=str(tmp_path), env=_child_env(mod), capture_output=True,
        text=True, timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0 and "CHILD-OK" in proc.stdout, (
        "child failed (rc=%s)\n--- stdout\n%s\n--- stderr\n%s"
        % (proc.returncode, proc.stdout[-4000:], proc.stderr[-6000:]))
    return proc.stdout


def test_socket_py_binds_the_module(mod, tmp_path):
    out = run_child(mod, r'''
        s = socket.socket()
        with s:
            assert isinstance(s, BASE)
            assert type(s).__mro__[1] is BASE
            assert s.family is socket.AddressFamily.AF_INET
            assert s.type is socket.SocketKind.SOCK_STREAM
            r = repr(s)
            assert r.startswith("<socket.socket fd=") and "laddr=" in r, r
        assert s._closed and s.fileno() == -1
        assert socket.AF_UNIX == 1 and socket.SOCK_DGRAM == 2
        assert socket.has_ipv6 in (True, False)
        assert socket.error is OSError and socket.timeout is TimeoutError
        assert socket.gaierror.__module__ == "socket"
        assert callable(socket.getaddrinfo) and callable(socket.CMSG_LEN)
        infos = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos[0][0] is socket.AF_INET, infos
        assert infos[0][1] is socket.SOCK_STREAM, infos
        print("names", len([n for n in dir(socket) if n.isupper()]))
    ''', tmp_path)
    assert "names" in out


def test_create_server_connection_makefile(mod, tmp_path):
    run_child(mod, r'''
        import threading
        srv = socket.create_server(("127.0.0.1", 0))
        addr = srv.getsockname()
        srv.settimeout(10)
        result = {}

        def serve():
            conn, peer = srv.accept()
            with conn:
                conn.settimeout(10)
                result["peer"] = peer
                result["type"] = type(conn)
                with conn.makefile("rwb") as f:
                    for _ in range(100):
                        line = f.readline()
                        if not line:
                            break
                        f.write(line.upper())
                        f.flush()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with socket.create_connection(addr, timeout=10) as c:
            assert c.getpeername() == addr
            with c.makefile("rwb") as f:
                for i in range(50):
                    f.write(b"line %d\n" % i)
                    f.flush()
                    assert f.readline() == b"LINE %d\n" % i
            c.shutdown(socket.SHUT_WR)
        t.join(10)
        assert not t.is_alive()
        assert result["type"] is socket.socket
        assert result["peer"][0] == "127.0.0.1"
        srv.close()
    ''', tmp_path)


def test_socketpair_dup_fromfd_makefile_text(mod, tmp_path):
    run_child(mod, r'''
        import os
        a, b = socket.socketpair()
        with a, b:
            assert a.family is socket.AF_UNIX
            a.settimeout(10); b.settimeout(10)
            a.sendall(b"x" * 100000)
            got = b""
            while len(got) < 100000:
                chunk = b.recv(65536)
                assert chunk
                got += chunk
            assert got == b"x" * 100000
            d = a.dup()
            with d:
                assert d.fileno() != a.fileno()
                assert os.get_inheritable(d.fileno()) is False
                d.sendall(b"dup\n")
            f = socket.fromfd(b.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
            with f:
                assert f.recv(4) == b"dup\n"
            with b.makefile("r", encoding="utf-8") as rf, \
                 a.makefile("w", encoding="utf-8") as wf:
                wf.write("h\u00e9llo\n")
                wf.flush()
                assert rf.readline() == "h\u00e9llo\n"
            buf = bytearray(5)
            a.sendall(b"12345")
            view = memoryview(buf)
            n = 0
            while n < 5:
                n += b.recv_into(view[n:])
            assert buf == b"12345"
    ''', tmp_path)


def test_sendfile_and_accepted_socket_mode(mod, tmp_path):
    run_child(mod, r'''
        import os, threading
        path = "payload.bin"
        data = os.urandom(300000)
        with open(path, "wb") as fh:
            fh.write(data)
        srv = socket.create_server(("127.0.0.1", 0))
        srv.settimeout(10)
        with srv:
            out = {}
            def reader():
                conn, _ = srv.accept()
                # socket.py: with no default timeout, accepted sockets are
                # blocking even if the listener has a timeout
                out["timeout"] = conn.gettimeout()
                out["blocking"] = os.get_blocking(conn.fileno())
                conn.settimeout(10)
                with conn:
                    got = bytearray()
                    while len(got) < len(data):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                    out["data"] = bytes(got)
            t = threading.Thread(target=reader, daemon=True)
            t.start()
            with socket.create_connection(srv.getsockname(), timeout=10) as c, \
                 open(path, "rb") as fh:
                assert c.sendfile(fh) == len(data)
            t.join(10)
            assert not t.is_alive()
            assert out["timeout"] is None, out["timeout"]
            assert out["blocking"] is True
            assert out["data"] == data
    ''', tmp_path)


def test_socketserver_http_roundtrip(mod, tmp_path):
    run_child(mod, r'''
        import http.client, http.server, threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("path=%s" % self.path).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers["Content-Length"])
                body = self.rfile.read(n)[::-1]
                self.send_response(201)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        assert isinstance(httpd.socket, BASE)
        t = threading.Thread(target=httpd.serve_forever,
                             kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        try:
            host, port = httpd.server_address
            conn = http.client.HTTPConnection(host, port, timeout=10)
            for i in range(5):       # keep-alive: several requests, one socket
                conn.request("GET", "/item/%d" % i)
                resp = conn.getresponse()
                assert resp.status == 200
                assert resp.read() == b"path=/item/%d" % i
            payload = b"0123456789" * 5000
            conn.request("POST", "/echo", body=payload)
            resp = conn.getresponse()
            assert resp.status == 201
            assert resp.read() == payload[::-1]
            conn.close()
        finally:
            httpd.shutdown()
            httpd.server_close()
            t.join(10)
        assert not t.is_alive()
    ''', tmp_path)


def test_socketserver_tcp_and_unix(mod, tmp_path):
    run_child(mod, r'''
        import os, socketserver, threading

        class Echo(socketserver.StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    self.wfile.write(line[::-1][1:] + b"\n")

        def exercise(server, family, addr):
            t = threading.Thread(target=server.serve_forever,
                                 kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            try:
                with socket.socket(family) as c:
                    c.settimeout(10)
                    c.connect(addr)
                    with c.makefile("rwb") as f:
                        f.write(b"abc\n"); f.flush()
                        assert f.readline() == b"cba\n"
            finally:
                server.shutdown()
                server.server_close()
                t.join(10)
            assert not t.is_alive()

        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        exercise(srv, socket.AF_INET, srv.server_address)
        path = os.path.abspath("echo.sock")
        usrv = socketserver.ThreadingUnixStreamServer(path, Echo)
        exercise(usrv, socket.AF_UNIX, path)
    ''', tmp_path)


def test_asyncio_echo(mod, tmp_path):
    run_child(mod, r'''
        import asyncio

        async def main():
            async def handle(reader, writer):
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    writer.write(line.upper())
                    await writer.drain()
                writer.close()
                await writer.wait_closed()

            server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                                limit=1 << 21)
            port = server.sockets[0].getsockname()[1]
            assert isinstance(server.sockets[0]._sock, BASE)
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                          limit=1 << 21)
            for i in range(20):
                writer.write(b"msg %d\n" % i)
                await writer.drain()
                assert await reader.readline() == b"MSG %d\n" % i
            big = b"y" * 1000000 + b"\n"
            writer.write(big)
            await writer.drain()
            assert await reader.readuntil(b"\n") == big.upper()
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()

            # low-level loop.sock_* API on non-blocking sockets
            loop = asyncio.get_running_loop()
            a, b = socket.socketpair()
            with a, b:
                a.setblocking(False); b.setblocking(False)
                await loop.sock_sendall(a, b"low-level")
                data = await loop.sock_recv(b, 100)
                assert data == b"low-level", data
                buf = bytearray(5)
                await loop.sock_sendall(b, b"12345")
                n = await loop.sock_recv_into(a, buf)
                assert bytes(buf[:n]) == b"12345"[:n]

        asyncio.run(asyncio.wait_for(main(), 30))
    ''', tmp_path)


def test_network_modules_import(mod, tmp_path):
    # http.client, urllib.request, asyncio, xmlrpc, smtplib guard
    # `import ssl` with `except ImportError`; a missing CAPI breaks them.
    run_child(mod, r'''
        import http.client, urllib.request, asyncio, smtplib, ftplib
        import xmlrpc.client, socketserver, selectors
        import ssl
        assert urllib.request.urlopen
    ''', tmp_path)


def test_selectors_with_sockets(mod, tmp_path):
    run_child(mod, r'''
        import selectors
        a, b = socket.socketpair()
        with a, b, selectors.DefaultSelector() as sel:
            a.setblocking(False)
            sel.register(a, selectors.EVENT_READ)
            assert sel.select(0) == []
            b.sendall(b"ready")
            events = sel.select(10)
            assert len(events) == 1 and events[0][0].fileobj is a
            assert a.recv(10) == b"ready"
    ''', tmp_path)


def test_install_after_socket_import_raises(swift, tmp_path):
    code = r'''
import sys, socket
import swiftsocket
try:
    swiftsocket.install()
except RuntimeError as exc:
    print("RuntimeError:", exc)
else:
    raise SystemExit("install() did not raise")
import _socket
assert socket._socket is _socket
assert sys.modules["_socket"] is _socket
print("CHILD-OK")
'''
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path),
                          env=_child_env(swift), capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0 and "CHILD-OK" in proc.stdout, proc.stderr
    assert "RuntimeError:" in proc.stdout


def test_install_is_idempotent(swift, tmp_path):
    code = r'''
import sys
import swiftsocket
first = swiftsocket.install()
second = swiftsocket.install()
assert first is second is sys.modules["_socket"]
import socket
third = swiftsocket.install()
assert third is first
assert socket._socket is first
print("CHILD-OK")
'''
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path),
                          env=_child_env(swift), capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0 and "CHILD-OK" in proc.stdout, proc.stderr


def test_swiftsocket_is_not_the_c_module(swift):
    # Guard against vacuous passes of the swiftsocket children above: the
    # module must not simply re-export the C _socket.
    import _socket
    assert swift is not _socket
    assert swift.socket is not _socket.socket
    assert not issubclass(swift.socket, _socket.socket)
    assert not issubclass(_socket.socket, swift.socket)
    assert swift.getaddrinfo is not _socket.getaddrinfo
    assert swift.socketpair is not _socket.socketpair


def _tls_cert(tmp_path):
    """A certificate+key PEM for localhost: CPython's own test certificate
    when installed, else a throwaway one made with the openssl CLI."""
    import sysconfig
    candidate = os.path.join(sysconfig.get_paths()["stdlib"], "test",
                             "certdata", "keycert.pem")
    if os.path.exists(candidate):
        return candidate
    path = str(tmp_path / "keycert.pem")
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", path, "-out", path + ".crt", "-days", "1",
             "-subj", "/CN=localhost"],
            check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip("no TLS certificate available: %s" % exc)
    with open(path, "a") as out, open(path + ".crt") as crt:
        out.write(crt.read())
    return path


def test_tls_roundtrip_and_timeout(mod, tmp_path):
    # _ssl reads sock_fd and sock_timeout straight from the socket object's
    # C layout and imports the CAPI capsule of sys.modules['_socket'].
    cert = _tls_cert(tmp_path)
    run_child(mod, r'''
        import ssl, threading, time
        CERT = sys.argv[2]
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(CERT)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        srv = socket.create_server(("127.0.0.1", 0))
        srv.settimeout(10)
        done = threading.Event()
        errors = []

        def serve():
            try:
                conn, _ = srv.accept()
                conn.settimeout(10)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    data = b""
                    while not data.endswith(b"\n"):
                        chunk = tls.recv(1024)
                        if not chunk:
                            break
                        data += chunk
                    tls.sendall(data.upper())
                    done.wait(10)   # stay silent while the client times out
            except Exception as exc:
                errors.append(exc)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        raw = socket.create_connection(srv.getsockname(), timeout=10)
        with client_ctx.wrap_socket(raw) as tls:
            assert isinstance(tls, BASE)
            tls.sendall(b"hello tls\n")
            got = b""
            while len(got) < 10:
                chunk = tls.recv(1024)
                assert chunk
                got += chunk
            assert got == b"HELLO TLS\n", got
            tls.settimeout(0.3)
            t0 = time.monotonic()
            try:
                tls.recv(10)
            except TimeoutError:
                elapsed = time.monotonic() - t0
            else:
                raise AssertionError("TLS recv did not time out")
            assert 0.2 <= elapsed <= 3.0, elapsed
            done.set()
        t.join(10)
        assert not t.is_alive()
        assert not errors, errors
        srv.close()
    ''', tmp_path, extra_args=(cert,))
