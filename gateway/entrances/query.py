"""``GET /sms/1/text/query[.json|.xml]``: Infobip's query API, spoken by legacy apps."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..services import bridge
from ..validate import Errors, validate_submission
from ..wire.formats import render
from ..wire.legacy import result_to_wire, submission_from_query
from .common import authenticate, begin, check_params
from .querystring import parse_query
from .replay import send, send_entrance

bp = Blueprint("query", __name__)

ADDRESS_PARAMS = frozenset({"to", "from"})


@bp.get("/sms/1/text/query", defaults={"ext": None})
@bp.get("/sms/1/text/query.<any(json,xml):ext>")
@send_entrance
def send_query(ext: str | None) -> Response:
    fmt = begin(ext)
    ctx = bridge()
    params = parse_query(request.query_string, ctx.config.server.default_charset)
    caller = authenticate(params, "query")
    errs = Errors()
    check_params(caller.hygiene, params, ADDRESS_PARAMS, errs)
    sub = submission_from_query(params, errs)
    sub.caller, sub.entrance = caller.name, "query"
    validate_submission(sub, caller.limits, flat=True, errs=errs)
    result, g.attempts = send(sub, caller.upstream_api, caller)
    return render(result_to_wire(result, include_sms_count=True), fmt, "send")
