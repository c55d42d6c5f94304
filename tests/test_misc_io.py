"""More I/O semantics: the GIL is released during blocking calls, errno
mapping for resets, datagram sockets, timeout rounding, pickling."""

import copy
import errno
import pickle
import struct
import time

import _socket

import pytest

import sockutil
from sockutil import IO_TIMEOUT, LOOPBACK4, assert_same, start_worker


# ---------------------------------------------------------------- GIL

def _max_gap_while(worker, limit_seconds):
    """Spin in Python while ``worker`` runs; return the longest gap between
    two iterations (a long gap means the worker held the GIL)."""
    last = time.monotonic()
    deadline = last + limit_seconds
    max_gap = 0.0
    for _ in range(10 ** 8):
        now = time.monotonic()
        max_gap = max(max_gap, now - last)
        last = now
        if not worker.is_alive() or now > deadline:
            break
    return max_gap


def _blocked_call_outcome(call, errors):
    """Run ``call`` in a worker while the main thread spins; return the
    exception type among ``errors`` that ended it (None if it returned) and
    the longest stall the main thread saw."""
    def blocked():
        try:
            call()
        except errors as exc:
            return type(exc)
        return None

    w = start_worker(blocked)
    time.sleep(0.05)
    gap = _max_gap_while(w, 5.0)
    return w.finish(), gap


def _kernel_recv_timeout(mod, sock, seconds):
    # SO_RCVTIMEO makes the kernel end a blocking recv/accept with EAGAIN,
    # so these checks are bounded even if the GIL is never released.
    usec = int(seconds * 1e6)
    sock.setsockopt(mod.SOL_SOCKET, mod.SO_RCVTIMEO,
                    struct.pack("ll", usec // 1000000, usec % 1000000))


@pytest.mark.parametrize("timeout", [None, 0.8], ids=["blocking", "timeout"])
def test_blocking_recv_releases_gil(mod, track, timeout):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(timeout)
    if timeout is None:
        _kernel_recv_timeout(mod, client, 0.8)

    result, gap = _blocked_call_outcome(lambda: client.recv(10), (BlockingIOError, TimeoutError))
    assert result is (BlockingIOError if timeout is None else TimeoutError)
    assert gap < 0.4, "main thread stalled %.2fs: GIL held in recv" % gap


@pytest.mark.parametrize("timeout", [None, 0.8], ids=["blocking", "timeout"])
def test_blocking_accept_releases_gil(mod, track, timeout):
    lsock = sockutil.listener(mod, track)
    lsock.settimeout(timeout)
    if timeout is None:
        _kernel_recv_timeout(mod, lsock, 0.8)

    result, gap = _blocked_call_outcome(lsock._accept, (BlockingIOError, TimeoutError))
    assert result is (BlockingIOError if timeout is None else TimeoutError)
    assert gap < 0.4, "main thread stalled %.2fs: GIL held in accept" % gap


def test_blocking_send_releases_gil(mod, track):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.settimeout(0.8)

    result, gap = _blocked_call_outcome(lambda: client.sendall(b"\0" * (16 * 1024 * 1024)), TimeoutError)
    assert result is TimeoutError
    assert gap < 0.4, "main thread stalled %.2fs: GIL held in send" % gap


# ---------------------------------------------------------------- resets

def _reset_by_peer(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    # linger(on, 0): close() sends RST instead of FIN
    peer.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    peer.close()
    time.sleep(0.1)
    return client


@pytest.mark.parametrize("method", ["recv", "recv_into"])
def test_connection_reset_maps_to_connectionreseterror(mod, track, method):
    client = _reset_by_peer(mod, track)
    with pytest.raises(ConnectionResetError) as info:
        if method == "recv":
            client.recv(10)
        else:
            client.recv_into(bytearray(10))
    assert info.value.errno == errno.ECONNRESET
    assert info.value.strerror == "Connection reset by peer"


def test_connection_reset_on_send(mod, track):
    client = _reset_by_peer(mod, track)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(10):
            client.send(b"x" * 1024)


def test_errno_exception_mapping_matches_oracle(mod, track):
    def scenario(m):
        out = []
        s = track(m.socket())
        out.append(sockutil.outcome(s.getpeername))
        out.append(sockutil.outcome(s.shutdown, m.SHUT_RDWR))
        s.setblocking(False)
        addr = sockutil.refused_address(track)
        out.append(sockutil.outcome(s.connect, addr)[:3])
        d = track(m.socket(m.AF_INET, m.SOCK_DGRAM))
        out.append(sockutil.outcome(d.listen))
        out.append(sockutil.outcome(d.getsockopt, m.SOL_SOCKET, 12345))
        return out
    assert_same(mod, scenario)


# ---------------------------------------------------------------- datagrams

def test_udp_sendto_recvfrom(mod, track):
    rx = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    rx.bind((LOOPBACK4, 0))
    rx.settimeout(IO_TIMEOUT)
    tx = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    tx.bind((LOOPBACK4, 0))
    assert tx.sendto(b"hello world", rx.getsockname()) == 11
    assert tx.sendto(b"second", 0, rx.getsockname()) == 6
    data, addr = rx.recvfrom(5)
    # datagrams are truncated to the buffer, the rest is discarded
    assert data == b"hello"
    assert addr == tx.getsockname()
    buf = bytearray(10)
    n, addr = rx.recvfrom_into(buf)
    assert n == 6 and buf[:6] == bytearray(b"second")
    assert addr == tx.getsockname()


def test_udp_connected_send_recv(mod, track):
    a = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    b = track(_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM))
    a.bind((LOOPBACK4, 0))
    b.bind((LOOPBACK4, 0))
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    a.settimeout(IO_TIMEOUT)
    b.settimeout(IO_TIMEOUT)
    assert a.send(b"ping") == 4
    assert b.recv(100) == b"ping"
    b.send(b"")        # an empty datagram is a real message
    assert a.recv(100) == b""
    b.send(b"pong")
    buf = bytearray(8)
    assert a.recv_into(buf) == 4 and buf[:4] == bytearray(b"pong")


def test_udp_recv_timeout_and_nonblocking(mod, track):
    s = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    s.bind((LOOPBACK4, 0))
    s.settimeout(sockutil.TIMEOUT)
    with sockutil.Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            s.recvfrom(10)
    sockutil.assert_timed_out(info, el)
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.recvfrom(10)
    with pytest.raises(BlockingIOError):
        s.recvfrom_into(bytearray(4))


def test_unix_dgram_sendto_path(mod, track, tmp_path):
    path = str(tmp_path / "d.sock")
    rx = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM))
    rx.bind(path)
    rx.settimeout(IO_TIMEOUT)
    tx = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM))
    assert tx.sendto(b"unix dgram", path) == 10
    data, addr = rx.recvfrom(100)
    assert data == b"unix dgram"
    assert addr is None   # unbound sender: no address at all


