"""sendmsg, recvmsg, recvmsg_into and CMSG_LEN/CMSG_SPACE, compared with the
stdlib ``_socket``: data over AF_UNIX socketpairs and loopback UDP/TCP,
SCM_RIGHTS descriptor passing, truncated ancillary data, timeouts,
non-blocking mode, the GIL, buffer release and argument errors."""

import array
import errno
import os
import struct
import threading
import time
import warnings

import _socket

import pytest

import sockutil
from sockutil import Alarm
from sockutil import (IO_TIMEOUT, LOOPBACK4, TIMEOUT, Elapsed, assert_same,
                      assert_timed_out, outcome)

MSG = b"Mary had a little lamb"
INT_SIZE = array.array("i").itemsize


# ---------------------------------------------------------------- helpers

def pair(mod, track, type=None):
    """A connected AF_UNIX socketpair of ``mod``, both ends with IO_TIMEOUT."""
    if type is None:
        type = mod.SOCK_STREAM
    a, b = mod.socketpair(mod.AF_UNIX, type)
    track(a)
    track(b)
    a.settimeout(IO_TIMEOUT)
    b.settimeout(IO_TIMEOUT)
    return a, b


def udp_pair(mod, track):
    """(sender, receiver): unconnected loopback UDP sockets of ``mod``."""
    receiver = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    receiver.bind((LOOPBACK4, 0))
    receiver.settimeout(IO_TIMEOUT)
    sender = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    sender.bind((LOOPBACK4, 0))
    sender.settimeout(IO_TIMEOUT)
    return sender, receiver


def tcp_pair(mod, track):
    """(client, server): a loopback TCP connection, both ends ``mod``."""
    lsock = sockutil.listener(mod, track)
    lsock.settimeout(IO_TIMEOUT)
    client = track(mod.socket(mod.AF_INET, mod.SOCK_STREAM))
    client.settimeout(IO_TIMEOUT)
    client.connect(lsock.getsockname())
    fd, _ = lsock._accept()
    server = track(mod.socket(mod.AF_INET, mod.SOCK_STREAM, 0, fileno=fd))
    server.settimeout(IO_TIMEOUT)
    lsock.close()
    return client, server


def fds_of(ancdata, mod):
    """The descriptors carried by the SCM_RIGHTS items of ``ancdata``."""
    fds = []
    for level, type, data in ancdata:
        if level == mod.SOL_SOCKET and type == mod.SCM_RIGHTS:
            usable = len(data) - len(data) % INT_SIZE
            fds.extend(array.array("i", data[:usable]))
    return fds


def close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def same_file(fd1, fd2):
    s1, s2 = os.fstat(fd1), os.fstat(fd2)
    return (s1.st_dev, s1.st_ino) == (s2.st_dev, s2.st_ino)


def open_fd_count():
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------- CMSG_LEN / CMSG_SPACE

LIMIT = 2 ** 31 - 1
CMSG_VALUES = list(range(0, 70)) + [
    1000, 4096, LIMIT - 40, LIMIT - 32, LIMIT - 25, LIMIT - 24, LIMIT - 17,
    LIMIT - 16, LIMIT - 15, LIMIT, LIMIT + 1, 2 ** 40, -1, -2 ** 31]


@pytest.mark.parametrize("name", ["CMSG_LEN", "CMSG_SPACE"])
def test_cmsg_macros_values(mod, name):
    ours = getattr(mod, name)
    theirs = getattr(_socket, name)
    for value in CMSG_VALUES:
        assert outcome(ours, value) == outcome(theirs, value), value


@pytest.mark.parametrize("args", [
    (), (1, 2), (1.0,), ("1",), (None,), (2 ** 64,), (-2 ** 64,), (True,),
], ids=repr)
@pytest.mark.parametrize("name", ["CMSG_LEN", "CMSG_SPACE"])
def test_cmsg_macros_bad_arguments(mod, name, args):
    assert_same(mod, lambda m: getattr(m, name)(*args))


def test_cmsg_macros_basic(mod):
    assert mod.CMSG_LEN(0) == mod.CMSG_SPACE(0) == 16
    assert mod.CMSG_LEN(4) == 20 and mod.CMSG_SPACE(4) == 24
    with pytest.raises(OverflowError) as info:
        mod.CMSG_LEN(-1)
    assert str(info.value) == "CMSG_LEN() argument out of range"
    with pytest.raises(OverflowError) as info:
        mod.CMSG_SPACE(-1)
    assert str(info.value) == "CMSG_SPACE() argument out of range"


def test_cmsg_macros_keywords_refused(mod):
    assert_same(mod, lambda m: m.CMSG_LEN(length=1))


# ---------------------------------------------------------------- data over AF_UNIX

