"""Socket options, timeouts/blocking mode, listen and shutdown."""

import errno
import math
import os
import struct
import sys

import _socket

import pytest

import sockutil
from sockutil import assert_same


# ---------------------------------------------------------------- setsockopt / getsockopt

def test_sockopt_int_form(mod, track):
    s = track(mod.socket())
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR) == 0
    assert s.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 1) is None
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR) == 1
    s.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 0)
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR) == 0
    s.setsockopt(mod.IPPROTO_TCP, mod.TCP_NODELAY, True)
    assert s.getsockopt(mod.IPPROTO_TCP, mod.TCP_NODELAY) == 1
    assert type(s.getsockopt(mod.SOL_SOCKET, mod.SO_TYPE)) is int


@pytest.mark.parametrize("level,opt", [
    ("SOL_SOCKET", "SO_TYPE"), ("SOL_SOCKET", "SO_PROTOCOL"),
    ("SOL_SOCKET", "SO_DOMAIN"), ("SOL_SOCKET", "SO_ERROR"),
    ("SOL_SOCKET", "SO_KEEPALIVE"), ("IPPROTO_TCP", "TCP_NODELAY"),
])
def test_getsockopt_int_matches_oracle(mod, track, level, opt):
    def scenario(m):
        s = track(m.socket())
        return s.getsockopt(getattr(m, level), getattr(m, opt))
    result = assert_same(mod, scenario)
    assert result[0] == "ok" and type(result[1]) is int


def test_sockopt_buffer_sizes_match_oracle(mod, track):
    def scenario(m):
        s = track(m.socket())
        s.setsockopt(m.SOL_SOCKET, m.SO_RCVBUF, 32768)
        s.setsockopt(m.SOL_SOCKET, m.SO_SNDBUF, 65536)
        return (s.getsockopt(m.SOL_SOCKET, m.SO_RCVBUF),
                s.getsockopt(m.SOL_SOCKET, m.SO_SNDBUF))
    result = assert_same(mod, scenario)
    assert result[0] == "ok" and result[1][0] >= 32768


def test_sockopt_bytes_form(mod, track):
    s = track(mod.socket())
    raw = s.getsockopt(mod.SOL_SOCKET, mod.SO_LINGER, 8)
    assert type(raw) is bytes
    assert raw == struct.pack("ii", 0, 0)
    assert s.setsockopt(mod.SOL_SOCKET, mod.SO_LINGER,
                        struct.pack("ii", 1, 5)) is None
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_LINGER, 8) == struct.pack(
        "ii", 1, 5)
    # a larger buffer is truncated to what the kernel wrote
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_LINGER, 64) == struct.pack(
        "ii", 1, 5)
    # bytes form of an int option
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_TYPE, 4) == struct.pack(
        "i", mod.SOCK_STREAM)


@pytest.mark.parametrize("value", [
    pytest.param(b"\x01\x00\x00\x00", id="bytes"),
    pytest.param(bytearray(b"\x01\x00\x00\x00"), id="bytearray"),
    pytest.param(memoryview(b"\x01\x00\x00\x00"), id="memoryview"),
])
def test_setsockopt_buffer_values(mod, track, value):
    s = track(mod.socket())
    s.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, value)
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR) == 1


def test_getsockopt_buflen_zero_is_int_form(mod, track):
    s = track(mod.socket())
    s.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 1)
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 0) == 1


@pytest.mark.parametrize("buflen", [-1, 1025, 2 ** 20])
def test_getsockopt_buflen_out_of_range(mod, track, buflen):
    s = track(mod.socket())
    with pytest.raises(OSError) as info:
        s.getsockopt(mod.SOL_SOCKET, mod.SO_LINGER, buflen)
    assert str(info.value) == "getsockopt buflen out of range"


def test_getsockopt_buflen_max_allowed(mod, track):
    s = track(mod.socket())
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_LINGER, 1024) == bytes(8)


