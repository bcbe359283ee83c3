"""A fast loopback receiver for relayed delivery reports (scenario g): asyncio, HTTP/1.1 keep-alive.

Every request other than ``GET /count`` is answered ``200 OK`` (empty body) and its reports are
counted with its arrival time: the items of a ``{"results": [...]}`` JSON body or the ``<result>``
elements of an XML one (the bridge sends several reports per push), else one per request.
``GET /count`` answers ``{"count", "first", "last", "requests"}`` (``time.time()`` seconds) and
``POST /reset`` sets the counts back to zero. No framework: a report should cost the receiver far
less than it costs the bridge, so that the figure is the bridge's.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"


@dataclass
class Counter:
    count: int = 0
    requests: int = 0
    first: float | None = None
    last: float | None = None

    def hit(self, body: bytes) -> None:
        now = time.time()
        self.count += reports_in(body)
        self.requests += 1
        self.first = self.first or now
        self.last = now


def reports_in(body: bytes) -> int:
    """How many delivery reports a pushed body carries (at least one per request)."""
    if body.lstrip().startswith(b"<"):
        return max(1, body.count(b"<result>"))
    try:
        results = json.loads(body).get("results")
    except (ValueError, AttributeError):
        return 1
    return len(results) if isinstance(results, list) and results else 1


async def _handle(counter: Counter, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            if path.startswith("/count"):
                body = json.dumps({"count": counter.count, "first": counter.first, "last": counter.last,
                                   "requests": counter.requests}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            elif path.startswith("/reset") and method == "POST":
                counter.count, counter.requests, counter.first, counter.last = 0, 0, None, None
                writer.write(OK)
            else:
                counter.hit(body)
                writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(ready: asyncio.Future[str], stop: asyncio.Event) -> None:
    """Listen on 127.0.0.1 (ephemeral port); ``ready`` gets the URL; serve until ``stop`` is set."""
    counter = Counter()
    server = await asyncio.start_server(lambda r, w: _handle(counter, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ready.set_result(f"http://127.0.0.1:{port}")
    async with server:
        await stop.wait()
