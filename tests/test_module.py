"""Module-level API: exceptions, constants, default timeout, socketpair,
getaddrinfo and the small helper functions socket.py re-exports."""

import errno
import os
import sys

import _socket

import pytest

import sockutil
from sockutil import assert_same, outcome


# ---------------------------------------------------------------- exceptions

def test_error_is_oserror(mod):
    assert mod.error is OSError


def test_timeout_is_timeouterror(mod):
    assert mod.timeout is TimeoutError


@pytest.mark.parametrize("name", ["herror", "gaierror"])
def test_herror_gaierror_are_oserror_subclasses(mod, name):
    exc_type = getattr(mod, name)
    assert isinstance(exc_type, type)
    assert issubclass(exc_type, OSError)
    assert exc_type is not OSError
    assert exc_type.__name__ == name
    # socket.py does `from _socket import *`; pickling and repr rely on it.
    assert exc_type.__module__ == "socket"
    e = exc_type(-2, "Name or service not known")
    assert e.errno == -2
    assert e.strerror == "Name or service not known"


def test_herror_and_gaierror_are_distinct(mod):
    assert mod.herror is not mod.gaierror
    assert not issubclass(mod.herror, mod.gaierror)
    assert not issubclass(mod.gaierror, mod.herror)


def test_has_ipv6_is_bool(mod):
    assert type(mod.has_ipv6) is bool
    assert mod.has_ipv6 == _socket.has_ipv6


def test_sockettype_is_socket(mod):
    assert mod.SocketType is mod.socket
    assert isinstance(mod.socket, type)


def test_socket_type_name(mod):
    assert mod.socket.__name__ == "socket"
    assert mod.socket.__qualname__ == "socket"


# ---------------------------------------------------------------- constants

CONSTANT_PREFIXES = ("AF_", "SOCK_", "SOL_", "SO_", "IPPROTO_", "MSG_",
                     "SHUT_", "AI_", "NI_", "EAI_", "TCP_", "IP_", "IPV6_",
                     "SCM_", "INADDR_", "SOMAXCONN")


def _std_constants():
    return sorted(name for name in dir(_socket)
                  if name.startswith(CONSTANT_PREFIXES)
                  and isinstance(getattr(_socket, name), int))


@pytest.mark.parametrize("name", ["AF_INET", "AF_INET6", "AF_UNIX",
                                  "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW",
                                  "SOCK_SEQPACKET", "SOCK_NONBLOCK",
                                  "SOCK_CLOEXEC", "SOL_SOCKET",
                                  "SO_REUSEADDR", "SO_ERROR", "SO_TYPE",
                                  "SO_PROTOCOL", "SO_LINGER", "SO_RCVBUF",
                                  "SO_SNDBUF", "SHUT_RD", "SHUT_WR",
                                  "SHUT_RDWR", "IPPROTO_TCP", "IPPROTO_IPV6",
                                  "IPV6_V6ONLY", "SO_REUSEPORT", "TCP_NODELAY",
                                  "MSG_PEEK", "MSG_DONTWAIT", "AI_PASSIVE",
                                  "AI_NUMERICHOST", "SCM_RIGHTS", "SOMAXCONN",
                                  "EAI_NONAME"])
def test_core_constants(mod, name):
    assert type(getattr(mod, name)) is int
    assert getattr(mod, name) == getattr(_socket, name)


def test_all_oracle_constants_present_with_same_value(mod):
    names = _std_constants()
    assert len(names) > 150  # sanity: the oracle really has them
    missing = [n for n in names if not hasattr(mod, n)]
    wrong = [(n, getattr(mod, n), getattr(_socket, n)) for n in names
             if hasattr(mod, n) and getattr(mod, n) != getattr(_socket, n)]
    assert missing == []
    assert wrong == []


def test_all_oracle_public_names_present(mod):
    # socket.py re-exports every public name of _socket.
    names = sorted(n for n in dir(_socket) if not n.startswith("_"))
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []


def test_capi_capsule_present(mod):
    # _ssl imports sys.modules['_socket'].CAPI; without it `import ssl`
    # raises AttributeError (see the contract notes).
    capi = getattr(mod, "CAPI", None)
    assert capi is not None
    assert type(capi).__name__ == "PyCapsule"


# ---------------------------------------------------------------- default timeout

def test_default_timeout_is_none(mod):
    assert mod.getdefaulttimeout() is None
    s = mod.socket()
    try:
        assert s.timeout is None
        assert s.gettimeout() is None
        assert s.getblocking() is True
    finally:
        s.close()


