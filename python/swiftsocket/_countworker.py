"""The process that ``python -m swiftsocket bench --count`` runs under valgrind.

Usage::

    python path/to/_countworker.py IMPL N1 N2 WARM OP [OP...] [--pkg-root DIR]

IMPL is ``stdlib`` or ``swiftsocket`` (``import swiftsocket;
swiftsocket.install()`` before ``import socket``), so both run the same stdlib
``socket.py``.  The driver runs this file by path, so the stdlib run never
loads the Swift extension; this file imports nothing from its package.

For each OP, in order: its setup, WARM untimed iterations, then a marker, N1
iterations, a marker, N2 iterations, a marker.  The marker is ``os.getppid()``:
callgrind, run with ``--dump-before=getppid``, writes its counters to a new
file each time it is reached, so operation k's N1 and N2 loops are parts
3k+2 and 3k+3 (part 1 is start-up).  Everything that differs between the two
parts' ends (the loop's own entry and exit, the marker) is the same in both,
so (part(N2) - part(N1)) / (N2 - N1) is the cost of one iteration.  Under
memcheck (no parts) the driver runs one OP with N2 = 0 and compares totals.

The garbage collector is off and the driver sets PYTHONHASHSEED=0: a
collection or a dict resize inside one loop but not the other would add
hundreds of instructions to a trivial operation.  Each iteration leaves the
state as it found it (what is sent is received, what is created is closed),
and after the loops the driver's check (``drained``) confirms it.

The last line of stdout is a JSON object: per operation, null or the error.
"""

import gc
import json
import os
import sys
import tempfile
import traceback
from itertools import repeat

IMPLS = ("stdlib", "swiftsocket")

# Targets for swiftsocket's instruction ratio (stdlib / swiftsocket), by family.
TARGETS = {
    "trivial": 1.00, "create": 1.00, "io": 1.20, "io-addr": 1.10, "io-bulk": 1.10,
    "ancillary": 1.20, "error": 1.00, "address": 1.10, "convert": 1.00,
    "resolve": 1.00, "option": 1.00, "accept": 1.10,
}

MODES = {"": "", "-timeout": "timeout", "-nonblock": "nonblocking"}


class Op:
    """One measured operation: `stmt` is the loop body; `setup` runs before
    (outside the counts) in the same namespace, `teardown` after."""

    def __init__(self, name, family, setup, stmt, teardown="", drain=()):
        self.name, self.family = name, family
        self.setup, self.stmt, self.teardown = setup, stmt, teardown
        self.drain = drain    # sockets that must have nothing left to read

    @property
    def target(self):
        return TARGETS[self.family]


