"""Stress tests (marked slow).  Size them with SWIFTSOCKET_STRESS_SCALE
(a float, default 1.0; CI may use e.g. 0.2).  Every loop is bounded in count
and in time; each test stays well under the per-test watchdog at scale 1."""

import hashlib
import os
import random
import select
import threading
import time

import _socket

import pytest

import sockutil
from sockutil import IO_TIMEOUT, start_worker

pytestmark = pytest.mark.slow

SCALE = max(0.01, float(os.environ.get("SWIFTSOCKET_STRESS_SCALE", "1.0")))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


def _echo_server(module, lsock, stop, expected_conns, deadline):
    """select()-based echo server over non-blocking ``module`` sockets;
    returns the number of connections served."""
    lsock.setblocking(False)
    conns = {}
    served = 0
    try:
        for _ in range(10 ** 6):
            if stop.is_set() or time.monotonic() > deadline:
                break
            r, _, _ = select.select([lsock] + list(conns), [], [], 0.1)
            for s in r:
                if s is lsock:
                    for _ in range(64):
                        try:
                            fd, _addr = lsock._accept()
                        except BlockingIOError:
                            break
                        c = sockutil.adopt(module, None, fd, lsock.family,
                                           lsock.type, lsock.proto)
                        c.settimeout(IO_TIMEOUT)
                        conns[c] = True
                        served += 1
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, TimeoutError):
                    continue
                except ConnectionError:
                    data = b""
                if not data:
                    del conns[s]
                    s.close()
                    continue
                s.sendall(data)
            if served >= expected_conns and not conns:
                break
    finally:
        for c in conns:
            c.close()
    return served


def test_many_concurrent_connections(mod, track):
    n_threads = 4
    per_thread = scaled(50)
    total = n_threads * per_thread
    lsock = sockutil.listener(mod, track, backlog=128)
    addr = lsock.getsockname()
    stop = threading.Event()
    deadline = time.monotonic() + 40
    server = start_worker(_echo_server, mod, lsock, stop, total, deadline)

    def client(tid):
        ok = 0
        rng = random.Random(tid)
        for i in range(per_thread):
            if time.monotonic() > deadline:
                break
            payload = rng.randbytes(rng.randrange(1, 20000))
            c = mod.socket()
            try:
                c.settimeout(IO_TIMEOUT)
                c.connect(addr)
                c.sendall(payload)
                got = sockutil.recv_exactly(c, len(payload))
                assert got == payload
                ok += 1
            finally:
                c.close()
        return ok

    workers = [start_worker(client, t) for t in range(n_threads)]
    try:
        counts = [w.finish(timeout=50) for w in workers]
    finally:
        stop.set()
    served = server.finish(timeout=10)
    assert counts == [per_thread] * n_threads
    assert served == total


def test_many_simultaneously_open_connections(mod, track):
    n = scaled(200, minimum=10)
    lsock = sockutil.listener(mod, track, backlog=min(n, 1024))
    lsock.settimeout(IO_TIMEOUT)
    clients = []
    accepted = []
    for i in range(n):
        c = track(mod.socket())
        c.settimeout(IO_TIMEOUT)
        c.connect(lsock.getsockname())
        clients.append(c)
        fd, _ = lsock._accept()
        accepted.append(sockutil.adopt(mod, track, fd))
    for i, c in enumerate(clients):
        c.sendall(b"%08d" % i)
    for i, a in enumerate(accepted):
        a.settimeout(IO_TIMEOUT)
        assert sockutil.recv_exactly(a, 8) == b"%08d" % i


