"""``GET /sms/1/text/query[.json|.xml]``: Infobip's query API, spoken by legacy apps."""

from __future__ import annotations

from flask import Blueprint, Response, g

from .. import accepts
from ..model import Submission
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..validate import Errors
from ..wire.formats import render
from ..wire.legacy import result_to_wire, submission_from_query
from .common import authenticate, begin, check_known, check_params, finish_rejected, request_params
from .querystring import QueryParams
from .replay import send, send_entrance

bp = Blueprint("query", __name__)

ADDRESS_PARAMS = frozenset({"to", "from"})
KNOWN_PARAMS = accepts.QUERY  # one table with the URL builder (gateway/accepts.py)


def _custom_id(params: QueryParams, sub: Submission, errs: Errors) -> None:
    """``messageId=``: the caller's own id for a single destination."""
    mid = params.get("messageId")
    if not mid:
        return
    dests = [d for m in sub.messages for d in m.destinations]
    if len(dests) != 1:
        errs.add("messageId", f"names one message: give exactly one destination in to, not {len(dests)}")
        return
    dests[0].message_id = mid


@bp.get("/sms/1/text/query", defaults={"ext": None})
@bp.get("/sms/1/text/query.<any(json,xml):ext>")
@send_entrance
def send_query(ext: str | None) -> Response:
    fmt = begin(ext)
    params = request_params()  # GET only: the query string, decoded once (shared with the send guard)
    caller = authenticate(params, "query")
    errs = Errors()
    check_known(params, KNOWN_PARAMS, errs)
    check_params(caller.hygiene, params, ADDRESS_PARAMS, errs)
    sub = submission_from_query(params, errs)
    _custom_id(params, sub, errs)
    sub.caller, sub.entrance = caller.name, "query"
    policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
    rejected = split_invalid(sub, caller.limits, flat=True, policy=policy)  # one bad destination never cancels the rest
    validate_rest(sub, caller.limits, rejected, flat=True, errs=errs, policy=policy)
    result, g.attempts = send(sub, caller.upstream_api, caller)
    result = finish_rejected(sub, caller.upstream_api, result, rejected)
    return render(result_to_wire(result, include_sms_count=True), fmt, "send")
