"""Signals during blocking calls (PEP 475).

A SIGALRM from setitimer interrupts a blocking call in the main thread:
if the Python handler raises, the exception propagates out of the call;
if it returns, the call is retried and completes normally.  Helper threads
block SIGALRM (see sockutil.block_test_signals) so the signal reaches the
main thread.
"""

import signal
import time

import _socket

import pytest

import sockutil
from sockutil import ALARM_AT, IO_TIMEOUT, Alarm, Elapsed, Watchdog, start_worker

def _blocking_call(name, sock, peer):
    if name == "recv":
        return lambda: sock.recv(100)
    if name == "recv_into":
        return lambda: sock.recv_into(bytearray(100))
    if name == "_accept":
        return lambda: sock._accept()
    raise AssertionError(name)


def _setup(mod, track, name):
    if name == "_accept":
        lsock = sockutil.listener(mod, track)
        return lsock, None
    return sockutil.client_pair(mod, track)


@pytest.mark.parametrize("name", ["recv", "recv_into", "_accept"])
@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
def test_handler_exception_propagates(mod, track, alarm, name, timeout):
    sock, peer = _setup(mod, track, name)
    sock.settimeout(timeout)
    call = _blocking_call(name, sock, peer)
    with Watchdog(IO_TIMEOUT, sock):
        calls = alarm(True)
        with Elapsed() as el:
            with pytest.raises(Alarm) as info:
                call()
    assert str(info.value) == "alarm 1"
    assert len(calls) == 1
    assert ALARM_AT * 0.5 <= el.seconds < 3.0
    # the socket still works after the interrupted call
    if peer is not None:
        sock.settimeout(IO_TIMEOUT)
        peer.sendall(b"still alive")
        assert sockutil.recv_exactly(sock, 11) == b"still alive"


@pytest.mark.parametrize("name", ["recv", "recv_into"])
@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
def test_handler_returns_call_is_retried(mod, track, alarm, name, timeout):
    sock, peer = _setup(mod, track, name)
    sock.settimeout(timeout)

    sent_at = []

    def send_later():
        time.sleep(ALARM_AT + 0.4)
        sent_at.append(time.monotonic())
        peer.sendall(b"after the signal")

    with Watchdog(IO_TIMEOUT, sock):
        calls = alarm(False)
        w = start_worker(send_later)
        with Elapsed() as el:
            if name == "recv":
                data = sock.recv(100)
            else:
                buf = bytearray(100)
                n = sock.recv_into(buf)
                data = bytes(buf[:n])
        w.finish()
    assert len(calls) == 1, "the signal handler did not run"
    assert data and b"after the signal".startswith(data)
    # recv() must not have returned before the data was sent
    assert el.seconds >= ALARM_AT + 0.3
    assert calls[0] - el.start >= ALARM_AT * 0.5
    # The handler ran while recv was blocked (EINTR -> run handlers ->
    # retry), not deferred until after the data arrived.
    assert calls[0] < sent_at[0]


def test_handler_returns_accept_is_retried(mod, track, alarm):
    lsock = sockutil.listener(mod, track)
    addr = lsock.getsockname()
    client = track(_socket.socket())
    client.settimeout(IO_TIMEOUT)

    connected_at = []

    def connect_later():
        time.sleep(ALARM_AT + 0.4)
        connected_at.append(time.monotonic())
        client.connect(addr)

    with Watchdog(IO_TIMEOUT, lsock):
        calls = alarm(False)
        w = start_worker(connect_later)
        with Elapsed() as el:
            fd, peer_addr = lsock._accept()
        w.finish()
    track(_socket.socket(fileno=fd))
    assert len(calls) == 1
    assert peer_addr == client.getsockname()
    assert el.seconds >= ALARM_AT + 0.3
    assert calls[0] < connected_at[0]


def test_handler_returns_timeout_still_expires(mod, track, alarm):
    # PEP 475: the retried call uses the *remaining* timeout.
    client, peer = sockutil.client_pair(mod, track)
    client.settimeout(1.0)
    calls = alarm(False)
    with Elapsed() as el:
        with pytest.raises(TimeoutError) as info:
            client.recv(100)
    assert str(info.value) == "timed out"
    assert len(calls) == 1
    assert calls[0] - el.start < 0.9   # ran during recv, not after it
    assert 0.9 <= el.seconds <= 3.5


def test_handler_exception_during_sendall(mod, track, alarm):
    client, peer = sockutil.client_pair(mod, track, sndbuf=4096, rcvbuf=4096)
    client.settimeout(None)
    with Watchdog(IO_TIMEOUT, client):
        calls = alarm(True)
        with pytest.raises(Alarm):
            client.sendall(b"\0" * (32 * 1024 * 1024))
    assert len(calls) == 1
