"""Address parsing and formatting: AF_INET, AF_INET6, AF_UNIX (filesystem
and Linux abstract names), getsockname/getpeername, and bad addresses."""

import errno
import os
import uuid

import _socket

import pytest

import sockutil
from sockutil import LOOPBACK4, LOOPBACK6, assert_same


def abstract_name(tag):
    return "\0swiftsocket-test-%d-%s-%s" % (os.getpid(), tag,
                                             uuid.uuid4().hex[:12])


# ---------------------------------------------------------------- AF_INET

@pytest.mark.parametrize("host,expected", [
    (LOOPBACK4, LOOPBACK4),
    ("localhost", LOOPBACK4),
    (b"127.0.0.1", LOOPBACK4),
    (bytearray(b"127.0.0.1"), LOOPBACK4),
    ("", "0.0.0.0"),      # INADDR_ANY: bind only, never connected to
])
def test_inet_bind_getsockname(mod, track, host, expected):
    s = track(mod.socket())
    assert s.bind((host, 0)) is None
    name = s.getsockname()
    assert type(name) is tuple and len(name) == 2
    assert name[0] == expected and type(name[0]) is str
    assert type(name[1]) is int and 0 < name[1] < 65536


def test_inet_unbound_getsockname(mod, track):
    s = track(mod.socket())
    assert s.getsockname() == ("0.0.0.0", 0)


def test_inet_getpeername_unconnected_enotconn(mod, track):
    s = track(mod.socket())
    with pytest.raises(OSError) as info:
        s.getpeername()
    assert type(info.value) is OSError
    assert info.value.errno == errno.ENOTCONN
    s.bind((LOOPBACK4, 0))
    s.listen()
    with pytest.raises(OSError) as info:
        s.getpeername()
    assert info.value.errno == errno.ENOTCONN


def test_inet_connected_names(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    assert client.getpeername() == peer.getsockname()
    assert client.getsockname() == peer.getpeername()
    host, port = client.getsockname()
    assert host == LOOPBACK4 and type(port) is int and port > 0


def test_inet_server_side_names(mod, track):
    conn, peer = sockutil.server_pair(mod, track)
    assert conn.getpeername() == peer.getsockname()
    assert conn.getsockname() == peer.getpeername()
    assert (conn.family, conn.type) == (mod.AF_INET, mod.SOCK_STREAM)


def test_inet_dgram_names(mod, track):
    s = track(mod.socket(mod.AF_INET, mod.SOCK_DGRAM))
    s.bind((LOOPBACK4, 0))
    other = track(_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM))
    other.bind((LOOPBACK4, 0))
    s.connect(other.getsockname())
    assert s.getpeername() == other.getsockname()


# ---------------------------------------------------------------- AF_INET6

@pytest.mark.parametrize("addr", [
    (LOOPBACK6, 0),
    (LOOPBACK6, 0, 0),
    (LOOPBACK6, 0, 0, 0),
    (b"::1", 0),
    ("", 0),               # in6addr_any: bind only
])
def test_inet6_bind_getsockname_is_4_tuple(mod, track, ipv6, addr):
    s = track(mod.socket(mod.AF_INET6))
    s.bind(addr)
    name = s.getsockname()
    assert type(name) is tuple and len(name) == 4
    host, port, flowinfo, scope_id = name
    assert host == ("::" if addr[0] == "" else LOOPBACK6)
    assert type(port) is int and port > 0
    assert flowinfo == 0 and scope_id == 0


def test_inet6_connect_and_peer_names(mod, track, ipv6):
    lsock = sockutil.listener(_socket, track, family=_socket.AF_INET6)
    port = lsock.getsockname()[1]
    for addr in ((LOOPBACK6, port), (LOOPBACK6, port, 0, 0)):
        c = track(mod.socket(mod.AF_INET6))
        c.settimeout(sockutil.IO_TIMEOUT)
        c.connect(addr)
        assert c.getpeername() == (LOOPBACK6, port, 0, 0)
        conn, accepted_addr = sockutil.accept_std(lsock, track)
        assert c.getsockname() == accepted_addr
        assert len(accepted_addr) == 4
        c.close()
        conn.close()