def _ops():
    ops = []

    def add(*args, **kw):
        ops.append(Op(*args, **kw))

    # trivial getters and setters
    pair = "a, b = pair('')"
    close_pair = "a.close(); b.close()"
    add("fileno", "trivial", pair, "a.fileno()", close_pair)
    add("gettimeout", "trivial", pair, "a.gettimeout()", close_pair)
    add("getblocking", "trivial", pair, "a.getblocking()", close_pair)
    add("settimeout(5.0)", "trivial", pair, "a.settimeout(5.0)", close_pair)
    add("setblocking(True)", "trivial", pair, "a.setblocking(True)", close_pair)

    # creation
    add("socket().close()", "create", "", "socket.socket().close()")
    add("socket(AF_INET6,SOCK_DGRAM).close()", "create", "",
        "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()")
    add("socketpair()+close x2", "create", "", "x, y = socket.socketpair(); x.close(); y.close()")
    add("dup().close()", "create", pair, "a.dup().close()", close_pair)
    add("fromfd().close()", "create", pair + "; fd = a.fileno()",
        "socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM).close()", close_pair)
    add("socket(fileno=).close()", "create", pair + "; fd = a.fileno()",
        "socket.socket(fileno=os.dup(fd)).close()", close_pair)

    # every send/recv pairing, in each mode
    for suffix, mode in MODES.items():
        p = "a, b = pair(%r)" % mode
        u = "a, b, addr = udp_pair(%r)" % mode
        add("send+recv(1)" + suffix, "io", p, "a.send(b'x'); b.recv(1)", close_pair, ("b",))
        add("sendall+recv_into" + suffix, "io", p + "; buf = bytearray(64)",
            "a.sendall(MSG64); b.recv_into(buf)", close_pair, ("b",))
        add("sendmsg+recvmsg" + suffix, "io", p, "a.sendmsg([MSG64]); b.recvmsg(64)",
            close_pair, ("b",))
        add("sendmsg+recvmsg_into" + suffix, "io", p + "; bufs = [bytearray(64)]",
            "a.sendmsg([MSG64]); b.recvmsg_into(bufs)", close_pair, ("b",))
        add("UDP sendto+recvfrom" + suffix, "io-addr", u,
            "a.sendto(b'x', addr); b.recvfrom(1)", close_pair, ("b",))
        add("UDP sendto+recvfrom_into" + suffix, "io-addr", u + "; buf = bytearray(64)",
            "a.sendto(MSG64, addr); b.recvfrom_into(buf)", close_pair, ("b",))
        add("sendall(64KiB)+recv_into" + suffix, "io-bulk", p + "; buf = bytearray(65536)",
            "a.sendall(BULK); b.recv_into(buf)", close_pair, ("b",))
    add("sendall(64KiB)+recv(65536)", "io-bulk", pair, "a.sendall(BULK); b.recv(65536)",
        close_pair, ("b",))
    add("UDP6 sendmsg+recvmsg (address)", "io-addr", "a, b, addr = udp_pair('', socket.AF_INET6)",
        "a.sendmsg([b'x'], [], 0, addr); b.recvmsg(1)", close_pair, ("b",))

    # ancillary data
    add("sendmsg+recvmsg SCM_RIGHTS", "ancillary",
        pair + "; r, w = os.pipe(); anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,"
        " r.to_bytes(4, sys.byteorder))]; space = socket.CMSG_SPACE(4)",
        "a.sendmsg([b'x'], anc); m, c, f, ad = b.recvmsg(1, space);"
        " os.close(int.from_bytes(c[0][2], sys.byteorder))",
        close_pair + "; os.close(r); os.close(w)", ("b",))
    add("send+recvmsg SCM_CREDENTIALS", "ancillary",
        pair + "; b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1);"
        " space = socket.CMSG_SPACE(12)",
        "a.send(b'x'); b.recvmsg(1, space)", close_pair, ("b",))

    # error paths
    add("recv nonblocking -> BlockingIOError", "error", "a, b = pair('nonblocking')",
        "try:\n    a.recv(1)\nexcept BlockingIOError:\n    pass", close_pair)
    add("accept nonblocking -> BlockingIOError", "error",
        "srv, addr = tcp_listener(socket.AF_INET); srv.setblocking(False)",
        "try:\n    srv.accept()\nexcept BlockingIOError:\n    pass", "srv.close()")
    add("recv timeout(1ms) -> TimeoutError", "error", pair + "; a.settimeout(0.001)",
        "try:\n    a.recv(1)\nexcept TimeoutError:\n    pass", close_pair)
    add("getpeername unconnected -> OSError", "error", "s = socket.socket()",
        "try:\n    s.getpeername()\nexcept OSError:\n    pass", "s.close()")
    add("connect missing AF_UNIX path -> OSError", "error",
        "s = socket.socket(socket.AF_UNIX); path = os.path.join(TMP, 'absent')",
        "try:\n    s.connect(path)\nexcept FileNotFoundError:\n    pass", "s.close()")
    add("send(str) -> TypeError", "error", pair,
        "try:\n    a.send('x')\nexcept TypeError:\n    pass", close_pair)

    # socket addresses, C -> Python and Python -> C
    add("getsockname AF_INET", "address", "s, addr = tcp_listener(socket.AF_INET)",
        "s.getsockname()", "s.close()")
    add("getsockname AF_INET6", "address", "s, addr = tcp_listener(socket.AF_INET6)",
        "s.getsockname()", "s.close()")
    add("getsockname AF_UNIX", "address", "s, addr = unix_listener()",
        "s.getsockname()", "s.close()")
    add("getpeername AF_INET", "address",
        "srv, addr = tcp_listener(socket.AF_INET); c = socket.create_connection(addr);"
        " s, _ = srv.accept()", "c.getpeername()", "c.close(); s.close(); srv.close()")
    add("UDP connect AF_INET", "address", "a, b, addr = udp_pair('')", "a.connect(addr)",
        close_pair)
    add("UDP connect AF_INET6", "address", "a, b, addr = udp_pair('', socket.AF_INET6)",
        "a.connect(addr)", close_pair)
    add("connect AF_UNIX datagram", "address",
        "b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM);"
        " addr = os.path.join(TMP, 'dgram'); b.bind(addr);"
        " a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
        "a.connect(addr)", close_pair + "; os.unlink(addr)")

    # text <-> packed address conversion
    add("inet_aton", "convert", "", "socket.inet_aton('127.0.0.1')")
    add("inet_ntoa", "convert", "", "socket.inet_ntoa(b'\\x7f\\x00\\x00\\x01')")
    add("inet_pton AF_INET6", "convert", "", "socket.inet_pton(socket.AF_INET6, '::1')")
    add("inet_ntop AF_INET6", "convert", "packed = bytes(15) + b'\\x01'",
        "socket.inet_ntop(socket.AF_INET6, packed)")

    # name resolution (numeric only: no resolver traffic)
    add("getaddrinfo 127.0.0.1", "resolve", "",
        "socket.getaddrinfo('127.0.0.1', 80, socket.AF_INET, socket.SOCK_STREAM)")
    add("getaddrinfo ::1", "resolve", "",
        "socket.getaddrinfo('::1', 80, socket.AF_INET6, socket.SOCK_STREAM)")
    add("getnameinfo numeric", "resolve",
        "flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV",
        "socket.getnameinfo(('127.0.0.1', 80), flags)")
    add("gethostname", "resolve", "", "socket.gethostname()")

    # options
    add("getsockopt int", "option", "s = socket.socket()",
        "s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)", "s.close()")
    add("setsockopt int", "option", "s = socket.socket()",
        "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)", "s.close()")
    add("getsockopt buflen", "option", "s = socket.socket()",
        "s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)", "s.close()")
    add("setsockopt bytes", "option", "s = socket.socket(); lg = bytes(8)",
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, lg)", "s.close()")

    # connect + accept + close, one connection per iteration
    add("TCP connect+accept+close", "accept", "srv, addr = tcp_listener(socket.AF_INET)",
        "c = socket.socket(); c.connect(addr); s, _ = srv.accept(); s.close(); c.close()",
        "srv.close()")
    add("TCP6 connect+accept+close timeout", "accept",
        "srv, addr = tcp_listener(socket.AF_INET6); srv.settimeout(5)",
        "c = socket.socket(socket.AF_INET6); c.settimeout(5); c.connect(addr);"
        " s, _ = srv.accept(); s.close(); c.close()", "srv.close()")
    add("AF_UNIX connect+accept+close", "accept", "srv, addr = unix_listener()",
        "c = socket.socket(socket.AF_UNIX); c.connect(addr); s, _ = srv.accept();"
        " s.close(); c.close()", "srv.close()")
    return ops


