"""The socket object itself: constructor, attributes, repr, subclassing,
fileno/close/detach, and the behaviour of a closed socket."""

import errno
import gc
import os
import weakref

import _socket

import pytest

import sockutil
from sockutil import assert_same


# ---------------------------------------------------------------- constructor

def test_default_constructor(mod, track):
    s = track(mod.socket())
    assert type(s) is mod.socket
    assert s.family == mod.AF_INET
    assert s.type == mod.SOCK_STREAM
    assert s.proto == 0
    assert s.timeout is None
    assert s.fileno() >= 0
    assert os.get_inheritable(s.fileno()) is False
    assert os.get_blocking(s.fileno()) is True
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_TYPE) == mod.SOCK_STREAM


@pytest.mark.parametrize("family,kind,proto", [
    ("AF_INET", "SOCK_STREAM", 0),
    ("AF_INET", "SOCK_DGRAM", 0),
    ("AF_INET", "SOCK_STREAM", "IPPROTO_TCP"),
    ("AF_INET", "SOCK_DGRAM", "IPPROTO_UDP"),
    ("AF_INET6", "SOCK_STREAM", 0),
    ("AF_INET6", "SOCK_DGRAM", 0),
    ("AF_UNIX", "SOCK_STREAM", 0),
    ("AF_UNIX", "SOCK_DGRAM", 0),
    ("AF_UNIX", "SOCK_SEQPACKET", 0),
])
def test_constructor_positional(mod, track, family, kind, proto):
    fam = getattr(mod, family)
    typ = getattr(mod, kind)
    pro = getattr(mod, proto) if isinstance(proto, str) else proto
    s = track(mod.socket(fam, typ, pro))
    assert (s.family, s.type, s.proto) == (fam, typ, pro)
    assert type(s.family) is int and type(s.type) is int
    assert type(s.proto) is int
    assert s.getsockopt(mod.SOL_SOCKET, mod.SO_TYPE) == typ


def test_constructor_keywords(mod, track):
    s = track(mod.socket(family=mod.AF_INET6, type=mod.SOCK_DGRAM, proto=0))
    assert (s.family, s.type, s.proto) == (mod.AF_INET6, mod.SOCK_DGRAM, 0)
    s2 = track(mod.socket(type=mod.SOCK_DGRAM))
    assert (s2.family, s2.type) == (mod.AF_INET, mod.SOCK_DGRAM)
    s3 = track(mod.socket(mod.AF_UNIX, proto=0))
    assert (s3.family, s3.type) == (mod.AF_UNIX, mod.SOCK_STREAM)
    s4 = track(mod.socket(fileno=None))
    assert (s4.family, s4.type, s4.proto) == (mod.AF_INET, mod.SOCK_STREAM, 0)


def test_constructor_minus_one_defaults(mod, track):
    # 3.11's signature is socket(family=-1, type=-1, proto=-1, fileno=None)
    s = track(mod.socket(-1, -1, -1))
    assert (s.family, s.type, s.proto) == (mod.AF_INET, mod.SOCK_STREAM, 0)


@pytest.mark.parametrize("args,kwargs", [
    ((12345,), {}),                      # EAFNOSUPPORT
    ((_socket.AF_INET, 9999), {}),       # EINVAL
    ((_socket.AF_INET, _socket.SOCK_STREAM, 9999), {}),
    (("x",), {}),
    ((_socket.AF_INET, "x"), {}),
    ((_socket.AF_INET, _socket.SOCK_STREAM, 0, 3, 5), {}),
    ((), {"bogus": 1}),
    ((), {"fileno": 1.5}),
    ((), {"fileno": "3"}),
    ((), {"fileno": 2 ** 40}),
    ((2 ** 40,), {}),
])
def test_constructor_errors_match_oracle(mod, track, args, kwargs):
    def scenario(m):
        return repr(track(m.socket(*args, **kwargs)))
    result = assert_same(mod, scenario, message=False)
    assert result[0] == "raise"


def test_constructor_unsupported_family_errno(mod):
    with pytest.raises(OSError) as info:
        mod.socket(12345)
    assert info.value.errno == errno.EAFNOSUPPORT


def test_sock_nonblock_and_cloexec_stripped(mod, track):
    s = track(mod.socket(mod.AF_INET, mod.SOCK_STREAM | mod.SOCK_NONBLOCK))
    assert s.type == mod.SOCK_STREAM
    assert s.timeout == 0.0
    assert s.gettimeout() == 0.0
    assert s.getblocking() is False
    assert os.get_blocking(s.fileno()) is False

    s2 = track(mod.socket(mod.AF_INET, mod.SOCK_STREAM | mod.SOCK_CLOEXEC))
    assert s2.type == mod.SOCK_STREAM
    assert s2.timeout is None
    assert os.get_inheritable(s2.fileno()) is False

    s3 = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM | mod.SOCK_NONBLOCK
                          | mod.SOCK_CLOEXEC))
    assert s3.type == mod.SOCK_DGRAM
    assert s3.timeout == 0.0
    assert repr(s3) == "<socket object, fd=%d, family=%d, type=%d, proto=0>" % (
        s3.fileno(), mod.AF_UNIX, mod.SOCK_DGRAM)


