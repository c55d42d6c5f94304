"""Differential property-based tests: every ``_socket`` module function and
every socket method is called with generated arguments (ints at type
boundaries, bools, floats incl. nan/inf/-0.0, None, str with NUL, non-ASCII
and surrogates, bytes/bytearray/memoryview incl. read-only and
non-contiguous views, objects with ``__index__``/``__float__``, tuples and
lists of those, keyword arguments with valid and invalid names, arity 0-5),
on the stdlib ``_socket`` (the oracle) and on swiftsocket; both must give the
same outcome: the same return value (fds and ephemeral ports are replaced by
their role), the same contents of the buffers they were given, or the same
exception type, errno and message.

Safety rules kept by every generated call:

* no network: hosts are only numeric loopback (127.0.0.1, ::1), '' or
  'localhost' where /etc/hosts answers it (see ``_resolving_call_is_safe``
  and ``_address_is_safe``); any other host is filtered out before the call;
  ports are 0, junk or ports of the test's own sockets;
* nothing blocks: every socket under test has timeout 0 or 5 ms, and a
  socket left blocking by a call is set back to timeout 0 after it;
* no foreign fd is closed or adopted: an fd argument of close(), dup() and
  socket(fileno=) that could name an open fd is replaced by a fresh fd of the
  test's own; sethostname() is never called;
* AF_UNIX paths only in a fresh per-run temporary directory (no '/'), or
  abstract;
* every socket and fd is closed.

The heavier random-sequence tests are marked slow; SWIFTSOCKET_STRESS_SCALE
sizes them (as in test_stress.py).
"""

import errno
import fcntl
import math
import operator
import os
import re
import select
import tempfile
import termios
import time

import _socket as std

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sockutil

SCALE = max(0.01, float(os.environ.get("SWIFTSOCKET_STRESS_SCALE", "1.0")))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


def fuzz_settings(examples):
    return settings(
        max_examples=examples, deadline=None, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture,
                               HealthCheck.too_slow,
                               HealthCheck.filter_too_much,
                               HealthCheck.data_too_large])


# ================================================================ argument specs
#
# Hypothesis draws *specs*; each run materializes fresh objects from them, so
# both modules get equal but distinct (mutable) arguments.

class Buf:
    """A bytes-like argument: bytearray or a memoryview of several kinds."""
    KINDS = ("bytearray", "mv_rw", "mv_ro", "mv_rw_noncontig",
             "mv_ro_noncontig", "mv_2d", "mv_int")

    def __init__(self, kind, data):
        self.kind = kind
        self.data = bytes(data)

    def __repr__(self):
        return "Buf(%r, %r)" % (self.kind, self.data)

    def make(self, backings):
        data = self.data
        if self.kind == "bytearray":
            obj = bytearray(data)
            backings.append(obj)
            return obj
        if self.kind == "mv_ro":
            return memoryview(data)
        if self.kind == "mv_ro_noncontig":
            return memoryview(data)[::2]
        backing = bytearray(data)
        backings.append(backing)
        if self.kind == "mv_rw":
            return memoryview(backing)
        if self.kind == "mv_rw_noncontig":
            return memoryview(backing)[::2]
        if self.kind == "mv_2d":
            n = len(backing) // 2
            return memoryview(backing)[:2 * n].cast("B", (2, n)) if n else memoryview(backing)
        # mv_int: a multi-byte item format
        n = len(backing) // 4
        return memoryview(backing)[:4 * n].cast("i")


class IndexObj:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return "IndexObj(%r)" % (self.value,)


class BadIndexObj:
    def __index__(self):
        raise ValueError("bad __index__")

    def __repr__(self):
        return "BadIndexObj()"


class FloatObj:
    def __init__(self, value):
        self.value = value

    def __float__(self):
        return self.value

    def __repr__(self):
        return "FloatObj(%r)" % (self.value,)


class Idx:
    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return "Idx(%r)" % (self.value,)


class BadIdx:
    def __repr__(self):
        return "BadIdx()"


class Flt:
    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return "Flt(%r)" % (self.value,)


class Lst:
    def __init__(self, items):
        self.items = list(items)

    def __repr__(self):
        return "Lst(%r)" % (self.items,)


