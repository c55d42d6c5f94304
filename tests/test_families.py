"""Address families beyond AF_INET/AF_INET6/AF_UNIX: AF_NETLINK, AF_VSOCK,
AF_QIPCRTR, AF_PACKET, AF_CAN (raw/BCM, ISO-TP, J1939), AF_TIPC, AF_ALG,
AF_RDS, and families CPython does not know ("bad family").

Parsing is tested on every family, supported here or not: a socket object
of the family under test is built around an AF_UNIX datagram fd
(``socket(family, type, proto, fileno=fd)`` takes the family as given), so
bind/connect/sendto parse the address with that family's rules and, when
parsing succeeds, the kernel rejects the foreign sockaddr (EINVAL): nothing
can reach a network. Real sockets are used where this machine has the
family (socket creation is tried first, on both modules alike): netlink
messages go between two NETLINK_USERSOCK sockets of this process, AF_PACKET
only binds to "lo" and only receives, AF_VSOCK only binds to
VMADDR_CID_ANY and never connects.
"""

import errno
import os
import time

import _socket

import pytest

import sockutil
from sockutil import LOOPBACK4, assert_same, outcome

std = _socket

NETLINK_USERSOCK = 2
ETH_P_IP = 0x0800
ARPHRD_LOOPBACK = 772
AF_UNKNOWN = [15, 31, 44]   # AF_KEY, AF_BLUETOOTH (not in this build), AF_XDP


# ---------------------------------------------------------------- helpers

def wrapped(module, family, proto=0, type=None, base=None):
    """A ``module`` socket claiming ``family`` around a fresh AF_UNIX fd
    (a dup of ``base``'s fd when given). Non-blocking."""
    if base is not None:
        fd = os.dup(base.fileno())
    else:
        b = std.socket(std.AF_UNIX, std.SOCK_DGRAM)
        fd = b.detach()
    if type is None:
        type = std.SOCK_DGRAM
    s = sockutil.adopt(module, None, fd, family, type, proto)
    s.setblocking(False)
    return s


def call_wrapped(module, family, method, address, proto=0):
    s = wrapped(module, family, proto)
    try:
        if method == "sendto":
            return s.sendto(b"x", address)
        if method == "sendto3":
            return s.sendto(b"x", 0, address)
        if method == "sendmsg":
            return s.sendmsg([b"x"], [], 0, address)
        return getattr(s, method)(address)
    finally:
        s.close()


def creatable(family, type, proto=0):
    """Whether this machine makes sockets of the family; both modules must
    agree on the outcome."""
    def make(module):
        s = module.socket(family, type, proto)
        s.close()
        return True
    result = assert_same(sockutil.try_import_swiftsocket()[0] or std, make)
    return result[0] == "ok"


def require(family, type, proto=0):
    if not creatable(family, type, proto):
        pytest.skip("family %d type %d proto %d not supported here"
                    % (family, type, proto))


class FsPath:
    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


METHODS = ["bind", "connect", "connect_ex", "sendto", "sendto3", "sendmsg"]


# ---------------------------------------------------------------- parsing

NETLINK_ADDRESSES = [
    5, "x", None, [0, 0], (), (1,), (1, 2, 3), ("a", 2), (1, "b"),
    (1.5, 2), (1, 2.5), (None, 0), (-1, 0), (2 ** 32, 0), (2 ** 64 + 3, 1),
    (0, -1), (0, 0), (True, False), (10 ** 30, 0),
]

PAIR_ADDRESSES = [   # AF_QIPCRTR (node, port), AF_VSOCK (cid, port)
    5, "x", [1, 2], (), (1,), (1, 2, 3), ("a", 1), (1, "b"), (1.0, 2),
    (-1, 1), (1, 2 ** 33), (2 ** 64, 0), (0xFFFFFFFF, 0xFFFFFFFF),
]

