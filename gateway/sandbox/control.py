"""The sandbox's test and demo control endpoints (not part of Infobip's API): what it received,
what it accepted, fault injection, its scheduler's counters, and a reset."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import sandbox
from .state import Faults

bp = Blueprint("sandbox_control", __name__, url_prefix="/sandbox")


@bp.get("/requests")
def requests_seen() -> Response:
    state = sandbox().state
    with state.lock:
        return jsonify(list(state.requests))


@bp.get("/messages")
def messages_seen() -> Response:
    state = sandbox().state
    with state.lock:
        return jsonify(list(state.messages.values()))


@bp.post("/faults")
def set_faults() -> Response:
    body: dict[str, Any] = request.get_json(force=True, silent=True) or {}
    state = sandbox().state
    with state.lock:
        state.faults = Faults(
            status=body.get("status"), count=int(body.get("count", 0)), delay_ms=int(body.get("delay_ms", 0)),
        )
    return jsonify({"ok": True})


@bp.get("/scheduler")
def scheduler() -> Response:
    """Jobs run per kind (report statuses and pushes, inbound pushes) and jobs still planned."""
    s = sandbox().scheduler
    return jsonify({"ran": dict(s.ran), "pending": s.pending()})


@bp.post("/reset")
def reset() -> Response:
    sandbox().reset()
    return jsonify({"ok": True})