class Tok:
    """A value known only at run time: SELF / PEER (the test sockets'
    addresses), FRESH (a fresh fd owned by the test)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Tok(%s)" % self.name


class Ctx:
    """Per-run state: fixture addresses, fds/ports (replaced by role in
    results), fds to close, buffers to snapshot."""

    def __init__(self):
        self.addresses = {}
        self.roles = {}          # int value -> role name
        self.ports = set()
        self.fresh_fds = []
        self.backings = []
        self.cleanup = []

    def role(self, value, name):
        if isinstance(value, int) and not isinstance(value, bool):
            self.roles.setdefault(value, name)

    def fresh_fd(self):
        s = std.socket(std.AF_UNIX, std.SOCK_STREAM)
        fd = s.detach()
        self.fresh_fds.append(fd)
        self.role(fd, "FRESH_FD")
        return fd

    def close_fresh(self):
        while self.fresh_fds:
            fd = self.fresh_fds.pop()
            try:
                os.close(fd)
            except OSError as exc:
                assert exc.errno == errno.EBADF


def materialize(spec, ctx):
    if isinstance(spec, Buf):
        return spec.make(ctx.backings)
    if isinstance(spec, tuple):
        return tuple(materialize(s, ctx) for s in spec)
    if isinstance(spec, Lst):
        return [materialize(s, ctx) for s in spec.items]
    if isinstance(spec, Idx):
        return IndexObj(spec.value)
    if isinstance(spec, BadIdx):
        return BadIndexObj()
    if isinstance(spec, Flt):
        return FloatObj(spec.value)
    if isinstance(spec, Tok):
        if spec.name == "FRESH":
            return ctx.fresh_fd()
        return ctx.addresses.get(spec.name, ("127.0.0.1", 0))
    return spec


# ================================================================ strategies

BOUNDARY_INTS = [0, 1, -1, 2, 3, 4, 8, 16, 255, 256, 1024, 65535, 65536,
                 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32,
                 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64,
                 10**30, -10**30]
ints = st.one_of(st.sampled_from(BOUNDARY_INTS), st.integers(-3, 300))
floats = st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, 1e-9, 1e-320, 1e300,
                          2.0**63, float("nan"), float("inf"), float("-inf")])
texts = st.one_of(
    st.sampled_from(["", "a", "\xe9", "\u20ac", "\x00", "a\x00b", "\ud800",
                     "a\udcff", "lo", "tcp", "udp", "http", "127.0.0.1",
                     "::1", "1.2.3.4", "255.255.255.255", "0x7f.1",
                     "\x00abstract", "sock", "x" * 120]),
    st.text(max_size=8))
byteses = st.one_of(
    st.sampled_from([b"", b"\x00", b"\x7f\x00\x00\x01", b"\x00" * 16,
                     b"\x01\x00\x00\x00", b"127.0.0.1", b"lo", b"abc",
                     b"\x00abs", b"x" * 120, b"y" * 3000]),
    st.binary(max_size=20))
small_bytes = st.binary(max_size=24)
bufs = st.builds(Buf, st.sampled_from(Buf.KINDS), small_bytes)
leaf = st.one_of(
    ints, st.booleans(), floats, st.none(), texts, byteses, bufs,
    st.builds(Idx, ints), st.just(BadIdx()), st.builds(Flt, floats))
junk = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=3).map(Lst)),
    max_leaves=6)

KW_NAMES = ["host", "port", "family", "type", "proto", "flags", "fileno",
            "buffer", "nbytes", "bufsize", "ancbufsize", "address", "data",
            "x", "fd", "level", "option", "value", "how", "timeout", "flag",
            "backlog", "buflen", "name", "sockaddr", "foo", "", "\xe9"]


def oneof_sample(*values):
    return st.sampled_from(values)


def intlike(values):
    """Good integer values, as int or as an __index__ object."""
    base = st.sampled_from(values)
    return st.one_of(base, base, base.map(Idx))


S = std
AF = intlike([S.AF_INET, S.AF_INET6, S.AF_UNIX, S.AF_UNSPEC])
FLAGS_RECV = intlike([0, S.MSG_PEEK, S.MSG_DONTWAIT, S.MSG_OOB, S.MSG_TRUNC,
                      S.MSG_WAITALL, S.MSG_PEEK | S.MSG_TRUNC,
                      S.MSG_ERRQUEUE, S.MSG_CMSG_CLOEXEC])
FLAGS_SEND = intlike([0, S.MSG_DONTWAIT, S.MSG_NOSIGNAL, S.MSG_OOB,
                      S.MSG_MORE, S.MSG_EOR])
BUFSIZE = intlike([0, 1, 5, 100, 4096, -1, 2**31 - 1])
DATA = st.one_of(byteses, bufs)
ADDRESS = st.one_of(
    st.just(Tok("SELF")), st.just(Tok("PEER")), st.just(Tok("PEER")),
    st.sampled_from([("127.0.0.1", 0), ("", 0), ("127.0.0.1",),
                     ("127.0.0.1", 0, 0), ("::1", 0, 0, 0), ("::1", 0),
                     (b"127.0.0.1", 0), ("127.0.0.1", -1),
                     ("127.0.0.1", 65536), ("127.0.0.1", 2**31),
                     ("127.0.0.1", None), ("127.0.0.1\x00", 0),
                     "\x00fuzz-abstract", b"\x00fuzz-abstract", "sock",
                     b"sock", "", b"", "x" * 108, "x" * 107, b"\x00" + b"y" * 107,
                     "\xe9", "\udcff"]),
    st.builds(lambda h, p: (h, p), junk, junk))
FRESH = st.just(Tok("FRESH"))
TIMEOUT = st.one_of(
    st.sampled_from([None, 0, 0.0, -0.0, 0.001, 1, -1, 1e-10, 2**63,
                     10**20, float("nan"), float("inf"), 1e300]),
    st.builds(Flt, floats))
ANCDATA = st.one_of(
    st.just(Lst([])),
    st.builds(lambda l, t, d: Lst([(l, t, d)]),
              intlike([S.SOL_SOCKET, 0, -1]),
              intlike([S.SCM_RIGHTS, S.SCM_CREDENTIALS, 0, 99]),
              st.one_of(byteses, bufs)))

# name -> [(parameter name, good-value strategy)]
MODULE_FUNCTIONS = {
    "CMSG_LEN": [("length", intlike([0, 1, 4, 2**31 - 1, -1]))],
    "CMSG_SPACE": [("length", intlike([0, 1, 4, 2**31 - 1, -1]))],
    "close": [("fd", FRESH)],
    "dup": [("fd", FRESH)],
    "getaddrinfo": [
        ("host", oneof_sample(None, "127.0.0.1", "::1", "localhost",
                              b"127.0.0.1", "", "not-numeric.invalid",
                              "127.0.0.1\x00", "\udcff")),
        ("port", oneof_sample(None, 0, 80, "80", "http", b"80", "nope",
                              65536, -1, "", "\udcff")),
        ("family", AF), ("type", intlike([0, 1, 2, 3, 99])),
        ("proto", intlike([0, 6, 17, 999])),
        ("flags", intlike([0, S.AI_NUMERICHOST, S.AI_PASSIVE,
                           S.AI_CANONNAME | S.AI_NUMERICHOST,
                           S.AI_NUMERICSERV, S.AI_V4MAPPED | S.AI_ALL,
                           S.AI_ADDRCONFIG, -1]))],
    "getdefaulttimeout": [],
    "gethostbyaddr": [("host", oneof_sample("127.0.0.1", b"127.0.0.1",
                                            bytearray(b"127.0.0.1")))],
    "gethostbyname": [("host", oneof_sample("127.0.0.1", "localhost", "",
                                            b"127.0.0.1", "127.0.0.1\x00"))],
    "gethostbyname_ex": [("host", oneof_sample("127.0.0.1", "localhost",
                                               b"localhost"))],
    "gethostname": [],
    "getnameinfo": [
        ("sockaddr", st.one_of(
            oneof_sample(("127.0.0.1", 80), ("::1", 80, 0, 0), ("127.0.0.1",),
                         ("127.0.0.1", 80, 0), ("127.0.0.1", 0),
                         ("127.0.0.1", 65536), ("::1", 80, 2**32, 0),
                         ("::1", 80, 0, 2**32), ("::1", 80, -1, 0),
                         ("127.0.0.1", "80"), (b"127.0.0.1", 80),
                         ("1.2.3.4", 80), ["127.0.0.1", 80]),
            st.builds(lambda h, p: (h, p), junk, junk))),
        ("flags", intlike([0, S.NI_NUMERICHOST, S.NI_NUMERICSERV,
                           S.NI_NUMERICHOST | S.NI_NUMERICSERV,
                           S.NI_NAMEREQD | S.NI_NUMERICHOST, S.NI_DGRAM,
                           -1]))],
    "getprotobyname": [("name", oneof_sample("tcp", "udp", "icmp", "nope",
                                             "TCP", "t\x00cp"))],
    "getservbyname": [("servicename", oneof_sample("http", "ssh", "nope",
                                                   "ht\x00tp")),
                      ("protocolname", oneof_sample("tcp", "udp", None,
                                                    "nope"))],
    "getservbyport": [("port", intlike([80, 22, 0, 65535, 65536, -1])),
                      ("protocolname", oneof_sample("tcp", "udp", "nope"))],
    "htonl": [("x", ints)], "htons": [("x", ints)],
    "ntohl": [("x", ints)], "ntohs": [("x", ints)],
    "if_indextoname": [("index", intlike([0, 1, 2, 99, -1, 2**32]))],
    "if_nameindex": [],
    "if_nametoindex": [("name", oneof_sample("lo", "nope", b"lo", "l\x00o",
                                             "x" * 20))],
    "inet_aton": [("string", oneof_sample(
        "127.0.0.1", "1.2.3.4", "1", "0x7f.1", "256.1.1.1", "1.2.3.4.5",
        " 1.2.3.4", "1.2.3.4 junk", "", "\xe9"))],
    "inet_ntoa": [("packed", st.one_of(
        oneof_sample(b"\x7f\x00\x00\x01", b"abc", b"abcde"), bufs))],
    "inet_ntop": [("af", AF), ("packed", st.one_of(
        oneof_sample(b"\x7f\x00\x00\x01", b"\x00" * 16, b"\x00" * 15,
                     b"abcde"), bufs))],
    "inet_pton": [("af", AF), ("ip", oneof_sample(
        "127.0.0.1", "::1", "::ffff:1.2.3.4", "1.2.3", "::g", "",
        "1.2.3.4\x00", "\xe9"))],
    "setdefaulttimeout": [("timeout", TIMEOUT)],
    "socket": [("family", intlike([S.AF_INET, S.AF_INET6, S.AF_UNIX, -1,
                                   S.AF_NETLINK, 99])),
               ("type", intlike([S.SOCK_STREAM, S.SOCK_DGRAM, S.SOCK_RAW,
                                 S.SOCK_SEQPACKET,
                                 S.SOCK_STREAM | S.SOCK_NONBLOCK,
                                 S.SOCK_DGRAM | S.SOCK_CLOEXEC, -1, 99])),
               ("proto", intlike([0, 6, 17, -1])),
               ("fileno", st.one_of(FRESH, st.none()))],
    "socketpair": [("family", intlike([S.AF_UNIX, S.AF_INET, -1])),
                   ("type", intlike([S.SOCK_STREAM, S.SOCK_DGRAM,
                                     S.SOCK_SEQPACKET, -1])),
                   ("proto", intlike([0, 6, -1]))],
}

METHODS = {
    "_accept": [], "close": [], "detach": [], "fileno": [],
    "getblocking": [], "gettimeout": [], "getpeername": [],
    "getsockname": [],
    "bind": [("address", ADDRESS)],
    "connect": [("address", ADDRESS)],
    "connect_ex": [("address", ADDRESS)],
    "listen": [("backlog", intlike([0, 1, 128, -1, 2**31]))],
    "recv": [("bufsize", BUFSIZE), ("flags", FLAGS_RECV)],
    "recv_into": [("buffer", bufs), ("nbytes", intlike([0, 1, 4, 100, -1])),
                  ("flags", FLAGS_RECV)],
    "recvfrom": [("bufsize", BUFSIZE), ("flags", FLAGS_RECV)],
    "recvfrom_into": [("buffer", bufs),
                      ("nbytes", intlike([0, 1, 4, 100, -1])),
                      ("flags", FLAGS_RECV)],
    "recvmsg": [("bufsize", BUFSIZE),
                ("ancbufsize", intlike([0, 1, 64, 1024, -1, 2**31])),
                ("flags", FLAGS_RECV)],
    "recvmsg_into": [("buffers", st.one_of(st.lists(bufs, max_size=3).map(Lst),
                                           st.lists(bufs, max_size=3).map(tuple))),
                     ("ancbufsize", intlike([0, 1, 64, 1024, -1])),
                     ("flags", FLAGS_RECV)],
    "send": [("data", DATA), ("flags", FLAGS_SEND)],
    "sendall": [("data", DATA), ("flags", FLAGS_SEND)],
    "sendto": [("data", DATA), ("flags", st.one_of(FLAGS_SEND, ADDRESS)),
               ("address", ADDRESS)],
    "sendmsg": [("buffers", st.one_of(st.lists(DATA, max_size=3).map(Lst),
                                      st.lists(DATA, max_size=3).map(tuple))),
                ("ancdata", ANCDATA), ("flags", FLAGS_SEND),
                ("address", st.one_of(ADDRESS, st.none()))],
    "setblocking": [("flag", oneof_sample(True, False, 0, 1, None, 2**64,
                                          0.0))],
    "settimeout": [("value", TIMEOUT)],
    "getsockopt": [("level", intlike([S.SOL_SOCKET, S.IPPROTO_TCP,
                                      S.IPPROTO_IP, S.IPPROTO_IPV6, 0, -1])),
                   ("option", intlike([S.SO_TYPE, S.SO_ERROR, S.SO_RCVBUF,
                                       S.SO_REUSEADDR, S.TCP_NODELAY,
                                       S.SO_LINGER, S.SO_PEERCRED,
                                       S.SO_DOMAIN, S.SO_PROTOCOL,
                                       S.SO_ACCEPTCONN, 0, 9999])),
                   ("buflen", intlike([0, 1, 4, 8, 16, 1024, 1025, -1]))],
    "setsockopt": [("level", intlike([S.SOL_SOCKET, S.IPPROTO_TCP,
                                      S.IPPROTO_IP, 0, -1])),
                   ("option", intlike([S.SO_REUSEADDR, S.SO_RCVBUF,
                                       S.SO_KEEPALIVE, S.TCP_NODELAY,
                                       S.SO_LINGER, S.IP_TTL, 0, 9999])),
                   ("value", st.one_of(
                       intlike([0, 1, -1, 2**31, 2**32, 65536]),
                       oneof_sample(b"\x01\x00\x00\x00", b"", b"\x00" * 8,
                                    None, "x"), bufs)),
                   ("optlen", intlike([0, 4, 8, -1, 2**32]))],
    "shutdown": [("how", intlike([0, 1, 2, 3, -1]))],
    # properties, read through getattr
    "family": None, "type": None, "proto": None, "timeout": None,
}

FIXTURES = ["unix_stream", "unix_dgram", "udp", "udp_connected", "tcp",
            "tcp_fresh", "listener"]


@st.composite
def call_strategy(draw, name, params):
    """(name, positional specs, keyword specs) for one call."""
    if params is None:                       # a property
        return (name, None, None)
    arity = draw(st.one_of(st.just(len(params)), st.integers(0, 5)))
    args = []
    for i in range(arity):
        if i < len(params):
            args.append(draw(st.one_of(params[i][1], params[i][1], junk)))
        else:
            args.append(draw(junk))
    kwargs = {}
    if draw(st.integers(0, 3)) == 0:
        names = [p[0] for p in params]
        for _ in range(draw(st.integers(1, 2))):
            kw = draw(st.sampled_from(names + KW_NAMES) if names
                      else st.sampled_from(KW_NAMES))
            good = dict(params).get(kw)
            kwargs[kw] = draw(st.one_of(good, junk) if good is not None
                              else junk)
    return (name, tuple(args), kwargs)


# ================================================================ safety checks

def _index_value(value):
    """The int an argument converts to through __index__, or None."""
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    try:
        return operator.index(value)
    except Exception:
        return None


def _c_string(value):
    """The C string a str/bytes-like argument would become, or None."""
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, memoryview):
        data = value.tobytes()
    else:
        return None
    return data.split(b"\x00")[0]


def _arg(args, kwargs, position, name):
    if len(args) > position:
        return args[position]
    return kwargs.get(name)


def _resolving_call_is_safe(name, args, kwargs):
    """No DNS: hosts are numeric loopback, or resolved by /etc/hosts."""
    if name == "getaddrinfo":
        host = _c_string(_arg(args, kwargs, 0, "host"))
        if host is None:
            return True
        flags = _index_value(_arg(args, kwargs, 5, "flags"))
        if flags is not None and flags & std.AI_NUMERICHOST:
            return True
        family = _arg(args, kwargs, 2, "family")
        family = 0 if family is None else _index_value(family)
        if host == b"127.0.0.1":
            return family in (std.AF_UNSPEC, std.AF_INET)
        if host == b"::1":
            return family in (std.AF_UNSPEC, std.AF_INET6)
        if host == b"localhost":    # in /etc/hosts for IPv4 only
            return family == std.AF_INET
        return False
    if name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        safe = {"gethostbyname": (b"127.0.0.1", b"localhost", b""),
                "gethostbyname_ex": (b"127.0.0.1", b"localhost"),
                "gethostbyaddr": (b"127.0.0.1",)}[name]
        values = list(args) + list(kwargs.values())
        return all(_c_string(v) is None or _c_string(v) in safe
                   for v in values)
    if name == "getnameinfo":
        flags = _index_value(_arg(args, kwargs, 1, "flags"))
        if flags is not None and flags & std.NI_NUMERICHOST:
            return True
        values = list(args) + list(kwargs.values())
        for v in values:
            if isinstance(v, (tuple, list)) and v:
                h = _c_string(v[0])
                if h is not None and h != b"127.0.0.1":
                    return False
        return True
    return True


def _address_is_safe(value, family, ports):
    if isinstance(value, (tuple, list)):
        if not value:
            return True
        host = _c_string(value[0])
        if host is None:
            return True
        allowed = (b"127.0.0.1", b"") if family != std.AF_INET6 else (b"::1", b"")
        if host not in allowed:
            return False
        if len(value) > 1:
            port = _index_value(value[1])
            if port is not None and 0 < port <= 65535 and port not in ports:
                return False
        return True
    path = _c_string(value)
    if path is None:
        return True
    full = value.encode("utf-8", "surrogatepass") if isinstance(value, str) \
        else bytes(value)
    return b"/" not in full


ADDRESS_METHODS = {"bind", "connect", "connect_ex", "sendto", "sendmsg"}


def _method_call_is_safe(name, args, kwargs, sock_family, ports):
    if name in ADDRESS_METHODS:
        for v in list(args) + list(kwargs.values()):
            if not _address_is_safe(v, sock_family, ports):
                return False
    if name == "setsockopt":
        level = _index_value(_arg(args, kwargs, 0, "level"))
        option = _index_value(_arg(args, kwargs, 1, "option"))
        if level == std.SOL_SOCKET and option == std.SO_BINDTODEVICE:
            return False
    return True


def _sanitize_fd_argument(name, args, kwargs, ctx):
    """close(), dup(), socket(fileno=): an fd that could be open is replaced
    by a fresh one of ours (keeping the int / __index__ / float kind)."""
    position, kw = {"close": (0, "fd"), "dup": (0, "fd"),
                    "socket": (3, "fileno")}[name]

    def fix(value):
        if isinstance(value, BadIndexObj) or value is None:
            return value
        number = _index_value(value)
        if number is None or number < 0 or number >= 2**32:
            return value
        fd = ctx.fresh_fd()
        if isinstance(value, IndexObj):
            return IndexObj(fd)
        if isinstance(value, float):
            return float(fd)
        return fd
    args = list(args)
    if len(args) > position:
        args[position] = fix(args[position])
    if kw in kwargs:
        kwargs = dict(kwargs, **{kw: fix(kwargs[kw])})
    return tuple(args), kwargs


# ================================================================ outcomes

def _is_socket(value):
    return isinstance(value, std.socket) or type(value).__name__ == "socket"


def normalize(value, ctx):
    """A comparable form of a result; sockets in it are closed."""
    if _is_socket(value):
        try:
            desc = ("<socket>", value.family, value.type, value.proto,
                    value.gettimeout())
        finally:
            value.close()
        return desc
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return ctx.roles.get(value, value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, tuple):
        return tuple(normalize(v, ctx) for v in value)
    if isinstance(value, list):
        return [normalize(v, ctx) for v in value]
    if isinstance(value, (bytes, bytearray, str)):
        return value
    return ("other", type(value).__name__, repr(value))


def exc_outcome(exc):
    return ("raise", type(exc).__name__, getattr(exc, "errno", None),
            str(exc))


def shape(value):
    """Type and size only: for values the stdlib itself does not repeat."""
    if isinstance(value, (tuple, list)):
        if value and value[0] == "raise":
            return value[:3]
        return (type(value).__name__, tuple(shape(v) for v in value))
    if isinstance(value, (bytes, bytearray, str)):
        return (type(value).__name__, len(value))
    return type(value).__name__


# ================================================================ fixtures

def _wait_readable(fd, nbytes=None, limit=2.0):
    """Until fd is readable (and has nbytes queued, if given)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            if nbytes is None:
                return
            queued = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            if int.from_bytes(queued, "little") >= nbytes:
                return


