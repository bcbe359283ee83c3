"""The outbox's HTTP transport checks the address it actually connected to (no DNS-rebinding window).

``UrlPolicy.check`` resolves a name before a job is queued and before each attempt; the connection
then resolves it again. :class:`GuardedAdapter` closes the gap: once a socket is connected (and before
each request on a reused one) the peer address is checked with the caller's policy (set for the
duration of one request by :func:`using_policy`) and with the process's own ports, which no caller may
reach whatever its allow-list says. A refused peer raises :class:`UrlNotAllowed` before a byte is sent.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .urlpolicy import UrlPolicy

_policy: ContextVar[UrlPolicy | None] = ContextVar("smsbridge_url_policy", default=None)
_INSIDE_ONLY = UrlPolicy(allow_public=True, allow_loopback=True, allow_private=True)


@contextlib.contextmanager
def using_policy(policy: UrlPolicy | None) -> Iterator[None]:
    """Check every connection made in this block with ``policy`` (None: only the process's own ports)."""
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def _verify(host: str, sock: socket.socket | None) -> None:
    """Raise :class:`UrlNotAllowed` (closing ``sock``) unless its peer may be talked to for ``host``."""
    if sock is None:
        return
    peer = sock.getpeername()
    policy = _policy.get() or _INSIDE_ONLY
    try:
        policy.check_peer(host, str(peer[0]), int(peer[1]))
    except Exception:
        sock.close()
        raise


class _Checked:
    host: str
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]  # TCP connected; for HTTPS, before any TLS byte
        _verify(str(self.host), sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a reused connection: checked again for this request's policy
            try:
                _verify(str(self.host), self.sock)
            except Exception:
                self.sock = None
                raise
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_Checked, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Checked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections are checked after connect (see the module docstring)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
