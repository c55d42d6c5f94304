"""Helpers shared by the swiftsocket tests (no fixtures here, see conftest)."""

import errno
import os
import signal
import threading
import time

import _socket as std

LOOPBACK4 = "127.0.0.1"
LOOPBACK6 = "::1"

# Timeout given to sockets whose operations are expected to succeed promptly:
# long enough for a noisy 2-core machine, short enough to turn a hang into a
# failure well before the per-test faulthandler watchdog.
IO_TIMEOUT = 10.0

# Window for "this call must time out after about T seconds" checks.
TIMEOUT = 0.3
TIMEOUT_MIN = 0.25
TIMEOUT_MAX = 3.0

_swift = None
_swift_error = None


def try_import_swiftsocket():
    """Return (module, None) or (None, error description); cached."""
    global _swift, _swift_error
    if _swift is None and _swift_error is None:
        try:
            import swiftsocket
        except BaseException as exc:  # also SystemError, ImportError, ...
            _swift_error = "%s: %s" % (type(exc).__name__, exc)
        else:
            _swift = swiftsocket
    return _swift, _swift_error


def ipv6_loopback_available():
    if not getattr(std, "has_ipv6", False):
        return False
    try:
        s = std.socket(std.AF_INET6, std.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind((LOOPBACK6, 0))
    except OSError:
        return False
    finally:
        s.close()
    return True


# ---------------------------------------------------------------- outcomes

def exc_summary(exc, message=True):
    """A module-independent description of an exception."""
    return ("raise", type(exc).__name__, getattr(exc, "errno", None),
            str(exc) if message else None)


def outcome(fn, *args, message=True, **kwargs):
    """('ok', result) or ('raise', type name, errno, message)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:
        return exc_summary(exc, message)


def assert_same(mod, scenario, message=True):
    """Run scenario(module) on the stdlib and on mod; outcomes must match.

    Returns the stdlib outcome so the caller can also check it against the
    expected literal value (when mod *is* the stdlib this is the real test).
    """
    expected = outcome(scenario, std, message=message)
    actual = outcome(scenario, mod, message=message)
    assert actual == expected, (
        "%s differs from the stdlib:\n  stdlib: %r\n  %s: %r"
        % (mod.__name__, expected, mod.__name__, actual))
    return expected


# ---------------------------------------------------------------- sockets

class SocketRegistry:
    """Closes every registered socket at teardown."""

    def __init__(self):
        self._socks = []

    def __call__(self, sock):
        self._socks.append(sock)
        return sock

    def close_all(self):
        while self._socks:
            sock = self._socks.pop()
            try:
                sock.close()
            except OSError:
                pass


def adopt(module, track, fd, *args, **kwargs):
    """module.socket(*args, fileno=fd): on failure fd is closed, not leaked.

    On success the socket owns fd (and is tracked when track is given).
    """
    try:
        sock = module.socket(*args, fileno=fd, **kwargs)
    except BaseException:
        os.close(fd)
        raise
    return track(sock) if track is not None else sock


def listener(module, track, family=None, addr=None, backlog=5,
             rcvbuf=None):
    """A listening TCP socket of ``module`` on loopback, port 0."""
    if family is None:
        family = module.AF_INET
    if addr is None:
        addr = (LOOPBACK6, 0) if family == module.AF_INET6 else (LOOPBACK4, 0)
    s = track(module.socket(family, module.SOCK_STREAM))
    if rcvbuf is not None:
        s.setsockopt(module.SOL_SOCKET, module.SO_RCVBUF, rcvbuf)
    s.bind(addr)
    s.listen(backlog)
    return s


def accept_std(lsock, track, timeout=IO_TIMEOUT):
    """Accept on a stdlib listener; return a tracked stdlib socket."""
    lsock.settimeout(timeout)
    fd, addr = lsock._accept()
    conn = track(std.socket(lsock.family, lsock.type, lsock.proto, fileno=fd))
    conn.settimeout(timeout)
    return conn, addr


def client_pair(mod, track, family=None, sndbuf=None, rcvbuf=None):
    """(client, peer): client is a connected ``mod`` socket, peer a stdlib one.

    The client is the socket under test; the peer is the trusted oracle end.
    Both have IO_TIMEOUT set.  sndbuf shrinks the client's send buffer and
    rcvbuf the peer's receive buffer.
    """
    if family is None:
        family = std.AF_INET
    lsock = listener(std, track, family=family, rcvbuf=rcvbuf)
    client = track(mod.socket(family, mod.SOCK_STREAM))
    if sndbuf is not None:
        client.setsockopt(mod.SOL_SOCKET, mod.SO_SNDBUF, sndbuf)
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    peer, _ = accept_std(lsock, track)
    lsock.close()
    return client, peer


def server_pair(mod, track, family=None):
    """(conn, peer): conn accepted by a ``mod`` listener via _accept().

    conn is rebuilt from the fd exactly as socket.py does; the peer is a
    connected stdlib client.  Both have IO_TIMEOUT set.
    """
    if family is None:
        family = std.AF_INET
    lsock = listener(mod, track, family=family)
    lsock.settimeout(IO_TIMEOUT)
    peer = track(std.socket(family, std.SOCK_STREAM))
    peer.settimeout(IO_TIMEOUT)
    peer.connect(lsock.getsockname())
    fd, _ = lsock._accept()
    conn = adopt(mod, track, fd, lsock.family, lsock.type, lsock.proto)
    conn.settimeout(IO_TIMEOUT)
    lsock.close()
    return conn, peer


def refused_address(track):
    """A loopback address that refuses connections.

    A bound but not listening TCP socket answers SYN with RST; keeping it
    open (tracked) means no other process can take the port meanwhile.
    """
    s = track(std.socket(std.AF_INET, std.SOCK_STREAM))
    s.bind((LOOPBACK4, 0))
    return s.getsockname()


def fill_send_buffer(sock, limit_seconds=5.0, max_iterations=100000):
    """Send on the non-blocking ``sock`` until BlockingIOError; return bytes.

    Bounded in iterations and time; raises AssertionError if the buffer never
    fills.  The BlockingIOError that ended the loop is returned as well.
    """
    chunk = b"\xa5" * 65536
    total = 0
    deadline = time.monotonic() + limit_seconds
    for _ in range(max_iterations):
        if time.monotonic() > deadline:
            break
        try:
            total += sock.send(chunk)
        except BlockingIOError as exc:
            return total, exc
    raise AssertionError("send buffer never filled (%d bytes sent)" % total)


def drain(sock, limit_seconds=5.0, max_iterations=100000, idle=0.2):
    """recv from ``sock`` until b'', ``idle`` seconds without data, or the
    time limit; sets ``sock``'s timeout to ``idle``."""
    sock.settimeout(idle)
    total = 0
    deadline = time.monotonic() + limit_seconds
    for _ in range(max_iterations):
        if time.monotonic() > deadline:
            break
        try:
            data = sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            break
        if not data:
            break
        total += len(data)
    return total


def recv_exactly(sock, n, limit_seconds=IO_TIMEOUT):
    """Receive exactly n bytes from sock (which must have a timeout)."""
    parts = []
    got = 0
    deadline = time.monotonic() + limit_seconds
    while got < n:
        assert time.monotonic() < deadline, "recv_exactly: out of time"
        data = sock.recv(n - got)
        assert data, "peer closed after %d of %d bytes" % (got, n)
        parts.append(data)
        got += len(data)
    return b"".join(parts)


# ---------------------------------------------------------------- threads

def block_test_signals():
    """Block SIGALRM in the calling (helper) thread.

    The signal tests interrupt a blocking call in the main thread with
    SIGALRM; the kernel may deliver a process-directed signal to any thread
    that does not block it, so every helper thread blocks it.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})


class _QuietTimer(threading.Timer):
    def run(self):
        block_test_signals()
        super().run()


class Worker(threading.Thread):
    """A daemon thread whose exception (if any) is re-raised by finish()."""

    def __init__(self, target, *args):
        super().__init__(daemon=True)
        self._target_fn = target
        self._args = args
        self.result = None
        self.error = None

    def run(self):
        block_test_signals()
        try:
            self.result = self._target_fn(*self._args)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout=IO_TIMEOUT):
        self.join(timeout)
        assert not self.is_alive(), "worker thread still running"
        if self.error is not None:
            raise self.error
        return self.result


def start_worker(target, *args):
    w = Worker(target, *args)
    w.start()
    return w


class Watchdog:
    """Unblocks a test stuck in a blocking socket call.

    After ``seconds`` it shuts down the given sockets (which wakes recv,
    accept and send blocked on them), and on exit the test fails if that
    happened.  Use it around calls on sockets that have no timeout.
    """

    def __init__(self, seconds, *socks):
        self.seconds = seconds
        self.socks = socks
        self.fired = False
        self._timer = _QuietTimer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self):
        self.fired = True
        for s in self.socks:
            try:
                s.shutdown(std.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        self._timer.join(IO_TIMEOUT)
        assert not self._timer.is_alive()
        if self.fired:
            raise AssertionError(
                "watchdog fired after %.1fs: a blocking call hung"
                % self.seconds)
        return False


class Elapsed:
    def __enter__(self):
        self.start = time.monotonic()
        self.seconds = None
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.monotonic() - self.start
        return False


def assert_timed_out(exc_info, elapsed, timeout=TIMEOUT):
    """exc_info from pytest.raises(TimeoutError); elapsed an Elapsed."""
    exc = exc_info.value
    assert type(exc) is TimeoutError
    assert exc.args == ("timed out",)
    assert str(exc) == "timed out"
    low = TIMEOUT_MIN * timeout / TIMEOUT
    assert low <= elapsed.seconds <= TIMEOUT_MAX, elapsed.seconds


def is_fd_open(fd):
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


# ---------------------------------------------------------------- signals

ALARM_AT = 0.2  # seconds until the `alarm` fixture's SIGALRM


class Alarm(Exception):
    """Raised by the `alarm` fixture's handler when asked to."""


# ---------------------------------------------------------------- process state

# Syscall numbers of the calls a thread may sleep in, by machine
# (/proc/<tid>/syscall shows the number of the one a thread sleeps in).
SLEEPING_SYSCALLS = {
    "x86_64": {"recvfrom": 45, "sendto": 44, "accept": 43, "accept4": 288,
               "poll": 7, "connect": 42, "recvmsg": 47, "sendmsg": 46},
    "aarch64": {"recvfrom": 207, "sendto": 206, "accept": 202, "accept4": 242,
                "poll": 73, "connect": 203, "recvmsg": 212, "sendmsg": 211},
}.get(os.uname().machine)


def wait_until_in_syscall(thread_id, names, limit_seconds=IO_TIMEOUT):
    """Waits until the thread with this native id sleeps in one of the named
    syscalls: only then has it read the socket's fd and entered the call.
    Returns False (the caller skips) where the syscall numbers are unknown."""
    if SLEEPING_SYSCALLS is None:
        return False
    wanted = {str(SLEEPING_SYSCALLS[name]) for name in names}
    path = "/proc/self/task/%d/syscall" % thread_id
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        with open(path) as status:
            if status.read().split()[0] in wanted:
                return True
        time.sleep(0.002)
    raise AssertionError("thread %d never blocked in %s" % (thread_id, "/".join(names)))


def fd_count():
    """Open file descriptors of this process (the listing's own excluded)."""
    return len(os.listdir("/proc/self/fd")) - 1


def rss_bytes():
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