def build_fixture(module, kind, preload, timeout, ctx):
    """The socket under test (of ``module``); peers are stdlib sockets.
    Registers everything in ctx.cleanup."""
    def keep(s):
        ctx.cleanup.append(s)
        return s

    peer = None
    if kind in ("unix_stream", "unix_dgram"):
        stype = std.SOCK_STREAM if kind == "unix_stream" else std.SOCK_DGRAM
        a, b = std.socketpair(std.AF_UNIX, stype)
        peer = keep(b)
        keep(a)
        sock = keep(sockutil.adopt(module, None, a.detach(), std.AF_UNIX,
                                   stype, 0))
    elif kind in ("udp", "udp_connected"):
        peer = keep(std.socket(std.AF_INET, std.SOCK_DGRAM))
        peer.bind(("127.0.0.1", 0))
        sock = keep(module.socket(std.AF_INET, std.SOCK_DGRAM))
        sock.bind(("127.0.0.1", 0))
        if kind == "udp_connected":
            sock.connect(peer.getsockname())
    elif kind == "tcp":
        lsock = keep(sockutil.listener(std, keep))
        sock = keep(module.socket(std.AF_INET, std.SOCK_STREAM))
        sock.settimeout(sockutil.IO_TIMEOUT)
        sock.connect(lsock.getsockname())
        peer, _ = sockutil.accept_std(lsock, keep)
        ctx.role(lsock.getsockname()[1], "PORT_LISTENER")
        ctx.ports.add(lsock.getsockname()[1])
    elif kind == "tcp_fresh":
        lsock = keep(sockutil.listener(std, keep))
        ctx.addresses["PEER"] = lsock.getsockname()
        ctx.role(lsock.fileno(), "FD_LISTENER")
        sock = keep(module.socket(std.AF_INET, std.SOCK_STREAM))
    elif kind == "listener":
        sock = keep(sockutil.listener(module, keep))
        if preload:
            peer = keep(std.socket(std.AF_INET, std.SOCK_STREAM))
            peer.settimeout(sockutil.IO_TIMEOUT)
            peer.connect(sock.getsockname())
            _wait_readable(sock.fileno())
    else:
        raise AssertionError(kind)
    sock.settimeout(timeout)
    ctx.role(sock.fileno(), "FD_SOCK")
    if peer is not None:
        ctx.role(peer.fileno(), "FD_PEER")
    for role, s in (("SELF", sock), ("PEER", peer)):
        if s is None or s.family != std.AF_INET:
            if s is not None:
                ctx.addresses.setdefault(role, s.getsockname())
            continue
        addr = s.getsockname()
        ctx.addresses.setdefault(role, addr)
        ctx.ports.add(addr[1])
        ctx.role(addr[1], "PORT_" + role)
        try:
            paddr = s.getpeername()
        except OSError:
            continue
        ctx.ports.add(paddr[1])
        ctx.role(paddr[1], "PORT_" + role + "_REMOTE")
    ctx.sock_family = sock.family
    # Peer sends first, then we wait until it has arrived, so that a
    # non-blocking receive finds it on every run.
    if preload and peer is not None and kind != "listener":
        if kind in ("udp", "udp_connected"):
            peer.sendto(preload, sock.getsockname())
        else:
            peer.send(preload)
        _wait_readable(sock.fileno(), len(preload))
    elif preload is None and peer is not None and kind in ("unix_stream", "tcp"):
        peer.shutdown(std.SHUT_WR)
        _wait_readable(sock.fileno())
    return sock


