"""Load: 1,000 concurrent loopback connections, each a numbered stream of
messages echoed back, served three ways — a selectors event loop, a thread
a connection, asyncio streams — in a fresh interpreter running the stdlib
``socket`` on swiftsocket (``swiftsocket.install()`` first) or on the stdlib
``_socket``: the same harness on both.

Per connection, the server counts the messages it parses (each must carry
that connection's id and the next sequence number) and a CRC-32 of the bytes;
the client checks the echo (same CRC, same count, sequence in order) and
both must match what the client sent: nothing lost, duplicated or
reordered. Afterwards the fd count must be exactly where it started and
RSS (after malloc_trim, so memory free in the allocator does not count)
within RSS_SLACK of it (after a warm-up round, see the child): buffers, thread stacks and the payload of a
thousand connections come and go, and CPython's allocators keep some
arenas and caches — a leak of a few hundred bytes per connection moved
would still show.

Size: SWIFTSOCKET_STRESS_SCALE x 64 MiB from the clients, echoed back (so
twice that through the sockets); SWIFTSOCKET_STRESS_SCALE=16 is the full
1 GiB form. The soft RLIMIT_NOFILE is raised (up to the hard limit) for the
two fds each connection needs here; too low a hard limit skips.
Each run prints a summary line (visible with -s).
"""

import json
import os
import subprocess
import sysconfig
import sys

import pytest

pytestmark = pytest.mark.slow

