"""Finalization: an unclosed socket emits ResourceWarning and its fd is
closed; closed or detached sockets are silent."""

import gc
import os
import warnings

import _socket

import pytest

import sockutil


def _collect_warnings(drop):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop()
        gc.collect()
    return [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_unclosed_socket_warns_and_closes_fd(mod):
    holder = [mod.socket()]
    fd = holder[0].fileno()
    text = repr(holder[0])
    caught = _collect_warnings(holder.clear)
    assert len(caught) == 1
    w = caught[0]
    assert str(w.message) == "unclosed %s" % text
    # the warning's source is the socket itself, already closed
    assert type(w.source) is mod.socket
    assert w.source.fileno() == -1
    del w, caught
    assert not sockutil.is_fd_open(fd)


def test_unclosed_subclass_warns(mod):
    class Sock(mod.socket):
        __slots__ = ["__weakref__", "_io_refs", "_closed"]

    holder = [Sock(mod.AF_UNIX, mod.SOCK_DGRAM)]
    fd = holder[0].fileno()
    text = "<socket object, fd=%d, family=%d, type=%d, proto=0>" % (
        fd, mod.AF_UNIX, mod.SOCK_DGRAM)
    caught = _collect_warnings(holder.clear)
    assert [str(w.message) for w in caught] == ["unclosed %s" % text]
    del caught
    assert not sockutil.is_fd_open(fd)


def test_unclosed_connected_socket_closes_connection(mod, track):
    client, peer = sockutil.client_pair(mod, track)
    # forget the tracked reference: only `holder` keeps the client alive
    track._socks.remove(client)
    holder = [client]
    del client
    caught = _collect_warnings(holder.clear)
    assert len(caught) == 1
    del caught
    # the peer sees EOF: the fd was really closed
    assert peer.recv(10) == b""


def test_unclosed_socket_in_reference_cycle(mod):
    class Sock(mod.socket):
        pass   # has a __dict__, so it can be part of a cycle

    s = Sock()
    fd = s.fileno()
    s.self_ref = s
    caught = _collect_warnings(lambda: None)  # nothing dropped yet
    assert caught == []
    holder = [s]
    del s
    caught = _collect_warnings(holder.clear)
    assert len(caught) == 1
    del caught
    assert not sockutil.is_fd_open(fd)


def test_closed_socket_no_warning(mod):
    holder = [mod.socket()]
    holder[0].close()
    assert _collect_warnings(holder.clear) == []


def test_detached_socket_no_warning_fd_stays_open(mod):
    holder = [mod.socket()]
    fd = holder[0].detach()
    try:
        assert _collect_warnings(holder.clear) == []
        assert sockutil.is_fd_open(fd)
    finally:
        os.close(fd)


def test_warning_matches_oracle(mod):
    def scenario(m):
        holder = [m.socket(m.AF_INET, m.SOCK_DGRAM)]
        caught = _collect_warnings(holder.clear)
        # drop the fd number, which differs between the two runs
        return [(w.category.__name__, str(w.message).split(",", 2)[2])
                for w in caught]
    result = sockutil.assert_same(mod, scenario)
    assert result == ("ok", [("ResourceWarning",
                              " family=2, type=2, proto=0>")])


def test_warning_is_an_error_when_filtered(mod):
    # With -W error::ResourceWarning the finalizer cannot raise; the
    # exception goes to sys.unraisablehook and the fd is still closed.
    import sys
    seen = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_type)
    try:
        holder = [mod.socket()]
        fd = holder[0].fileno()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            holder.clear()
            gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert seen == [ResourceWarning]
    assert not sockutil.is_fd_open(fd)