def _close_all(ctx):
    while ctx.cleanup:
        s = ctx.cleanup.pop()
        try:
            s.close()
        except OSError:
            pass
    ctx.close_fresh()


# ================================================================ running

INVALID_KEYWORD = re.compile(
    r"^(?:'(.*)' is an invalid keyword argument for "            # 3.11
    r"|.*\(\) got an unexpected keyword argument '([^']*)'"       # 3.13
    r"|argument for .*\(\) given by name \('(.*)'\) and position)")


def _call(fn, name, args_spec, kwargs_spec, ctx, check):
    """Materializes and makes one call; returns its normalized outcome."""
    del ctx.backings[:]
    args = materialize(args_spec, ctx)
    kwargs = {k: materialize(v, ctx) for k, v in kwargs_spec.items()}
    if name in ("close", "dup", "socket"):
        args, kwargs = _sanitize_fd_argument(name, args, kwargs, ctx)
    assume(check(name, args, kwargs))
    try:
        result = ("ok", normalize(fn(*args, **kwargs), ctx))
    except Exception as exc:
        result = exc_outcome(exc)
    snapshot = tuple(bytes(b) for b in ctx.backings)
    return (result, snapshot)


def run_module_call(module, call):
    name, args_spec, kwargs_spec = call
    ctx = Ctx()
    try:
        out = _call(getattr(module, name), name, args_spec, kwargs_spec, ctx,
                    _resolving_call_is_safe)
        return [out]
    finally:
        if name == "setdefaulttimeout":
            module.setdefaulttimeout(None)
        _close_all(ctx)