def test_inet6_accept_address_shape(mod, track, ipv6):
    lsock = sockutil.listener(mod, track, family=mod.AF_INET6)
    lsock.settimeout(sockutil.IO_TIMEOUT)
    c = track(_socket.socket(_socket.AF_INET6))
    c.settimeout(sockutil.IO_TIMEOUT)
    c.connect(lsock.getsockname()[:2])
    fd, addr = lsock._accept()
    track(_socket.socket(fileno=fd))
    assert type(addr) is tuple and len(addr) == 4
    assert addr == c.getsockname()
    assert addr[0] == LOOPBACK6


# ---------------------------------------------------------------- AF_UNIX

def test_unix_str_path(mod, track, tmp_path):
    path = str(tmp_path / "s.sock")
    srv = track(mod.socket(mod.AF_UNIX))
    srv.bind(path)
    assert srv.getsockname() == path
    assert type(srv.getsockname()) is str
    srv.listen()
    assert os.path.exists(path)
    c = track(mod.socket(mod.AF_UNIX))
    c.settimeout(sockutil.IO_TIMEOUT)
    c.connect(path)
    assert c.getpeername() == path
    assert c.getsockname() == ""
    srv.settimeout(sockutil.IO_TIMEOUT)
    fd, addr = srv._accept()
    track(_socket.socket(fileno=fd))
    assert addr == ""


def test_unix_bytes_path(mod, track, tmp_path):
    path = os.fsencode(tmp_path / "b.sock")
    srv = track(mod.socket(mod.AF_UNIX))
    srv.bind(path)
    # filesystem names always come back as str (fs-decoded)
    assert srv.getsockname() == os.fsdecode(path)
    srv.listen()
    c = track(mod.socket(mod.AF_UNIX))
    c.settimeout(sockutil.IO_TIMEOUT)
    c.connect(path)
    assert c.getpeername() == os.fsdecode(path)


def test_unix_non_utf8_path(mod, track, tmp_path):
    path = os.fsencode(tmp_path) + b"/\xfe.sock"
    srv = track(mod.socket(mod.AF_UNIX))
    srv.bind(path)
    assert srv.getsockname() == os.fsdecode(path)
    assert "\udcfe" in srv.getsockname()


def test_unix_pathlike_rejected_like_oracle(mod, track, tmp_path):
    def scenario(m):
        s = track(m.socket(m.AF_UNIX))
        return s.bind(tmp_path / ("p-%s.sock" % m.__name__))
    assert_same(mod, scenario, message=False)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_unix_abstract_name(mod, track, as_bytes):
    name = abstract_name("abs")
    addr = name.encode() if as_bytes else name
    srv = track(mod.socket(mod.AF_UNIX))
    srv.bind(addr)
    # abstract names are returned as bytes, NUL included
    assert srv.getsockname() == name.encode()
    assert type(srv.getsockname()) is bytes
    srv.listen()
    c = track(mod.socket(mod.AF_UNIX))
    c.settimeout(sockutil.IO_TIMEOUT)
    c.connect(addr)
    assert c.getpeername() == name.encode()
    srv.settimeout(sockutil.IO_TIMEOUT)
    fd, peer_addr = srv._accept()
    conn = track(_socket.socket(fileno=fd))
    assert peer_addr == ""
    c.sendall(b"abstract")
    conn.settimeout(sockutil.IO_TIMEOUT)
    assert sockutil.recv_exactly(conn, 8) == b"abstract"


def test_unix_abstract_connect_to_oracle_listener(mod, track):
    name = abstract_name("x")
    srv = track(_socket.socket(_socket.AF_UNIX))
    srv.bind(name)
    srv.listen()
    c = track(mod.socket(mod.AF_UNIX))
    c.settimeout(sockutil.IO_TIMEOUT)
    c.connect(name.encode())
    assert c.getpeername() == name.encode()
    conn, _ = sockutil.accept_std(srv, track)
    conn.sendall(b"hi")
    assert sockutil.recv_exactly(c, 2) == b"hi"


def test_unix_autobind(mod, track):
    # bind("") asks Linux for an automatic abstract name: b"\0" + 5 hex digits
    s = track(mod.socket(mod.AF_UNIX))
    s.bind("")
    name = s.getsockname()
    assert type(name) is bytes
    assert name[:1] == b"\0" and len(name) == 6


