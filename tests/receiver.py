"""A real HTTP receiver for delivery tests: waitress on 127.0.0.1 in a daemon thread.

It records every request and answers ``status`` (default 200); ``fail_first`` makes the first N
requests answer ``fail_status`` (500) instead; ``delay`` holds each answer that many seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import waitress
from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


class Receiver:
    def __init__(self, status: int = 200, fail_first: int = 0, fail_status: int = 500, delay: float = 0.0) -> None:
        self.status = status
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | MultiSocketServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        with self._lock:
            n = len(self.requests)
            self.requests.append(
                Received(environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""),
                         headers, body, time.monotonic())
            )
            status = self.fail_status if n < self.fail_first else self.status
        if self.delay:
            time.sleep(self.delay)  # simulating a slow server, not synchronising the test
        start_response(f"{status} X", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    def start(self, port: int = 0) -> Receiver:
        self._server = waitress.create_server(self, host="127.0.0.1", port=port, threads=8)
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Shut down cleanly: finish in-flight requests, then close every socket in the loop thread.

        (Closing waitress's sockets from another thread while requests are in flight lets a late
        worker write to a closed file descriptor number, which a later test may have reused for a
        SQLite file.)
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.task_dispatcher.shutdown(timeout=30)  # worker threads finish their current request
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # type: ignore[union-attr]
        if self._thread is not None:
            self._thread.join(10)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)
