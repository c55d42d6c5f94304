"""One benchmark measurement, run in a fresh process by ``python -m swiftsocket bench``.

Usage::

    python -m swiftsocket._benchworker IMPL WORKLOAD [--duration S] [--pkg-root DIR]
    python path/to/_benchworker.py     IMPL WORKLOAD [--duration S] [--pkg-root DIR]

IMPL is ``stdlib`` (plain ``import socket``) or ``swiftsocket``
(``import swiftsocket; swiftsocket.install(); import socket``), so both run the
same stdlib ``socket.py`` on top of their ``_socket``.  The result is printed
as one JSON object on the last line of stdout.

The bench driver runs this file by path, so the stdlib measurement never loads
the Swift extension.  This file therefore imports nothing from its package.

Everything is bounded: loops have iteration caps, socket setup uses timeouts,
both processes of a measurement arm ``alarm()`` with the default SIGALRM action
(the kernel kills a stuck process), and the driver has its own timeout.
"""

import argparse
import json
import os
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback

IMPLS = ("stdlib", "swiftsocket")

SETUP_TIMEOUT = 10.0      # seconds, for listen/accept/connect
IO_TIMEOUT = 5.0          # seconds, for the "-timeout" workload variants
WARMUP_SECONDS = 0.05
CHUNK = 64 * 1024         # bulk: sendall() chunk size
TRANSFER = 256 * 1024 * 1024  # bulk: bytes per transfer (one way)
MAX_TRANSFERS = 64
MAX_ROUND_TRIPS = 20_000_000
MAX_CREATES = 20_000_000


# --------------------------------------------------------------------------
# loading an implementation

def load_socket(impl, pkg_root=None):
    """Import the stdlib socket module on top of the requested _socket."""
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
        if socket._socket.__name__ != "_socket":
            raise RuntimeError("stdlib run is not using the C _socket module")
    else:
        raise SystemExit("unknown implementation %r (choose from %s)" % (impl, ", ".join(IMPLS)))
    return socket


def backend_name(socket):
    mod = socket._socket
    native = getattr(mod, "_swiftsocket", mod)
    return "%s (%s)" % (mod.__name__, os.path.basename(getattr(native, "__file__", "built-in")))


# --------------------------------------------------------------------------
# process helpers

def arm_watchdog(seconds):
    """Kill this process (SIGALRM, default action) after `seconds`."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, int(seconds + 0.999)))


def fork_peer(fn, limit):
    """Run fn() in a forked child; the child always ends with os._exit()."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            arm_watchdog(limit)
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def reap(pid, wait=SETUP_TIMEOUT):
    """Wait (bounded) for the peer; kill it if it does not exit. Return its status."""
    deadline = time.monotonic() + wait
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGKILL
        time.sleep(0.005)


def check_peer(pid, name):
    code = reap(pid)
    if code != 0:
        raise RuntimeError("%s peer process failed (exit status %s)" % (name, code))


def tcp_listener(socket):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(SETUP_TIMEOUT)
    return ls, ls.getsockname()


def tcp_client(socket, addr):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(SETUP_TIMEOUT)
    c.connect(addr)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def accept_one(socket, ls, nodelay):
    conn, _ = ls.accept()
    ls.close()
    if nodelay:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def start_busy_thread(stop):
    """A Python thread that computes until `stop` is set: an app's worker
    thread, which every GIL release may hand the GIL to."""
    def compute():
        x = 0
        while not stop.is_set():
            for _ in range(1000):
                x += 1
    worker = threading.Thread(target=compute, daemon=True)
    worker.start()
    return worker


# --------------------------------------------------------------------------
# workloads: each returns (operations, seconds, unit, extra)

def _echo(socket, ls, nodelay, io_timeout):
    """The forked peer of the ping-pong workloads: echo every byte back."""
    conn = accept_one(socket, ls, nodelay=nodelay)
    conn.settimeout(io_timeout)
    recv, send = conn.recv, conn.send
    for _ in range(MAX_ROUND_TRIPS + 100_000):
        data = recv(1)
        if not data:
            break
        send(data)
    conn.close()