# ---------------------------------------------------------------- fileno adoption

@pytest.mark.parametrize("family,kind,expected_proto", [
    ("AF_INET", "SOCK_STREAM", _socket.IPPROTO_TCP),
    ("AF_INET", "SOCK_DGRAM", _socket.IPPROTO_UDP),
    ("AF_INET6", "SOCK_STREAM", _socket.IPPROTO_TCP),
    ("AF_UNIX", "SOCK_STREAM", 0),
    ("AF_UNIX", "SOCK_DGRAM", 0),
])
def test_fileno_adoption_detects_family_type_proto(mod, track, family, kind,
                                                    expected_proto):
    fam = getattr(_socket, family)
    typ = getattr(_socket, kind)
    orig = track(_socket.socket(fam, typ))
    fd = os.dup(orig.fileno())
    s = sockutil.adopt(mod, track, fd)
    assert s.fileno() == fd
    assert (s.family, s.type, s.proto) == (fam, typ, expected_proto)
    assert s.timeout is None
    assert repr(s) == (
        "<socket object, fd=%d, family=%d, type=%d, proto=%d>"
        % (fd, fam, typ, expected_proto))


def test_fileno_adoption_matches_oracle(mod, track):
    def scenario(m):
        orig = track(_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM))
        s = sockutil.adopt(m, track, os.dup(orig.fileno()))
        return (s.family, s.type, s.proto, s.timeout, s.getblocking())
    assert assert_same(mod, scenario) == (
        "ok", (_socket.AF_INET, _socket.SOCK_DGRAM, _socket.IPPROTO_UDP,
               None, True))


def test_fileno_adoption_positional_and_explicit_values(mod, track):
    inet, stream = mod.AF_INET, mod.SOCK_STREAM
    orig = track(_socket.socket(_socket.AF_INET, _socket.SOCK_STREAM))
    fd = os.dup(orig.fileno())
    # Explicit values are taken as given, without checking the fd.
    s = sockutil.adopt(mod, track, fd, inet, stream, 0)
    assert (s.family, s.type, s.proto) == (mod.AF_INET, mod.SOCK_STREAM, 0)
    assert s.fileno() == fd
    fd2 = os.dup(orig.fileno())
    s2 = sockutil.adopt(mod, track, fd2, inet)
    assert (s2.family, s2.type, s2.proto) == (
        mod.AF_INET, mod.SOCK_STREAM, mod.IPPROTO_TCP)


def test_fileno_adoption_of_bound_socket_keeps_address(mod, track):
    orig = track(_socket.socket())
    orig.bind((sockutil.LOOPBACK4, 0))
    fd = os.dup(orig.fileno())
    s = sockutil.adopt(mod, track, fd)
    assert s.getsockname() == orig.getsockname()


def test_fileno_adoption_of_nonblocking_fd(mod, track):
    def scenario(m):
        orig = track(_socket.socket(_socket.AF_INET,
                                    _socket.SOCK_STREAM | _socket.SOCK_NONBLOCK))
        fd = os.dup(orig.fileno())
        s = sockutil.adopt(m, track, fd)
        return (s.type, s.timeout, s.getblocking(), os.get_blocking(fd))
    assert_same(mod, scenario)


def test_fileno_negative_is_valueerror(mod):
    with pytest.raises(ValueError) as info:
        mod.socket(fileno=-5)
    assert str(info.value) == "negative file descriptor"
    with pytest.raises(ValueError):
        mod.socket(mod.AF_INET, mod.SOCK_STREAM, 0, -1)


def test_fileno_not_a_socket_is_enotsock(mod, tmp_path):
    path = tmp_path / "plain"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            mod.socket(fileno=fd)
        assert info.value.errno == errno.ENOTSOCK
        # the failed constructor must not have closed the caller's fd
        assert sockutil.is_fd_open(fd)
    finally:
        os.close(fd)


def test_fileno_pipe_is_enotsock(mod):
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            mod.socket(fileno=r)
        assert info.value.errno == errno.ENOTSOCK
        assert sockutil.is_fd_open(r)
    finally:
        os.close(r)
        os.close(w)


def test_fileno_closed_fd_is_ebadf(mod):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    # No other thread opens fds here, so r stays free.
    with pytest.raises(OSError) as info:
        mod.socket(fileno=r)
    assert info.value.errno == errno.EBADF


# ---------------------------------------------------------------- attributes