OPS = _ops()
OPS_BY_NAME = {op.name: op for op in OPS}


# --------------------------------------------------------------------------
# set-up helpers (never inside the counted loops)

def _helpers(socket, tmp):
    def apply_mode(mode, *socks):
        for s in socks:
            if mode == "timeout":
                s.settimeout(5.0)
            elif mode == "nonblocking":
                s.setblocking(False)

    def pair(mode):
        a, b = socket.socketpair()
        apply_mode(mode, a, b)
        return a, b

    def udp_pair(mode, family=socket.AF_INET):
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
        a = socket.socket(family, socket.SOCK_DGRAM)
        b = socket.socket(family, socket.SOCK_DGRAM)
        a.bind((host, 0))
        b.bind((host, 0))
        apply_mode(mode, a, b)
        return a, b, b.getsockname()

    def tcp_listener(family):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        # Accepted sockets inherit SO_LINGER 0: closed first, they reset the
        # connection, so thousands of iterations leave no TIME_WAIT behind.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, (1).to_bytes(4, sys.byteorder) + bytes(4))
        s.listen(4096)
        return s, s.getsockname()

    def unix_listener():
        path = os.path.join(tmp, "stream")
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(4096)
        return s, path

    return {"pair": pair, "udp_pair": udp_pair, "tcp_listener": tcp_listener,
            "unix_listener": unix_listener}