def _pingpong(socket, duration, family, io_timeout):
    """1-byte ping-pong; this process is the client, a forked child echoes."""
    tmpdir = None
    if family == "tcp":
        ls, addr = tcp_listener(socket)
    else:
        tmpdir = tempfile.mkdtemp(prefix="swiftsocket-bench-")
        addr = os.path.join(tmpdir, "echo.sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(addr)
        ls.listen(1)
        ls.settimeout(SETUP_TIMEOUT)

    pid = fork_peer(lambda: _echo(socket, ls, family == "tcp", io_timeout), duration + 30)
    c = None
    try:
        ls.close()
        if family == "tcp":
            c = tcp_client(socket, addr)
        else:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(SETUP_TIMEOUT)
            c.connect(addr)
        c.settimeout(io_timeout)
        send, recv = c.send, c.recv
        ping = b"x"
        clock = time.perf_counter

        # warm-up
        end = clock() + WARMUP_SECONDS
        while clock() < end:
            for _ in range(32):
                send(ping)
                if not recv(1):
                    raise RuntimeError("echo peer closed the connection")

        n = 0
        t0 = clock()
        end = t0 + duration
        while n < MAX_ROUND_TRIPS:
            for _ in range(64):
                send(ping)
                if not recv(1):
                    raise RuntimeError("echo peer closed the connection")
            n += 64
            if clock() >= end:
                break
        elapsed = clock() - t0
    finally:
        if c is not None:
            c.close()
        if tmpdir:
            try:
                os.unlink(addr)
            except OSError:
                pass
            os.rmdir(tmpdir)
    check_peer(pid, "echo")
    return n, elapsed, "round trips/s", {}


def tcp_pingpong(socket, duration):
    return _pingpong(socket, duration, "tcp", None)


def tcp_pingpong_timeout(socket, duration):
    return _pingpong(socket, duration, "tcp", IO_TIMEOUT)


def unix_pingpong(socket, duration):
    return _pingpong(socket, duration, "unix", None)


def _pingpong_event_loop(socket, duration, busy_thread):
    """1-byte TCP ping-pong the way an event loop does it: a non-blocking
    socket, poll() for readiness, then recv()/send(). With `busy_thread`, a
    Python thread in this process computes meanwhile (an app with a worker
    thread): every GIL release then risks a handoff to it."""
    import select

    ls, addr = tcp_listener(socket)
    pid = fork_peer(lambda: _echo(socket, ls, True, None), duration + 30)
    c = None
    stop = threading.Event()
    worker = None
    try:
        ls.close()
        c = tcp_client(socket, addr)
        c.setblocking(False)
        poller = select.poll()
        poller.register(c, select.POLLIN)
        send, recv, wait = c.send, c.recv, poller.poll
        ping = b"x"
        clock = time.perf_counter
        wait_ms = int(IO_TIMEOUT * 1000)

        def round_trip():
            send(ping)
            for _ in range(1000):
                try:
                    if not recv(1):
                        raise RuntimeError("echo peer closed the connection")
                    return
                except BlockingIOError:
                    if not wait(wait_ms):
                        raise RuntimeError("no echo within %s s" % IO_TIMEOUT)
            raise RuntimeError("no echo after 1000 wake-ups")

        if busy_thread:
            worker = start_busy_thread(stop)

        end = clock() + WARMUP_SECONDS
        while clock() < end:
            round_trip()
        n = 0
        t0 = clock()
        end = t0 + duration
        while n < MAX_ROUND_TRIPS:
            for _ in range(16):
                round_trip()
            n += 16
            if clock() >= end:
                break
        elapsed = clock() - t0
    finally:
        stop.set()
        if worker is not None:
            worker.join(SETUP_TIMEOUT)
        if c is not None:
            c.close()
    check_peer(pid, "echo")
    return n, elapsed, "round trips/s", {}


def tcp_pingpong_event_loop(socket, duration):
    return _pingpong_event_loop(socket, duration, busy_thread=False)


def tcp_pingpong_event_loop_busy(socket, duration):
    return _pingpong_event_loop(socket, duration, busy_thread=True)


def _recv_exact(sock, n):
    data = b""
    for _ in range(n + 1):
        if len(data) >= n:
            return data
        part = sock.recv(n - len(data))
        if not part:
            break
        data += part
    raise RuntimeError("connection closed after %d of %d bytes" % (len(data), n))


def tcp_bulk(socket, duration):
    """One-way bulk transfer: sendall() of 64 KiB chunks, peer recv_into()s.

    Transfers of TRANSFER bytes are repeated until `duration` has elapsed;
    each ends when the receiver acknowledges the last byte.
    """
    ls, addr = tcp_listener(socket)
    header = struct.Struct("!Q")

    def receiver():
        conn = accept_one(socket, ls, nodelay=True)
        conn.settimeout(None)
        buf = bytearray(CHUNK * 4)
        recv_into = conn.recv_into
        size = len(buf)
        for _ in range(MAX_TRANSFERS + 2):
            (remaining,) = header.unpack(_recv_exact(conn, header.size))
            if remaining == 0:
                break
            while remaining:
                k = recv_into(buf, min(remaining, size))
                if not k:
                    raise RuntimeError("sender closed the connection mid-transfer")
                remaining -= k
            conn.sendall(b"A")
        conn.close()

    pid = fork_peer(receiver, duration + 60)
    ls.close()
    c = tcp_client(socket, addr)
    c.settimeout(None)
    chunk = b"\xa5" * CHUNK
    sendall = c.sendall
    clock = time.perf_counter

    def transfer(nbytes):
        sendall(header.pack(nbytes))
        for _ in range(nbytes // CHUNK):
            sendall(chunk)
        if _recv_exact(c, 1) != b"A":
            raise RuntimeError("bad acknowledgement from receiver")

    transfer(16 * CHUNK)  # warm-up
    total = 0
    transfers = 0
    t0 = clock()
    while transfers < MAX_TRANSFERS:
        transfer(TRANSFER)
        total += TRANSFER
        transfers += 1
        if clock() - t0 >= duration:
            break
    elapsed = clock() - t0
    sendall(header.pack(0))
    c.close()
    check_peer(pid, "receiver")
    return total / 1e6, elapsed, "MB/s", {"transfers": transfers, "bytes": total}


def create_close(socket, duration):
    """socket.socket(AF_INET, SOCK_STREAM) followed by close(), in a loop."""
    new, AF_INET, SOCK_STREAM = socket.socket, socket.AF_INET, socket.SOCK_STREAM
    clock = time.perf_counter
    end = clock() + WARMUP_SECONDS
    while clock() < end:
        for _ in range(64):
            new(AF_INET, SOCK_STREAM).close()
    n = 0
    t0 = clock()
    end = t0 + duration
    while n < MAX_CREATES:
        for _ in range(64):
            new(AF_INET, SOCK_STREAM).close()
        n += 64
        if clock() >= end:
            break
    return n, clock() - t0, "sockets/s", {}


def _run_batches(duration, size, batch, cap=MAX_CREATES):
    """Warm up, then run `batch` (which does `size` operations) until
    `duration` has passed; return (operations, seconds)."""
    clock = time.perf_counter
    end = clock() + WARMUP_SECONDS
    while clock() < end:
        batch()
    n = 0
    t0 = clock()
    end = t0 + duration
    while n < cap:
        batch()
        n += size
        if clock() >= end:
            break
    return n, clock() - t0


def connect_accept(socket, duration):
    """connect() to a loopback listener, accept(), close both: what every
    short-lived connection costs. The client closes first, so the TIME_WAIT
    entries are the client's, which Linux reuses on loopback."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        addr = ls.getsockname()
        new, accept, AF_INET, SOCK_STREAM = socket.socket, ls.accept, socket.AF_INET, socket.SOCK_STREAM

        def batch():
            for _ in range(16):
                c = new(AF_INET, SOCK_STREAM)
                c.connect(addr)
                s, _ = accept()
                c.close()
                s.close()

        n, seconds = _run_batches(duration, 16, batch)
    finally:
        ls.close()
    return n, seconds, "connections/s", {}


def socketpairs_500(socket, duration):
    """500 AF_UNIX socketpairs opened, then all closed."""
    socketpair = socket.socketpair

    def batch():
        pairs = [socketpair() for _ in range(500)]
        for a, b in pairs:
            a.close()
            b.close()

    n, seconds = _run_batches(duration, 500, batch)
    return n, seconds, "socketpairs/s", {}


def udp_pingpong(socket, duration):
    """1-byte UDP datagrams: sendto() a forked echo peer, recvfrom() its reply."""
    def bound():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    echo, client = bound(), bound()
    echo_addr = echo.getsockname()

    def serve():
        recvfrom, sendto = echo.recvfrom, echo.sendto
        for _ in range(MAX_ROUND_TRIPS + 100_000):
            data, peer = recvfrom(1)
            if data == b"\0":
                break
            sendto(data, peer)

    pid = fork_peer(serve, duration + 30)
    echo.close()
    sendto, recvfrom = client.sendto, client.recvfrom
    # Blocking, as the limit's; a lost datagram would leave this to alarm().

    def batch():
        for _ in range(64):
            sendto(b"x", echo_addr)
            recvfrom(1)

    try:
        n, seconds = _run_batches(duration, 64, batch, MAX_ROUND_TRIPS)
    finally:
        client.sendto(b"\0", echo_addr)
        client.close()
    check_peer(pid, "echo")
    return n, seconds, "round trips/s", {}


def _asyncio_echo(socket, duration, busy_thread):
    """64-byte messages through asyncio streams: an echo server and its client
    on one event loop. With `busy_thread`, a Python thread computes meanwhile,
    so every GIL release risks a hand-off to it."""
    import asyncio

    message = b"m" * 64
    stop = threading.Event()
    worker = None
    counts = []

    async def handle(reader, writer):
        try:
            for _ in range(MAX_ROUND_TRIPS + 100_000):
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), SETUP_TIMEOUT)
        clock = time.perf_counter

        async def round_trips(k):
            for _ in range(k):
                writer.write(message)
                await reader.readexactly(len(message))

        end = clock() + WARMUP_SECONDS
        while clock() < end:
            await round_trips(16)
        n = 0
        t0 = clock()
        end = t0 + duration
        while n < MAX_ROUND_TRIPS:
            await round_trips(16)
            n += 16
            if clock() >= end:
                break
        counts.append((n, clock() - t0))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    if busy_thread:
        worker = start_busy_thread(stop)
    try:
        asyncio.run(main())
    finally:
        stop.set()
        if worker is not None:
            worker.join(SETUP_TIMEOUT)
    n, seconds = counts[0]
    return n, seconds, "round trips/s", {}


def asyncio_echo(socket, duration):
    return _asyncio_echo(socket, duration, busy_thread=False)


def asyncio_echo_busy(socket, duration):
    return _asyncio_echo(socket, duration, busy_thread=True)


def _threads_pingpong(socket, duration, threads):
    """`threads` threads, each ping-ponging 1 byte over its own AF_UNIX
    socketpair (send on one end, recv on the other, and back): independent
    work that only an interpreter without a GIL runs in parallel."""
    pairs = [socket.socketpair() for _ in range(threads)]
    ready = threading.Barrier(threads + 1, timeout=SETUP_TIMEOUT)
    end = [0.0]
    counts = [0] * threads
    clock = time.perf_counter

    def run(index):
        a, b = pairs[index]
        send_a, recv_a, send_b, recv_b = a.send, a.recv, b.send, b.recv
        for _ in range(256):   # warm-up
            send_a(b"x"), recv_b(1), send_b(b"y"), recv_a(1)
        ready.wait()
        n = 0
        while n < MAX_ROUND_TRIPS:
            for _ in range(64):
                send_a(b"x")
                recv_b(1)
                send_b(b"y")
                recv_a(1)
            n += 64
            if clock() >= end[0]:
                break
        counts[index] = n

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    t0 = clock()
    end[0] = t0 + duration
    ready.wait()
    for w in workers:
        w.join(duration * 4 + SETUP_TIMEOUT)
    elapsed = clock() - t0
    for a, b in pairs:
        a.close()
        b.close()
    return sum(counts), elapsed, "round trips/s", {"threads": threads}


def threads_pingpong_1(socket, duration):
    return _threads_pingpong(socket, duration, 1)


def threads_pingpong_2(socket, duration):
    return _threads_pingpong(socket, duration, 2)


def threads_pingpong_4(socket, duration):
    return _threads_pingpong(socket, duration, 4)


WORKLOADS = {
    "tcp-pingpong": (tcp_pingpong, "TCP 1-byte ping-pong, blocking"),
    "tcp-pingpong-timeout": (tcp_pingpong_timeout, "TCP 1-byte ping-pong, settimeout(5)"),
    "tcp-pingpong-poll": (tcp_pingpong_event_loop, "TCP ping-pong, non-blocking + poll"),
    "tcp-pingpong-poll-busy": (tcp_pingpong_event_loop_busy, "the same, busy thread alongside"),
    "unix-pingpong": (unix_pingpong, "AF_UNIX 1-byte ping-pong"),
    "tcp-bulk": (tcp_bulk, "TCP bulk: sendall 64 KiB -> recv_into"),
    "create-close": (create_close, "socket() + close()"),
    "connect-accept": (connect_accept, "TCP connect + accept + close"),
    "socketpairs-500": (socketpairs_500, "500 socketpairs opened, then closed"),
    "udp-pingpong": (udp_pingpong, "UDP 1-byte sendto/recvfrom ping-pong"),
    "asyncio-echo": (asyncio_echo, "asyncio streams echo, 64-byte messages"),
    "asyncio-echo-busy": (asyncio_echo_busy, "asyncio echo, busy thread alongside"),
    "threads-1": (threads_pingpong_1, "1 thread, own socketpair ping-pong"),
    "threads-2": (threads_pingpong_2, "2 threads, each its own socketpair"),
    "threads-4": (threads_pingpong_4, "4 threads, each its own socketpair"),
}

# Workloads that need every CPU: never pinned to one.
MULTI_CPU_WORKLOADS = {"threads-1", "threads-2", "threads-4"}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="swiftsocket._benchworker")
    ap.add_argument("impl", choices=IMPLS)
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--duration", type=float, default=0.5, help="seconds to measure")
    ap.add_argument("--pkg-root", default=None,
                    help="directory holding the swiftsocket package to import")
    ap.add_argument("--cpu", type=int, default=None,
                    help="pin this process and its forked peer to one CPU")
    args = ap.parse_args(argv)
    duration = min(max(args.duration, 0.01), 30.0)
    if args.cpu is not None and hasattr(os, "sched_setaffinity") and args.workload not in MULTI_CPU_WORKLOADS:
        # Both ends of a ping-pong on one CPU: a same-CPU context switch is
        # far steadier than a cross-CPU wake-up on a small, shared machine.
        os.sched_setaffinity(0, {args.cpu})

    # Hard bound for this process (the forked peers arm their own).
    arm_watchdog(duration * 4 + 60)
    socket = load_socket(args.impl, args.pkg_root)
    fn, title = WORKLOADS[args.workload]
    ops, seconds, unit, extra = fn(socket, duration)
    result = {
        "impl": args.impl,
        "backend": backend_name(socket),
        "workload": args.workload,
        "title": title,
        "ops": ops,
        "seconds": seconds,
        "rate": ops / seconds if seconds > 0 else 0.0,
        "unit": unit,
    }
    result.update(extra)
    signal.alarm(0)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        # Run by path: do not let this file's directory shadow anything.
        here = os.path.dirname(os.path.abspath(__file__))
        if sys.path and os.path.abspath(sys.path[0] or ".") == here:
            del sys.path[0]
    sys.exit(main())