@pytest.mark.parametrize("value", [2.5, 0, 0.0, 7])
def test_setdefaulttimeout_inherited(mod, track, value):
    try:
        mod.setdefaulttimeout(value)
        assert mod.getdefaulttimeout() == float(value)
        assert type(mod.getdefaulttimeout()) is float
        s = track(mod.socket())
        assert s.gettimeout() == float(value)
        assert s.timeout == float(value)
        assert s.getblocking() is (value != 0)
        # With any timeout the fd itself is non-blocking (socketmodule.c).
        assert os.get_blocking(s.fileno()) is False
        a, b = mod.socketpair()
        track(a), track(b)
        assert a.gettimeout() == float(value)
        assert b.gettimeout() == float(value)
        adopted = sockutil.adopt(mod, track, os.dup(s.fileno()))
        assert adopted.gettimeout() == float(value)
    finally:
        mod.setdefaulttimeout(None)
    assert mod.getdefaulttimeout() is None
    s2 = track(mod.socket())
    assert s2.gettimeout() is None
    assert os.get_blocking(s2.fileno()) is True


def test_setdefaulttimeout_does_not_affect_existing(mod, track):
    s = track(mod.socket())
    try:
        mod.setdefaulttimeout(1.5)
        assert s.gettimeout() is None
    finally:
        mod.setdefaulttimeout(None)


@pytest.mark.parametrize("bad,exc,message", [
    (-1, ValueError, "Timeout value out of range"),
    (-0.5, ValueError, "Timeout value out of range"),
    ("x", TypeError, None),
    (float("nan"), ValueError, "Invalid value NaN (not a number)"),
])
def test_setdefaulttimeout_bad_values(mod, bad, exc, message):
    try:
        with pytest.raises(exc) as info:
            mod.setdefaulttimeout(bad)
        if message is not None:
            assert str(info.value) == message
        assert mod.getdefaulttimeout() is None
    finally:
        mod.setdefaulttimeout(None)


def test_setdefaulttimeout_needs_argument(mod):
    with pytest.raises(TypeError):
        mod.setdefaulttimeout()


# ---------------------------------------------------------------- socketpair

def test_socketpair_default_is_af_unix_stream(mod, track):
    a, b = mod.socketpair()
    track(a), track(b)
    for s in (a, b):
        assert type(s) is mod.socket
        assert s.family == mod.AF_UNIX
        assert s.type == mod.SOCK_STREAM
        assert s.proto == 0
        assert s.gettimeout() is None
        assert os.get_inheritable(s.fileno()) is False
    a.settimeout(sockutil.IO_TIMEOUT)
    b.settimeout(sockutil.IO_TIMEOUT)
    assert a.send(b"ping") == 4
    assert sockutil.recv_exactly(b, 4) == b"ping"
    b.sendall(b"pong")
    assert sockutil.recv_exactly(a, 4) == b"pong"
    a.close()
    assert b.recv(10) == b""


@pytest.mark.parametrize("type_name", ["SOCK_STREAM", "SOCK_DGRAM",
                                       "SOCK_SEQPACKET"])
def test_socketpair_explicit_family_type(mod, track, type_name):
    kind = getattr(mod, type_name)
    a, b = mod.socketpair(mod.AF_UNIX, kind)
    track(a), track(b)
    assert (a.family, a.type, b.family, b.type) == (
        mod.AF_UNIX, kind, mod.AF_UNIX, kind)
    a.settimeout(sockutil.IO_TIMEOUT)
    b.settimeout(sockutil.IO_TIMEOUT)
    a.sendall(b"hello")
    assert b.recv(100) == b"hello"


def test_socketpair_with_proto(mod, track):
    a, b = mod.socketpair(mod.AF_UNIX, mod.SOCK_STREAM, 0)
    track(a), track(b)
    assert a.proto == 0 and b.proto == 0


def test_socketpair_af_inet_matches_oracle(mod, track):
    # Linux has no AF_INET socketpair(); both must report the same error.
    def scenario(m):
        a, b = m.socketpair(m.AF_INET)
        track(a), track(b)
        return (a.family, b.family)
    result = assert_same(mod, scenario)
    assert result[:3] == ("raise", "OSError", errno.EOPNOTSUPP)


def test_socketpair_no_keywords_matches_oracle(mod, track):
    def scenario(m):
        a, b = m.socketpair(family=m.AF_UNIX)
        track(a), track(b)
        return a.family
    result = assert_same(mod, scenario, message=False)
    assert result[:2] == ("raise", "TypeError")


