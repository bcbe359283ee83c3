"""Logging set-up: every record passes through the redactor, including the access log."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import MappingProxyType
from typing import TextIO

from flask import Flask, Response, g, has_request_context, request

from .redact import Masking, redact

ACCESS = logging.getLogger("smsbridge.access")
_REDACTED = MappingProxyType({"redacted": True})  # marker: this record's arguments are already redacted


class RedactingFilter(logging.Filter):
    """Rewrites the formatted message of every record so no secret (and, with ``masking``, no message
    text) reaches a handler."""

    def __init__(self, masking: Masking | None = None) -> None:
        super().__init__()
        self.masking = masking or Masking()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get("redacted"):  # the access log redacts its one variable part itself
            return True
        msg = record.getMessage()
        clean = redact(msg, self.masking)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's ``X-Request-Id``, or "-") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = (g.get("request_id") if has_request_context() else None) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error, handed to the OS in batches: what INFO lines (the access log) have gathered goes out at
    most ``interval`` seconds later (a background thread flushes it), at once with any WARNING or worse, and
    on close (``logging.shutdown`` at exit, so a SIGTERM loses nothing). A write and a flush per line, with
    the server's threads contending for this handler's lock, cost a queued acceptance ~0.2 ms of CPU under
    load (a quarter of it; bench/results/issue15/notes.md). A ``kill -9`` can lose the last ``interval``."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        base = stream or sys.stderr
        try:  # the same file, with a buffer of its own (sys.stderr writes every line through)
            own: TextIO = open(base.fileno(), "w", buffering=1 << 16, closefd=False,  # noqa: SIM115
                               encoding=getattr(base, "encoding", None) or "utf-8", errors="backslashreplace")
        except (AttributeError, OSError, ValueError):  # no file descriptor (an in-memory stream): as it is
            own = base
        super().__init__(own)
        self.interval = interval
        self._dirty = False
        self._closed = threading.Event()
        threading.Thread(target=self._flusher, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            self._dirty = True
            if record.levelno >= logging.WARNING:
                self._flush_now()
        except RecursionError:
            raise
        except Exception:  # as StreamHandler: a broken stream never breaks the caller
            self.handleError(record)

    def _flush_now(self) -> None:
        self._dirty = False
        try:
            self.stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing more to do
            pass

    def _flusher(self) -> None:
        while not self._closed.wait(self.interval):
            if self._dirty:
                self.flush()

    def flush(self) -> None:
        """Everything gathered, out now."""
        self.acquire()
        try:
            self._flush_now()
        finally:
            self.release()

    def close(self) -> None:
        self._closed.set()
        self.flush()
        super().close()


def configure(level: str = "INFO", fmt: str = "text", masking: Masking | None = None) -> None:
    """Root logging: one stream handler, redacted (texts masked per ``masking``), with the request id;
    ``fmt`` is text or json."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        root.addHandler(BatchingStreamHandler())
    for h in root.handlers:
        if fmt == "json":
            formatter: logging.Formatter = JsonFormatter()
            formatter.converter = time.gmtime
        else:
            formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        h.setFormatter(formatter)
        for f in [f for f in h.filters if isinstance(f, RedactingFilter)]:
            h.removeFilter(f)
        h.addFilter(RedactingFilter(masking))
        if not any(isinstance(f, RequestIdFilter) for f in h.filters):
            h.addFilter(RequestIdFilter())
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))  # its INFO lines are noise at every start


def install_access_log(app: Flask, masking: Masking | None = None) -> None:
    """One line per request: client address (the proxy's client when ``server.trusted_proxies`` trusts
    the peer), method, redacted path and query (texts masked per ``masking``; on a
    template route every template value), status, milliseconds."""
    masking = masking or Masking()

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(resp: Response) -> Response:
        if ACCESS.isEnabledFor(logging.INFO):
            qs = request.query_string.decode("latin-1")
            target = request.path + ("?" + qs if qs else "")
            ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            clean = redact(target, masking, mask_all=request.path.startswith("/t/"))
            ACCESS.info("%s %s %s %s %.1fms", request.remote_addr, request.method, clean, resp.status_code, ms,
                        extra=_REDACTED)
        return resp
