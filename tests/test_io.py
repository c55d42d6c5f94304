"""connect, connect_ex, _accept, recv, recv_into, send and sendall, each in
blocking mode (no timeout, guarded by a watchdog), with a timeout, and in
non-blocking mode.

The socket under test is always a ``mod`` socket; its peer is a stdlib
socket, the trusted end."""

import array
import errno
import hashlib
import os
import random
import select
import threading
import time

import _socket

import pytest

import sockutil
from sockutil import (IO_TIMEOUT, LOOPBACK4, TIMEOUT, Elapsed, Watchdog,
                      assert_same, assert_timed_out, start_worker)


# ================================================================ connect

def test_connect_blocking(mod, track):
    lsock = sockutil.listener(_socket, track)
    c = track(mod.socket())
    assert c.gettimeout() is None
    with Watchdog(IO_TIMEOUT, c):
        assert c.connect(lsock.getsockname()) is None
    assert c.getpeername() == lsock.getsockname()
    conn, addr = sockutil.accept_std(lsock, track)
    assert addr == c.getsockname()
    with Watchdog(IO_TIMEOUT, c):
        c.sendall(b"blocking")
    assert sockutil.recv_exactly(conn, 8) == b"blocking"


def test_connect_with_timeout_succeeds(mod, track):
    lsock = sockutil.listener(_socket, track)
    c = track(mod.socket())
    c.settimeout(5.0)
    with Elapsed() as el:
        assert c.connect(lsock.getsockname()) is None
    assert el.seconds < 5.0
    assert c.getpeername() == lsock.getsockname()
    assert c.gettimeout() == 5.0
    conn, _ = sockutil.accept_std(lsock, track)
    conn.sendall(b"ok")
    assert sockutil.recv_exactly(c, 2) == b"ok"


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_connect_refused(mod, track, timeout):
    addr = sockutil.refused_address(track)
    c = track(mod.socket())
    c.settimeout(timeout)
    with Watchdog(IO_TIMEOUT, c):
        with pytest.raises(ConnectionRefusedError) as info:
            c.connect(addr)
    assert info.value.errno == errno.ECONNREFUSED
    assert info.value.args[0] == errno.ECONNREFUSED


def test_connect_nonblocking_einprogress(mod, track):
    lsock = sockutil.listener(_socket, track)
    c = track(mod.socket())
    c.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        c.connect(lsock.getsockname())
    assert info.value.errno == errno.EINPROGRESS
    _, writable, _ = select.select([], [c], [], IO_TIMEOUT)
    assert writable == [c]
    assert c.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR) == 0
    assert c.getpeername() == lsock.getsockname()
    conn, _ = sockutil.accept_std(lsock, track)
    conn.sendall(b"nb")
    r, _, _ = select.select([c], [], [], IO_TIMEOUT)
    assert r == [c]
    assert c.recv(10) == b"nb"


def test_connect_already_connected_eisconn(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    other = sockutil.listener(_socket, track)
    # gVisor (this machine's kernel) reports the first reconnect attempt
    # after the handshake as success (0); from then on EISCONN.
    assert client.connect_ex(other.getsockname()) in (0, errno.EISCONN)
    with pytest.raises(OSError) as info:
        client.connect(other.getsockname())
    assert info.value.errno == errno.EISCONN
    assert client.connect_ex(other.getsockname()) == errno.EISCONN


def test_connect_unix_stream(mod, track, tmp_path):
    path = str(tmp_path / "c.sock")
    srv = track(_socket.socket(_socket.AF_UNIX))
    srv.bind(path)
    srv.listen()
    c = track(mod.socket(mod.AF_UNIX))
    with Watchdog(IO_TIMEOUT, c):
        c.connect(path)
    conn, _ = sockutil.accept_std(srv, track)
    conn.sendall(b"unix")
    c.settimeout(IO_TIMEOUT)
    assert sockutil.recv_exactly(c, 4) == b"unix"


# ================================================================ connect_ex

def test_connect_ex_success_returns_zero(mod, track):
    lsock = sockutil.listener(_socket, track)
    c = track(mod.socket())
    with Watchdog(IO_TIMEOUT, c):
        rc = c.connect_ex(lsock.getsockname())
    assert rc == 0 and type(rc) is int
    assert c.getpeername() == lsock.getsockname()
    c2 = track(mod.socket())
    c2.settimeout(5.0)
    assert c2.connect_ex(lsock.getsockname()) == 0


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_connect_ex_refused(mod, track, timeout):
    addr = sockutil.refused_address(track)
    c = track(mod.socket())
    c.settimeout(timeout)
    with Watchdog(IO_TIMEOUT, c):
        assert c.connect_ex(addr) == errno.ECONNREFUSED


def test_connect_ex_nonblocking_einprogress(mod, track):
    lsock = sockutil.listener(_socket, track)
    c = track(mod.socket())
    c.setblocking(False)
    assert c.connect_ex(lsock.getsockname()) == errno.EINPROGRESS
    _, writable, _ = select.select([], [c], [], IO_TIMEOUT)
    assert writable == [c]
    assert c.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR) == 0
    conn, addr = sockutil.accept_std(lsock, track)
    assert addr == c.getsockname()