def test_socketpair_inherits_nothing_leaky(mod, track):
    a, b = mod.socketpair()
    track(a), track(b)
    assert a.fileno() != b.fileno()
    assert a.fileno() >= 0 and b.fileno() >= 0


# ---------------------------------------------------------------- getaddrinfo

def _gai(m, *args, **kwargs):
    return sorted(m.getaddrinfo(*args, **kwargs))


GAI_CASES = [
    pytest.param(("127.0.0.1", 80), {}, id="ipv4-int-port"),
    pytest.param(("127.0.0.1", "80"), {}, id="ipv4-str-port"),
    pytest.param(("127.0.0.1", b"80"), {}, id="ipv4-bytes-port"),
    pytest.param(("127.0.0.1", None), {}, id="ipv4-none-port"),
    pytest.param(("127.0.0.1", 0), {}, id="ipv4-port-0"),
    pytest.param(("127.0.0.1", 65535), {}, id="ipv4-port-65535"),
    # glibc takes "70000" modulo 65536 when no socket type is given
    pytest.param(("127.0.0.1", 70000), {}, id="ipv4-port-70000"),
    pytest.param(("127.0.0.1", "http"), {}, id="ipv4-service-name"),
    pytest.param((b"127.0.0.1", 80), {}, id="bytes-host"),
    pytest.param(("localhost", 80), {}, id="localhost"),
    pytest.param(("localhost", 80, _socket.AF_INET, _socket.SOCK_STREAM),
                 {}, id="localhost-inet-stream"),
    pytest.param(("localhost", 80, 0, _socket.SOCK_DGRAM), {},
                 id="localhost-dgram"),
    pytest.param((None, 80, 0, _socket.SOCK_STREAM, 0, _socket.AI_PASSIVE),
                 {}, id="none-passive"),
    pytest.param((None, 80, _socket.AF_INET, _socket.SOCK_STREAM, 0,
                  _socket.AI_PASSIVE), {}, id="none-passive-inet"),
    pytest.param((None, 80), {}, id="none-active"),
    pytest.param(("::1", 22), {}, id="ipv6"),
    pytest.param(("::1", 22, _socket.AF_INET6, _socket.SOCK_STREAM,
                  _socket.IPPROTO_TCP), {}, id="ipv6-filters"),
    pytest.param(("127.0.0.1", 80, _socket.AF_INET, 0, _socket.IPPROTO_UDP),
                 {}, id="proto-filter"),
    pytest.param(("127.0.0.1", 80, 0, 0, 0, _socket.AI_CANONNAME), {},
                 id="canonname"),
    pytest.param(("127.0.0.1", 80, 0, 0, 0, _socket.AI_NUMERICHOST), {},
                 id="numerichost-ok"),
    pytest.param((), {"host": "127.0.0.1", "port": 1, "family":
                      _socket.AF_INET, "type": _socket.SOCK_DGRAM,
                      "proto": 0, "flags": 0}, id="keywords"),
    pytest.param(("127.0.0.1",), {"port": 7, "type": _socket.SOCK_STREAM},
                 id="some-keywords"),
]


@pytest.mark.parametrize("args,kwargs", GAI_CASES)
def test_getaddrinfo_matches_oracle(mod, args, kwargs):
    result = assert_same(mod, lambda m: _gai(m, *args, **kwargs))
    assert result[0] == "ok"
    entries = result[1]
    assert entries, "getaddrinfo returned nothing"
    for family, kind, proto, canon, sockaddr in entries:
        assert type(family) is int or isinstance(family, int)
        assert isinstance(canon, str)
        assert isinstance(sockaddr, tuple)
        if family == _socket.AF_INET:
            assert len(sockaddr) == 2
        elif family == _socket.AF_INET6:
            assert len(sockaddr) == 4


def test_getaddrinfo_literal_result(mod):
    assert mod.getaddrinfo("127.0.0.1", 80, mod.AF_INET, mod.SOCK_STREAM) == [
        (mod.AF_INET, mod.SOCK_STREAM, mod.IPPROTO_TCP, "", ("127.0.0.1", 80))]
    assert mod.getaddrinfo("127.0.0.1", "8080", 0, mod.SOCK_DGRAM) == [
        (mod.AF_INET, mod.SOCK_DGRAM, mod.IPPROTO_UDP, "",
         ("127.0.0.1", 8080))]