@pytest.mark.parametrize("optlen", [0, 4])
def test_setsockopt_none_optlen_matches_oracle(mod, track, optlen):
    # setsockopt(level, opt, None, optlen) passes a NULL optval: the kernel
    # rejects it for SO_REUSEADDR (EINVAL for 0, EFAULT for 4 on Linux).
    def scenario(m):
        s = track(m.socket())
        return s.setsockopt(m.SOL_SOCKET, m.SO_REUSEADDR, None, optlen)
    result = assert_same(mod, scenario)
    assert result[0] == "raise" and result[1] == "OSError"
    assert result[2] in (errno.EINVAL, errno.EFAULT)


@pytest.mark.parametrize("args", [
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, None), id="none"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, "x"), id="str"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1.5), id="float"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1, 4),
                 id="int-with-optlen"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, b"x", 4),
                 id="bytes-with-optlen"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 2 ** 40),
                 id="int-overflow"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR), id="too-few"),
    pytest.param(("x", _socket.SO_REUSEADDR, 1), id="str-level"),
    pytest.param((9999, 9999, 1), id="bad-level"),
    pytest.param((_socket.SOL_SOCKET, 9999, 1), id="bad-option"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_REUSEADDR, None, -1),
                 id="none-negative-optlen"),
])
def test_setsockopt_errors_match_oracle(mod, track, args):
    def scenario(m):
        s = track(m.socket())
        return s.setsockopt(*args)
    result = assert_same(mod, scenario, message=False)
    assert result[0] == "raise"


@pytest.mark.parametrize("args", [
    pytest.param((9999, 9999), id="bad-level"),
    pytest.param((_socket.SOL_SOCKET, 9999), id="bad-option"),
    pytest.param((_socket.SOL_SOCKET,), id="too-few"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_TYPE, "x"), id="str-buflen"),
    pytest.param((_socket.SOL_SOCKET, _socket.SO_TYPE, 4, 5), id="too-many"),
])
def test_getsockopt_errors_match_oracle(mod, track, args):
    def scenario(m):
        s = track(m.socket())
        return s.getsockopt(*args)
    result = assert_same(mod, scenario, message=False)
    assert result[0] == "raise"


def test_getsockopt_bad_option_errno(mod, track):
    s = track(mod.socket())
    with pytest.raises(OSError) as info:
        s.getsockopt(mod.SOL_SOCKET, 9999)
    assert info.value.errno == errno.ENOPROTOOPT


def test_so_error_after_refused_nonblocking_connect(mod, track):
    addr = sockutil.refused_address(track)
    s = track(mod.socket())
    s.setblocking(False)
    rc = s.connect_ex(addr)
    assert rc in (errno.EINPROGRESS, errno.ECONNREFUSED)
    if rc == errno.EINPROGRESS:
        import select
        _, w, _ = select.select([], [s], [], sockutil.IO_TIMEOUT)
        assert w == [s]
        assert s.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR) == errno.ECONNREFUSED
        # reading SO_ERROR clears it
        assert s.getsockopt(mod.SOL_SOCKET, mod.SO_ERROR) == 0


# ---------------------------------------------------------------- timeouts / blocking

def test_settimeout_values(mod, track):
    s = track(mod.socket())
    fd = s.fileno()
    assert s.gettimeout() is None and s.getblocking() is True
    assert os.get_blocking(fd) is True

    assert s.settimeout(2.5) is None
    assert s.gettimeout() == 2.5 and s.timeout == 2.5
    assert s.getblocking() is True
    # a positive timeout puts the fd itself in non-blocking mode
    assert os.get_blocking(fd) is False

    s.settimeout(0)
    assert s.gettimeout() == 0.0
    assert type(s.gettimeout()) is float
    assert s.getblocking() is False
    assert os.get_blocking(fd) is False

    s.settimeout(None)
    assert s.gettimeout() is None
    assert s.getblocking() is True
    assert os.get_blocking(fd) is True

    s.settimeout(3)
    assert s.gettimeout() == 3.0 and type(s.gettimeout()) is float
    s.settimeout(0.0)
    assert s.gettimeout() == 0.0


def test_setblocking(mod, track):
    s = track(mod.socket())
    fd = s.fileno()
    s.settimeout(4.0)
    assert s.setblocking(False) is None
    assert s.gettimeout() == 0.0 and s.getblocking() is False
    assert os.get_blocking(fd) is False
    s.setblocking(True)
    assert s.gettimeout() is None and s.getblocking() is True
    assert os.get_blocking(fd) is True
    s.setblocking(0)
    assert s.gettimeout() == 0.0
    s.setblocking(1)
    assert s.gettimeout() is None


