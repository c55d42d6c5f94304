"""swiftsocket: CPython's ``_socket`` extension module, rewritten in Swift.

This package exposes the same names as the stdlib ``_socket`` module
(``socket``, ``socketpair``, ``getaddrinfo``, ``error``, ``timeout``,
``AF_*``, ``SOCK_*``, ``SOL_*``, ``SO_*``, ``IPPROTO_*``, ``MSG_*`` ...), all
implemented by the native module ``swiftsocket._swiftsocket``, whose socket
logic is written in Swift.

To run the stdlib's ``socket.py`` (and everything built on it: ``socketserver``,
``http``, ``urllib``, ``asyncio`` ...) on top of it, call :func:`install`
before the first ``import socket``::

    import swiftsocket
    swiftsocket.install()
    import socket          # socket._socket is now swiftsocket

Benchmark against the stdlib with ``python -m swiftsocket bench``.
"""

import sys as _sys

from . import _swiftsocket
from ._swiftsocket import *  # noqa: F401,F403

# Re-export every name of the native module (private ones such as ``CAPI``
# or ``_GLOBAL_DEFAULT_TIMEOUT`` included), not only what ``import *`` gives.
_native_names = [_n for _n in dir(_swiftsocket) if not _n.startswith("__")]
for _n in _native_names:
    globals()[_n] = getattr(_swiftsocket, _n)

# What ``from swiftsocket import *`` -- and therefore socket.py's
# ``from _socket import *`` and ``os._get_exports_list(_socket)`` -- sees:
# the native module's public names, without this package's own helpers.
__all__ = [_n for _n in _native_names if not _n.startswith("_")]
del _n, _native_names


def _is_ours(mod):
    return mod is _sys.modules.get(__name__) or mod is _swiftsocket


def install():
    """Make swiftsocket the ``_socket`` module the stdlib ``socket`` builds on.

    Puts this module into ``sys.modules['_socket']`` so that a later
    ``import socket`` binds ``socket._socket`` to swiftsocket.  Must be called
    before the first ``import socket`` in the process (directly or through a
    module such as ``ssl``, ``asyncio``, ``http.client`` or ``urllib``);
    otherwise ``RuntimeError`` is raised.  Calling it again once installed is
    a no-op.  Returns this module.
    """
    this = _sys.modules[__name__]
    stdsock = _sys.modules.get("socket")
    if stdsock is not None:
        if _is_ours(getattr(stdsock, "_socket", None)):
            _sys.modules["_socket"] = this
            return this
        raise RuntimeError(
            "swiftsocket.install() was called after the stdlib 'socket' module "
            "had already been imported (socket._socket is %r), so socket.py is "
            "already bound to the C _socket module. Call swiftsocket.install() "
            "before the first 'import socket' -- also before importing modules "
            "that import socket (ssl, asyncio, http.client, urllib.request, "
            "socketserver, ...)." % (getattr(stdsock, "_socket", None),)
        )
    if _is_ours(_sys.modules.get("_socket")):
        _sys.modules["_socket"] = this
        return this
    if "_ssl" in _sys.modules:
        raise RuntimeError(
            "swiftsocket.install() was called after '_ssl' had been imported: "
            "_ssl has already bound the C _socket module's CAPI, so TLS would "
            "reject swiftsocket sockets. Call swiftsocket.install() before "
            "importing ssl (or anything that imports it)."
        )
    _sys.modules["_socket"] = this
    return this
