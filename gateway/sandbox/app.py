"""The sandbox's Flask app: Infobip's endpoints as blueprints, plus test-only control endpoints."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ..config import SandboxSettings
from ..model import ApiError
from ..validate import Limits
from ..wire.formats import JSON, XML, negotiate
from ..wire.v3 import render_error_for
from . import account, control, inbound, reports, send, v3
from .common import KEY, sandbox
from .faults import DROP_KEY, Dropper
from .services import build_sandbox


def _fault() -> Response | None:
    """Apply the injected fault for this request, if any (gateway/sandbox/faults.py)."""
    f = sandbox().state.take_fault(request.path)
    if f is None:
        return None
    if f.delay_ms:
        time.sleep(f.delay_ms / 1000)  # simulated upstream latency, not test synchronisation
    if f.drop:
        request.environ[DROP_KEY] = f.drop
        return Response(b"") if f.drop == "request" else None  # "request": never handled
    if f.status:
        code = "TOO_MANY_REQUESTS" if f.status == 429 else "GENERAL_ERROR"
        resp = render_error_for(request.path, ApiError(f.status, code, "Injected fault"), g.fmt)
        resp.status_code = f.status
        if f.retry_after is not None or f.status == 429:
            resp.headers["Retry-After"] = str(1 if f.retry_after is None else f.retry_after)
        return resp
    return None


def _begin() -> Response | None:
    """Negotiate the format; record every API request (not the control ones) and apply injected faults."""
    ext = request.path.rsplit(".", 1)[1] if request.path.endswith((".xml", ".json")) else None
    g.fmt = negotiate(request, ext)
    if request.path.startswith("/sandbox/"):
        return None
    sandbox().state.record(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "json": request.get_json(silent=True) if request.is_json else None,
            "auth": request.headers.get("Authorization", "").partition(" ")[0] or None,
            "userAgent": request.headers.get("User-Agent"),
        }
    )
    return _fault()


def _api_error(err: ApiError) -> Response:
    return render_error_for(request.path, err, g.get("fmt", JSON))


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    fmt = g.get("fmt") or (XML if request.path.endswith(".xml") else JSON)
    return render_error_for(request.path, ApiError(
        code, {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(code, "BAD_REQUEST"), exc.description or exc.name
    ), fmt)


def create_sandbox_app(settings: SandboxSettings | None = None, limits: Limits | None = None,
                       inbound_url: str | None = None) -> Flask:
    """The sandbox for ``settings``; injected inbound messages are pushed to ``inbound_url`` (default:
    ``settings.inbound_url``; "" = pull only). Stop its scheduler with ``app.extensions["sandbox"].stop()``."""
    settings = settings or SandboxSettings()
    app = Flask("smsbridge-sandbox")
    app.extensions[KEY] = build_sandbox(settings, limits or Limits(max_destinations=100000),
                                        settings.inbound_url if inbound_url is None else inbound_url)
    app.before_request(_begin)
    for bp in (send.bp, reports.bp, v3.bp, inbound.bp, control.bp, account.bp):
        app.register_blueprint(bp)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.wsgi_app = Dropper(app.wsgi_app)  # type: ignore[method-assign]
    return app