def test_setblocking_flag_conversion(mod, track):
    # An int through __index__ up to 3.11; any object's truth value from 3.12.
    class Falsy:
        def __bool__(self):
            return False

    class BadBool:
        def __bool__(self):
            raise ZeroDivisionError

    def scenario(m):
        s = track(m.socket())
        out = []
        for v in (0, 1, 2, -1, False, True, "x", "", [], None, 1.5, 0.0, 2 ** 100, Falsy(), BadBool()):
            s.settimeout(2.5)
            out.append((sockutil.outcome(s.setblocking, v, message=False), s.gettimeout()))
        return out
    res = assert_same(mod, scenario)
    assert res[0] == "ok"
    assert res[1][:6] == [(("ok", None), t) for t in (0.0, None, None, None, 0.0, None)]
    if sys.version_info >= (3, 12):
        assert [r[1] for r in res[1][6:]] == [None, 0.0, 0.0, 0.0, None, 0.0, None, 0.0, 2.5]
        assert res[1][-1][0][1] == "ZeroDivisionError"
    else:
        assert all(r[0][1] in ("TypeError", "OverflowError") and r[1] == 2.5 for r in res[1][6:])


@pytest.mark.parametrize("bad,exc,message", [
    (-1, ValueError, "Timeout value out of range"),
    (-0.001, ValueError, "Timeout value out of range"),
    (float("-inf"), OverflowError, None),
    (float("nan"), ValueError, "Invalid value NaN (not a number)"),
    ("x", TypeError, None),
    (b"1", TypeError, None),
    ([1], TypeError, None),
    (1e300, OverflowError, None),
    (2 ** 70, OverflowError, None),
])
def test_settimeout_bad_values(mod, track, bad, exc, message):
    s = track(mod.socket())
    s.settimeout(1.5)
    with pytest.raises(exc) as info:
        s.settimeout(bad)
    if message is not None:
        assert str(info.value) == message
    # the previous timeout is kept
    assert s.gettimeout() == 1.5


def test_settimeout_bad_values_messages_match_oracle(mod, track):
    def scenario(m):
        s = track(m.socket())
        return [sockutil.outcome(s.settimeout, v)
                for v in (-1, "x", float("nan"), 1e300, 2 ** 70)]
    assert_same(mod, scenario, message=True)


# Seconds to nanoseconds as pytime.c converts them (rounded away from zero,
# PyTime_t's range, NaN and overflow messages), and back to float seconds.
TIMEOUT_BOUNDARIES = [
    0, 1, 0.0, -0.0, 1e-9, 4e-10, 5e-10, 1.5e-9, -1e-10, -4e-10, 0.1, 0.3,
    1 / 3, 2.5, 1e9, 9223372036, 9223372037, 9223372036.854775, 9.223372036854775e9,
    9.2233720368547748e9, 2.0 ** 33, 2 ** 63 // 10 ** 9, 2 ** 63 // 10 ** 9 + 1, 2 ** 63 - 1,
    2 ** 63, -2 ** 63, 2 ** 64, -9.3e9, float("inf"), float("-inf"), float("nan"), True,
]


def test_timeout_conversion_boundaries_match_oracle(mod, track):
    def scenario(m):
        s = track(m.socket())
        out = []
        for value in TIMEOUT_BOUNDARIES:
            s.settimeout(None)
            out.append((sockutil.outcome(s.settimeout, value), s.gettimeout()))
            try:
                out.append((sockutil.outcome(m.setdefaulttimeout, value), m.getdefaulttimeout()))
            finally:
                m.setdefaulttimeout(None)
        return out
    result = assert_same(mod, scenario)
    assert result[0] == "ok"
    values = dict(zip(TIMEOUT_BOUNDARIES, result[1][::2]))
    assert values[4e-10] == (("ok", None), 1e-9)   # rounded up to 1 ns
    assert values[2 ** 63][0][1] == "OverflowError"


def test_settimeout_tiny_and_bool(mod, track):
    s = track(mod.socket())
    s.settimeout(1e-9)
    assert s.gettimeout() == 1e-9
    s.settimeout(True)
    assert s.gettimeout() == 1.0