PACKET_ADDRESSES = [
    5, "lo", ["lo", 0], (), ("lo",), (b"lo", 0), (bytearray(b"lo"), 0),
    (5, 0), ("lo", "0"), ("lo", 1.5), ("lo", None),
    ("lo", 0x10000), ("lo", -1), ("lo", 2 ** 31), ("lo", -2 ** 31 - 1),
    ("lo", 2 ** 70), ("lo", 1, 2 ** 31), ("lo", 1, 0, 2 ** 40),
    ("lo", 1, "x"), ("lo", 1, 0, 0, b"123456789"), ("lo", 1, 0, 0, b"12345678"),
    ("lo", 1, 0, 0, bytearray(b"ab")), ("lo", 1, 0, 0, memoryview(b"abc")),
    ("lo", 1, 0, 0, "str"), ("lo", 1, 0, 0, 5), ("lo", 1, 0, 0, None),
    ("lo", 1, -1, -1, b""), ("lo", 1, 2, 3, b"", 6),
    ("nonexistent0", 1), ("nonexistent0", 0x10000),
    ("nonexistent0", 1, 0, 0, b"123456789"),
    ("x" * 20, 1), ("lo\0x", 1), ("\udcff", 1), ("", 0), ("lo", 0),
    ("lo", ETH_P_IP, 4, ARPHRD_LOOPBACK, b"\0" * 6),
]

CAN_RAW_ADDRESSES = [
    5, "lo", ["lo"], (), ("lo",), ("",), (b"",), (bytearray(b""),),
    (FsPath(""),), (FsPath(b"x" * 16),), ("x" * 15,), ("x" * 16,),
    (b"y" * 40,), ("nonexistent0",), ("lo", 1), (5,), (None,),
    ("a\0b",), (b"a\0b",), ("\udcff",),
]

CAN_ISOTP_ADDRESSES = [
    5, "lo", [1, 2, 3], (), ("lo",), ("", 1), ("", 1, 2, 3),
    ("", 1, 2), ("lo", 1, 2), ("nonexistent0", 1, 2), ("x" * 16, 1, 2),
    ("", 1.0, 2), ("", 1, 2.0), ("", "1", 2), ("", -1, 2 ** 40),
    ("", True, 2), (5, 1, 2), (b"", 2 ** 65, 0), (FsPath("lo"), 1, 2),
]

CAN_J1939_ADDRESSES = [
    5, (), ("",), ("", 1, 2), ("", 1, 2, 3, 4),
    ("", 1, 2, 3), ("lo", 1, 2, 3), ("nonexistent0", 1, 2, 3),
    ("x" * 16, 1, 2, 3), ("", 1.5, 2, 3), ("", 1, 2.5, 3), ("", 1, 2, 3.5),
    ("", 2 ** 64, 2, 3), ("", -1, -1, -1), ("", 1, 2, 300), ("", "1", 2, 3),
    (5, 1, 2, 3), (b"", 1, 2 ** 40, 2 ** 9),
]

TIPC_ADDRESSES = [
    5, [1, 2, 3, 4], (), (1, 2, 3), (1, 2, 3, 4, 5, 6),
    (1, 2, 3, 4), (2, 1, 2, 3), (3, 1, 2, 3), (1, 2, 3, 4, 5), (2, 1, 2, 3, -1),
    (0, 2, 3, 4), (4, 2, 3, 4), (9, 2, 3, 4), (2 ** 32 + 1, 1, 2, 3),
    ("a", 2, 3, 4), (1, 2.0, 3, 4), (1, 2, 3, None),
]

ALG_ADDRESSES = [
    5, ["hash", "sha256"], (), ("hash",), ("hash", "sha256", 1, 2, 3),
    ("hash", "sha256"), ("hash", "sha256", 1), ("hash", "sha256", 1, 2),
    ("hash", "sha256", -1, 2 ** 40), ("hash", "sha256", 1.0),
    ("hash", "x" * 63), ("hash", "x" * 64), ("h" * 13, "x"), ("h" * 14, "x"),
    ("h" * 14, "x" * 64), (b"hash", "sha256"), ("hash", b"sha256"),
    ("a\0b", "x"), ("hash", "\udcff"), ("hásh", "é" * 32), ("hásh", "é" * 31),
]

