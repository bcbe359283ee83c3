"""The sandbox's v1/v2 send endpoints: ``GET /sms/1/text/query``, ``POST /sms/2/text/advanced``, and
``POST /sms/1/preview``."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from ..entrances.querystring import parse_query
from ..model import ApiError
from ..wire.formats import render
from ..wire.legacy import result_to_wire, submission_from_advanced, submission_from_query
from ..wire.preview import preview_body
from .common import accept, authenticate

bp = Blueprint("sandbox_send", __name__)


@bp.get("/sms/1/text/query", defaults={"ext": None})
@bp.get("/sms/1/text/query.<any(json,xml):ext>")
def query(ext: str | None) -> Response:
    params = parse_query(request.query_string)
    g.auth = authenticate(params.get("username"), params.get("password"))
    sub = submission_from_query(params)
    sub.entrance = "query"
    return render(result_to_wire(accept(sub), include_sms_count=True), g.fmt, "send")


@bp.post("/sms/2/text/advanced", defaults={"ext": None})
@bp.post("/sms/2/text/advanced.<any(json,xml):ext>")
def advanced(ext: str | None) -> Response:
    g.auth = authenticate()
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise ApiError.bad_request("body", "must be JSON")
    sub = submission_from_advanced(body)
    return render(result_to_wire(accept(sub), sub.include_sms_count), g.fmt, "send")


@bp.post("/sms/1/preview")
def preview() -> Response:
    authenticate()
    return jsonify(preview_body(request.get_json(force=True, silent=True)))
