# Type stubs. swiftsocket has the API of CPython's `_socket`, which typeshed's
# `_socket.pyi` describes: re-export it, and add install().
from _socket import *
from _socket import (
    CAPI as CAPI,
    SocketType as SocketType,
    error as error,
    gaierror as gaierror,
    herror as herror,
    socket as socket,
    timeout as timeout,
)

def install() -> None:
    """Make swiftsocket the `_socket` module socket.py builds on (before `import socket`)."""