def test_sendmsg_recvmsg_stream(mod, track):
    a, b = pair(mod, track)
    assert a.sendmsg([MSG]) == len(MSG)
    data, ancdata, flags, addr = b.recvmsg(len(MSG))
    assert data == MSG
    assert ancdata == []
    assert flags == 0
    assert addr is None


def test_sendmsg_gathers_buffers(mod, track):
    a, b = pair(mod, track)
    parts = [b"ab", bytearray(b"cd"), memoryview(b"efgh")[1:3], b"",
             array.array("b", b"ij")]
    assert a.sendmsg(parts) == 8
    assert sockutil.recv_exactly(b, 8) == b"abcdfgij"


def test_sendmsg_accepts_any_iterable(mod, track):
    a, b = pair(mod, track)
    assert a.sendmsg(iter([b"x", b"y"])) == 2
    assert a.sendmsg((b"z" for _ in range(3))) == 3
    assert a.sendmsg((b"w",), [], 0, None) == 1
    assert sockutil.recv_exactly(b, 6) == b"xyzzzw"


def test_sendmsg_empty(mod, track):
    a, b = pair(mod, track)
    assert a.sendmsg([]) == 0
    assert a.sendmsg([b""]) == 0
    assert a.sendmsg([], []) == 0


def test_recvmsg_short_read_resizes(mod, track):
    a, b = pair(mod, track)
    a.sendall(b"abc")
    data, ancdata, flags, addr = b.recvmsg(100)
    assert data == b"abc" and type(data) is bytes
    assert (ancdata, flags, addr) == ([], 0, None)


