"""Real HTTP servers (waitress) in threads: the bridge and the sandbox each get their own.

Legacy callers put raw bytes in the request line: unencoded spaces (``text=Hello world``), UTF-8 or
Latin-1 characters (curl -g with a pasted URL). Waitress answers those with a plain-text "Bad URI",
which the caller cannot act on. ``LenientParser`` percent-encodes such bytes in the request target
before waitress parses it, so they reach the strict query decoder, which names the parameter if the
bytes are not valid in the declared charset.

Slow clients cannot starve the server (:class:`Limits`): waitress reads requests in its event loop and
hands only complete ones to the worker threads, so a slow client costs a socket, not a thread. What it
must not cost is the connection limit: a client that takes longer than ``request_timeout`` to send one
whole request (half-sent headers, a trickled body) is disconnected, whatever it still trickles, and
idle keep-alive connections close after ``idle_timeout``. Sockets are polled (``poll``, not ``select``,
which fails past descriptor 1024).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from dataclasses import dataclass

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server

from .delivery.urlpolicy import register_inside, unregister_inside

_LINE = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (.+?)(?: (HTTP/[0-9]\.[0-9]))?$", re.S)
_UNSAFE = re.compile(rb"[\x80-\xff ]")


def lenient_request_line(line: bytes) -> bytes:
    """``GET /a b?x=ü HTTP/1.1`` -> ``GET /a%20b?x=%C3%BC HTTP/1.1``; other lines unchanged."""
    m = _LINE.match(line)
    if not m or not _UNSAFE.search(m.group(2)):
        return line
    target = _UNSAFE.sub(lambda c: b"%%%02X" % c.group(0)[0], m.group(2))
    return b" ".join(p for p in (m.group(1), target, m.group(3)) if p)


class LenientParser(HTTPRequestParser):
    def parse_header(self, header_plus: bytes) -> None:
        first, sep, rest = header_plus.partition(b"\r\n")
        if not sep:
            first, sep, rest = header_plus.partition(b"\n")
        super().parse_header(lenient_request_line(first) + sep + rest)


@dataclass(frozen=True)
class Limits:
    """How much a client may hold (see the module docstring); the defaults are config.yaml's."""

    connection_limit: int = 1000
    request_timeout: float = 15.0
    idle_timeout: float = 60.0
    max_request_bytes: int = 8 << 20
    max_header_bytes: int = 1 << 20  # legacy GETs carry whole texts in the URL


class LenientChannel(HTTPChannel):
    """Lenient request lines, and the time the request being read began (None between requests)."""

    parser_class = LenientParser
    request_began: float | None = None

    def received(self, data: bytes) -> bool:
        if self.request_began is None and data:
            self.request_began = time.monotonic()
        taken = super().received(data)
        if self.request is None:  # nothing half-read is left: the next request's clock starts with its bytes
            self.request_began = None
        return taken

    def writable(self) -> bool:
        """Not while a task thread holds the output lock: waitress would ask poll() for POLLOUT, find the lock
        taken and ask again at once, spinning the main loop (under load 7.7 loop passes per request instead
        of 0.5, each over every channel) until the task thread got the GIL back. That thread flushes what it
        writes itself and wakes the loop when anything is left (:meth:`write_soon`, and after each request)."""
        if self.total_outbufs_len and self.requests and not (self.will_close or self.close_when_flushed):
            if not self.outbuf_lock.acquire(False):
                return False
            self.outbuf_lock.release()
        return bool(super().writable())

    def write_soon(self, data: bytes) -> int:
        n = super().write_soon(data)
        if self.total_outbufs_len:  # left for the main loop: wake it now that the output lock is free
            self.server.pull_trigger()
        return n


def _close_slow(server, timeout: float) -> None:
    """Run waitress's own maintenance (idle channels) and drop channels whose request is overdue."""
    plain = server.maintenance

    def maintenance(now: float) -> None:
        plain(now)
        overdue = time.monotonic() - timeout
        for channel in list(server.active_channels.values()):
            began = getattr(channel, "request_began", None)
            if began is not None and began < overdue:
                channel.will_close = True

    server.maintenance = maintenance


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0 picks a free port) for ``ServerThread(sock=…)``: the
    server's address is known before its app is built."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


class HeldBack(logging.Filter):
    """One record through per ``interval`` seconds; the next one to pass says how many were held back.

    Waitress warns "Task queue depth is N" for every request that finds all threads busy: under a burst,
    hundreds of lines a second that bury everything else (and each WARNING is flushed at once). The first
    says the bridge is saturated; the count says how long it stayed so."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return False
            held, self._held, self._next = self._held, 0, now + self.interval
        if held:
            record.msg = f"{record.msg} ({held} more such warning(s) held back in the last {self.interval:g} s)"
        return True


def _hold_back_queue_warnings() -> None:
    queue_log = logging.getLogger("waitress.queue")
    if not any(isinstance(f, HeldBack) for f in queue_log.filters):
        queue_log.addFilter(HeldBack())


class ServerThread:
    """A waitress server on its own socket map and thread pool; ``port=0`` picks a free port, or
    ``sock`` (from ``listening_socket``) is the socket it serves."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
                 sock: socket.socket | None = None, limits: Limits | None = None, **kw):
        where = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
        lim = limits or Limits()
        kw.setdefault("clear_untrusted_proxy_headers", True)  # the bridge passes False: gateway/proxies.py decides
        self.server = create_server(
            app, threads=threads, ident="smsbridge",
            max_request_header_size=lim.max_header_bytes, max_request_body_size=lim.max_request_bytes,
            connection_limit=lim.connection_limit, channel_timeout=max(1, round(lim.idle_timeout)),
            cleanup_interval=max(1, round(min(lim.request_timeout, lim.idle_timeout) / 4)), asyncore_use_poll=True,
            **where, **kw,
        )
        self.server.channel_class = LenientChannel  # type: ignore[union-attr]
        _hold_back_queue_warnings()
        _close_slow(self.server, lim.request_timeout)
        self.host = host
        self.port: int = self.server.effective_port  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, name=f"waitress-{self.port}", daemon=True)
        register_inside(int(self.port))  # no caller's URL may reach this server (gateway/delivery/urlpolicy.py)

    @staticmethod
    def url_of(host: str, port: int) -> str:
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self.url_of(self.host, self.port)

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Finish in-flight requests, then close every socket from inside waitress's loop thread.

        The order matters: a worker still writing after its sockets were closed from another thread
        would use a file descriptor number that may already belong to something else (a SQLite file).
        """
        srv = self.server
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        unregister_inside(int(self.port))
        srv.task_dispatcher.shutdown(timeout=30)  # type: ignore[union-attr]
        if self.thread.is_alive():
            try:
                srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))  # type: ignore[union-attr]
            except OSError:  # the trigger is already closed: no worker is left, close from here
                wasyncore.close_all(srv._map)  # type: ignore[union-attr]
            self.thread.join(timeout=10)