def test_recvfrom_unbound_sender_matches_oracle(mod, track, tmp_path):
    counter = iter(range(10))

    def scenario(m):
        path = str(tmp_path / ("u-%d.sock" % next(counter)))
        rx = track(m.socket(m.AF_UNIX, m.SOCK_DGRAM))
        rx.bind(path)
        rx.settimeout(IO_TIMEOUT)
        tx = track(m.socket(m.AF_UNIX, m.SOCK_DGRAM))
        tx.sendto(b"x", path)
        return rx.recvfrom(10)
    assert_same(mod, scenario)


@pytest.mark.parametrize("call", [
    ("recvfrom", (-1,)),
    ("recvfrom_into", (bytearray(2), 5)),
    ("recvfrom_into", (bytearray(2), -1)),
    ("recvfrom_into", (b"xx",)),
    ("sendto", ("str", ("127.0.0.1", 1))),
    ("sendto", (b"x",)),
    ("sendto", (b"x", 0, 0, ("127.0.0.1", 1))),
], ids=lambda c: "%s%r" % c if isinstance(c, tuple) else None)
def test_dgram_arg_errors_match_oracle(mod, track, call):
    name, args = call

    def scenario(m):
        s = track(m.socket(m.AF_INET, m.SOCK_DGRAM))
        s.bind((LOOPBACK4, 0))
        return getattr(s, name)(*args)
    res = assert_same(mod, scenario, message=False)
    assert res[0] == "raise"


def test_recvfrom_negative_message(mod, track):
    s = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    with pytest.raises(ValueError) as info:
        s.recvfrom(-1)
    assert str(info.value) == "negative buffersize in recvfrom"


# ---------------------------------------------------------------- timeout values

@pytest.mark.parametrize("value", [0.1, 0.3, 1e-10, 1.5e-7, 2.5e-9, 1e-9,
                                   123.456, 86400 * 365, 5])
def test_timeout_value_roundtrip_matches_oracle(mod, track, value):
    # CPython stores timeouts as integer nanoseconds (rounded up), so e.g.
    # settimeout(1e-10) reads back as 1e-09.
    def scenario(m):
        s = track(m.socket())
        s.settimeout(value)
        return s.gettimeout(), s.timeout
    assert_same(mod, scenario)


def test_timeout_rounding_literal(mod, track):
    s = track(mod.socket())
    s.settimeout(1e-10)
    assert s.gettimeout() == 1e-09
    s.settimeout(2.5e-9)
    assert s.gettimeout() == 3e-09


def test_default_timeout_roundtrip_matches_oracle(mod):
    def scenario(m):
        try:
            m.setdefaulttimeout(1e-10)
            return m.getdefaulttimeout()
        finally:
            m.setdefaulttimeout(None)
    assert assert_same(mod, scenario) == ("ok", 1e-09)


# ---------------------------------------------------------------- pickling

@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_socket_cannot_be_pickled_or_copied(mod, track, how):
    s = track(mod.socket())
    with pytest.raises(TypeError) as info:
        if how == "pickle":
            pickle.dumps(s)
        elif how == "copy":
            copy.copy(s)
        else:
            copy.deepcopy(s)
    assert "pickle" in str(info.value)
