"""smsbridge: legacy HTTP GET callers to the Infobip SMS API.

``create_app(config, upstream_url)`` is the app factory; ``upstream_url`` is where the upstream really
is (the embedded sandbox's address when ``upstream.base_url`` is ``sandbox``).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .clock import Clock, SystemClock
from .config import Config, ConfigError
from .logs import install_access_log
from .model import ApiError
from .services import KEY, build_services, compile_templates, url_policies
from .wire.formats import JSON, XML
from .wire.v3 import render_error_for

__all__ = ["compile_templates", "create_app", "url_policies"]  # app.py imports the two helpers from here

log = logging.getLogger("smsbridge")

_HTTP_IDS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
             413: "BAD_REQUEST", 414: "BAD_REQUEST", 429: "TOO_MANY_REQUESTS"}


def _fmt() -> str:
    fmt = g.get("fmt")
    if fmt:
        return fmt
    return XML if request.path.endswith(".xml") else JSON


def install_error_handlers(app: Flask) -> None:
    """Every error leaves in Infobip's envelope, in the caller's format; never a stack trace."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return render_error_for(request.path, err, _fmt())

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        text = {404: f"No such endpoint: {request.method} {request.path}",
                405: f"Method {request.method} is not allowed on {request.path}"}.get(code, exc.description or exc.name)
        resp = render_error_for(request.path, ApiError(code, _HTTP_IDS.get(code, "GENERAL_ERROR"), text), _fmt())
        if code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path, exc_info=exc)
        return render_error_for(request.path, ApiError(500, "GENERAL_ERROR", "Internal error; the incident was logged"),
                                _fmt())


def create_app(config: Config, upstream_url: str | None = None, clock: Clock | None = None) -> Flask:
    """The bridge's Flask app for ``config``; ``upstream_url`` overrides ``upstream.base_url``.

    Background workers are not started here: call ``app.extensions["smsbridge"].start()``.
    """
    url = upstream_url or config.upstream.base_url
    if url == "sandbox":
        raise ConfigError([("upstream.base_url", "is 'sandbox': start the sandbox and pass its URL")])
    app = Flask(__name__, template_folder="../templates", static_folder=None)  # the UI serves its own
    app.extensions[KEY] = build_services(config, url, clock or SystemClock())
    from .entrances import (
        advanced,
        bulks,
        conversion,
        inbound,
        messages,
        preview,
        pulls_v3,
        query,
        reports,
        templates,
    )
    from .entrances.ops import install_ops
    from .entrances.ui import install_ui

    for bp in (query.bp, templates.bp, advanced.bp, preview.bp, messages.bp, reports.bp, inbound.bp, conversion.bp,
               pulls_v3.bp, bulks.bp):
        app.register_blueprint(bp)
    install_ops(app)  # /healthz, /readyz, /metrics, /openapi.json, X-Request-Id
    install_ui(app, config)  # /ui/ when ui.enabled
    install_error_handlers(app)
    if config.logging.access_log:
        install_access_log(app)
    for w in config.warnings:
        log.warning(w)
    return app
