"""``POST /sms/2/text/advanced[.json|.xml]``: Infobip's JSON send, same rules as the GET entrances."""

from __future__ import annotations

from flask import Blueprint, Response, g

from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..validate import Errors
from ..wire.formats import render
from ..wire.legacy import result_to_wire, submission_from_advanced
from .common import authenticate, begin, check_submission, finish_rejected, json_body
from .replay import send, send_entrance

bp = Blueprint("advanced", __name__)


@bp.post("/sms/2/text/advanced", defaults={"ext": None})
@bp.post("/sms/2/text/advanced.<any(json,xml):ext>")
@send_entrance
def send_advanced(ext: str | None) -> Response:
    fmt = begin(ext)
    caller = authenticate(None, "advanced")
    body = json_body()
    errs = Errors()
    sub = submission_from_advanced(body, errs)
    sub.caller = caller.name
    check_submission(caller.hygiene, sub, errs)
    policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
    rejected = split_invalid(sub, caller.limits, policy=policy)  # one bad destination never cancels the rest
    validate_rest(sub, caller.limits, rejected, flat=False, errs=errs, policy=policy)
    result, g.attempts = send(sub, caller.upstream_api, caller)
    result = finish_rejected(sub, caller.upstream_api, result, rejected)
    return render(result_to_wire(result, include_sms_count=sub.include_sms_count), fmt, "send")
