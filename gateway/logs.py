"""Logging set-up: every record passes through the redactor, including the access log."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from .redact import redact

ACCESS = logging.getLogger("smsbridge.access")


class RedactingFilter(logging.Filter):
    """Rewrites the formatted message of every record so no secret reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    root.setLevel(level.upper())


def install_access_log(app: Flask) -> None:
    """One line per request: method, redacted path and query, status, milliseconds."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(resp: Response) -> Response:
        if ACCESS.isEnabledFor(logging.INFO):
            qs = request.query_string.decode("latin-1")
            target = request.path + ("?" + qs if qs else "")
            ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            ACCESS.info("%s %s %s %.1fms", request.method, redact(target), resp.status_code, ms)
        return resp
