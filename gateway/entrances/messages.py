"""``POST /sms/3/messages``: Infobip's current JSON send (v3), as Infobip's official SDKs call it.

Same caller auth, hygiene and validation as the other entrances; fields are named by their v3 JSON
paths in errors, which use the v3 envelope (gateway/wire_v3.py). JSON only, like Infobip's v3.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from ..errors import BridgeError
from ..ids import new_id
from ..model import ApiError
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..validate import Errors
from ..wire.formats import JSON, render
from ..wire.v3 import result_to_v3, submission_from_v3, v3_errors
from .common import authenticate, check_submission, finish_rejected, json_body
from .errors import api_error
from .replay import send, send_entrance

bp = Blueprint("messages", __name__)


@bp.post("/sms/3/messages")
@send_entrance
def send_messages() -> Response:
    g.fmt = JSON
    caller = authenticate(None, "messages")
    body = json_body()
    errs = Errors()
    try:
        sub = submission_from_v3(body, errs)
        sub.caller, sub.entrance = caller.name, "messages"
        check_submission(caller.hygiene, sub, errs)
        policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
        rejected = split_invalid(sub, caller.limits, policy=policy)  # one bad destination never cancels the rest
        validate_rest(sub, caller.limits, rejected, flat=False, errs=errs, policy=policy)
        sub.bulk_id = sub.bulk_id or new_id()  # v3 always answers with a bulkId, whatever the upstream
        result, g.attempts = send(sub, caller.upstream_api, caller)
        result = finish_rejected(sub, caller.upstream_api, result, rejected)
    except (ApiError, BridgeError) as exc:
        err = api_error(exc)
        if err.http_status != 400 or not err.validation_errors:
            raise
        raise ApiError.invalid(v3_errors(err.validation_errors)) from None
    return render(result_to_v3(result, include_count=sub.include_sms_count), JSON, "send")
