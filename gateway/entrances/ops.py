"""Operations: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics`` (Prometheus), the request
id, and ``/openapi.json``.

``install_ops(app)`` wires the per-request hooks: an ``X-Request-Id`` (the caller's, if it is a short
token, else a fresh one) kept in ``g.request_id`` for logs and records and echoed in the response, and
the request counter. Both cost a few microseconds per request.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import requests
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from ..metrics import CONTENT_TYPE, Metrics
from ..model import ApiError
from ..services import bridge
from ..store import probe
from .openapi import spec_for

bp = Blueprint("ops", __name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def metrics() -> Metrics:
    return current_app.extensions["smsbridge.metrics"]


def install_ops(app: Flask) -> None:
    """Register the ops blueprint, the metrics, and the request-id / request-count hooks."""
    ctx = app.extensions["smsbridge"]
    m = Metrics(ctx.outbox, ctx.store, ctx.throttle, ctx.idempotency, ctx.db, ctx.queue.pacer)
    app.extensions["smsbridge.metrics"] = m
    ctx.sender.observers.append(m.observe_send)
    app.register_blueprint(bp)

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id") or secrets.token_hex(8)
        m.observe_request(request.blueprint or "none", resp.status_code)
        return resp


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers HTTP."""
    return jsonify(status="ok")


def _check_database() -> dict[str, Any]:
    ctx = bridge()
    started = time.perf_counter()
    try:
        probe.touch(ctx.db, ctx.clock.now())  # a real write: proves the file and its folder are writable
    except Exception as exc:  # any failure means not ready; the type says why
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_upstream() -> dict[str, Any]:
    """Reachable = any HTTP answer from the upstream's base URL (no credentials are sent)."""
    ctx = bridge()
    up = ctx.sender.upstream
    started = time.perf_counter()
    try:
        resp = requests.head(up.base_url + "/", timeout=ctx.config.ops.ready_upstream_timeout,
                             allow_redirects=False)
    except requests.RequestException as exc:
        return {"ok": False, "host": up.host, "error": type(exc).__name__}
    return {"ok": True, "host": up.host, "status": resp.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1)}


def _check_outbox() -> dict[str, Any]:
    ctx = bridge()
    depth, limit = ctx.outbox.depth(), ctx.config.ops.ready_outbox_max
    age = ctx.outbox.oldest_age()
    return {"ok": depth <= limit, "depth": depth, "max": limit,
            "oldestAgeSeconds": round(age, 3) if age is not None else None}


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: database writable, upstream reachable, outbox backlog under its threshold."""
    checks = {"database": _check_database(), "upstream": _check_upstream(), "outbox": _check_outbox()}
    ready = all(c["ok"] for c in checks.values())
    resp = jsonify(status="ready" if ready else "not ready", checks=checks)
    resp.status_code = 200 if ready else 503
    return resp


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    if not bridge().config.ops.metrics:
        raise ApiError(404, "NOT_FOUND", "Metrics are switched off (ops.metrics)")
    return Response(metrics().exposition(), content_type=CONTENT_TYPE)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(spec_for(current_app))