SCALE = max(0.01, float(os.environ.get("SWIFTSOCKET_STRESS_SCALE", "1.0")))
CONNECTIONS = 1000
TOTAL_BYTES = int(64 * 1024 * 1024 * SCALE)
# RSS growth allowed over the measured round. A thread a connection swings
# widely from one identical round to the next, on either module (42-80 MB
# seen on 3.11): which of the cached thread stacks and per-thread malloc
# arenas hold resident pages is a matter of scheduling.
RSS_SLACK = {"selectors": 16 << 20, "asyncio": 16 << 20, "threads": 64 << 20}
# A free-threaded interpreter allocates objects with mimalloc, which keeps
# freed pages resident in per-thread heaps that malloc_trim cannot reach: on
# 3.13t, RSS after an identical round moves by -16 to +29 MB at the default
# size and ends 17-19 MB up after a full 1 GiB round, on the stdlib and
# swiftsocket alike. There, 32 MiB and 2 % of the bytes moved are allowed on
# top (the fd count stays exact; tests/test_soak.py watches growth over time).
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    RSS_SLACK = {server: slack + (32 << 20) + TOTAL_BYTES // 50 for server, slack in RSS_SLACK.items()}
# The child's own hang guard, below the per-test watchdog.
CHILD_SECONDS = int(50 + 25 * SCALE)

CHILD = r'''
import faulthandler, gc, json, os, random, resource, struct, sys, threading, time, zlib
MOD, SERVER, CONNECTIONS, TOTAL_BYTES, SECONDS = (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
faulthandler.dump_traceback_later(SECONDS, exit=True)
if MOD == "swiftsocket":
    import swiftsocket
    swiftsocket.install()
import socket
if MOD == "swiftsocket":
    assert socket._socket is swiftsocket
else:
    import _socket
    assert socket._socket is _socket
import asyncio, ctypes, selectors

needed = 2 * CONNECTIONS + 200
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < needed:
    print(json.dumps({"skip": "hard RLIMIT_NOFILE %d < %d needed" % (hard, needed)}))
    sys.exit(0)
if soft != resource.RLIM_INFINITY and soft < needed:
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

HEADER = struct.Struct("!III")   # connection id, sequence number, payload length
BLOCK = random.Random(0).randbytes((1 << 20) + (1 << 14))
WINDOW = 128 * 1024              # client bytes in flight per connection
try:
    malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):
    malloc_trim = lambda pad: 0


def fd_count():
    return len(os.listdir("/proc/self/fd")) - 1


def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def plan(conn):
    """The sizes of connection conn's messages (deterministic)."""
    rng = random.Random(conn)
    sizes, total = [], 0
    target = round_bytes // CONNECTIONS
    while total < target:
        size = rng.randrange(0, 16384)
        sizes.append(size)
        total += HEADER.size + size
    return sizes


def message(conn, seq, size):
    offset = (conn * 7919 + seq * 104729) % (1 << 20)
    return HEADER.pack(conn, seq, size) + BLOCK[offset:offset + size]


class Frames:
    """Counts the messages in a byte stream, checking that each has the
    expected connection id (the first one's, if None) and the next sequence
    number; also its CRC-32 and length."""

    def __init__(self, conn=None):
        self.conn, self.count, self.crc, self.bytes = conn, 0, 0, 0
        self.header = bytearray()
        self.skip = 0
        self.error = None

    def feed(self, data):
        self.crc = zlib.crc32(data, self.crc)
        self.bytes += len(data)
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            k = min(HEADER.size - len(self.header), n - i)
            self.header += data[i:i + k]
            i += k
            if len(self.header) == HEADER.size:
                conn, seq, size = HEADER.unpack(self.header)
                self.header.clear()
                if self.conn is None:
                    self.conn = conn
                if (conn, seq) != (self.conn, self.count) and self.error is None:
                    self.error = "got message %r, expected %r" % ((conn, seq), (self.conn, self.count))
                self.count += 1
                self.skip = size

    def result(self):
        return {"count": self.count, "crc": self.crc, "bytes": self.bytes, "error": self.error,
                "partial": bool(self.header or self.skip)}


server_results = {}
results_lock = threading.Lock()


def record(frames):
    with results_lock:
        if frames.conn in server_results:
            frames.error = frames.error or "connection id %r seen twice" % frames.conn
        server_results[frames.conn if frames.conn is not None else -len(server_results) - 1] = frames.result()


# ------------------------------------------------------------ servers on sockets

def selectors_server(lsock, stop):
    sel = selectors.DefaultSelector()
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ)
    conns = {}
    served = 0
    try:
        while not stop.is_set() and (served < CONNECTIONS or conns):
            for key, events in sel.select(0.5):
                sock = key.fileobj
                if sock is lsock:
                    for _ in range(64):
                        try:
                            c, _ = lsock.accept()
                        except BlockingIOError:
                            break
                        c.setblocking(False)
                        conns[c] = [Frames(), bytearray()]
                        sel.register(c, selectors.EVENT_READ)
                        served += 1
                    continue
                frames, out = conns[sock]
                if events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        record(frames)
                        sel.unregister(sock)
                        sock.close()
                        del conns[sock]
                        continue
                    if data:
                        frames.feed(data)
                        out += data
                if out:
                    try:
                        sent = sock.send(out)
                    except BlockingIOError:
                        sent = 0
                    del out[:sent]
                # Read only while the echo backlog is small: back-pressure.
                want = (selectors.EVENT_READ if len(out) < WINDOW else 0) | (
                    selectors.EVENT_WRITE if out else 0)
                if want != key.events:
                    sel.modify(sock, want or selectors.EVENT_READ)
    finally:
        for c in conns:
            c.close()
        sel.close()


def threads_server(lsock, stop):
    lsock.settimeout(0.5)
    workers = []

    def serve(c):
        frames = Frames()
        try:
            c.settimeout(SECONDS)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                frames.feed(data)
                c.sendall(data)
        except OSError as exc:
            frames.error = frames.error or repr(exc)
        finally:
            c.close()
            record(frames)

    threading.stack_size(256 * 1024)
    try:
        while not stop.is_set() and len(workers) < CONNECTIONS:
            try:
                c, _ = lsock.accept()
            except TimeoutError:
                continue
            w = threading.Thread(target=serve, args=(c,), daemon=True)
            w.start()
            workers.append(w)
    finally:
        threading.stack_size(0)
    for w in workers:
        w.join(SECONDS)


def socket_clients(address):
    """All connections driven from one selectors loop; returns per-connection results."""
    sel = selectors.DefaultSelector()
    clients = {}
    for conn in range(CONNECTIONS):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(address)
        assert err in (0, 115), err   # EINPROGRESS
        state = {"conn": conn, "sizes": plan(conn), "next": 0, "out": bytearray(),
                 "sent": Frames(conn), "echo": Frames(conn)}
        clients[s] = state
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = {}
    deadline = time.monotonic() + SECONDS
    while clients and time.monotonic() < deadline:
        for key, events in sel.select(0.5):
            s = key.fileobj
            st = clients[s]
            data = None
            if events & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    st["echo"].error = st["echo"].error or "server closed early"
                if data:
                    st["echo"].feed(data)
            sizes = st["sizes"]
            while (st["next"] < len(sizes) and len(st["out"]) < WINDOW
                   and st["sent"].bytes - st["echo"].bytes < WINDOW):
                m = message(st["conn"], st["next"], sizes[st["next"]])
                st["next"] += 1
                st["sent"].feed(m)
                st["out"] += m
            if st["out"] and events & selectors.EVENT_WRITE:
                try:
                    n = s.send(st["out"])
                except BlockingIOError:
                    n = 0
                del st["out"][:n]
            finished = st["next"] == len(sizes) and not st["out"]
            if (finished and st["echo"].bytes >= st["sent"].bytes) or data == b"":
                done[st["conn"]] = (st["sent"].result(), st["echo"].result())
                sel.unregister(s)
                s.close()
                del clients[s]
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if st["out"] or (
                st["next"] < len(sizes) and st["sent"].bytes - st["echo"].bytes < WINDOW) else 0)
            if want != key.events:
                sel.modify(s, want)
    for s in clients:
        s.close()
    sel.close()
    return done


def run_socket_server(kind):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(CONNECTIONS)
    stop = threading.Event()
    server = threading.Thread(target=selectors_server if kind == "selectors" else threads_server,
                              args=(lsock, stop), daemon=True)
    server.start()
    try:
        done = socket_clients(lsock.getsockname())
    finally:
        server.join(SECONDS)
        stop.set()
        server.join(5)
        lsock.close()
    assert not server.is_alive(), "server still running"
    return done


# ------------------------------------------------------------ asyncio streams

async def asyncio_main():
    async def handle(reader, writer):
        frames = Frames()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                frames.feed(data)
                writer.write(data)
                await writer.drain()
        except OSError as exc:
            frames.error = frames.error or repr(exc)
        finally:
            writer.close()
            record(frames)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=CONNECTIONS)
    address = server.sockets[0].getsockname()
    done = {}

    async def client(conn):
        reader, writer = await asyncio.open_connection(*address)
        sent, echo = Frames(conn), Frames(conn)

        async def send():
            for seq, size in enumerate(plan(conn)):
                m = message(conn, seq, size)
                sent.feed(m)
                writer.write(m)
                await writer.drain()

        async def receive(total):
            while echo.bytes < total:
                data = await reader.read(65536)
                if not data:
                    echo.error = echo.error or "server closed early"
                    return
                echo.feed(data)

        expected = sum(HEADER.size + size for size in plan(conn))
        await asyncio.gather(send(), receive(expected))
        writer.close()
        await writer.wait_closed()
        done[conn] = (sent.result(), echo.result())

    async with server:
        await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(CONNECTIONS))), SECONDS)
        for _ in range(int(SECONDS / 0.01)):   # the handlers see EOF and record
            if len(server_results) >= CONNECTIONS:
                break
            await asyncio.sleep(0.01)
    return done


def run_asyncio():
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio_main())
    finally:
        loop.close()


# ------------------------------------------------------------ the run

def measure():
    gc.collect()
    malloc_trim(0)
    return fd_count(), rss(), threading.active_count()


def one_round():
    """Runs every connection once; returns (results, problems found)."""
    server_results.clear()
    done = run_asyncio() if SERVER == "asyncio" else run_socket_server(SERVER)
    bad = []
    for conn in range(CONNECTIONS):
        server = server_results.get(conn)
        client = done.get(conn)
        if client is None or server is None:
            bad.append((conn, "missing", client is None, server is None))
            continue
        sent, echo = client
        for name, got in (("server", server), ("echo", echo)):
            if got["error"] or got["partial"] or (got["count"], got["crc"], got["bytes"]) != (
                    sent["count"], sent["crc"], sent["bytes"]):
                bad.append((conn, name, got, sent))
    bad += [(k, "unknown connection") for k in server_results if not 0 <= k < CONNECTIONS]
    return done, bad


# A first, smaller round of the same thousand connections: what the process
# keeps for good after it (glibc's cache of thread stacks, up to 40 MiB;
# allocator arenas; asyncio's and selectors' first-use state) is the
# baseline, so that the measured round shows growth, not first use.
rss_initial = measure()[1]
round_bytes = min(TOTAL_BYTES, 16 * 1024 * 1024)
_, warmup_bad = one_round()
fds_start, rss_start, threads_start = measure()
rss_max = [rss_start]
sampling = threading.Event()


def sample():
    while not sampling.wait(0.2):
        rss_max[0] = max(rss_max[0], rss())


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
round_bytes = TOTAL_BYTES
t0 = time.monotonic()
done, bad = one_round()
seconds = time.monotonic() - t0
sampling.set()
sampler.join()
fds_end, rss_end, threads_end = measure()
print(json.dumps({
    "module": MOD, "server": SERVER, "connections": len(done),
    "messages": sum(c[0]["count"] for c in done.values()),
    "bytes_up": sum(c[0]["bytes"] for c in done.values()),
    "bytes_echoed": sum(c[1]["bytes"] for c in done.values()),
    "seconds": round(seconds, 2), "bad": (warmup_bad + bad)[:5], "bad_count": len(warmup_bad + bad),
    "fds": [fds_start, fds_end], "threads": [threads_start, threads_end],
    "rss": [rss_start, rss_max[0], rss_end], "rss_initial": rss_initial,
}))
'''


def _child_env(swift):
    env = dict(os.environ)
    env.pop("SWIFTSOCKET", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(swift.__file__)))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.mark.watchdog(CHILD_SECONDS + 30)