def test_unix_unbound_getsockname(mod, track):
    s = track(mod.socket(mod.AF_UNIX))
    assert s.getsockname() == ""


def test_unix_max_length_path(mod, track, tmp_path):
    # sun_path is 108 bytes: 107 + NUL is the longest filesystem path
    base = os.fsencode(tmp_path) + b"/"
    path = base + b"p" * (107 - len(base))
    assert len(path) == 107
    s = track(mod.socket(mod.AF_UNIX))
    s.bind(path)
    assert s.getsockname() == os.fsdecode(path)


@pytest.mark.parametrize("addr", [
    pytest.param("x" * 108, id="str-108"),
    pytest.param("x" * 200, id="str-200"),
    pytest.param(b"x" * 200, id="bytes-200"),
    pytest.param("\0" + "a" * 108, id="abstract-109"),
])
@pytest.mark.parametrize("method", ["bind", "connect", "connect_ex"])
def test_unix_path_too_long(mod, track, addr, method):
    s = track(mod.socket(mod.AF_UNIX))
    with pytest.raises(OSError) as info:
        getattr(s, method)(addr)
    assert type(info.value) is OSError
    assert str(info.value) == "AF_UNIX path too long"
    assert info.value.errno is None


def test_unix_connect_missing_path(mod, track, tmp_path):
    s = track(mod.socket(mod.AF_UNIX))
    s.settimeout(sockutil.IO_TIMEOUT)
    with pytest.raises(FileNotFoundError) as info:
        s.connect(str(tmp_path / "missing.sock"))
    assert info.value.errno == errno.ENOENT
    assert s.connect_ex(str(tmp_path / "missing.sock")) == errno.ENOENT