def test_getaddrinfo_ipv6_literal_result(mod):
    assert mod.getaddrinfo("::1", 22, mod.AF_INET6, mod.SOCK_STREAM) == [
        (mod.AF_INET6, mod.SOCK_STREAM, mod.IPPROTO_TCP, "",
         ("::1", 22, 0, 0))]


def test_getaddrinfo_passive_any(mod):
    res = mod.getaddrinfo(None, 0, mod.AF_INET, mod.SOCK_STREAM, 0,
                          mod.AI_PASSIVE)
    assert res == [(mod.AF_INET, mod.SOCK_STREAM, mod.IPPROTO_TCP, "",
                    ("0.0.0.0", 0))]


def test_getaddrinfo_result_types(mod):
    family, kind, proto, canon, addr = mod.getaddrinfo(
        "127.0.0.1", 5, mod.AF_INET, mod.SOCK_STREAM)[0]
    # _socket returns plain ints; socket.py converts them to enums.
    assert type(family) is int and type(kind) is int and type(proto) is int
    assert type(addr[0]) is str and type(addr[1]) is int


def test_getaddrinfo_bad_host_gaierror(mod):
    # AI_NUMERICHOST makes the resolver fail without any network lookup.
    with pytest.raises(mod.gaierror) as info:
        mod.getaddrinfo("not-a-number", 80, 0, 0, 0, mod.AI_NUMERICHOST)
    exc = info.value
    assert isinstance(exc, OSError)
    assert exc.errno == _socket.EAI_NONAME
    with pytest.raises(_socket.gaierror) as ref:
        _socket.getaddrinfo("not-a-number", 80, 0, 0, 0,
                            _socket.AI_NUMERICHOST)
    assert exc.errno == ref.value.errno
    assert exc.args == ref.value.args
    assert str(exc) == str(ref.value)


GAI_ERROR_CASES = [
    pytest.param(("256.1.1.1", 0, 0, 0, 0, _socket.AI_NUMERICHOST),
                 id="bad-numeric-host"),
    pytest.param(("1.2.3.4.5", 0, 0, 0, 0, _socket.AI_NUMERICHOST),
                 id="bad-dotted"),
    pytest.param((None, None), id="none-none"),
    pytest.param(("127.0.0.1", "no-such-service-xyz"), id="bad-service"),
    pytest.param(("127.0.0.1", -1), id="port-negative"),
    pytest.param(("127.0.0.1", 80.0), id="float-port"),
    pytest.param(("127.0.0.1", [80]), id="list-port"),
    pytest.param((12, 80), id="int-host"),
    pytest.param(("127.0.0.1", None, _socket.AF_INET6), id="family-mismatch"),
    pytest.param(("127.0.0.1", 80, 12345), id="bad-family"),
    pytest.param(("127.0.0.1", 80, 0, 0, 0, 0x7fff0000), id="bad-flags"),
    pytest.param(("127.0.0.1", 80, 0, 0, 0, 0, 9), id="too-many-args"),
    pytest.param(("127.0.0.1",), id="too-few-args"),
    pytest.param(("x" * 300, 0, 0, 0, 0, _socket.AI_NUMERICHOST),
                 id="label-too-long"),
]


@pytest.mark.parametrize("args", GAI_ERROR_CASES)
def test_getaddrinfo_errors_match_oracle(mod, args):
    result = assert_same(mod, lambda m: m.getaddrinfo(*args), message=False)
    assert result[0] == "raise"
    # the errno (for gaierror: the EAI_* code) must match as well
    if result[1] in ("gaierror", "OSError"):
        ref = outcome(_socket.getaddrinfo, *args)
        got = outcome(mod.getaddrinfo, *args)
        assert got == ref


def test_getaddrinfo_gaierror_is_module_class(mod):
    try:
        mod.getaddrinfo("127.0.0.1", "no-such-service-xyz")
    except mod.gaierror as exc:
        assert exc.errno == _socket.EAI_SERVICE
    else:
        pytest.fail("no gaierror")


# ---------------------------------------------------------------- helpers