def run_program(module, program):
    kind, preload, timeout, calls = program
    ctx = Ctx()
    old_cwd = os.getcwd()
    trace = []
    with tempfile.TemporaryDirectory(prefix="swiftsocket-fuzz-") as tmp:
        os.chdir(tmp)
        try:
            sock = build_fixture(module, kind, preload, timeout, ctx)
            proxy = _SocketProxy(sock)
            for name, args_spec, kwargs_spec in calls:
                if args_spec is None:
                    try:
                        trace.append(((
                            "ok", normalize(getattr(sock, name), ctx)), ()))
                    except Exception as exc:
                        trace.append((exc_outcome(exc), ()))
                    continue

                def check(n, a, k):
                    return _method_call_is_safe(n, a, k, ctx.sock_family,
                                                ctx.ports)
                trace.append(_call(getattr(proxy, name), name, args_spec,
                                   kwargs_spec, ctx, check))
                # Never leave the socket blocking (or with a long timeout).
                try:
                    t = sock.gettimeout()
                    if t is None or t > 0.01:
                        sock.settimeout(0.0)
                except OSError:
                    pass
        finally:
            os.chdir(old_cwd)
            _close_all(ctx)
    return trace


def known_difference(call, std_out, swift_out):
    """Accepted differences (see the task's list): True to stop comparing."""
    name, args, kwargs = call
    (s_res, _), (w_res, _) = std_out, swift_out
    # (1) A call with both an invalid keyword name and a badly typed
    # argument: CPython reports the conversion error first, swiftsocket the
    # invalid keyword.  The same ordering holds for a keyword that repeats a
    # positional argument ("given by name ... and position"): swiftsocket
    # checks keywords before converting, CPython converts first.
    if (kwargs and w_res[0] == "raise" and w_res[1] == "TypeError"
            and s_res[0] == "raise"):
        m = INVALID_KEYWORD.match(w_res[3])
        if m and (m.group(1) or m.group(2) or m.group(3)) in kwargs:
            return True
    # (2) (a non-blocking socket whose fd was made blocking behind its back)
    # cannot arise here: no test fd is shared with another object.
    # (3) The data-path methods are METH_FASTCALL in swiftsocket (no argument
    # tuple per call) and METH_VARARGS in CPython: keywords passed through a
    # bound method object are refused with the same TypeError, which CPython
    # words "recv() takes ..." and swiftsocket "socket.recv() takes ...".
    if (kwargs and name in FASTCALL_DATA_PATH and s_res[:2] == w_res[:2] == ("raise", "TypeError")
            and s_res[3] == "%s() takes no keyword arguments" % name
            and w_res[3] == "socket.%s() takes no keyword arguments" % name):
        return True
    # (4) On a stream socket Linux's MSG_TRUNC (tcp(7)) receives without
    # copying: recv, recvfrom and recvmsg return bytes of the right length
    # holding whatever the memory they were allocated from held, in CPython
    # as in swiftsocket. Only their shape can be compared.
    if name in ALLOCATING_RECV:
        flags = _spec_int(_arg(args, kwargs, ALLOCATING_RECV[name], "flags"))
        if flags is not None and flags & std.MSG_TRUNC and shape(s_res) == shape(w_res):
            return True
    return False


