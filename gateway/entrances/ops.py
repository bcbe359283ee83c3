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

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from ..config import Config
from ..metrics import CONTENT_TYPE, Metrics, ReplyLoopCollector
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
    m = Metrics(ctx.outbox, ctx.store, ctx.throttle, ctx.idempotency, ctx.db, ctx.sender.upstreams, ctx.queue.pacer)
    app.extensions["smsbridge.metrics"] = m
    m.registry.register(ReplyLoopCollector(ctx.router.loops))  # auto-replies suppressed (inbound/loops.py)
    ctx.sender.observers.append(m.observe_send)
    app.register_blueprint(bp)

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id") or secrets.token_hex(8)
        started = g.get("started")
        m.observe_request(request.blueprint or "none", resp.status_code,
                          None if started is None else time.perf_counter() - started)
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
    """Each upstream probed with a real authenticated request (its account balance): healthy only on a 2xx
    answer; a 401/403 (the bridge's key refused) or a 404 (not Infobip's API) is not. ``ok``: one is healthy.
    The first's result is repeated at the top (``host``, ``status``, ``ms``) as before failover."""
    ctx = bridge()
    timeout = ctx.config.ops.ready_upstream_timeout
    each = []
    for route in ctx.sender.upstreams.routes:
        found = route.client.check(timeout)
        each.append({"name": route.name, "host": route.client.host, "circuit": route.breaker.state, **found})
    return {**each[0], "ok": any(u["ok"] for u in each), "upstreams": each}


def _check_outbox() -> dict[str, Any]:
    ctx = bridge()
    limit = ctx.config.ops.ready_outbox_max
    try:
        depth, age = ctx.outbox.depth(), ctx.outbox.oldest_age()
    except Exception as exc:  # the store does not answer: not ready, the type says why
        return {"ok": False, "error": type(exc).__name__, "max": limit}
    return {"ok": depth <= limit, "depth": depth, "max": limit,
            "oldestAgeSeconds": round(age, 3) if age is not None else None}


def stores_and_forwards(config: Config) -> bool:
    """Can this bridge accept sends while every upstream is down? Yes when a caller or template is queued,
    or a sync one hands an upstream failure over to the queue (``on_upstream_failure: queue``)."""
    callers = config.callers.values()
    return any(c.mode == "queued" or c.on_upstream_failure == "queue" for c in callers) or any(
        t.mode == "queued" or t.on_upstream_failure == "queue" for t in config.templates.values())


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: database writable, outbox backlog under its threshold, an upstream healthy.

    Every upstream down does not take a bridge that stores and forwards out of the load balancer (that is
    when its queue is needed): it stays ready (200), ``degraded``, with the reason; a bridge that can only
    answer sync (every caller ``on_upstream_failure: fail``) is not ready (503). The checks are shared for
    ``ops.ready_cache`` seconds: anyone may ask (no login), and each answer would otherwise cost a database write
    and an authenticated upstream request (a flood of probes must not spend the account's rate or the
    database's fsyncs that the sends need)."""
    checks = bridge().ready.get(
        lambda: {"database": _check_database(), "upstream": _check_upstream(), "outbox": _check_outbox()})
    ready = checks["database"]["ok"] and checks["outbox"]["ok"]
    reasons = [f"{name} check failed" for name in ("database", "outbox") if not checks[name]["ok"]]
    status = "ready" if ready else "not ready"
    up = checks["upstream"]
    if not up["ok"]:
        down = ", ".join(f"{u['name']} ({u.get('error') or 'HTTP ' + str(u.get('status'))})" for u in up["upstreams"])
        if ready and stores_and_forwards(bridge().config):
            status = "degraded"
            reasons.append(f"no upstream is healthy: {down}; sends are accepted into the queue and forwarded "
                           "when one recovers")
        else:
            ready, status = False, "not ready"
            reasons.append(f"no upstream is healthy: {down}; every caller answers sync "
                           "(on_upstream_failure: fail)" if not reasons else f"no upstream is healthy: {down}")
    elif any(not u["ok"] for u in up["upstreams"]) and ready:
        status = "degraded"
        reasons.append("upstream " + ", ".join(u["name"] for u in up["upstreams"] if not u["ok"])
                       + " failing: sends go to the next healthy one")
    resp = jsonify(status=status, checks=checks, **({"reasons": reasons} if reasons else {}))
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