def test_unix_connect_missing_abstract(mod, track):
    s = track(mod.socket(mod.AF_UNIX))
    s.settimeout(sockutil.IO_TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        s.connect(abstract_name("missing"))


def test_unix_bind_existing_path_eaddrinuse(mod, track, tmp_path):
    path = str(tmp_path / "used.sock")
    a = track(_socket.socket(_socket.AF_UNIX))
    a.bind(path)
    b = track(mod.socket(mod.AF_UNIX))
    with pytest.raises(OSError) as info:
        b.bind(path)
    assert info.value.errno == errno.EADDRINUSE


def test_unix_dgram_socketpair_names(mod, track):
    a, b = mod.socketpair(mod.AF_UNIX, mod.SOCK_DGRAM)
    track(a), track(b)
    assert a.getsockname() == ""


# ---------------------------------------------------------------- bad addresses

INET_BAD = [
    # (address, check the message too?)
    pytest.param(("127.0.0.1",), True, id="1-tuple"),
    pytest.param(("127.0.0.1", 1, 2), True, id="3-tuple"),
    pytest.param((), True, id="empty-tuple"),
    pytest.param(("127.0.0.1", 70000), True, id="port-70000"),
    pytest.param(("127.0.0.1", 65536), True, id="port-65536"),
    pytest.param(("127.0.0.1", -1), True, id="port-negative"),
    pytest.param(("127.0.0.1", 2 ** 70), True, id="port-huge"),
    pytest.param(("127.0.0.1", "80"), False, id="port-str"),
    pytest.param(("127.0.0.1", 1.5), False, id="port-float"),
    pytest.param(("127.0.0.1", None), False, id="port-none"),
    pytest.param("127.0.0.1", True, id="str-not-tuple"),
    pytest.param(["127.0.0.1", 0], True, id="list-not-tuple"),
    pytest.param(None, True, id="none"),
    pytest.param(80, True, id="int"),
    pytest.param((1, 0), True, id="int-host"),
    pytest.param((None, 0), True, id="none-host"),
    pytest.param(("127.0.0.1\0", 0), True, id="nul-in-host"),
]


@pytest.mark.parametrize("addr,check_message", INET_BAD)
@pytest.mark.parametrize("method", ["bind", "connect", "connect_ex"])
def test_inet_bad_address(mod, track, addr, check_message, method):
    def scenario(m):
        s = track(m.socket())
        s.settimeout(sockutil.IO_TIMEOUT)
        return getattr(s, method)(addr)
    res = assert_same(mod, scenario, message=check_message)
    assert res[0] == "raise"
    assert res[1] in ("TypeError", "OverflowError", "ValueError")


@pytest.mark.parametrize("method", ["bind", "connect", "connect_ex"])
def test_inet_port_range_message(mod, track, method):
    s = track(mod.socket())
    with pytest.raises(OverflowError) as info:
        getattr(s, method)(("127.0.0.1", 65536))
    assert str(info.value) == "%s(): port must be 0-65535." % method
    with pytest.raises(OverflowError) as info:
        getattr(s, method)(("127.0.0.1", -1))
    assert str(info.value).endswith("port must be 0-65535.")


def test_inet_bad_address_types(mod, track):
    s = track(mod.socket())
    with pytest.raises(TypeError):
        s.bind(("127.0.0.1", "80"))
    with pytest.raises(TypeError) as info:
        s.bind("127.0.0.1")
    assert str(info.value) == "bind(): AF_INET address must be tuple, not str"
    with pytest.raises(TypeError) as info:
        s.bind(("127.0.0.1",))
    assert str(info.value) == "AF_INET address must be a pair (host, port)"


INET6_BAD = [
    pytest.param(("::1",), True, id="1-tuple"),
    pytest.param(("::1", 0, 0, 0, 0), True, id="5-tuple"),
    pytest.param(("::1", 70000), True, id="port-70000"),
    pytest.param(("::1", -1), True, id="port-negative"),
    pytest.param(("::1", 0, 1048576), True, id="flowinfo-too-big"),
    pytest.param(("::1", 0, -1), True, id="flowinfo-negative"),
    pytest.param(("::1", "x"), False, id="port-str"),
    pytest.param(("::1", 0, "x"), False, id="flowinfo-str"),
    pytest.param(("::1", 0, 0, "x"), False, id="scope-str"),
    pytest.param("::1", True, id="str-not-tuple"),
    pytest.param([LOOPBACK6, 0], True, id="list-not-tuple"),
    pytest.param((None, 0), True, id="none-host"),
]


@pytest.mark.parametrize("addr,check_message", INET6_BAD)
@pytest.mark.parametrize("method", ["bind", "connect"])
def test_inet6_bad_address(mod, track, ipv6, addr, check_message, method):
    def scenario(m):
        s = track(m.socket(m.AF_INET6))
        s.settimeout(sockutil.IO_TIMEOUT)
        return getattr(s, method)(addr)
    res = assert_same(mod, scenario, message=check_message)
    assert res[0] == "raise"
    assert res[1] in ("TypeError", "OverflowError")


def test_inet6_flowinfo_message(mod, track, ipv6):
    s = track(mod.socket(mod.AF_INET6))
    with pytest.raises(OverflowError) as info:
        s.bind((LOOPBACK6, 0, 1 << 20))
    assert str(info.value) == "bind(): flowinfo must be 0-1048575."


def test_inet6_scope_id_matches_oracle(mod, track, ipv6):
    def scenario(m):
        s = track(m.socket(m.AF_INET6))
        return s.bind((LOOPBACK6, 0, 0, 12345)), s.getsockname()[2:]
    assert_same(mod, scenario)


UNIX_BAD = [
    pytest.param(("x",), id="tuple"),
    pytest.param(5, id="int"),
    pytest.param(None, id="none"),
    pytest.param(1.5, id="float"),
]


@pytest.mark.parametrize("addr", UNIX_BAD)
@pytest.mark.parametrize("method", ["bind", "connect"])
def test_unix_bad_address(mod, track, addr, method):
    def scenario(m):
        s = track(m.socket(m.AF_UNIX))
        return getattr(s, method)(addr)
    res = assert_same(mod, scenario, message=False)
    assert res[:2] == ("raise", "TypeError")


def test_sendto_bad_address_matches_oracle(mod, track):
    def scenario(m):
        s = track(m.socket(m.AF_INET, m.SOCK_DGRAM))
        return [sockutil.outcome(s.sendto, b"x", a)
                for a in (("127.0.0.1",), ("127.0.0.1", 70000), "x", None)]
    assert_same(mod, scenario)