FASTCALL_DATA_PATH = {"recv", "recvfrom", "send", "sendall", "sendto"}

# The receiving methods that allocate the buffer they return, and where
# their flags argument sits.
ALLOCATING_RECV = {"recv": 1, "recvfrom": 1, "recvmsg": 2}


def _spec_int(spec):
    """The int an argument spec stands for (a plain int or Idx), or None."""
    if isinstance(spec, Idx):
        spec = spec.value
    return spec if isinstance(spec, int) and not isinstance(spec, bool) else None


def compare(runner, program, calls):
    """Runs program on both modules (and the stdlib again when they
    differ, to tell volatile values from differences)."""
    swift, _ = sockutil.try_import_swiftsocket()
    assert swift is not None, "cannot import swiftsocket"
    expected = runner(std, program)
    actual = runner(swift, program)
    if expected == actual:
        return
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a and known_difference(calls[i], e, a):
            expected, actual = expected[:i], actual[:i]
            break
    if expected == actual:
        return
    again = runner(std, program)
    if again != expected:
        # The stdlib does not repeat itself (cookies, TCP_INFO, ...):
        # compare types and sizes only.
        assert shape(actual) == shape(expected), (
            "differs from the stdlib (shape):\n  stdlib: %r\n  swift:  %r"
            % (expected, actual))
        return
    assert actual == expected, (
        "swiftsocket differs from the stdlib:\n  stdlib: %r\n  swift:  %r"
        % (expected, actual))