@pytest.mark.parametrize("server", ["selectors", "threads", "asyncio"])
@pytest.mark.parametrize("module", ["stdlib", "swiftsocket"])
def test_thousand_connections(swift, module, server, tmp_path):
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", CHILD, module, server,
         str(CONNECTIONS), str(TOTAL_BYTES), str(CHILD_SECONDS)],
        cwd=str(tmp_path), env=_child_env(swift), capture_output=True, text=True,
        timeout=CHILD_SECONDS + 20)
    assert done.returncode == 0, "child failed (rc=%s)\n%s\n%s" % (
        done.returncode, done.stdout[-3000:], done.stderr[-6000:])
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in summary:
        pytest.skip(summary["skip"])
    print("\nload %(module)s/%(server)s: %(connections)d connections, %(messages)d messages, "
          "%(bytes_up)d bytes up + %(bytes_echoed)d echoed in %(seconds)ss; fds %(fds)s; "
          "rss start/max/end %(rss)s (before the warm-up round %(rss_initial)s)" % summary)
    assert summary["bad_count"] == 0, summary["bad"]
    assert summary["connections"] == CONNECTIONS
    assert summary["bytes_up"] >= TOTAL_BYTES
    assert summary["bytes_echoed"] == summary["bytes_up"]
    assert summary["fds"][1] == summary["fds"][0], "fds not back: %s" % summary["fds"]
    assert summary["threads"][1] == summary["threads"][0]
    rss_start, _, rss_end = summary["rss"]
    if not os.environ.get("SWIFTSOCKET_CHECKER"):   # tools/sanitize.sh: the checker's allocator decides
        assert rss_end - rss_start <= RSS_SLACK[server], summary["rss"]
