"""The one place errors become HTTP: typed errors (gateway/errors.py) map to a status, Infobip's messageId,
a text and validationErrors, which leave in the legacy or v3 envelope (gateway/wire/) in the caller's format.

Never a stack trace: Werkzeug's HTTP errors (404, 405, 413 ...) and anything unexpected leave in the same
envelopes.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ..errors import (
    BridgeError,
    Conflict,
    Forbidden,
    NotFound,
    Throttled,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamNonsense,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
    ValidationFailed,
)
from ..model import ApiError
from ..store.engine import UNREACHABLE
from ..wire.formats import JSON, XML
from ..wire.v3 import render_error_for

log = logging.getLogger("smsbridge")

_HTTP_IDS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
             413: "BAD_REQUEST", 414: "BAD_REQUEST", 429: "TOO_MANY_REQUESTS"}
# The first class in this list that an error is an instance of gives its status and messageId.
_STATUSES: list[tuple[type[BridgeError], int, str]] = [
    (ValidationFailed, 400, "BAD_REQUEST"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Throttled, 429, "TOO_MANY_REQUESTS"),
    (Forbidden, 403, "FORBIDDEN"),
    (NotFound, 404, "NOT_FOUND"),
    (Conflict, 409, "CONFLICT"),
    (Unavailable, 503, "SERVICE_UNAVAILABLE"),
    (UpstreamUnreachable, 503, "SERVICE_UNAVAILABLE"),  # nothing was sent: retry later
    (UpstreamTimeout, 504, "GATEWAY_TIMEOUT"),  # the outcome is unknown
    (UpstreamNonsense, 502, "BAD_GATEWAY"),
    (UpstreamError, 502, "BAD_GATEWAY"),
]


def api_error(err: BridgeError | ApiError) -> ApiError:
    """The HTTP view of an error: status, Infobip messageId, text, validationErrors (an ApiError as it is)."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, UpstreamRefused):  # the upstream's 400 and 429 are the caller's to act on; the rest ours
        if err.status == 400:
            return ApiError(400, "BAD_REQUEST", err.text, dict(err.errors))
        if err.status == 429:
            return ApiError(429, "TOO_MANY_REQUESTS", err.text)
        return ApiError(502, "BAD_GATEWAY", err.text)
    for kind, status, message_id in _STATUSES:
        if isinstance(err, kind):
            errors = dict(err.errors) if isinstance(err, ValidationFailed) else {}
            return ApiError(status, message_id, err.text, errors)
    return ApiError(500, "GENERAL_ERROR", err.text)


def _fmt() -> str:
    fmt = g.get("fmt")
    if fmt:
        return fmt
    return XML if request.path.endswith(".xml") else JSON


def install_error_handlers(app: Flask) -> None:
    """Every error leaves in Infobip's envelope, in the caller's format; never a stack trace."""

    @app.errorhandler(ApiError)
    @app.errorhandler(BridgeError)
    def _known(err: ApiError | BridgeError) -> Response:
        resp = render_error_for(request.path, api_error(err), _fmt())
        if isinstance(err, Throttled):
            resp.headers["Retry-After"] = str(int(err.retry_after) + 1)
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        text = {404: f"No such endpoint: {request.method} {request.path}",
                405: f"Method {request.method} is not allowed on {request.path}"}.get(code, exc.description or exc.name)
        resp = render_error_for(request.path, ApiError(code, _HTTP_IDS.get(code, "GENERAL_ERROR"), text), _fmt())
        if code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return resp

    def _store_unreachable(exc: Exception) -> Response:
        log.warning("store unreachable on %s %s: %s", request.method, request.path, type(exc).__name__)
        return render_error_for(request.path, api_error(Unavailable(
            "The bridge's store is unreachable right now; nothing was done: retry later")), _fmt())

    for kind in UNREACHABLE:
        app.register_error_handler(kind, _store_unreachable)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path, exc_info=exc)
        return render_error_for(request.path, ApiError(500, "GENERAL_ERROR", "Internal error; the incident was logged"),
                                _fmt())