def _drained(sock):
    """True if nothing is left to read on sock."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1)
        return False
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)


def _compile(op, base):
    ns = dict(base)
    exec(op.setup, ns)
    body = "\n".join("        " + line for line in op.stmt.splitlines())
    exec("def _loop(_it):\n    for _ in _it:\n" + body + "\n", ns)
    return ns


def load_socket(impl, pkg_root):
    if "socket" in sys.modules:
        raise RuntimeError("socket was imported before the implementation was chosen")
    if impl == "swiftsocket":
        if pkg_root:
            sys.path.insert(0, pkg_root)
        import swiftsocket
        swiftsocket.install()
        import socket
        if socket._socket is not swiftsocket:
            raise RuntimeError("socket._socket is %r, not swiftsocket" % (socket._socket,))
    elif impl == "stdlib":
        import socket
        if socket._socket.__name__ != "_socket" or "swiftsocket" in sys.modules:
            raise RuntimeError("stdlib run is not using the C _socket module")
    else:
        raise SystemExit("unknown implementation %r (choose from %s)" % (impl, ", ".join(IMPLS)))
    return socket


def main(argv):
    pkg_root = None
    if "--pkg-root" in argv:
        i = argv.index("--pkg-root")
        pkg_root = argv[i + 1]
        del argv[i:i + 2]
    impl, n1, n2, warm = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    names = argv[4:]
    for name in names:
        if name not in OPS_BY_NAME:
            raise SystemExit("unknown operation %r" % name)
    socket = load_socket(impl, pkg_root)
    marker = os.getppid
    tmp = tempfile.mkdtemp(prefix="swiftsocket-count-")
    base = {"socket": socket, "os": os, "sys": sys, "TMP": tmp,
            "MSG64": b"m" * 64, "BULK": b"b" * 65536}
    base.update(_helpers(socket, tmp))
    errors = {}
    gc.collect()
    gc.disable()
    try:
        for name in names:
            op = OPS_BY_NAME[name]
            markers = 0
            ns = None
            try:
                ns = _compile(op, base)
                loop = ns["_loop"]
                loop(repeat(None, warm))
                marker()
                markers += 1
                loop(repeat(None, n1))
                marker()
                markers += 1
                loop(repeat(None, n2))
                marker()
                markers += 1
                for var in op.drain:
                    if not _drained(ns[var]):
                        raise RuntimeError("%s had data left after the loops" % var)
            except Exception as exc:
                errors[name] = "%s: %s" % (type(exc).__name__, exc)
                traceback.print_exc()
            finally:
                for _ in range(3 - markers):   # keep the part numbering
                    marker()
                if ns is not None and op.teardown:
                    try:
                        exec(op.teardown, ns)
                    except Exception as exc:
                        errors.setdefault(name, "teardown: %s: %s" % (type(exc).__name__, exc))
    finally:
        for entry in os.listdir(tmp):
            os.unlink(os.path.join(tmp, entry))
        os.rmdir(tmp)
    backend = socket._socket
    native = getattr(backend, "_swiftsocket", backend)
    print(json.dumps({"impl": impl, "errors": errors, "backend": "%s (%s)" % (
        backend.__name__, os.path.basename(getattr(native, "__file__", "built-in")))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
