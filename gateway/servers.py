"""Real HTTP servers (waitress) in threads: the bridge and the sandbox each get their own.

Legacy callers put raw bytes in the request line: unencoded spaces (``text=Hello world``), UTF-8 or
Latin-1 characters (curl -g with a pasted URL). Waitress answers those with a plain-text "Bad URI",
which the caller cannot act on. ``LenientParser`` percent-encodes such bytes in the request target
before waitress parses it, so they reach the strict query decoder, which names the parameter if the
bytes are not valid in the declared charset.
"""

from __future__ import annotations

import re
import socket
import threading

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server

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


class LenientChannel(HTTPChannel):
    parser_class = LenientParser


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


class ServerThread:
    """A waitress server on its own socket map and thread pool; ``port=0`` picks a free port, or
    ``sock`` (from ``listening_socket``) is the socket it serves."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
                 sock: socket.socket | None = None, **kw):
        where = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
        self.server = create_server(
            app, threads=threads, ident="smsbridge", clear_untrusted_proxy_headers=True,
            max_request_header_size=1 << 20, **where, **kw,
        )
        self.server.channel_class = LenientChannel  # type: ignore[union-attr]
        self.host = host
        self.port: int = self.server.effective_port  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, name=f"waitress-{self.port}", daemon=True)

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
        srv.task_dispatcher.shutdown(timeout=30)  # type: ignore[union-attr]
        if self.thread.is_alive():
            try:
                srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))  # type: ignore[union-attr]
            except OSError:  # the trigger is already closed: no worker is left, close from here
                wasyncore.close_all(srv._map)  # type: ignore[union-attr]
            self.thread.join(timeout=10)