@pytest.mark.parametrize("attr", ["family", "type", "proto", "timeout"])
def test_attributes_read_only(mod, track, attr):
    s = track(mod.socket())
    before = getattr(s, attr)
    with pytest.raises(AttributeError):
        setattr(s, attr, 5)
    with pytest.raises(AttributeError):
        delattr(s, attr)
    assert getattr(s, attr) == before


def test_no_instance_dict(mod, track):
    s = track(mod.socket())
    with pytest.raises(AttributeError):
        s.arbitrary_attribute = 1
    assert not hasattr(s, "__dict__")


def test_timeout_attribute_follows_settimeout(mod, track):
    s = track(mod.socket())
    s.settimeout(1.25)
    assert s.timeout == 1.25
    s.setblocking(False)
    assert s.timeout == 0.0
    s.setblocking(True)
    assert s.timeout is None


# ---------------------------------------------------------------- repr

def test_repr_exact(mod, track):
    s = track(mod.socket())
    assert repr(s) == "<socket object, fd=%d, family=%d, type=%d, proto=0>" % (
        s.fileno(), mod.AF_INET, mod.SOCK_STREAM)
    u = track(mod.socket(mod.AF_UNIX, mod.SOCK_DGRAM))
    assert repr(u) == "<socket object, fd=%d, family=1, type=2, proto=0>" % (
        u.fileno())
    t = track(mod.socket(mod.AF_INET, mod.SOCK_STREAM, mod.IPPROTO_TCP))
    assert repr(t) == "<socket object, fd=%d, family=2, type=1, proto=6>" % (
        t.fileno())


def test_repr_after_close_and_detach(mod, track):
    s = mod.socket()
    s.close()
    assert repr(s) == "<socket object, fd=-1, family=2, type=1, proto=0>"
    d = mod.socket(mod.AF_INET6)
    fd = d.detach()
    os.close(fd)
    assert repr(d) == "<socket object, fd=-1, family=10, type=1, proto=0>"


# ---------------------------------------------------------------- subclassing

def test_subclass_with_socket_py_slots(mod, track):
    class Sock(mod.socket):
        __slots__ = ["__weakref__", "_io_refs", "_closed"]

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._io_refs = 0
            self._closed = False

    s = Sock(mod.AF_INET, mod.SOCK_STREAM)
    try:
        assert isinstance(s, mod.socket)
        assert s._io_refs == 0 and s._closed is False
        s._closed = True
        assert s._closed is True
        ref = weakref.ref(s)
        assert ref() is s
        assert not hasattr(s, "__dict__")
        assert (s.family, s.type) == (mod.AF_INET, mod.SOCK_STREAM)
        s.bind((sockutil.LOOPBACK4, 0))
        assert s.getsockname()[0] == sockutil.LOOPBACK4
    finally:
        s.close()
    assert s.fileno() == -1
    del s
    gc.collect()
    assert ref() is None


def test_subclass_with_dict_and_override(mod, track):
    class Sock(mod.socket):
        def fileno(self):
            return super().fileno()

        def __repr__(self):
            return "Sock(%d)" % super().fileno()

    s = track(Sock())
    s.extra = "x"
    assert s.extra == "x"
    assert repr(s) == "Sock(%d)" % s.fileno()
    assert type(s).__mro__[1] is mod.socket


def test_base_layout_has_no_dict_or_weakref(mod):
    # socket.py adds __weakref__ in its __slots__: the base type must not
    # already have one (else "__weakref__ slot disallowed").
    assert mod.socket.__weakrefoffset__ == 0
    assert mod.socket.__dictoffset__ == 0


def test_weakref_to_base_type_not_supported(mod, track):
    s = track(mod.socket())
    with pytest.raises(TypeError):
        weakref.ref(s)


# ---------------------------------------------------------------- fileno/close/detach

def test_close_is_idempotent_and_closes_fd(mod):
    s = mod.socket()
    fd = s.fileno()
    assert sockutil.is_fd_open(fd)
    assert s.close() is None
    assert s.fileno() == -1
    assert not sockutil.is_fd_open(fd)
    assert s.close() is None
    assert s.fileno() == -1


def test_close_of_externally_closed_fd_raises_ebadf(mod):
    s = mod.socket()
    os.close(s.fileno())
    with pytest.raises(OSError) as info:
        s.close()
    assert info.value.errno == errno.EBADF
    assert s.fileno() == -1
    s.close()   # now a no-op


def test_detach_returns_fd_and_leaves_it_open(mod, track):
    s = mod.socket(mod.AF_INET, mod.SOCK_DGRAM)
    fd = s.fileno()
    assert s.detach() == fd
    assert s.fileno() == -1
    assert sockutil.is_fd_open(fd)
    s.close()  # must not close the detached fd
    assert sockutil.is_fd_open(fd)
    again = track(_socket.socket(fileno=fd))
    assert again.type == _socket.SOCK_DGRAM
    assert s.detach() == -1


