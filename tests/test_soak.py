"""Soak: mixed traffic on swiftsocket (installed as ``_socket`` in a fresh
interpreter, under the stdlib ``socket``) for SWIFTSOCKET_SOAK_SECONDS
(default 30; 600 is the long form), sampling RSS and the fd count every
second.

Each cycle runs every kind of traffic the other files test, small: a
selectors echo server, a thread a connection, asyncio streams, datagram
bursts (AF_UNIX and UDP), fds passed with SCM_RIGHTS, close() racing a
blocked recv, a 1 ms signal storm through sendall, absurd sizes, and
RLIMIT_NOFILE exhausted and restored. Every exchange is checked (digest or
sequence) as it goes.

At the end the fd count must be exactly what it was after the first cycle,
and RSS growth over the second half (the end against the median of the
samples around the half-way mark, after malloc_trim) below RSS_SLACK: what
the allocators keep is reached within the first half; a leak keeps growing.
The child prints the curve's summary (start, max, end), shown with -s.

The stdlib is the oracle in the other files; here only swiftsocket runs.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SOAK_SECONDS = max(5.0, float(os.environ.get("SWIFTSOCKET_SOAK_SECONDS", "30")))
RSS_SLACK = 8 << 20

CHILD = r'''
import faulthandler, gc, hashlib, json, os, random, resource, signal, statistics, struct, sys
import threading, time
SECONDS = float(sys.argv[1])
MOD = sys.argv[2] if len(sys.argv) > 2 else "swiftsocket"   # "stdlib": to compare by hand
ONLY = sys.argv[3].split(",") if len(sys.argv) > 3 else None   # some kinds only, by name
faulthandler.dump_traceback_later(SECONDS + 120, exit=True)
if MOD == "swiftsocket":
    import swiftsocket
    swiftsocket.install()
import socket
assert (socket._socket.__name__ == "swiftsocket") == (MOD == "swiftsocket")
import asyncio, ctypes, selectors

IO_TIMEOUT = 10
try:
    malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):
    malloc_trim = lambda pad: 0


def fd_count():
    return len(os.listdir("/proc/self/fd")) - 1


def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def quiet():
    """Helper threads leave SIGALRM to the main thread (the storm's)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})


def worker(target, *args):
    box = {}

    def run():
        quiet()
        try:
            box["result"] = target(*args)
        except BaseException as exc:
            box["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def finish():
        t.join(IO_TIMEOUT * 3)
        assert not t.is_alive(), "worker hung"
        if "error" in box:
            raise box["error"]
        return box.get("result")
    return finish


def recv_exactly(s, n):
    parts, got = [], 0
    while got < n:
        data = s.recv(min(65536, n - got))
        assert data, "early end of stream"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def echo_clients(address, count, rng):
    def one(i):
        payload = rng.randbytes(rng.randrange(1, 100_000))
        with socket.create_connection(address, timeout=IO_TIMEOUT) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            assert recv_exactly(c, len(payload)) == payload
            assert c.recv(1) == b""
    finishers = [worker(one, i) for i in range(count)]
    for f in finishers:
        f()


# ------------------------------------------------------------ the kinds of traffic

def selectors_echo(rng):
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    lsock.setblocking(False)
    stop = threading.Event()

    def serve():
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ)
        conns = []
        try:
            while not stop.is_set():
                for key, _ in sel.select(0.1):
                    if key.fileobj is lsock:
                        try:
                            c, _ = lsock.accept()
                        except BlockingIOError:
                            continue
                        c.setblocking(True)
                        c.settimeout(IO_TIMEOUT)
                        conns.append(c)
                        sel.register(c, selectors.EVENT_READ)
                        continue
                    c = key.fileobj
                    data = c.recv(65536)
                    if data:
                        c.sendall(data)
                    else:
                        sel.unregister(c)
                        conns.remove(c)
                        c.close()
        finally:
            for c in conns:
                c.close()
            sel.close()
    finish = worker(serve)
    try:
        echo_clients(lsock.getsockname(), 16, rng)
    finally:
        stop.set()
        finish()
        lsock.close()


def threaded_echo(rng):
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    lsock.settimeout(IO_TIMEOUT)
    count = 12

    def serve():
        handlers = []
        for _ in range(count):
            c, _ = lsock.accept()

            def handle(c=c):
                with c:
                    c.settimeout(IO_TIMEOUT)
                    while data := c.recv(65536):
                        c.sendall(data)
            handlers.append(worker(handle))
        for h in handlers:
            h()
    finish = worker(serve)
    try:
        echo_clients(lsock.getsockname(), count, rng)
    finally:
        finish()
        lsock.close()


def asyncio_echo(rng):
    async def main():
        async def handle(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()

        async def client():
            payload = rng.randbytes(rng.randrange(1, 100_000))
            reader, writer = await asyncio.open_connection(*address)
            writer.write(payload)
            writer.write_eof()
            echoed = await reader.read(-1)
            writer.close()
            await writer.wait_closed()
            assert echoed == payload
        async with server:
            await asyncio.wait_for(asyncio.gather(*(client() for _ in range(12))), IO_TIMEOUT * 2)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def datagrams(rng):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b, u, v:
        b.settimeout(IO_TIMEOUT)
        for i in range(200):
            a.send(struct.pack("!I", i) + b"d" * (i % 700))
        for i in range(200):
            data = b.recv(1024)
            assert struct.unpack_from("!I", data)[0] == i and len(data) == 4 + i % 700
        u.bind(("127.0.0.1", 0))
        u.settimeout(IO_TIMEOUT)
        for start in range(0, 200, 50):
            for i in range(start, start + 50):
                v.sendto(b"%06d" % i, u.getsockname())
            got = sorted(int(u.recvfrom(64)[0]) for _ in range(50))
            assert got == list(range(start, start + 50))


def fd_passing(rng):
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(IO_TIMEOUT)
        r, w = os.pipe()
        try:
            fds = [os.dup(r) for _ in range(8)]
            try:
                socket.send_fds(a, [b"fds"], fds)
            finally:
                for fd in fds:
                    os.close(fd)
            msg, got, flags, _ = socket.recv_fds(b, 16, 16)
            try:
                assert msg == b"fds" and len(got) == 8
                os.write(w, b"p")
                assert os.read(got[3], 1) == b"p"
            finally:
                for fd in got:
                    os.close(fd)
        finally:
            os.close(r)
            os.close(w)


def close_race(rng):
    a, b = socket.socketpair()
    with b:
        ready = threading.Event()

        def blocked():
            ready.set()
            return a.recv(64)
        finish = worker(blocked)
        assert ready.wait(IO_TIMEOUT)
        time.sleep(0.01)
        a.close()
        c, d = socket.socketpair()
        with c, d:
            c.sendall(b"theirs")
            d.sendall(b"theirs")
            b.sendall(b"late")
            got = finish()
            assert got == b"late", got   # from the old socket, not theirs
            d.settimeout(IO_TIMEOUT)
            c.settimeout(IO_TIMEOUT)
            assert recv_exactly(d, 6) == b"theirs" and recv_exactly(c, 6) == b"theirs"


def close_race_safe(rng):
    try:
        close_race(rng)
    except OSError as exc:   # the close won: recv began on a closed socket
        assert exc.errno == 9, exc


def storm(rng):
    a, b = socket.socketpair()
    with a, b:
        data = rng.randbytes(1 << 20)
        b.settimeout(IO_TIMEOUT)

        def read():
            return hashlib.sha256(recv_exactly(b, len(data))).digest()
        finish = worker(read)
        count = [0]

        def handler(signum, frame):
            count[0] += 1
        old = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        try:
            a.sendall(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert finish() == hashlib.sha256(data).digest()


def absurd(rng):
    a, b = socket.socketpair()
    with a, b:
        for call, error in ((lambda: b.sendmsg([b"z"] * 1025), OSError),
                            (lambda: a.recv_into(bytearray(4), 5), ValueError),
                            (lambda: a.recv(-1), ValueError),
                            (lambda: a.recv(sys.maxsize), OverflowError),
                            (lambda: a.recvmsg(10, 2 ** 31), ValueError)):
            try:
                call()
            except error:
                pass
            else:
                raise AssertionError("no %s" % error.__name__)
        b.sendall(b"x" * 10)
        a.settimeout(IO_TIMEOUT)
        assert a.recv(2 ** 31 - 1) == b"x" * 10


def fd_limit(rng):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    made = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 9, hard))
    try:
        for _ in range(highest + 10):   # the holes below the highest fd, then 8 more
            try:
                made.append(socket.socket())
            except OSError as exc:
                assert exc.errno == 24
                break
        else:
            raise AssertionError("no EMFILE")
    finally:
        for s in made:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    socket.socket().close()


KINDS = [selectors_echo, threaded_echo, asyncio_echo, datagrams, fd_passing, close_race_safe,
         storm, absurd, fd_limit]
if ONLY:
    KINDS = [k for k in KINDS if k.__name__ in ONLY]

# ------------------------------------------------------------ the run

def measure():
    gc.collect()
    malloc_trim(0)
    return rss(), fd_count()


samples = []   # (seconds since start, rss, fds)
sampling = threading.Event()
t0 = time.monotonic()


def sample():
    quiet()
    while not sampling.wait(1.0):
        try:
            samples.append((time.monotonic() - t0, rss(), fd_count()))
        except OSError as exc:   # EMFILE, while fd_limit has the limit lowered
            assert exc.errno == 24, exc


rng = random.Random(1)
for kind in KINDS:   # first use: imports, caches, arenas
    kind(rng)
rss_start, fds_start = measure()
samples.append((0.0, rss_start, fds_start))
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
cycles = 0
end = t0 + SECONDS
while time.monotonic() < end:
    for kind in KINDS:
        kind(rng)
    cycles += 1
sampling.set()
sampler.join()
rss_end, fds_end = measure()
duration = time.monotonic() - t0
samples.append((duration, rss_end, fds_end))
half = duration / 2
around_half = [r for t, r, _ in samples if abs(t - half) <= max(2.0, duration / 20)]
print(json.dumps({
    "seconds": round(duration, 1), "cycles": cycles, "samples": len(samples),
    "rss": [rss_start, max(r for _, r, _ in samples), rss_end],
    "rss_half": statistics.median(around_half),
    "fds": [fds_start, max(f for _, _, f in samples), fds_end],
    # about ten points of the curve: (seconds, RSS MiB, fds)
    "curve": [(round(t), round(r / 2**20, 1), f) for t, r, f in samples[::max(1, len(samples) // 10)]],
}))
'''


@pytest.mark.watchdog(SOAK_SECONDS + 200)
def test_soak_mixed_traffic_is_flat(swift, tmp_path):
    env = dict(os.environ)
    env.pop("SWIFTSOCKET", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(swift.__file__)))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CHILD, str(SOAK_SECONDS)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=SOAK_SECONDS + 180)
    assert done.returncode == 0, "child failed (rc=%s)\n%s\n%s" % (
        done.returncode, done.stdout[-3000:], done.stderr[-6000:])
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    rss_start, rss_max, rss_end = summary["rss"]
    fds_start, fds_max, fds_end = summary["fds"]
    print("\ncurve (s, RSS MiB, fds): %s" % summary["curve"])
    print("soak: %ss, %d cycles, %d samples; RSS start %.1f MiB, max %.1f, half-way %.1f, end %.1f; "
          "fds start %d, max %d, end %d" % (
              summary["seconds"], summary["cycles"], summary["samples"], rss_start / 2**20,
              rss_max / 2**20, summary["rss_half"] / 2**20, rss_end / 2**20, fds_start, fds_max, fds_end))
    assert summary["cycles"] >= 1
    assert fds_end == fds_start
    if not os.environ.get("SWIFTSOCKET_CHECKER"):   # tools/sanitize.sh: the checker's allocator decides
        assert rss_end - summary["rss_half"] <= RSS_SLACK, summary