RDS_ADDRESSES = [
    5, (LOOPBACK4, 5), (LOOPBACK4,), (LOOPBACK4, 70000), (LOOPBACK4, -1),
    (LOOPBACK4, "5"), ("", 0), ("::1", 0),
]


def _ids(values):
    return [repr(v)[:40] for v in values]


def _check_parse(mod, family, method, address, proto=0):
    assert_same(mod, lambda m: call_wrapped(m, family, method, address, proto))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("address", NETLINK_ADDRESSES, ids=_ids(NETLINK_ADDRESSES))
def test_parse_netlink(mod, method, address):
    _check_parse(mod, std.AF_NETLINK, method, address)


@pytest.mark.parametrize("family", ["AF_QIPCRTR", "AF_VSOCK"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("address", PAIR_ADDRESSES, ids=_ids(PAIR_ADDRESSES))
def test_parse_qipcrtr_vsock(mod, family, method, address):
    _check_parse(mod, getattr(std, family), method, address)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto", "sendmsg"])
@pytest.mark.parametrize("address", PACKET_ADDRESSES, ids=_ids(PACKET_ADDRESSES))
def test_parse_packet(mod, method, address):
    _check_parse(mod, std.AF_PACKET, method, address)


@pytest.mark.parametrize("proto", [std.CAN_RAW, std.CAN_BCM])
@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", CAN_RAW_ADDRESSES, ids=_ids(CAN_RAW_ADDRESSES))
def test_parse_can(mod, proto, method, address):
    _check_parse(mod, std.AF_CAN, method, address, proto)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", CAN_ISOTP_ADDRESSES, ids=_ids(CAN_ISOTP_ADDRESSES))
def test_parse_can_isotp(mod, method, address):
    _check_parse(mod, std.AF_CAN, method, address, std.CAN_ISOTP)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", CAN_J1939_ADDRESSES, ids=_ids(CAN_J1939_ADDRESSES))
def test_parse_can_j1939(mod, method, address):
    _check_parse(mod, std.AF_CAN, method, address, std.CAN_J1939)


@pytest.mark.parametrize("proto", [0, 3, 99, -1])
@pytest.mark.parametrize("method", ["bind", "connect", "connect_ex", "sendto", "sendmsg"])
@pytest.mark.parametrize("address", [("lo",), ("", 1, 2), 5])
def test_parse_can_unsupported_protocol(mod, proto, method, address):
    _check_parse(mod, std.AF_CAN, method, address, proto)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", TIPC_ADDRESSES, ids=_ids(TIPC_ADDRESSES))
def test_parse_tipc(mod, method, address):
    _check_parse(mod, std.AF_TIPC, method, address)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", ALG_ADDRESSES, ids=_ids(ALG_ADDRESSES))
def test_parse_alg(mod, method, address):
    _check_parse(mod, std.AF_ALG, method, address)


@pytest.mark.parametrize("method", ["bind", "connect", "sendto"])
@pytest.mark.parametrize("address", RDS_ADDRESSES, ids=_ids(RDS_ADDRESSES))
def test_parse_rds(mod, method, address):
    _check_parse(mod, std.AF_RDS, method, address)


@pytest.mark.parametrize("family", AF_UNKNOWN)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("address", [5, ("lo", 0), (1, 2)])
def test_parse_bad_family(mod, family, method, address):
    _check_parse(mod, family, method, address)


def test_parse_messages_literal(mod):
    """A few exact messages, checked on both modules against literals."""
    cases = [
        (std.AF_NETLINK, 0, 5, TypeError,
         "bind(): AF_NETLINK address must be tuple, not int"),
        (std.AF_NETLINK, 0, (1,), TypeError,
         "AF_NETLINK address must be a pair (pid, groups)"),
        (std.AF_VSOCK, 0, 5, TypeError,
         "getsockaddrarg: AF_VSOCK address must be tuple, not int"),
        (std.AF_QIPCRTR, 0, (1,), TypeError,
         "getsockaddrarg() takes exactly 2 arguments (1 given)"),
        (std.AF_PACKET, 0, ("lo", 0x10000), OverflowError,
         "bind(): proto must be 0-65535."),
        (std.AF_PACKET, 0, ("lo", 1, 2 ** 31), OverflowError,
         "bind(): address argument out of range"),
        (std.AF_PACKET, 0, ("lo", 1, 0, 0, b"123456789"), ValueError,
         "Hardware address must be 8 bytes or less"),
        (std.AF_CAN, std.CAN_RAW, ("x" * 16,), OSError,
         "AF_CAN interface name too long"),
        (std.AF_CAN, 0, ("",), OSError, "bind(): unsupported CAN protocol"),
        (std.AF_CAN, std.CAN_ISOTP, ("",), TypeError,
         "function takes exactly 3 arguments (1 given)"),
        (std.AF_TIPC, 0, (9, 1, 2, 3), TypeError, "Invalid address type"),
        (std.AF_ALG, 0, ("hash", "x" * 64), ValueError, "AF_ALG name too long."),
        (std.AF_ALG, 0, ("h" * 14, "x"), ValueError, "AF_ALG type too long."),
        (15, 0, 5, OSError, "bind(): bad family"),
    ]
    for family, proto, address, exc_type, message in cases:
        s = wrapped(mod, family, proto)
        try:
            with pytest.raises(exc_type) as info:
                s.bind(address)
            assert type(info.value) is exc_type
            assert str(info.value) == message
        finally:
            s.close()


def test_parse_packet_unknown_interface_errno(mod):
    s = wrapped(mod, std.AF_PACKET)
    try:
        with pytest.raises(OSError) as info:
            s.bind(("nonexistent0", 0))
        assert info.value.errno == errno.ENODEV
    finally:
        s.close()


# ---------------------------------------------------------------- getsockaddrlen

RECEIVERS = {
    "getsockname": lambda s: s.getsockname(),
    "getpeername": lambda s: s.getpeername(),
    "_accept": lambda s: s._accept(),
    "recvfrom": lambda s: s.recvfrom(16),
    "recvfrom0": lambda s: s.recvfrom(0),
    "recvfrom_neg": lambda s: s.recvfrom(-1),
    "recvfrom_into": lambda s: s.recvfrom_into(bytearray(4)),
    "recvfrom_into_big": lambda s: s.recvfrom_into(bytearray(4), 10),
    "recvmsg": lambda s: s.recvmsg(16),
    "recvmsg_badanc": lambda s: s.recvmsg(16, -1),
    "recvmsg_into": lambda s: s.recvmsg_into([bytearray(4)]),
}


@pytest.mark.parametrize("family", AF_UNKNOWN)
@pytest.mark.parametrize("what", sorted(RECEIVERS))
def test_getsockaddrlen_bad_family(mod, family, what):
    def scenario(module):
        s = wrapped(module, family)
        try:
            return RECEIVERS[what](s)
        finally:
            s.close()
    result = assert_same(mod, scenario)
    if what not in ("recvfrom_neg", "recvfrom_into_big"):
        assert result == ("raise", "OSError", None, "getsockaddrlen: bad family")


@pytest.mark.parametrize("family", [std.AF_NETLINK, std.AF_PACKET, std.AF_CAN,
                                    std.AF_TIPC, std.AF_ALG, std.AF_VSOCK,
                                    std.AF_QIPCRTR, std.AF_RDS])
@pytest.mark.parametrize("what", ["getsockname", "getpeername", "recvfrom",
                                  "recvfrom_into", "recvmsg"])
def test_known_family_receivers_on_unix_fd(mod, family, what):
    """A known family gets past getsockaddrlen; the unbound AF_UNIX fd then
    answers with an AF_UNIX address (decoded by its own family) or an error
    (nothing to receive: BlockingIOError)."""
    def scenario(module):
        s = wrapped(module, family)
        try:
            return RECEIVERS[what](s)
        finally:
            s.close()
    assert_same(mod, scenario)


@pytest.mark.parametrize("family", [std.AF_NETLINK, std.AF_PACKET, std.AF_CAN,
                                    std.AF_VSOCK, std.AF_INET])
def test_truncated_buffer_autobind_name(mod, track, family):
    """An autobound AF_UNIX name (NUL + 5 characters) fits the smallest
    getsockaddrlen buffers: its bytes come back whatever the claimed family."""
    base = track(std.socket(std.AF_UNIX, std.SOCK_DGRAM))
    base.bind(b"")
    expected = base.getsockname()
    assert type(expected) is bytes and len(expected) == 6

    def scenario(module):
        s = wrapped(module, family, base=base)
        try:
            return s.getsockname()
        finally:
            s.close()
    assert assert_same(mod, scenario) == ("ok", expected)


def test_alg_accept_without_address(mod, track):
    """AF_ALG's accept() asks for no address: the result's address is None."""
    listener = track(std.socket(std.AF_UNIX, std.SOCK_STREAM))
    listener.bind(b"")
    listener.listen(1)
    client = track(std.socket(std.AF_UNIX, std.SOCK_STREAM))
    client.settimeout(sockutil.IO_TIMEOUT)
    client.connect(listener.getsockname())
    alg = track(wrapped(mod, std.AF_ALG, type=std.SOCK_STREAM, base=listener))
    alg.settimeout(sockutil.IO_TIMEOUT)
    fd, address = alg._accept()
    os.close(fd)
    assert address is None


# ---------------------------------------------------------------- AF_NETLINK

def _netlink_pair(mod, track):
    require(std.AF_NETLINK, std.SOCK_DGRAM, NETLINK_USERSOCK)
    a = track(mod.socket(mod.AF_NETLINK, mod.SOCK_DGRAM, NETLINK_USERSOCK))
    b = track(mod.socket(mod.AF_NETLINK, mod.SOCK_DGRAM, NETLINK_USERSOCK))
    for s in (a, b):
        s.settimeout(sockutil.IO_TIMEOUT)
    return a, b


def test_netlink_names(mod, track):
    require(std.AF_NETLINK, std.SOCK_RAW, 0)
    s = track(mod.socket(mod.AF_NETLINK, mod.SOCK_RAW, 0))
    assert s.getsockname() == (0, 0)
    assert s.getpeername() == (0, 0)
    assert s.bind((0, 0)) is None
    pid, groups = s.getsockname()
    assert type(pid) is int and pid != 0 and groups == 0
    with pytest.raises(OSError) as info:
        s.bind((0, 0))
    assert info.value.errno == errno.EINVAL


def test_netlink_user_messages(mod, track):
    a, b = _netlink_pair(mod, track)
    a.bind((0, 0))
    b.bind((0, 0))
    a_name, b_name = a.getsockname(), b.getsockname()
    assert a.sendto(b"hello", b_name) == 5
    assert b.recvfrom(64) == (b"hello", a_name)
    assert a.sendto(b"again", 0, b_name) == 5
    buf = bytearray(16)
    assert b.recvfrom_into(buf) == (5, a_name)
    assert a.sendmsg([b"msg"], [], 0, b_name) == 3
    data, anc, flags, address = b.recvmsg(64)
    assert (data, address) == (b"msg", a_name)
    a.connect(b_name)
    assert a.getpeername() == b_name
    a.send(b"x")
    assert b.recvmsg_into([bytearray(4)])[3] == a_name


def test_netlink_same_as_stdlib(mod, track):
    """The stdlib and mod sockets exchange messages: each sees the other's
    name exactly as that socket reports it."""
    require(std.AF_NETLINK, std.SOCK_DGRAM, NETLINK_USERSOCK)
    a = track(mod.socket(mod.AF_NETLINK, mod.SOCK_DGRAM, NETLINK_USERSOCK))
    b = track(std.socket(std.AF_NETLINK, std.SOCK_DGRAM, NETLINK_USERSOCK))
    for s in (a, b):
        s.settimeout(sockutil.IO_TIMEOUT)
        s.bind((0, 0))
    b.sendto(b"ping", a.getsockname())
    assert a.recvfrom(16) == (b"ping", b.getsockname())
    a.sendto(b"pong", b.getsockname())
    assert b.recvfrom(16) == (b"pong", a.getsockname())


# ---------------------------------------------------------------- AF_VSOCK

def test_vsock_names(mod, track):
    require(std.AF_VSOCK, std.SOCK_STREAM)
    s = track(mod.socket(mod.AF_VSOCK, mod.SOCK_STREAM))
    unbound = s.getsockname()
    assert unbound == track(std.socket(std.AF_VSOCK, std.SOCK_STREAM)).getsockname()
    with pytest.raises(OSError) as info:
        s.getpeername()
    assert info.value.errno == errno.ENOTCONN
    try:
        s.bind((mod.VMADDR_CID_ANY, mod.VMADDR_PORT_ANY))
    except OSError as exc:
        pytest.skip("AF_VSOCK bind to VMADDR_CID_ANY fails here: %s" % exc)
    cid, port = s.getsockname()
    assert type(cid) is int and type(port) is int
    assert 0 <= cid <= 0xFFFFFFFF and 0 <= port <= 0xFFFFFFFF


# ---------------------------------------------------------------- AF_PACKET

def test_packet_names(mod, track):
    require(std.AF_PACKET, std.SOCK_DGRAM, 0)
    s = track(mod.socket(mod.AF_PACKET, mod.SOCK_DGRAM, 0))
    assert s.getsockname() == ("", 0, 0, 0, b"")
    s.bind(("lo", 0))
    reference = track(std.socket(std.AF_PACKET, std.SOCK_DGRAM, 0))
    reference.bind(("lo", 0))
    name = s.getsockname()
    assert name == reference.getsockname()
    assert name == ("lo", 0, 0, ARPHRD_LOOPBACK, b"\0" * 6)
    # A second bind may change the protocol, given in host byte order.
    s.bind(("lo", ETH_P_IP, 4, 1, b"\1\2"))
    assert s.getsockname()[:2] == ("lo", ETH_P_IP)


def test_packet_recvfrom_loopback(mod, track):
    """Receive only: a UDP datagram between two loopback sockets shows up
    on an AF_PACKET socket bound to "lo" with lo's address."""
    require(std.AF_PACKET, std.SOCK_DGRAM, std.htons(ETH_P_IP))
    p = track(mod.socket(mod.AF_PACKET, mod.SOCK_DGRAM, mod.htons(ETH_P_IP)))
    p.bind(("lo", ETH_P_IP))
    p.settimeout(1.0)
    receiver = track(std.socket(std.AF_INET, std.SOCK_DGRAM))
    receiver.bind((LOOPBACK4, 0))
    sender = track(std.socket(std.AF_INET, std.SOCK_DGRAM))
    tag = os.urandom(12).hex().encode()
    deadline = time.monotonic() + 10
    found = []
    for attempt in range(20):
        sender.sendto(b"swiftsocket-family-test " + tag, receiver.getsockname())
        for _ in range(500):
            if time.monotonic() > deadline:
                break
            try:
                if attempt % 2:
                    data, address = p.recvfrom(65536)
                else:
                    data, _, _, address = p.recvmsg(65536)
            except TimeoutError:
                break
            if tag in data:
                found.append(address)
                break
        if found or time.monotonic() > deadline:
            break
    assert found, "no loopback packet seen"
    ifname, proto, pkttype, hatype, hwaddr = found[0]
    assert (ifname, proto, hatype, hwaddr) == ("lo", ETH_P_IP, ARPHRD_LOOPBACK, b"\0" * 6)
    assert pkttype in (0, 4)   # PACKET_HOST, PACKET_OUTGOING


# ---------------------------------------------------------------- others

@pytest.mark.parametrize("family,type,proto", [
    ("AF_CAN", "SOCK_RAW", "CAN_RAW"),
    ("AF_CAN", "SOCK_DGRAM", "CAN_BCM"),
    ("AF_CAN", "SOCK_DGRAM", "CAN_ISOTP"),
    ("AF_CAN", "SOCK_DGRAM", "CAN_J1939"),
    ("AF_TIPC", "SOCK_RDM", None),
    ("AF_ALG", "SOCK_SEQPACKET", None),
    ("AF_QIPCRTR", "SOCK_DGRAM", None),
    ("AF_RDS", "SOCK_SEQPACKET", None),
])
def test_unbound_getsockname(mod, track, family, type, proto):
    """Where the family exists here, a new socket's name is the stdlib's."""
    fam, typ = getattr(std, family), getattr(std, type)
    pro = getattr(std, proto) if proto else 0
    require(fam, typ, pro)

    def scenario(module):
        s = module.socket(fam, typ, pro)
        try:
            return s.getsockname()
        finally:
            s.close()
    assert_same(mod, scenario)


def test_alg_bind_and_accept(mod, track):
    require(std.AF_ALG, std.SOCK_SEQPACKET)
    s = track(mod.socket(mod.AF_ALG, mod.SOCK_SEQPACKET))
    try:
        s.bind(("hash", "sha256"))
    except OSError as exc:
        pytest.skip("no sha256 in AF_ALG here: %s" % exc)
    assert s.getsockname() == ("hash", "sha256", 0, 0)
    fd, address = s._accept()
    assert address is None
    op = track(mod.socket(mod.AF_ALG, mod.SOCK_SEQPACKET, 0, fileno=fd))
    op.sendall(b"abc")
    import hashlib
    assert op.recv(64) == hashlib.sha256(b"abc").digest()


def test_getaddrinfo_unchanged(mod):
    assert_same(mod, lambda m: m.getaddrinfo(LOOPBACK4, 80, m.AF_INET,
                                               m.SOCK_STREAM))


# ---------------------------------------------------------------- sockaddr bytes

_INTERPOSER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    const char *path = getenv("SWIFTSOCKET_BIND_DUMP");
    if (path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f, "%u:", (unsigned)len);
            for (socklen_t i = 0; i < len; i++) fprintf(f, "%02x", ((const unsigned char *)addr)[i]);
            fprintf(f, "\n");
            fclose(f);
        }
    }
    return real(fd, addr, len);
}
"""

_DUMP_SCRIPT = r"""
import os, sys
module = sys.argv[1]
if module == "swiftsocket":
    import swiftsocket as m