# ================================================================ tests

# Functions handing out new fds that the test must close afterwards.

def _fd_results(module, name):
    """module.<name> wrapped so that an fd it returns is closed."""
    fn = getattr(module, name)
    if name != "dup":
        return fn

    def dup(*args, **kwargs):
        fd = fn(*args, **kwargs)
        os.close(fd)
        return fd
    return dup


class _ModuleProxy:
    """Module attribute access with fd-returning functions wrapped."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        return _fd_results(self.module, name)


def module_runner(module, call):
    return run_module_call(_ModuleProxy(module), call)


class _SocketProxy:
    def __init__(self, sock):
        self.sock = sock

    def __getattr__(self, name):
        attr = getattr(self.sock, name)
        if name == "detach":
            def detach(*args, **kwargs):
                fd = attr(*args, **kwargs)
                if fd >= 0:
                    os.close(fd)
                return fd
            return detach
        if name == "_accept":
            def accept(*args, **kwargs):
                fd, addr = attr(*args, **kwargs)
                os.close(fd)
                return fd, addr
            return accept
        return attr


@pytest.mark.parametrize("name", sorted(MODULE_FUNCTIONS))
@fuzz_settings(40)
@given(data=st.data())
def test_module_function(name, data):
    call = data.draw(call_strategy(name, MODULE_FUNCTIONS[name]), label="call")
    compare(module_runner, call, [call])


PRELOAD = st.one_of(st.just(b""), st.just(None), st.binary(min_size=1, max_size=64))


def program_strategy(first, fixtures=FIXTURES, extra=2):
    """(fixture kind, preload, timeout, calls): the first call is ``first``,
    then up to ``extra`` calls of any method."""
    def build(kind, preload, timeout, head, tail):
        return (kind, preload, timeout, [head] + tail)
    any_call = st.sampled_from(sorted(METHODS)).flatmap(
        lambda n: call_strategy(n, METHODS[n]))
    return st.builds(build, st.sampled_from(fixtures), PRELOAD,
                     st.sampled_from([0.0, 0.005]),
                     call_strategy(first, METHODS[first]),
                     st.lists(any_call, max_size=extra))


@pytest.mark.parametrize("name", sorted(METHODS))
@fuzz_settings(30)
@given(data=st.data())
def test_socket_method(name, data):
    program = data.draw(program_strategy(name, extra=1), label="program")
    compare(run_program, program, program[3])


@pytest.mark.slow
@pytest.mark.parametrize("fixture", FIXTURES)
@fuzz_settings(scaled(150))
@given(data=st.data())
def test_socket_method_sequences(fixture, data):
    first = data.draw(st.sampled_from(sorted(METHODS)), label="first")
    program = data.draw(program_strategy(first, fixtures=[fixture], extra=4),
                        label="program")
    compare(run_program, program, program[3])


@pytest.mark.slow
@fuzz_settings(scaled(600))
@given(data=st.data())
def test_module_functions_more(data):
    name = data.draw(st.sampled_from(sorted(MODULE_FUNCTIONS)), label="name")
    call = data.draw(call_strategy(name, MODULE_FUNCTIONS[name]), label="call")
    compare(module_runner, call, [call])
