"""The sandbox's test and demo control endpoints (not part of Infobip's API): what it received,
what it accepted, fault injection, its scheduler's counters, and a reset."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..model import ApiError
from .common import sandbox
from .faults import parse_faults

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
    """Replace the fault rules (gateway/sandbox/faults.py); ``{}`` clears them. Unknown keys are a 400."""
    raw = request.get_data()
    body: Any = request.get_json(force=True, silent=True) if raw.strip() else {}
    if body is None:
        raise ApiError.bad_request("body", "must be JSON: a fault rule, {\"rules\": [...]} or {}")
    rules = parse_faults(body)
    sandbox().state.faults.set(rules)
    return jsonify({"ok": True, "rules": sandbox().state.faults.show()})


@bp.get("/faults")
def show_faults() -> Response:
    return jsonify({"rules": sandbox().state.faults.show()})


@bp.get("/scheduler")
def scheduler() -> Response:
    """Jobs run per kind (report statuses and pushes, inbound pushes) and jobs still planned."""
    s = sandbox().scheduler
    return jsonify({"ran": dict(s.ran), "pending": s.pending()})


@bp.post("/reset")
def reset() -> Response:
    sandbox().reset()
    return jsonify({"ok": True})