else:
    import _socket as m
cases = [
    (m.AF_NETLINK, 0, (1, 2)), (m.AF_NETLINK, 0, (-1, 2 ** 32 + 5)),
    (m.AF_VSOCK, 0, (3, 1234)), (m.AF_QIPCRTR, 0, (7, 8)),
    (m.AF_PACKET, 0, ("lo", 0x0800)), (m.AF_PACKET, 0, ("lo", 1, 2, 3, b"\1\2\3")),
    (m.AF_PACKET, 0, ("lo", 1, -1, 70000, b"")), (m.AF_PACKET, 0, ("lo", 65535, 7, 8, b"12345678")),
    (m.AF_CAN, m.CAN_RAW, ("",)), (m.AF_CAN, m.CAN_BCM, ("lo",)),
    (m.AF_CAN, m.CAN_ISOTP, ("", 0x123, 2 ** 32 + 5)), (m.AF_CAN, m.CAN_ISOTP, ("lo", 1, 2)),
    (m.AF_CAN, m.CAN_J1939, ("", 2 ** 64 - 1, 0x12345, 0x1FF)),
    (m.AF_TIPC, 0, (1, 2, 3, 4)), (m.AF_TIPC, 0, (2, 5, 6, 7, 3)), (m.AF_TIPC, 0, (3, 8, 9, 10)),
    (m.AF_TIPC, 0, (2, 1, 2, 3, -1)), (m.AF_TIPC, 0, (2 ** 32 + 1, 1, 2, 3, 2 ** 8 + 1)),
    (m.AF_ALG, 0, ("hash", "sha256")), (m.AF_ALG, 0, ("skcipher", "cbc(aes)", 1, 2)),
    (m.AF_ALG, 0, ("aead", "x" * 63, -1, 2 ** 20)), (m.AF_ALG, 0, ("h" * 13, "é")),
    (m.AF_RDS, 0, ("127.0.0.1", 80)),
]
for family, proto, address in cases:
    base = m.socket(m.AF_UNIX, m.SOCK_DGRAM)
    s = m.socket(family, m.SOCK_DGRAM, proto, fileno=base.detach())
    try:
        s.bind(address)
    except OSError:
        pass
    finally:
        s.close()