HELPER_CASES = [
    ("htons", (1,)), ("htons", (0xABCD,)), ("ntohs", (0x0100,)),
    ("htonl", (1,)), ("ntohl", (0x01000000,)), ("htons", (-1,)),
    ("htons", (0x10000,)), ("htonl", (2 ** 32,)), ("htonl", (-1,)),
    ("inet_aton", ("127.0.0.1",)), ("inet_aton", ("1.2.3",)),
    ("inet_aton", ("300.1.1.1",)), ("inet_ntoa", (b"\x7f\x00\x00\x01",)),
    ("inet_ntoa", (b"\x7f",)),
    ("inet_pton", (_socket.AF_INET, "10.0.0.1")),
    ("inet_pton", (_socket.AF_INET6, "::1")),
    ("inet_pton", (_socket.AF_INET, "bogus")),
    ("inet_ntop", (_socket.AF_INET6, b"\x00" * 15 + b"\x01")),
    ("inet_ntop", (_socket.AF_INET, b"\x01\x02\x03\x04")),
    ("inet_ntop", (_socket.AF_INET, b"\x01\x02")),
    ("CMSG_LEN", (0,)), ("CMSG_LEN", (16,)), ("CMSG_SPACE", (4,)),
    ("CMSG_LEN", (-1,)),
    ("gethostbyname", ("127.0.0.1",)), ("gethostbyname", ("localhost",)),
    ("gethostbyname_ex", ("localhost",)),
    ("gethostbyaddr", ("127.0.0.1",)),
    ("getnameinfo", (("127.0.0.1", 80),
                     _socket.NI_NUMERICHOST | _socket.NI_NUMERICSERV)),
    ("getnameinfo", (("127.0.0.1", 80), _socket.NI_NUMERICHOST)),
    ("getnameinfo", (("127.0.0.1",), 0)),
    ("getservbyname", ("http", "tcp")), ("getservbyname", ("http",)),
    ("getservbyname", ("no-such-service-xyz", "tcp")),
    ("getservbyport", (80, "tcp")), ("getservbyport", (70000,)),
    ("getprotobyname", ("tcp",)), ("getprotobyname", ("no-such-proto",)),
    ("if_nametoindex", ("lo",)), ("if_indextoname", (1,)),
]


@pytest.mark.parametrize("name,args", HELPER_CASES,
                         ids=["%s%r" % c for c in HELPER_CASES])
def test_helper_functions_match_oracle(mod, name, args):
    def scenario(m):
        return getattr(m, name)(*args)
    assert_same(mod, scenario, message=False)


def test_gethostname_matches_oracle(mod):
    assert mod.gethostname() == _socket.gethostname()
    assert isinstance(mod.gethostname(), str)


@pytest.mark.parametrize("port", [2 ** 16, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 10 ** 30, True])
def test_getaddrinfo_int_port_of_any_size_matches_oracle(mod, port):
    # Up to 3.11 an int port has to fit a C long; from 3.12 its digits go
    # to getaddrinfo(3) whatever its size.
    def scenario(m):
        return sorted(_gai(m, "127.0.0.1", port, m.AF_INET, m.SOCK_STREAM))
    result = assert_same(mod, scenario)
    if sys.version_info < (3, 12) and abs(port) >= 2 ** 63:
        assert result[:2] == ("raise", "OverflowError")


@pytest.mark.parametrize("call", [
    "getaddrinfo('127.0.0.1', 1, flag=1)", "getaddrinfo('127.0.0.1', 1, hots=1)",
    "getaddrinfo('127.0.0.1', 1, xyz=1)", "getaddrinfo(**{'1': 2})", "getaddrinfo(1, 2, host=3)",
    "getaddrinfo('127.0.0.1', 1, 0, 0, 0, 0, 0)", "getaddrinfo(port=1)",
    "socket(famly=1)", "socket(-1, -1, -1, None, 5)", "socket(family=2, fileno=None, typ=1)",
])
def test_argument_errors_worded_as_the_interpreter_words_them(mod, call):
    # Unknown keywords: "'x' is an invalid keyword argument for f()" in 3.11,
    # "f() got an unexpected keyword argument 'x'. Did you mean 'y'?" in 3.13.
    result = assert_same(mod, lambda m: eval(call, {}, {"getaddrinfo": m.getaddrinfo, "socket": m.socket}))
    assert result[:2] == ("raise", "TypeError")


def test_recv_into_keyword_errors_match_oracle(mod, track):
    def scenario(m):
        a, b = m.socketpair()
        track(a), track(b)
        buffer = bytearray(4)
        return [sockutil.outcome(a.recv_into, buffer, nbyte=1),
                sockutil.outcome(a.recv_into, buffer, 1, nbytes=1),
                sockutil.outcome(a.recvfrom_into, buffer, flag=0)]
    result = assert_same(mod, scenario)
    assert [r[1] for r in result[1]] == ["TypeError"] * 3
