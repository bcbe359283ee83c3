"""Logging set-up: every record passes through the redactor, including the access log."""

from __future__ import annotations

import codecs
import json
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Iterator
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
    """Standard error, written by a thread of its own ("log-flush") in batches: what INFO lines (the access log)
    have gathered goes out at most ``interval`` seconds later, at once after any WARNING or worse, and on
    close (``logging.shutdown`` at exit, so a SIGTERM loses nothing). A write and a flush per line, with the
    server's threads contending for this handler's lock, cost a queued acceptance ~0.2 ms of CPU under load
    (a quarter of it; bench/results/issue15/notes.md item 5). A ``kill -9`` can lose the last ``interval``.

    Logging never waits for the stream: ``emit`` formats the line and appends it to a list under a lock no
    write ever holds, and only the writer thread blocks when nobody reads standard error (a stalled journald
    or docker log driver, a supervisor gone): the bridge keeps answering. Past ``limit`` characters waiting
    (4 Mi: some 20 000 access lines, seconds of a busy bridge's log; under 10 MB per process at worst) new
    lines are dropped and counted, and the writer, once the stream moves again, says how many and since
    when (the notice stands where the first line went missing). ``limit`` counts characters, not bytes.
    ``close`` waits at most ``drain_timeout`` seconds for a stream that does not move.

    Several processes (``--workers``) share one standard error: each write is whole lines, at most
    ``select.PIPE_BUF`` bytes (a longer line alone), the size a pipe writes whole, so no other process's
    bytes land inside a line (one big write to a pipe or a socket may be split and interleaved; to a file
    it measured no cheaper, so every descriptor is written alike). A line that
    cannot be written (a failing stream, an odd error) is counted as dropped and reported like the others;
    the writer survives it."""

    drain_timeout = 3.0  # under docker stop's 10 s, with room for the rest of the shutdown

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2, limit: int = 4 << 20) -> None:
        super().__init__(stream or sys.stderr)
        try:  # the file descriptor, written directly: sys.stderr's own lock and buffer stay out of it
            self._fd: int | None = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # no file descriptor (an in-memory stream): its write()
            self._fd = None
        self._encoding = getattr(self.stream, "encoding", None) or "utf-8"
        try:
            codecs.lookup(self._encoding)
        except LookupError:  # an encoding Python does not know: every batch would fail
            self._encoding = "utf-8"
        self.interval, self.limit = interval, limit
        self._lock = threading.Lock()  # the waiting lines and their counters; never held across a write
        self._written_cond = threading.Condition(self._lock)  # the writer finished a batch
        self._lines: list[str] = []
        self._size = 0  # characters not written yet (in _lines or being written), with their line ends
        self._queued = self._written = 0  # lines appended so far; lines of those written so far
        self._dropped, self._dropped_since = 0, 0.0
        self._gap = 0  # where in _lines the first dropped line would have been
        self._stuck = False  # a flush gave up on a stream that did not move, or a write failed (until one succeeds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._orphaned = False  # the writer thread ended before close (it should not): emit writes itself
        self._writer = threading.Thread(target=self._write_loop, name="log-flush", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``logging.Handler.handle`` without the handler's lock around ``emit``: ``emit`` takes its own, for
        an append (``logging.shutdown`` holds the handler's lock across ``flush`` and ``close``)."""
        rv = self.filter(record)
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:  # as StreamHandler: a broken record never breaks the caller
            self.handleError(record)
            return
        with self._lock:
            if self._size + len(line) < self.limit:
                self._lines.append(line)
                self._size += len(line) + 1
                self._queued += 1
            else:
                if not self._dropped:
                    self._dropped_since, self._gap = time.time(), len(self._lines)
                self._dropped += 1
        if record.levelno >= logging.WARNING:
            self._wake.set()
        if self._orphaned:  # best effort, rather than every line dropped from now on
            self._write_batch()

    def _write_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(self.interval)
                self._wake.clear()
                self._write_batch()
            self._write_batch()  # what came between the last batch and close
        finally:
            self._orphaned = not self._stop.is_set()

    def _write_batch(self) -> None:
        """Writes what waits; what cannot be written, whatever the error, is counted as dropped."""
        with self._lock:
            lines, self._lines = self._lines, []
            upto, dropped, since, gap = self._queued, self._dropped, self._dropped_since, self._gap
            self._dropped = 0
        taken = time.time()
        size = sum(map(len, lines)) + len(lines)  # still counted against the limit until written
        if dropped:  # where the gap is: after the lines gathered before it, before any line logged after it
            lines.insert(gap, self._dropped_notice(dropped, since))
        out = 0  # lines of the batch written
        try:
            for n in self._send(lines):
                out = n
        except Exception:  # closed, gone, or anything else: the writer must survive it
            pass
        lost, first = len(lines) - out, taken
        if dropped and gap >= out:  # the notice itself was not written: its lines are still to report
            lost, first = lost - 1 + dropped, since
        with self._lock:
            if lost:
                self._dropped_since = min(first, self._dropped_since) if self._dropped else first
                self._dropped += lost
                self._gap = 0  # before every line waiting now
            self._size -= size
            self._written = max(self._written, upto)
            self._stuck = bool(lost)  # a stream that failed (gone?): flush does not wait for it either
            self._written_cond.notify_all()

    def _dropped_notice(self, dropped: int, since: float) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
        record = logging.LogRecord("smsbridge.logs", logging.WARNING, __file__, 0,
                                   "logging: %d line(s) dropped since %s: standard error was not being read",
                                   (dropped, when), None)
        record.request_id = "-"
        try:
            return self.format(record)
        except Exception:  # a formatter that wants more than the usual fields
            return record.getMessage()

    def _send(self, lines: list[str]) -> Iterator[int]:
        """Writes ``lines``, yielding after each write how many of them are out."""
        if not lines:
            return
        if self._fd is None:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            yield len(lines)
            return
        chunk: list[bytes] = []
        size = 0
        for i, line in enumerate(lines):
            data = (line + "\n").encode(self._encoding, "backslashreplace")
            if chunk and size + len(data) > select.PIPE_BUF:
                self._write_all(b"".join(chunk))
                yield i
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        if chunk:
            self._write_all(b"".join(chunk))
            yield len(lines)

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:  # a descriptor someone made non-blocking: wait until it takes more
                select.select([], [self._fd], [])

    def flush(self) -> None:
        """Everything gathered, written now: waits for the writer, at most ``drain_timeout`` seconds (and not
        again once a flush found the stream stalled, until the stream moves)."""
        if self._orphaned:
            self._write_batch()
            return
        deadline = time.monotonic() + self.drain_timeout
        with self._lock:
            target = self._queued
            self._wake.set()
            while not self._stuck and (self._written < target or self._dropped):
                left = deadline - time.monotonic()
                if left <= 0 or not self._writer.is_alive():
                    self._stuck = True
                    break
                self._written_cond.wait(left)

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._wake.set()
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