"""


def test_built_sockaddr_bytes(swift, tmp_path):
    """The bytes and length handed to bind() are CPython's, for every
    family: a bind() interposer (LD_PRELOAD) records them in a child
    process run once with each module."""
    import shutil
    import subprocess
    import sys
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler for the bind() interposer")
    source = tmp_path / "interpose.c"
    source.write_text(_INTERPOSER)
    library = tmp_path / "interpose.so"
    built = subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"],
                           capture_output=True, timeout=120)
    if built.returncode != 0:
        pytest.skip("cannot build the interposer: %s" % built.stderr[-300:])
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(swift.__file__)))
    dumps = {}
    for module in ("stdlib", "swiftsocket"):
        dump = tmp_path / ("%s.txt" % module)
        env = dict(os.environ, LD_PRELOAD=str(library), SWIFTSOCKET_BIND_DUMP=str(dump),
                   PYTHONPATH=os.pathsep.join([package_dir, os.environ.get("PYTHONPATH", "")]))
        run = subprocess.run([sys.executable, "-c", _DUMP_SCRIPT, module], env=env,
                             capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr[-2000:]
        dumps[module] = dump.read_text().splitlines()
    assert len(dumps["stdlib"]) == len(_MEANINGFUL)
    assert len(dumps["swiftsocket"]) == len(_MEANINGFUL)
    for index, (expected, actual) in enumerate(zip(dumps["stdlib"], dumps["swiftsocket"])):
        assert _meaningful(actual, index) == _meaningful(expected, index), index


# The byte ranges of each _DUMP_SCRIPT case that CPython 3.11 sets: it does
# not clear AF_PACKET and AF_CAN sockaddrs first, so their padding, unused
# union members and hardware address bytes past sll_halen are stack garbage.
_MEANINGFUL = (
    [None] * 4
    + [[(0, 12)], [(0, 15)], [(0, 12)], None]
    + [[(0, 2), (4, 8)]] * 2 + [[(0, 2), (4, 16)]] * 2 + [[(0, 2), (4, 21)]]
    + [None] * 10
)


def _meaningful(line, index):
    length, data = line.split(":")
    raw = bytes.fromhex(data)
    ranges = _MEANINGFUL[index]
    if ranges is None:
        return length, raw
    return length, [raw[start:end] for start, end in ranges]