def test_fileno_is_int(mod, track):
    s = track(mod.socket())
    assert type(s.fileno()) is int
    assert s.fileno() == s.fileno()


# ---------------------------------------------------------------- closed socket

CLOSED_CALLS = [
    ("getsockname", ()),
    ("getpeername", ()),
    ("listen", ()),
    ("listen", (5,)),
    ("bind", (("127.0.0.1", 0),)),
    ("connect", (("127.0.0.1", 1),)),
    ("_accept", ()),
    ("recv", (1,)),
    ("recv_into", (bytearray(4),)),
    ("recvfrom", (1,)),
    ("recvfrom_into", (bytearray(4),)),
    ("send", (b"x",)),
    ("sendall", (b"x",)),
    ("sendto", (b"x", ("127.0.0.1", 1))),
    ("shutdown", (_socket.SHUT_RDWR,)),
    ("setsockopt", (_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)),
    ("setsockopt", (_socket.SOL_SOCKET, _socket.SO_LINGER, b"\0" * 8)),
    ("getsockopt", (_socket.SOL_SOCKET, _socket.SO_REUSEADDR)),
    ("getsockopt", (_socket.SOL_SOCKET, _socket.SO_LINGER, 8)),
    ("setblocking", (True,)),
    ("setblocking", (False,)),
    ("settimeout", (1.0,)),
    ("settimeout", (None,)),
    ("sendmsg", ([b"x"],)),
    ("recvmsg", (1,)),
]


@pytest.mark.parametrize("name,args", CLOSED_CALLS,
                         ids=["%s%d" % (c[0], i) for i, c in
                              enumerate(CLOSED_CALLS)])
def test_closed_socket_methods_raise_ebadf(mod, name, args):
    s = mod.socket()
    s.close()
    with pytest.raises(OSError) as info:
        getattr(s, name)(*args)
    assert type(info.value) is OSError
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize("name,args", CLOSED_CALLS + [
    ("connect_ex", (("127.0.0.1", 1),)),
    ("fileno", ()), ("detach", ()), ("close", ()),
    ("gettimeout", ()), ("getblocking", ()),
], ids=lambda v: v if isinstance(v, str) else None)
def test_closed_socket_matches_oracle(mod, name, args):
    def scenario(m):
        s = m.socket()
        s.close()
        first = sockutil.outcome(getattr(s, name), *args)
        return first, s.gettimeout(), s.getblocking(), s.fileno()
    assert_same(mod, scenario)


def test_closed_socket_values(mod):
    s = mod.socket()
    s.close()
    assert s.fileno() == -1
    assert s.detach() == -1
    assert s.connect_ex(("127.0.0.1", 1)) == errno.EBADF
    assert s.gettimeout() is None
    assert s.getblocking() is True
    assert (s.family, s.type, s.proto) == (mod.AF_INET, mod.SOCK_STREAM, 0)


def test_detached_socket_raises_ebadf(mod):
    s = mod.socket()
    os.close(s.detach())
    for call in (lambda: s.getsockname(), lambda: s.recv(1),
                 lambda: s.send(b"x"), lambda: s.listen()):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


def test_uninitialized_socket_matches_oracle(mod):
    # socket.__new__ without __init__: fd -1, family/type/proto 0.
    def scenario(m):
        s = m.socket.__new__(m.socket)
        return (repr(s), s.timeout, s.fileno(), sockutil.outcome(s.recv, 1),
                s.close(), s.fileno())
    assert assert_same(mod, scenario) == ("ok", (
        "<socket object, fd=-1, family=0, type=0, proto=0>", None, -1,
        ("raise", "OSError", errno.EBADF, "[Errno 9] Bad file descriptor"),
        None, -1))


def test_init_on_new_object(mod, track):
    s = track(mod.socket.__new__(mod.socket))
    s.__init__(mod.AF_UNIX, mod.SOCK_DGRAM)
    assert (s.family, s.type) == (mod.AF_UNIX, mod.SOCK_DGRAM)
    assert s.fileno() >= 0


@pytest.mark.parametrize("value", [2 ** 31, -2 ** 31 - 1, 2 ** 63, 2 ** 64, -2 ** 64, 2 ** 100])
def test_c_int_arguments_out_of_range_match_oracle(mod, track, value):
    # PyLong_AsInt's message whether the value fits a C long or not.
    def scenario(m):
        s = track(m.socket())
        return [sockutil.outcome(s.shutdown, value),
                sockutil.outcome(m.socket, family=value),
                sockutil.outcome(m.socket, m.AF_INET, value)]
    result = assert_same(mod, scenario)
    assert result[1][0][:3] == ("raise", "OverflowError", None)