def test_recvmsg_zero_size(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    a.send(b"abc")
    data, ancdata, flags, addr = b.recvmsg(0)
    assert data == b""
    assert flags & mod.MSG_TRUNC
    assert ancdata == []


def test_recvmsg_datagram_truncation_flag(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    a.sendmsg([b"hello", b" world"])
    data, ancdata, flags, addr = b.recvmsg(5)
    assert data == b"hello"
    assert flags & mod.MSG_TRUNC
    a.sendmsg([b"again"])
    assert b.recvmsg(100)[:3] == (b"again", [], 0)


def test_recvmsg_peek_flag(mod, track):
    a, b = pair(mod, track)
    a.sendall(b"peekaboo")
    time.sleep(0.05)
    assert b.recvmsg(4, 0, mod.MSG_PEEK)[0] == b"peek"
    assert sockutil.recv_exactly(b, 8) == b"peekaboo"


def test_recvmsg_peer_closed(mod, track):
    a, b = pair(mod, track)
    a.close()
    assert b.recvmsg(10, 100) == (b"", [], 0, None)


def test_recvmsg_into_scatters(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    b1, b2, b3 = bytearray(3), bytearray(4), bytearray(10)
    a.send(b"0123456789")
    nbytes, ancdata, flags, addr = b.recvmsg_into([b1, memoryview(b2), b3])
    assert nbytes == 10
    assert (b1, b2, b3[:3]) == (b"012", b"3456", b"789")
    assert bytes(b3[3:]) == bytes(7)
    assert (ancdata, flags) == ([], 0)


def test_recvmsg_into_truncates_datagram(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    b1, b2 = bytearray(2), bytearray(3)
    a.send(b"abcdefgh")
    nbytes, ancdata, flags, addr = b.recvmsg_into([b1, b2])
    assert nbytes == 5 and b1 + b2 == b"abcde"
    assert flags & mod.MSG_TRUNC


def test_recvmsg_into_accepts_iterables(mod, track):
    a, b = pair(mod, track)
    bufs = [bytearray(2), bytearray(2)]
    a.sendall(b"wxyz")
    time.sleep(0.05)
    nbytes = b.recvmsg_into(iter(bufs))[0]
    assert nbytes == 4 and bufs == [b"wx", b"yz"]
    a.sendall(b"q")
    assert b.recvmsg_into((x for x in [memoryview(bytearray(1))]))[0] == 1


def test_recvmsg_into_no_buffers(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    a.send(b"lost")
    nbytes, ancdata, flags, addr = b.recvmsg_into([])
    assert nbytes == 0
    assert flags & mod.MSG_TRUNC


def test_many_buffers(mod, track):
    a, b = pair(mod, track)
    parts = [bytes([i]) for i in range(200)]
    assert a.sendmsg(parts) == 200
    targets = [bytearray(1) for _ in range(200)]
    got = 0
    deadline = time.monotonic() + IO_TIMEOUT
    while got < 200 and time.monotonic() < deadline:
        got += b.recvmsg_into(targets[got:])[0]
    assert b"".join(targets) == bytes(range(200))


def test_too_many_buffers_same_error(mod, track):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.sendmsg([b"x"] * 2000)
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


def test_large_message_via_sendmsg(mod, track):
    a, b = pair(mod, track)
    payload = os.urandom(300000)
    result = {}

    def reader():
        result["data"] = sockutil.recv_exactly(b, len(payload))

    worker = sockutil.start_worker(reader)
    view = memoryview(payload)
    deadline = time.monotonic() + IO_TIMEOUT
    while view and time.monotonic() < deadline:
        sent = a.sendmsg([view[:100000], view[100000:200000], view[200000:]])
        assert sent > 0
        view = view[sent:]
    worker.finish()
    assert result["data"] == payload


# ---------------------------------------------------------------- UDP / TCP loopback

def test_udp_sendmsg_with_address(mod, track):
    sender, receiver = udp_pair(mod, track)
    dest = receiver.getsockname()
    assert sender.sendmsg([b"to ", b"you"], [], 0, dest) == 6
    data, ancdata, flags, addr = receiver.recvmsg(100)
    assert data == b"to you"
    assert (ancdata, flags) == ([], 0)
    assert addr == sender.getsockname()


def test_udp_recvmsg_into_address(mod, track):
    sender, receiver = udp_pair(mod, track)
    buf = bytearray(10)
    sender.sendto(b"datagram", receiver.getsockname())
    nbytes, ancdata, flags, addr = receiver.recvmsg_into([buf])
    assert (nbytes, bytes(buf[:8]), ancdata, flags) == (8, b"datagram", [], 0)
    assert addr == sender.getsockname()


def test_udp_sendmsg_unconnected_without_address(mod, track):
    def scenario(m):
        s = m.socket(m.AF_INET, m.SOCK_DGRAM)
        try:
            return s.sendmsg([b"x"])
        finally:
            s.close()
    result = assert_same(mod, scenario)
    assert result[1] == "OSError" and result[2] == errno.EDESTADDRREQ


def test_udp_ancillary_ip_tos(mod, track):
    sender, receiver = udp_pair(mod, track)
    receiver.setsockopt(mod.IPPROTO_IP, mod.IP_RECVTOS, 1)
    tos = struct.pack("i", 0x10)
    sent = sender.sendmsg([b"tos"], [(mod.IPPROTO_IP, mod.IP_TOS, tos)], 0,
                          receiver.getsockname())
    assert sent == 3
    data, ancdata, flags, addr = receiver.recvmsg(10, mod.CMSG_SPACE(4))
    assert data == b"tos"
    assert ancdata == [(mod.IPPROTO_IP, mod.IP_TOS, b"\x10")]
    assert flags == 0


def test_udp_ancillary_truncated_to_nothing(mod, track):
    sender, receiver = udp_pair(mod, track)
    receiver.setsockopt(mod.IPPROTO_IP, mod.IP_RECVTOS, 1)
    sender.sendto(b"tos", receiver.getsockname())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, ancdata, flags, addr = receiver.recvmsg(10, 4)
    assert data == b"tos"
    assert ancdata == []
    assert flags & mod.MSG_CTRUNC


def test_tcp_sendmsg_recvmsg(mod, track):
    client, server = tcp_pair(mod, track)
    assert client.sendmsg([b"over ", b"tcp"]) == 8
    got = b""
    deadline = time.monotonic() + IO_TIMEOUT
    while len(got) < 8 and time.monotonic() < deadline:
        data, ancdata, flags, addr = server.recvmsg(8 - len(got))
        assert (ancdata, flags, addr) == ([], 0, None)
        got += data
    assert got == b"over tcp"
    server.sendmsg([b"back"])
    buf = bytearray(4)
    assert client.recvmsg_into([buf])[0] == 4 and buf == b"back"


def test_tcp_sendmsg_with_address_on_connected(mod, track):
    def scenario(m):
        lsock = m.socket()
        client = m.socket()
        try:
            lsock.bind((LOOPBACK4, 0))
            lsock.listen()
            client.settimeout(IO_TIMEOUT)
            client.connect(lsock.getsockname())
            fd, _ = lsock._accept()
            m.socket(fileno=fd).close()
            return client.sendmsg([b"x"], [], 0, ("127.0.0.1", 9))
        finally:
            lsock.close()
            client.close()
    outcome_std = assert_same(mod, scenario, message=False)
    # Linux ignores the address on a connected TCP socket, or refuses it.
    assert outcome_std[0] in ("ok", "raise")


# ---------------------------------------------------------------- SCM_RIGHTS

def test_scm_rights_passes_descriptors(mod, track):
    a, b = pair(mod, track)
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    received = []
    try:
        fds = array.array("i", [r, w, null])
        sent = a.sendmsg([b"fds"], [(mod.SOL_SOCKET, mod.SCM_RIGHTS, fds)])
        assert sent == 3
        data, ancdata, flags, addr = b.recvmsg(10, mod.CMSG_SPACE(3 * INT_SIZE))
        received = fds_of(ancdata, mod)
        assert data == b"fds"
        assert flags == 0
        assert len(ancdata) == 1
        level, type, payload = ancdata[0]
        assert (level, type, len(payload)) == (mod.SOL_SOCKET, mod.SCM_RIGHTS, 12)
        assert len(received) == 3
        assert all(fd not in (r, w, null) for fd in received)
        assert same_file(received[0], r) and same_file(received[1], w)
        assert same_file(received[2], null)
        # The received pipe ends are live.
        os.write(received[1], b"through")
        assert os.read(r, 7) == b"through"
        # CPython does not make them non-inheritable.
        assert os.get_inheritable(received[0])
    finally:
        close_all(received)
        close_all([r, w, null])


def test_scm_rights_recvmsg_into(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    r, w = os.pipe()
    received = []
    try:
        a.sendmsg([b"one", b"two"], [(mod.SOL_SOCKET, mod.SCM_RIGHTS,
                                      struct.pack("ii", r, w))])
        b1, b2 = bytearray(4), bytearray(4)
        nbytes, ancdata, flags, addr = b.recvmsg_into(
            [b1, b2], mod.CMSG_LEN(2 * INT_SIZE))
        received = fds_of(ancdata, mod)
        assert nbytes == 6 and b1 + b2[:2] == b"onetwo"
        assert len(received) == 2 and flags == 0
        assert same_file(received[0], r) and same_file(received[1], w)
    finally:
        close_all(received)
        close_all([r, w])


def test_scm_rights_several_items(mod, track):
    """Two SCM_RIGHTS items in one message; the kernel may merge them."""
    def scenario(m):
        a, b = m.socketpair()
        r, w = os.pipe()
        received = []
        try:
            a.sendmsg([b"x"], [(m.SOL_SOCKET, m.SCM_RIGHTS, struct.pack("i", r)),
                               (m.SOL_SOCKET, m.SCM_RIGHTS, struct.pack("ii", w, r))])
            data, ancdata, flags, addr = b.recvmsg(1, m.CMSG_SPACE(40))
            received = fds_of(ancdata, m)
            return (data, [(lv, t, len(d)) for lv, t, d in ancdata], flags,
                    [same_file(fd, r) for fd in received])
        finally:
            close_all(received)
            close_all([r, w])
            a.close()
            b.close()
    assert_same(mod, scenario)


def test_scm_rights_like_socket_send_fds(mod, track):
    """socket.py's send_fds/recv_fds, written against ``mod``."""
    a, b = pair(mod, track)
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
    received = []
    try:
        a.sendmsg([b"msg"], [(mod.SOL_SOCKET, mod.SCM_RIGHTS, array.array("i", fds))])
        msg, ancdata, flags, addr = b.recvmsg(3, mod.CMSG_LEN(5 * INT_SIZE))
        received = fds_of(ancdata, mod)
        assert msg == b"msg" and len(received) == 5
    finally:
        close_all(received)
        close_all(fds)


@pytest.mark.parametrize("ancbufsize", [
    0, 1, 15, 16, 19, 20, 21, 23, 24, 27, 28, 31, 32, 100])
def test_scm_rights_truncation(mod, track, ancbufsize):
    """Too little room for the descriptors: MSG_CTRUNC, the ones that fit
    are delivered and the rest closed by the kernel, as with the stdlib."""
    def scenario(m):
        a, b = m.socketpair()
        pipes = [os.pipe() for _ in range(2)]
        sent = [pipes[0][0], pipes[0][1], pipes[1][0]]
        received = []
        before = open_fd_count()
        try:
            a.sendmsg([b"hello"], [(m.SOL_SOCKET, m.SCM_RIGHTS, array.array("i", sent))])
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                data, ancdata, flags, addr = b.recvmsg(10, ancbufsize)
            received = fds_of(ancdata, m)
            shape = [(lv, t, len(d)) for lv, t, d in ancdata]
            opened = open_fd_count() - before
            return (data, shape, flags, addr, len(received), opened,
                    [same_file(fd, s) for fd, s in zip(received, sent)])
        finally:
            close_all(received)
            close_all([fd for p in pipes for fd in p])
            a.close()
            b.close()
    result = assert_same(mod, scenario)
    assert result[0] == "ok"
    data, shape, flags, addr, count, opened, same = result[1]
    assert data == b"hello" and count == opened and all(same)
    assert bool(flags & _socket.MSG_CTRUNC) == (count < 3)


def test_scm_rights_descriptor_count_is_not_leaked(mod, track):
    a, b = pair(mod, track)
    before = open_fd_count()
    for _ in range(20):
        r, w = os.pipe()
        try:
            a.sendmsg([b"x"], [(mod.SOL_SOCKET, mod.SCM_RIGHTS, struct.pack("ii", r, w))])
        finally:
            os.close(r)
            os.close(w)
        data, ancdata, flags, addr = b.recvmsg(1, mod.CMSG_SPACE(8))
        received = fds_of(ancdata, mod)
        assert len(received) == 2
        close_all(received)
    assert open_fd_count() == before


def test_scm_rights_bad_descriptor(mod, track):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.sendmsg([b"x"], [(m.SOL_SOCKET, m.SCM_RIGHTS, struct.pack("i", 99999))])
        finally:
            a.close()
            b.close()
    result = assert_same(mod, scenario)
    assert result[2] == errno.EBADF


def test_scm_credentials(mod, track):
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    b.setsockopt(mod.SOL_SOCKET, mod.SO_PASSCRED, 1)
    creds = struct.pack("iII", os.getpid(), os.getuid(), os.getgid())
    a.sendmsg([b"me"], [(mod.SOL_SOCKET, mod.SCM_CREDENTIALS, creds)])
    data, ancdata, flags, addr = b.recvmsg(10, mod.CMSG_SPACE(len(creds)))
    assert data == b"me" and flags == 0
    assert ancdata == [(mod.SOL_SOCKET, mod.SCM_CREDENTIALS, creds)]


def test_scm_credentials_truncated(mod, track):
    """Room for part of the credentials: the stdlib's outcome, warnings
    included (as errors, so any warning shows in the comparison)."""
    def scenario(m, ancbufsize):
        a, b = m.socketpair(m.AF_UNIX, m.SOCK_DGRAM)
        try:
            b.setsockopt(m.SOL_SOCKET, m.SO_PASSCRED, 1)
            a.send(b"me")
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                data, ancdata, flags, addr = b.recvmsg(10, ancbufsize)
            return data, [(lv, t, len(d)) for lv, t, d in ancdata], flags, addr
        finally:
            a.close()
            b.close()
    for size in (16, 17, 20, 27, 28, 31, 32):
        assert_same(mod, lambda m: scenario(m, size))


# ---------------------------------------------------------------- timeouts, non-blocking

def test_recvmsg_timeout(mod, track):
    a, b = pair(mod, track)
    b.settimeout(TIMEOUT)
    with Elapsed() as elapsed, pytest.raises(TimeoutError) as info:
        b.recvmsg(10, 100)
    assert_timed_out(info, elapsed)


def test_recvmsg_into_timeout(mod, track):
    a, b = pair(mod, track)
    b.settimeout(TIMEOUT)
    buf = bytearray(5)
    with Elapsed() as elapsed, pytest.raises(TimeoutError) as info:
        b.recvmsg_into([buf])
    assert_timed_out(info, elapsed)
    buf.extend(b"x")  # the buffer was released


def test_sendmsg_timeout(mod, track):
    a, b = pair(mod, track)
    a.setblocking(False)
    sockutil.fill_send_buffer(a)
    a.settimeout(TIMEOUT)
    data = bytearray(b"y" * 65536)
    with Elapsed() as elapsed, pytest.raises(TimeoutError) as info:
        a.sendmsg([data])
    assert_timed_out(info, elapsed)
    data.extend(b"x")  # the buffer was released


def test_recvmsg_nonblocking(mod, track):
    a, b = pair(mod, track)
    b.setblocking(False)
    for call in (lambda: b.recvmsg(10), lambda: b.recvmsg_into([bytearray(4)], 64)):
        with pytest.raises(BlockingIOError) as info:
            call()
        assert info.value.errno == errno.EAGAIN
    a.sendall(b"now")
    deadline = time.monotonic() + IO_TIMEOUT
    while time.monotonic() < deadline:
        try:
            assert b.recvmsg(10)[0] == b"now"
            break
        except BlockingIOError:
            time.sleep(0.01)
    else:
        pytest.fail("data never arrived")


def test_sendmsg_nonblocking(mod, track):
    a, b = pair(mod, track)
    a.setblocking(False)
    sockutil.fill_send_buffer(a)
    with pytest.raises(BlockingIOError) as info:
        a.sendmsg([b"z" * 65536])
    assert info.value.errno == errno.EAGAIN


def test_recvmsg_dontwait_on_blocking_socket(mod, track):
    a, b = pair(mod, track)
    b.settimeout(None)
    with pytest.raises(BlockingIOError):
        b.recvmsg(10, 0, mod.MSG_DONTWAIT)


def test_recvmsg_timeout_then_data(mod, track):
    a, b = pair(mod, track)
    b.settimeout(2.0)
    timer = threading.Timer(0.1, lambda: a.sendmsg([b"late"]))
    timer.start()
    try:
        assert b.recvmsg(10)[0] == b"late"
    finally:
        timer.join(IO_TIMEOUT)


def test_recvmsg_releases_gil(mod, track):
    """A thread blocked in recvmsg must not stop this one from sending."""
    a, b = pair(mod, track)
    b.settimeout(None)
    worker = sockutil.start_worker(lambda: b.recvmsg(10, 64))
    time.sleep(0.2)
    with sockutil.Watchdog(IO_TIMEOUT, b):
        start = time.monotonic()
        a.sendmsg([b"wake"])
        assert time.monotonic() - start < 2.0
        result = worker.finish()
    assert result == (b"wake", [], 0, None)


def test_recvmsg_into_releases_gil(mod, track):
    a, b = pair(mod, track)
    buf = bytearray(8)
    worker = sockutil.start_worker(lambda: b.recvmsg_into([buf]))
    time.sleep(0.2)
    a.sendmsg([b"wake"])
    assert worker.finish()[0] == 4 and buf[:4] == b"wake"


# ---------------------------------------------------------------- buffers and references

def test_buffers_released_after_success_and_errors(mod, track):
    a, b = pair(mod, track)
    data = bytearray(b"data")
    anc = bytearray(struct.pack("iII", os.getpid(), os.getuid(), os.getgid()))
    targets = [bytearray(2), bytearray(2)]
    a.sendmsg([data])
    b.recvmsg_into(targets)
    with pytest.raises(TypeError):
        a.sendmsg([data, "str"])
    with pytest.raises(TypeError):
        a.sendmsg([data], [(mod.SOL_SOCKET, mod.SCM_CREDENTIALS, anc), (1, 2)])
    with pytest.raises(TypeError):
        b.recvmsg_into([targets[0], b"readonly"])
    with pytest.raises(ValueError):
        b.recvmsg_into(targets, -1)
    # Nothing still holds an export: resizing works.
    for buf in [data, anc] + targets:
        buf.extend(b"x")


def test_no_reference_leaks(mod, track):
    import sys
    a, b = pair(mod, track, mod.SOCK_DGRAM)
    data = b"refcount"
    anc = (mod.SOL_SOCKET, mod.SCM_CREDENTIALS,
           struct.pack("iII", os.getpid(), os.getuid(), os.getgid()))
    buffers = [bytearray(4), bytearray(4)]
    refs = [sys.getrefcount(x) for x in (data, anc, buffers[0], buffers)]
    for _ in range(50):
        a.sendmsg([data], [anc])
        b.recvmsg_into(buffers, 64)
        a.sendmsg([data])
        b.recvmsg(20)
        try:
            a.sendmsg([data], [anc, 1])
        except TypeError:
            pass
    assert [sys.getrefcount(x) for x in (data, anc, buffers[0], buffers)] == refs


def test_closed_socket(mod):
    s = mod.socket(mod.AF_UNIX, mod.SOCK_STREAM)
    s.close()
    for call in (lambda: s.sendmsg([b"x"]), lambda: s.recvmsg(1),
                 lambda: s.recvmsg_into([bytearray(1)])):
        with pytest.raises(OSError) as info:
            call()
        assert type(info.value) is OSError and info.value.errno == errno.EBADF


def test_audit_event(mod, track):
    import sys
    events = []

    def hook(event, args):
        if event == "socket.sendmsg" and args and args[0] in watched:
            events.append((event, args[1]))
    watched = []
    sys.addaudithook(hook)   # cannot be removed: it only records our sockets
    sender, receiver = udp_pair(mod, track)
    watched.append(sender)
    sender.sendmsg([b"x"], [], 0, receiver.getsockname())
    a, b = pair(mod, track)
    watched.append(a)
    a.sendmsg([b"x"])
    watched.clear()
    assert events == [("socket.sendmsg", receiver.getsockname()),
                      ("socket.sendmsg", None)]


# ---------------------------------------------------------------- argument errors

SENDMSG_BAD = [
    (), (1,), ([1],), (["x"],), ([b"x", None],), (None,), (b"x",),
    ([memoryview(b"abcd")[::2]],),
    ([b"x"], 1), ([b"x"], None), ([b"x"], [1]), ([b"x"], [(1, 2)]),
    ([b"x"], [(1, 2, 3, 4)]), ([b"x"], [(1, 2, 3)]), ([b"x"], [(1, 2, "s")]),
    ([b"x"], [(1.0, 2, b"")]), ([b"x"], [(1, 2.0, b"")]),
    ([b"x"], [(2 ** 31, 2, b"")]), ([b"x"], [(-2 ** 31 - 1, 2, b"")]),
    ([b"x"], [(2 ** 70, 2, b"")]), ([b"x"], [b"abc"]), ([b"x"], ["abc"]),
    ([b"x"], [[1, 2, b""]]), ([b"x"], [(1, 2, b""), None]),
    ([b"x"], [(1, 2, b"")], 0), ([b"x"], [], 1.0), ([b"x"], [], None),
    ([b"x"], [], "0"), ([b"x"], [], 2 ** 40),
    ([b"x"], [], 0, 5), ([b"x"], [], 0, "/nonexistent/socket"),
    ([b"x"], [], 0, None, 5), ([b"x"], (), 0, b"\0abstract-nobody-listens"),
    ([b"x", "y"], [(1, 2, 3)]), (["y"], [], 0, 5), (["y"], [(1, 2)], 1.0),
]


@pytest.mark.parametrize("args", SENDMSG_BAD, ids=repr)
def test_sendmsg_argument_errors(mod, args):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.sendmsg(*args)
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


SENDMSG_INET_BAD = [
    ([b"x"], [], 0, "host"), ([b"x"], [], 0, ("127.0.0.1",)),
    ([b"x"], [], 0, ("127.0.0.1", 70000)), ([b"x"], [], 0, ("127.0.0.1", "p")),
    ([b"x"], [], 0, (1, 2)), ([b"x"], [], 0, ("::1", 5)),
    ([b"x"], [], 0, ("127.0.0.1", 9)), (1, [], 0, ("bad", "address")),
]


@pytest.mark.parametrize("args", SENDMSG_INET_BAD, ids=repr)
def test_sendmsg_inet_address_errors(mod, args):
    def scenario(m):
        s = m.socket(m.AF_INET, m.SOCK_DGRAM)
        try:
            return s.sendmsg(*args)
        finally:
            s.close()
    assert_same(mod, scenario)


def test_sendmsg_keywords_refused(mod):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.sendmsg(buffers=[b"x"])
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


RECVMSG_BAD = [
    (), (-1,), (1, -1), (1, 2 ** 31), (1, 2 ** 31 - 1, 0, 0), (1.0,), ("1",),
    (None,), (1, 1.0), (1, None), (1, 0, 1.0), (1, 0, None), (1, 0, 0, 1),
    (2 ** 63,), (-1, -1), (1, 0, 2 ** 31), (-1, 1.0),
]


@pytest.mark.parametrize("args", RECVMSG_BAD, ids=repr)
def test_recvmsg_argument_errors(mod, args):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.recvmsg(*args)
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


RECVMSG_INTO_BAD = [
    (), (1,), (None,), ([b"x"],), ([1],), ([bytearray(1), "s"],), ("ab",),
    (b"ab",), ([memoryview(bytearray(4))[::2]],), ([memoryview(b"ro")],),
    ([bytearray(2)], -1), ([bytearray(2)], 2 ** 31), ([bytearray(2)], 1.0),
    ([bytearray(2)], 0, 1.0), ([bytearray(2)], 0, 0, 1), ([1], -1),
    ([1], 0, 1.0), ([bytearray(2)], None),
]


@pytest.mark.parametrize("args", RECVMSG_INTO_BAD, ids=repr)
def test_recvmsg_into_argument_errors(mod, args):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return a.recvmsg_into(*args)
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


def test_recvmsg_keywords_refused(mod):
    def scenario(m):
        a, b = m.socketpair()
        try:
            return (outcome(a.recvmsg, bufsize=1),
                    outcome(a.recvmsg_into, buffers=[bytearray(1)]))
        finally:
            a.close()
            b.close()
    assert_same(mod, scenario)


def test_bad_iterables_propagate_errors(mod):
    class Boom(Exception):
        pass

    def exploding():
        yield b"x"
        raise Boom("from iterator")

    class BadSequence:
        def __len__(self):
            raise Boom("len")

        def __getitem__(self, index):
            raise Boom("getitem")

    def scenario(m):
        a, b = m.socketpair()
        try:
            return [outcome(a.sendmsg, exploding()),
                    outcome(a.sendmsg, [b"x"], exploding()),
                    outcome(a.sendmsg, [b"x"], [BadSequence()]),
                    outcome(b.recvmsg_into, exploding())]
        finally:
            a.close()
            b.close()
    result = assert_same(mod, scenario)
    assert result[0] == "ok"


# ---------------------------------------------------------------- addresses

def test_unix_datagram_addresses(mod, track):
    """Bound (abstract) and unbound AF_UNIX senders, as the stdlib reports them."""
    def scenario(m):
        tag = "%d-%s" % (os.getpid(), m.__name__)
        receiver = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
        bound = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
        unbound = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
        try:
            for s in (receiver, bound, unbound):
                s.settimeout(IO_TIMEOUT)
            receiver.bind(b"\0swiftsocket-msg-recv-" + tag.encode())
            bound.bind(b"\0swiftsocket-msg-send-" + tag.encode())
            dest = receiver.getsockname()
            bound.sendmsg([b"from bound"], [], 0, dest)
            unbound.sendmsg([b"from unbound"], [], 0, dest)
            first = receiver.recvmsg(100)
            buf = bytearray(100)
            second = receiver.recvmsg_into([buf])
            return (first[0], first[3] == bound.getsockname(),
                    second[0], second[3])
        finally:
            receiver.close()
            bound.close()
            unbound.close()
    result = assert_same(mod, scenario)
    assert result[0] == "ok", result
    assert result[1][1] is True


def test_unix_filesystem_address(mod, track, tmp_path):
    path = str(tmp_path / "recv.sock")
    receiver = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM))
    receiver.bind(path)
    receiver.settimeout(IO_TIMEOUT)
    sender = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM))
    sender.bind(str(tmp_path / "send.sock"))
    assert sender.sendmsg([b"fs"], [], 0, path) == 2
    data, ancdata, flags, addr = receiver.recvmsg(10)
    assert (data, ancdata, flags) == (b"fs", [], 0)
    assert addr == str(tmp_path / "send.sock")


def test_udp6_addresses(mod, track, ipv6):
    receiver = track(mod.socket(mod.AF_INET6, mod.SOCK_DGRAM))
    receiver.bind(("::1", 0))
    receiver.settimeout(IO_TIMEOUT)
    sender = track(mod.socket(mod.AF_INET6, mod.SOCK_DGRAM))
    sender.bind(("::1", 0))
    assert sender.sendmsg([b"six"], [], 0, receiver.getsockname()[:2]) == 3
    data, ancdata, flags, addr = receiver.recvmsg(10)
    assert data == b"six"
    assert addr == sender.getsockname()
    assert len(addr) == 4


def test_udp6_pktinfo(mod, track, ipv6):
    receiver = track(mod.socket(mod.AF_INET6, mod.SOCK_DGRAM))
    receiver.bind(("::1", 0))
    receiver.settimeout(IO_TIMEOUT)
    receiver.setsockopt(mod.IPPROTO_IPV6, mod.IPV6_RECVPKTINFO, 1)
    sender = track(mod.socket(mod.AF_INET6, mod.SOCK_DGRAM))
    sender.sendto(b"info", receiver.getsockname())
    data, ancdata, flags, addr = receiver.recvmsg(10, mod.CMSG_SPACE(20))
    assert data == b"info" and flags == 0
    assert len(ancdata) == 1
    level, type, payload = ancdata[0]
    assert (level, type) == (mod.IPPROTO_IPV6, mod.IPV6_PKTINFO)
    assert payload[:16] == b"\0" * 15 + b"\1" and len(payload) == 20


# ---------------------------------------------------------------- signals (PEP 475)

@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
@pytest.mark.parametrize("name", ["recvmsg", "recvmsg_into", "sendmsg"])
def test_signal_handler_exception_propagates(mod, track, alarm, name, timeout):
    a, b = pair(mod, track)
    if name == "sendmsg":
        a.setblocking(False)
        sockutil.fill_send_buffer(a)
        sock, call = a, lambda: a.sendmsg([b"x" * 65536])
    elif name == "recvmsg":
        sock, call = b, lambda: b.recvmsg(10, 64)
    else:
        sock, call = b, lambda: b.recvmsg_into([bytearray(10)], 64)
    sock.settimeout(timeout)
    with sockutil.Watchdog(IO_TIMEOUT, sock):
        calls = alarm(True)
        with Elapsed() as elapsed, pytest.raises(Alarm):
            call()
    assert len(calls) == 1
    assert 0.1 <= elapsed.seconds < 3.0


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
def test_signal_handler_returns_call_retried(mod, track, alarm, timeout):
    a, b = pair(mod, track)
    b.settimeout(timeout)

    def late_send():
        time.sleep(0.6)
        a.sendmsg([b"after"])

    worker = sockutil.start_worker(late_send)
    with sockutil.Watchdog(IO_TIMEOUT, b):
        calls = alarm(False)
        result = b.recvmsg(10, 64)
    worker.finish()
    assert result == (b"after", [], 0, None)
    assert len(calls) == 1


def test_ancillary_size_limits(mod, track):
    """Items too large for a socklen_t, alone or together: refused before any
    control buffer is built (the 2 GiB mapping is never touched)."""
    import mmap
    big = mmap.mmap(-1, 2 ** 31)
    try:
        def scenario(m):
            a, b = m.socketpair()
            try:
                half = memoryview(big)[:2 ** 30]
                try:
                    return [outcome(a.sendmsg, [b"x"], [(1, 1, big)]),
                            outcome(a.sendmsg, [b"x"], [(1, 1, half), (1, 1, half)]),
                            outcome(a.sendmsg, [b"x"], [(1, 1, b""), (1, 1, big), (1.0, 1, b"")])]
                finally:
                    half.release()
            finally:
                a.close()
                b.close()
        result = assert_same(mod, scenario)
        assert result[1][0][3] == "ancillary data item too large"
        assert result[1][1][3] == "too much ancillary data"
    finally:
        big.close()  # BufferError if an export were still held