def test_connect_ex_nonblocking_refused(mod, track):
    addr = sockutil.refused_address(track)
    c = track(mod.socket())
    c.setblocking(False)
    rc = c.connect_ex(addr)
    assert rc in (errno.EINPROGRESS, errno.ECONNREFUSED)
    if rc == errno.EINPROGRESS:
        _, writable, _ = select.select([], [c], [], IO_TIMEOUT)
        assert writable == [c]
        assert c.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR) == errno.ECONNREFUSED


def test_connect_ex_bad_address_still_raises(mod, track):
    c = track(mod.socket())
    with pytest.raises(OverflowError):
        c.connect_ex((LOOPBACK4, 70000))
    with pytest.raises(TypeError):
        c.connect_ex("127.0.0.1")


# ================================================================ _accept

def _check_accepted(mod, fd, addr, client, track):
    assert type(fd) is int and fd >= 0
    conn = track(_socket.socket(fileno=fd))
    # accept4(SOCK_CLOEXEC): the new fd is close-on-exec ...
    assert os.get_inheritable(fd) is False
    # ... and, like any accept()ed fd on Linux, in blocking mode
    assert os.get_blocking(fd) is True
    assert type(addr) is tuple and len(addr) == 2
    assert type(addr[0]) is str and type(addr[1]) is int
    assert addr == client.getsockname()
    assert conn.getpeername() == client.getsockname()
    return conn


def test_accept_blocking_pending_connection(mod, track):
    lsock = sockutil.listener(mod, track)
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    with Watchdog(IO_TIMEOUT, lsock):
        fd, addr = lsock._accept()
    conn = _check_accepted(mod, fd, addr, client, track)
    conn.settimeout(IO_TIMEOUT)
    client.sendall(b"hello")
    assert sockutil.recv_exactly(conn, 5) == b"hello"


def test_accept_blocking_waits_for_connection(mod, track):
    lsock = sockutil.listener(mod, track)
    addr = lsock.getsockname()
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)

    def connect_later():
        time.sleep(0.2)
        client.connect(addr)

    w = start_worker(connect_later)
    with Watchdog(IO_TIMEOUT, lsock):
        with Elapsed() as el:
            fd, peer_addr = lsock._accept()
    w.finish()
    assert el.seconds >= 0.1
    _check_accepted(mod, fd, peer_addr, client, track)


def test_accept_with_timeout_pending_connection(mod, track):
    lsock = sockutil.listener(mod, track)
    lsock.settimeout(5.0)
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    fd, addr = lsock._accept()
    _check_accepted(mod, fd, addr, client, track)


def test_accept_timeout_expires(mod, track):
    lsock = sockutil.listener(mod, track)
    lsock.settimeout(TIMEOUT)
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            lsock._accept()
    assert_timed_out(info, el)
    # the listener is still usable afterwards
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    lsock.settimeout(IO_TIMEOUT)
    fd, addr = lsock._accept()
    _check_accepted(mod, fd, addr, client, track)


def test_accept_nonblocking_nothing_pending(mod, track):
    lsock = sockutil.listener(mod, track)
    lsock.setblocking(False)
    with Elapsed() as el:
        with pytest.raises(BlockingIOError) as info:
            lsock._accept()
    assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    assert el.seconds < 1.0