def test_settimeout_requires_argument(mod, track):
    s = track(mod.socket())
    with pytest.raises(TypeError):
        s.settimeout()
    with pytest.raises(TypeError):
        s.setblocking()


# ---------------------------------------------------------------- bind / listen

def test_listen_default_and_explicit(mod, track):
    for args in ((), (0,), (1,), (128,), (-1,)):
        s = track(mod.socket())
        s.bind((sockutil.LOOPBACK4, 0))
        assert s.listen(*args) is None
        assert s.getsockopt(mod.SOL_SOCKET, mod.SO_ACCEPTCONN) == 1


def test_listen_errors_match_oracle(mod, track):
    def scenario(m):
        s = track(m.socket(m.AF_INET, m.SOCK_DGRAM))
        return s.listen()
    res = assert_same(mod, scenario)
    assert res[:3] == ("raise", "OSError", errno.EOPNOTSUPP)

    def scenario2(m):
        s = track(m.socket())
        return s.listen("x")
    assert assert_same(mod, scenario2, message=False)[1] == "TypeError"

    def scenario3(m):
        s = track(m.socket())
        return s.listen(1, 2)
    assert assert_same(mod, scenario3, message=False)[1] == "TypeError"


def test_bind_twice_einval(mod, track):
    s = track(mod.socket())
    s.bind((sockutil.LOOPBACK4, 0))
    with pytest.raises(OSError) as info:
        s.bind((sockutil.LOOPBACK4, 0))
    assert info.value.errno == errno.EINVAL


def test_bind_address_in_use(mod, track):
    a = track(_socket.socket())
    a.bind((sockutil.LOOPBACK4, 0))
    a.listen()
    b = track(mod.socket())
    with pytest.raises(OSError) as info:
        b.bind(a.getsockname())
    assert type(info.value) is OSError
    assert info.value.errno == errno.EADDRINUSE


def test_reuseaddr_allows_rebind_after_close(mod, track):
    a = track(mod.socket())
    a.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 1)
    a.bind((sockutil.LOOPBACK4, 0))
    a.listen()
    addr = a.getsockname()
    a.close()
    b = track(mod.socket())
    b.setsockopt(mod.SOL_SOCKET, mod.SO_REUSEADDR, 1)
    b.bind(addr)
    assert b.getsockname() == addr


# ---------------------------------------------------------------- shutdown

def test_shutdown_wr_peer_sees_eof(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.sendall(b"last words")
    assert client.shutdown(mod.SHUT_WR) is None
    assert sockutil.recv_exactly(peer, 10) == b"last words"
    assert peer.recv(100) == b""
    # the other direction still works
    peer.sendall(b"reply")
    assert sockutil.recv_exactly(client, 5) == b"reply"
    with pytest.raises(BrokenPipeError) as info:
        client.send(b"more")
    assert info.value.errno == errno.EPIPE


def test_shutdown_rd_own_recv_sees_eof(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.shutdown(mod.SHUT_RD)
    assert client.recv(100) == b""
    client.sendall(b"still sending")
    assert sockutil.recv_exactly(peer, 13) == b"still sending"


def test_shutdown_rdwr(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    client.shutdown(mod.SHUT_RDWR)
    assert client.recv(10) == b""
    assert peer.recv(10) == b""
    with pytest.raises(BrokenPipeError):
        client.send(b"x")
    assert client.fileno() >= 0  # shutdown does not close


def test_shutdown_unconnected_enotconn(mod, track):
    s = track(mod.socket())
    with pytest.raises(OSError) as info:
        s.shutdown(mod.SHUT_RDWR)
    assert info.value.errno == errno.ENOTCONN


@pytest.mark.parametrize("how", [5, -1, "x", None, 2 ** 40])
def test_shutdown_bad_how_matches_oracle(mod, track, how):
    def scenario(m):
        client, peer = sockutil.client_pair(m, track)
        return client.shutdown(how)
    res = assert_same(mod, scenario, message=False)
    assert res[0] == "raise"


def test_shutdown_constants_values(mod):
    assert (mod.SHUT_RD, mod.SHUT_WR, mod.SHUT_RDWR) == (0, 1, 2)
