"""``GET /account/1/balance``: Infobip's account balance, the cheap authenticated call the bridge probes an
upstream with (its readiness check and its circuit breaker's half-open probe)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .common import authenticate

bp = Blueprint("sandbox_account", __name__)


@bp.get("/account/1/balance")
def balance() -> Response:
    authenticate()
    return jsonify(balance=100.0, currency="EUR")