def test_repeated_large_transfers(mod, track):
    rounds = scaled(6)
    size = 8 * 1024 * 1024
    conn, peer = sockutil.server_pair(mod, track)
    client = sockutil.adopt(mod, track, os.dup(peer.fileno()))
    peer.close()
    client.settimeout(IO_TIMEOUT)
    deadline = time.monotonic() + 45
    for r in range(rounds):
        assert time.monotonic() < deadline, "out of time at round %d" % r
        data = random.Random(r).randbytes(size)

        def receive():
            h = hashlib.sha256()
            buf = bytearray(1 << 18)
            view = memoryview(buf)
            got = 0
            while got < size:
                n = conn.recv_into(buf, min(len(buf), size - got))
                assert n > 0
                h.update(view[:n])
                got += n
            return h.hexdigest()

        w = start_worker(receive)
        client.sendall(data)
        assert w.finish(timeout=30) == hashlib.sha256(data).hexdigest()


def test_full_duplex_transfer(mod, track):
    size = scaled(16 * 1024 * 1024, minimum=1 << 20)
    conn, peer = sockutil.server_pair(mod, track)
    client = sockutil.adopt(mod, track, os.dup(peer.fileno()))
    peer.close()
    client.settimeout(30)
    conn.settimeout(30)
    a_data = random.Random(1).randbytes(size)
    b_data = random.Random(2).randbytes(size)

    def pump(sock, data):
        sock.sendall(data)

    def collect(sock):
        h = hashlib.sha256()
        got = 0
        buf = bytearray(1 << 17)
        while got < size:
            n = sock.recv_into(buf)
            assert n > 0
            h.update(memoryview(buf)[:n])
            got += n
        return h.hexdigest()

    workers = [start_worker(pump, client, a_data),
               start_worker(pump, conn, b_data)]
    readers = [start_worker(collect, conn), start_worker(collect, client)]
    for w in workers:
        w.finish(timeout=45)
    assert readers[0].finish(timeout=45) == hashlib.sha256(a_data).hexdigest()
    assert readers[1].finish(timeout=45) == hashlib.sha256(b_data).hexdigest()


def test_open_close_cycles_do_not_leak(mod):
    n = scaled(3000, minimum=100)
    before = len(os.listdir("/proc/self/fd"))
    deadline = time.monotonic() + 30
    done = 0
    for i in range(n):
        if time.monotonic() > deadline:
            break
        kind = i % 3
        if kind == 0:
            s = mod.socket()
            s.close()
        elif kind == 1:
            a, b = mod.socketpair()
            a.close()
            b.close()
        else:
            s = mod.socket(mod.AF_INET, mod.SOCK_DGRAM)
            s.bind((sockutil.LOOPBACK4, 0))
            s.close()
        done += 1
    assert done >= min(n, 100)
    assert len(os.listdir("/proc/self/fd")) == before


def test_timeouts_under_load(mod, track):
    # Many sockets timing out concurrently in threads: each must raise
    # TimeoutError on its own, near its own deadline.
    n = scaled(20, minimum=4)
    pairs = [sockutil.client_pair(mod, track) for _ in range(n)]

    def wait(sock):
        sock.settimeout(0.5)
        t0 = time.monotonic()
        try:
            sock.recv(10)
        except TimeoutError as exc:
            return str(exc), time.monotonic() - t0
        return "no timeout", 0

    workers = [start_worker(wait, c) for c, _ in pairs]
    results = [w.finish(timeout=20) for w in workers]
    for msg, elapsed in results:
        assert msg == "timed out"
        assert 0.4 <= elapsed <= 5.0


def test_datagram_burst(mod, track):
    n = scaled(2000, minimum=50)
    rx = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    rx.setsockopt(mod.SOL_SOCKET, mod.SO_RCVBUF, 1 << 20)
    rx.bind((sockutil.LOOPBACK4, 0))
    rx.settimeout(IO_TIMEOUT)
    tx = track(_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM))
    seen = set()
    batch = 100
    for start in range(0, n, batch):
        for i in range(start, min(n, start + batch)):
            tx.sendto(b"%06d" % i, rx.getsockname())
        for i in range(start, min(n, start + batch)):
            data = rx.recv(100)
            seen.add(int(data))
    assert seen == set(range(n))