def test_accept_nonblocking_pending(mod, track):
    lsock = sockutil.listener(mod, track)
    lsock.setblocking(False)
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    r, _, _ = select.select([lsock], [], [], IO_TIMEOUT)
    assert r == [lsock]
    fd, addr = lsock._accept()
    _check_accepted(mod, fd, addr, client, track)


def test_accept_result_matches_oracle(mod, track):
    def scenario(m):
        lsock = sockutil.listener(m, track)
        lsock.settimeout(IO_TIMEOUT)
        client = track(_socket.socket())
        client.settimeout(IO_TIMEOUT)
        client.connect(lsock.getsockname())
        fd, addr = lsock._accept()
        conn = sockutil.adopt(m, track, fd, lsock.family, lsock.type,
                              lsock.proto)
        return (type(fd).__name__, type(addr).__name__, len(addr),
                addr == client.getsockname(), os.get_inheritable(fd),
                os.get_blocking(fd), conn.family, conn.type, conn.proto,
                conn.gettimeout())
    assert_same(mod, scenario)


def test_accept_unix_address(mod, track, tmp_path):
    path = str(tmp_path / "a.sock")
    lsock = track(mod.socket(mod.AF_UNIX))
    lsock.bind(path)
    lsock.listen()
    lsock.settimeout(IO_TIMEOUT)
    client = track(_socket.socket(_socket.AF_UNIX))
    client.settimeout(IO_TIMEOUT)
    client.connect(path)
    fd, addr = lsock._accept()
    track(_socket.socket(fileno=fd))
    assert addr == ""
    assert os.get_inheritable(fd) is False


def test_accept_unix_bound_client_address(mod, track, tmp_path):
    path = str(tmp_path / "a.sock")
    cpath = str(tmp_path / "client.sock")
    lsock = track(mod.socket(mod.AF_UNIX))
    lsock.bind(path)
    lsock.listen()
    lsock.settimeout(IO_TIMEOUT)
    client = track(_socket.socket(_socket.AF_UNIX))
    client.bind(cpath)
    client.settimeout(IO_TIMEOUT)
    client.connect(path)
    fd, addr = lsock._accept()
    track(_socket.socket(fileno=fd))
    assert addr == cpath


def test_accept_not_listening_einval(mod, track):
    s = track(mod.socket())
    s.bind((LOOPBACK4, 0))
    s.settimeout(IO_TIMEOUT)
    with pytest.raises(OSError) as info:
        s._accept()
    assert info.value.errno == errno.EINVAL


def test_accept_many_in_a_row(mod, track):
    lsock = sockutil.listener(mod, track, backlog=16)
    lsock.settimeout(IO_TIMEOUT)
    clients = []
    for _ in range(10):
        c = track(_socket.socket())
        c.settimeout(IO_TIMEOUT)
        c.connect(lsock.getsockname())
        clients.append(c)
    names = set()
    for _ in range(10):
        fd, addr = lsock._accept()
        track(_socket.socket(fileno=fd))
        names.add(addr)
    assert names == {c.getsockname() for c in clients}


# ================================================================ recv

def test_recv_blocking_data_ready(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)
    peer.sendall(b"abcdef")
    time.sleep(0.05)
    with Watchdog(IO_TIMEOUT, client):
        data = client.recv(1024)
        while len(data) < 6:
            more = client.recv(1024)
            assert more
            data += more
    assert data == b"abcdef"
    assert type(data) is bytes


def test_recv_blocking_waits_for_data(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)

    def send_later():
        time.sleep(0.2)
        peer.sendall(b"late")

    w = start_worker(send_later)
    with Watchdog(IO_TIMEOUT, client):
        with Elapsed() as el:
            data = client.recv(100)
    w.finish()
    assert data == b"late"[:len(data)] and data
    assert el.seconds >= 0.1


def test_recv_returns_at_most_bufsize(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"0123456789")
    assert sockutil.recv_exactly(client, 3) == b"012"
    assert client.recv(3) == b"345"
    assert sockutil.recv_exactly(client, 4) == b"6789"


def test_recv_peek(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"peekaboo")
    deadline = time.monotonic() + IO_TIMEOUT
    for _ in range(1000):
        data = client.recv(8, mod.MSG_PEEK)
        if len(data) >= 8 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert data == b"peekaboo"
    assert sockutil.recv_exactly(client, 8) == b"peekaboo"


def test_recv_peer_close_returns_empty(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"bye")
    peer.close()
    assert sockutil.recv_exactly(client, 3) == b"bye"
    assert client.recv(100) == b""
    assert client.recv(100) == b""
    client.settimeout(None)
    with Watchdog(IO_TIMEOUT, client):
        assert client.recv(100) == b""


def test_recv_zero(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"x")
    assert client.recv(0) == b""
    assert client.recv(1) == b"x"
    client.setblocking(False)
    assert client.recv(0) == b""


def test_recv_negative(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    with pytest.raises(ValueError) as info:
        client.recv(-1)
    assert str(info.value) == "negative buffersize in recv"


@pytest.mark.parametrize("args", [("x",), (), (1.5,), (2 ** 63,), (1, "x"),
                                  (None,)],
                         ids=["str", "none-given", "float", "huge", "str-flags",
                              "None"])
def test_recv_bad_args_match_oracle(mod, track, args):
    def scenario(m):
        a, b = m.socketpair()
        track(a), track(b)
        a.settimeout(IO_TIMEOUT)
        return a.recv(*args)
    assert assert_same(mod, scenario, message=False)[0] == "raise"


def test_recv_no_keywords(mod, track):
    client, _ = sockutil.client_pair(mod, track)
    with pytest.raises(TypeError):
        client.recv(bufsize=10)


def test_recv_timeout_expires(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(TIMEOUT)
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            client.recv(100)
    assert_timed_out(info, el)
    # the connection is intact afterwards
    peer.sendall(b"after")
    client.settimeout(IO_TIMEOUT)
    assert sockutil.recv_exactly(client, 5) == b"after"


def test_recv_timeout_data_arrives_in_time(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(5.0)

    def send_later():
        time.sleep(0.2)
        peer.sendall(b"in time")

    w = start_worker(send_later)
    data = client.recv(100)
    w.finish()
    assert data and b"in time".startswith(data)


# A timeout already spent before the first poll (1 ns, rounded up to poll's
# 1 ms) still polls once, as CPython's sock_call does with the whole timeout:
# a socket that is ready is served, not timed out.

def test_tiny_timeout_recv_of_ready_data(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"ready")
    assert select.select([client], [], [], IO_TIMEOUT)[0]
    client.settimeout(1e-9)
    assert client.recv(100) == b"ready"


def test_tiny_timeout_accept_of_pending_connection(mod, track):
    lsock = sockutil.listener(mod, track)
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    assert select.select([lsock], [], [], IO_TIMEOUT)[0]
    lsock.settimeout(1e-9)
    fd, addr = lsock._accept()
    _check_accepted(mod, fd, addr, client, track)


def test_tiny_timeout_recv_of_nothing_times_out(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(1e-9)
    with pytest.raises(TimeoutError):
        client.recv(100)


def test_recv_nonblocking(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        client.recv(100)
    assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    peer.sendall(b"now")
    r, _, _ = select.select([client], [], [], IO_TIMEOUT)
    assert r == [client]
    data = client.recv(100)
    assert data and b"now".startswith(data)
    peer.close()
    deadline = time.monotonic() + IO_TIMEOUT
    rest = data
    for _ in range(1000):
        if time.monotonic() > deadline:
            break
        select.select([client], [], [], 1.0)
        try:
            chunk = client.recv(100)
        except BlockingIOError:
            continue
        if not chunk:
            break
        rest += chunk
    assert rest == b"now"
    assert client.recv(100) == b""


def test_recv_msg_dontwait_on_blocking_socket(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)
    with Watchdog(IO_TIMEOUT, client):
        with pytest.raises(BlockingIOError):
            client.recv(10, mod.MSG_DONTWAIT)


def test_recv_unix_socketpair(mod, track):
    a, b = mod.socketpair()
    track(a), track(b)
    with Watchdog(IO_TIMEOUT, a, b):
        b.sendall(b"pair")
        assert a.recv(4) == b"pair"
        b.close()
        assert a.recv(4) == b""


def test_recv_large_bufsize(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"q" * 1000)
    data = sockutil.recv_exactly(client, 1000)
    assert data == b"q" * 1000
    peer.sendall(b"z")
    assert client.recv(4 * 1024 * 1024) == b"z"


# ================================================================ recv_into

def _recv_into_all(sock, buf, n):
    view = memoryview(buf).cast("B")
    got = 0
    deadline = time.monotonic() + IO_TIMEOUT
    while got < n:
        assert time.monotonic() < deadline
        k = sock.recv_into(view[got:], n - got)
        assert k > 0
        got += k
    return got


def test_recv_into_bytearray(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"hello world")
    buf = bytearray(32)
    assert _recv_into_all(client, buf, 11) == 11
    assert bytes(buf[:11]) == b"hello world"
    assert buf[11:] == bytearray(21)


def test_recv_into_returns_count(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"abc")
    time.sleep(0.05)
    buf = bytearray(100)
    n = client.recv_into(buf)
    assert type(n) is int and 1 <= n <= 3
    assert bytes(buf[:n]) == b"abc"[:n]


def test_recv_into_memoryview_slice(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"WXYZ")
    buf = bytearray(b"............")
    view = memoryview(buf)
    _recv_into_all(client, view[4:8], 4)
    assert buf == bytearray(b"....WXYZ....")


def test_recv_into_array(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(bytes([1, 2, 3, 250]))
    arr = array.array("b", [0] * 8)
    _recv_into_all(client, arr, 4)
    assert arr.tolist() == [1, 2, 3, -6, 0, 0, 0, 0]


def test_recv_into_int_array_counts_bytes(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    payload = array.array("i", [7, -1, 123456])
    peer.sendall(payload.tobytes())
    arr = array.array("i", [0, 0, 0])
    _recv_into_all(client, arr, 12)
    assert arr == payload


def test_recv_into_nbytes(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"0123456789")
    buf = bytearray(10)
    deadline = time.monotonic() + IO_TIMEOUT
    got = 0
    for _ in range(100):
        if got >= 4 or time.monotonic() > deadline:
            break
        got += client.recv_into(memoryview(buf)[got:], 4 - got)
    assert got == 4
    assert bytes(buf) == b"0123" + bytes(6)
    # nbytes=0 means "the whole buffer"
    rest = bytearray(6)
    assert _recv_into_all(client, rest, 6) == 6
    assert rest == bytearray(b"456789")


def test_recv_into_nbytes_zero_means_buffer_size(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"abcdefgh")
    time.sleep(0.05)
    buf = bytearray(3)
    n = client.recv_into(buf, 0)
    assert 1 <= n <= 3
    assert bytes(buf[:n]) == b"abc"[:n]


def test_recv_into_keywords_and_flags(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"kw")
    buf = bytearray(4)
    deadline = time.monotonic() + IO_TIMEOUT
    for _ in range(1000):
        n = client.recv_into(buffer=buf, nbytes=2, flags=mod.MSG_PEEK)
        if n >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert n == 2 and bytes(buf[:2]) == b"kw"
    assert client.recv(2) == b"kw"


def test_recv_into_nbytes_too_big(mod, track):
    client, _ = sockutil.client_pair(mod, track)
    with pytest.raises(ValueError) as info:
        client.recv_into(bytearray(4), 5)
    assert str(info.value) == "buffer too small for requested bytes"


def test_recv_into_negative_nbytes(mod, track):
    client, _ = sockutil.client_pair(mod, track)
    with pytest.raises(ValueError) as info:
        client.recv_into(bytearray(4), -1)
    assert str(info.value) == "negative buffersize in recv_into"


@pytest.mark.parametrize("buf", [
    pytest.param(b"xxxx", id="bytes"),
    pytest.param(memoryview(b"xxxx"), id="readonly-memoryview"),
    pytest.param("xxxx", id="str"),
    pytest.param(None, id="none"),
    pytest.param(4, id="int"),
])
def test_recv_into_readonly_or_wrong_type(mod, track, buf):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"data")
    with pytest.raises(TypeError):
        client.recv_into(buf)
    # nothing was consumed
    assert sockutil.recv_exactly(client, 4) == b"data"


def test_recv_into_noncontiguous_matches_oracle(mod, track):
    def scenario(m):
        a, b = m.socketpair()
        track(a), track(b)
        b.sendall(b"abcd")
        return a.recv_into(memoryview(bytearray(8))[::2])
    assert assert_same(mod, scenario, message=False)[0] == "raise"


def test_recv_into_empty_buffer(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.sendall(b"x")
    assert client.recv_into(bytearray(0)) == 0
    assert client.recv(1) == b"x"


def test_recv_into_blocking_waits(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)

    def send_later():
        time.sleep(0.2)
        peer.sendall(b"later")

    w = start_worker(send_later)
    buf = bytearray(16)
    with Watchdog(IO_TIMEOUT, client):
        n = client.recv_into(buf)
    w.finish()
    assert n >= 1 and bytes(buf[:n]) == b"later"[:n]


def test_recv_into_timeout_expires(mod, track):
    client, _ = sockutil.client_pair(mod, track)
    client.settimeout(TIMEOUT)
    buf = bytearray(b"untouched")
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            client.recv_into(buf)
    assert_timed_out(info, el)
    assert buf == bytearray(b"untouched")


def test_recv_into_nonblocking(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        client.recv_into(bytearray(10))
    assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    peer.sendall(b"nbdata")
    r, _, _ = select.select([client], [], [], IO_TIMEOUT)
    assert r == [client]
    buf = bytearray(10)
    n = client.recv_into(buf)
    assert 1 <= n <= 6 and bytes(buf[:n]) == b"nbdata"[:n]


def test_recv_into_peer_close_returns_zero(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.close()
    assert client.recv_into(bytearray(10)) == 0


# ================================================================ send

@pytest.mark.parametrize("data", [
    pytest.param(b"bytes!", id="bytes"),
    pytest.param(bytearray(b"barray"), id="bytearray"),
    pytest.param(memoryview(b"..mview..")[2:7], id="memoryview-slice"),
    pytest.param(array.array("b", [1, 2, 3]), id="array"),
])
def test_send_returns_count(mod, track, data):
    client, peer = sockutil.client_pair(mod, track)
    expected = bytes(data)
    n = client.send(data)
    assert type(n) is int and n == len(expected)
    assert sockutil.recv_exactly(peer, n) == expected


def test_send_blocking(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)
    with Watchdog(IO_TIMEOUT, client):
        assert client.send(b"x" * 1000) == 1000
    assert sockutil.recv_exactly(peer, 1000) == b"x" * 1000


def test_send_with_flags(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    assert client.send(b"flags", mod.MSG_NOSIGNAL) == 5
    assert sockutil.recv_exactly(peer, 5) == b"flags"


def test_send_empty(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    assert client.send(b"") == 0


@pytest.mark.parametrize("args", [("str",), (), (None,), (5,), (b"x", "y"),
                                  (memoryview(b"abcd")[::2],)],
                         ids=["str", "nothing", "None", "int", "str-flags",
                              "noncontiguous"])
def test_send_bad_args_match_oracle(mod, track, args):
    def scenario(m):
        a, b = m.socketpair()
        track(a), track(b)
        return a.send(*args)
    res = assert_same(mod, scenario, message=False)
    assert res[0] == "raise"


def test_send_str_typeerror(mod, track):
    client, _ = sockutil.client_pair(mod, track)
    with pytest.raises(TypeError):
        client.send("text")


def test_send_nonblocking_full_buffer(mod, track):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.setblocking(False)
    sent, exc = sockutil.fill_send_buffer(client)
    assert sent > 0
    assert exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    with pytest.raises(BlockingIOError):
        client.send(b"y" * 65536)
    # after the peer drains, sending works again
    assert sockutil.drain(peer, limit_seconds=0.5) > 0


def test_send_timeout_full_buffer(mod, track):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.setblocking(False)
    sockutil.fill_send_buffer(client)
    client.settimeout(TIMEOUT)
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            client.send(b"z" * 65536)
    assert_timed_out(info, el)


def test_send_after_peer_shutdown_and_close(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.close()
    # the first send may succeed (RST arrives afterwards); a later one fails
    errors = []
    deadline = time.monotonic() + IO_TIMEOUT
    for _ in range(1000):
        if time.monotonic() > deadline:
            break
        try:
            client.send(b"x" * 1024)
        except OSError as exc:
            errors.append(exc)
            break
        time.sleep(0.01)
    assert errors, "send to a closed peer never failed"
    assert type(errors[0]) in (BrokenPipeError, ConnectionResetError)


# ================================================================ sendall

@pytest.mark.parametrize("data", [
    pytest.param(b"bytes" * 1000, id="bytes"),
    pytest.param(bytearray(b"ba" * 3000), id="bytearray"),
    pytest.param(memoryview(b"0123456789" * 700)[5:6005], id="memoryview"),
    pytest.param(array.array("i", range(2000)), id="array-i"),
    pytest.param(b"", id="empty"),
])
def test_sendall_buffer_types(mod, track, data):
    client, peer = sockutil.client_pair(mod, track)
    expected = bytes(data)
    assert client.sendall(data) is None
    client.shutdown(mod.SHUT_WR)
    got = b""
    deadline = time.monotonic() + IO_TIMEOUT
    for _ in range(10000):
        if time.monotonic() > deadline:
            break
        chunk = peer.recv(65536)
        if not chunk:
            break
        got += chunk
    assert got == expected


def test_sendall_str_typeerror(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    with pytest.raises(TypeError):
        client.sendall("text")
    with pytest.raises(TypeError):
        client.sendall(None)
    with pytest.raises(TypeError):
        client.sendall(b"x", "flags")


def test_sendall_with_flags(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    assert client.sendall(b"flagged", mod.MSG_NOSIGNAL) is None
    assert sockutil.recv_exactly(peer, 7) == b"flagged"


def _slow_reader(sock, stop, total_expected, sleep_every, sleep_for,
                 limit_seconds, bufsize=262144):
    """Read until EOF / total / stop / time limit; return (count, sha256)."""
    h = hashlib.sha256()
    buf = bytearray(bufsize)
    view = memoryview(buf)
    got = 0
    calls = 0
    deadline = time.monotonic() + limit_seconds
    sock.settimeout(0.5)
    for _ in range(10 ** 6):
        if got >= total_expected or stop.is_set():
            break
        if time.monotonic() > deadline:
            break
        try:
            n = sock.recv_into(buf)
        except TimeoutError:
            continue
        if n == 0:
            break
        h.update(view[:n])
        got += n
        calls += 1
        if sleep_every and calls % sleep_every == 0:
            time.sleep(sleep_for)
    return got, h.hexdigest()


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["blocking", "timeout"])
def test_sendall_64mib_slow_reader(mod, track, timeout):
    size = 64 * 1024 * 1024
    data = random.Random(1234).randbytes(size)
    digest = hashlib.sha256(data).hexdigest()
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(timeout)
    stop = threading.Event()
    reader = start_worker(_slow_reader, peer, stop, size, 16, 0.002, 45.0)
    try:
        with Watchdog(45.0, client):
            assert client.sendall(memoryview(data)) is None
    except BaseException:
        stop.set()
        reader.join(50.0)
        raise
    got, got_digest = reader.finish(timeout=50.0)
    assert got == size
    assert got_digest == digest


def test_sendall_timeout_peer_never_reads(mod, track):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.settimeout(TIMEOUT)
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            client.sendall(b"\0" * (32 * 1024 * 1024))
    assert_timed_out(info, el)


def test_sendall_timeout_is_for_whole_call(mod, track):
    # The reader keeps draining slowly, so every single send() makes
    # progress well within the timeout; since 3.5 the timeout bounds the
    # whole sendall() call, so it must still time out after ~0.5 s.
    timeout = 0.5
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.settimeout(timeout)
    stop = threading.Event()
    reader = start_worker(_slow_reader, peer, stop, 1 << 40, 1, 0.02, 4.0,
                          4096)
    try:
        with Elapsed() as el:
            with pytest.raises(TimeoutError) as info:
                client.sendall(b"\1" * (16 * 1024 * 1024))
    finally:
        stop.set()
        got, _ = reader.finish()
    assert got > 0, "the reader never received anything"
    assert_timed_out(info, el, timeout=timeout)


def test_sendall_nonblocking_full_buffer(mod, track):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        client.sendall(b"\2" * (32 * 1024 * 1024))
    assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)


def test_sendall_blocking_to_thread_reader(mod, track):
    size = 4 * 1024 * 1024
    data = os.urandom(size)
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(None)
    stop = threading.Event()
    reader = start_worker(_slow_reader, peer, stop, size, 0, 0, 20.0)
    with Watchdog(20.0, client):
        client.sendall(data)
    got, got_digest = reader.finish(timeout=25.0)
    assert got == size
    assert got_digest == hashlib.sha256(data).hexdigest()


def test_sendall_broken_pipe(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    peer.close()
    client.settimeout(5.0)
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        for _ in range(100):   # bounded: 100 x 1 MiB
            client.sendall(b"\3" * (1024 * 1024))
