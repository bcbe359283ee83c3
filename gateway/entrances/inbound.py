"""Inbound SMS: Infobip's push webhook and the pull inbox.

``POST /hooks/inbound/<token>`` takes Infobip's inbound push (JSON, or XML by Content-Type). The token
is the configured ``inbound.token`` (compared in constant time, masked in every log line); a wrong one
is refused with 401 in Infobip's envelope. A body that cannot be parsed (bad JSON or XML, an unaccepted
encoding, a lone surrogate or control character in an id) is answered 200 with ``processed: false``
and kept in the rejected pushes (``python app.py rejected``): a 4xx would make Infobip retry it for days. ``GET /sms/1/inbox/reports[.json|.xml]?limit=`` (scope
``inbox``) returns the caller's unfetched messages once each, in Infobip's shape.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, g, request

from ..inbound.service import handle_push, send_replies
from ..model import ApiError
from ..services import bridge
from ..store import inbound as store
from ..store import rejected
from ..validate import Errors
from ..wire import inbound as message
from ..wire.formats import JSON, XML, render
from ..wire.jsonbody import loads
from .common import authenticate, begin, pull_limit, request_params

bp = Blueprint("inbound", __name__)
log = logging.getLogger(__name__)


def _is_xml() -> bool:
    return request.mimetype in ("application/xml", "text/xml") or request.mimetype.endswith("+xml")


@bp.post("/hooks/inbound/<token>")
def push(token: str) -> Response:
    g.fmt = XML if _is_xml() else JSON
    ctx = bridge()
    settings = ctx.config.inbound
    if not settings.token:
        raise ApiError(404, "NOT_FOUND", "The inbound webhook is not configured (inbound.token)")
    if not hmac.compare_digest(token.encode("utf-8"), settings.token.encode("utf-8")):
        raise ApiError(401, "UNAUTHORIZED", "Invalid inbound token")
    if (request.content_length or 0) > settings.max_body_bytes:
        raise ApiError(413, "BAD_REQUEST", f"The push body is larger than {settings.max_body_bytes} bytes")
    data = request.get_data(cache=False)
    if len(data) > settings.max_body_bytes:
        raise ApiError(413, "BAD_REQUEST", f"The push body is larger than {settings.max_body_bytes} bytes")
    now = datetime.fromtimestamp(ctx.clock.now(), UTC)
    try:
        if _is_xml() or data.lstrip()[:1] == b"<":
            messages = message.parse_xml(data, now)
        else:
            messages = message.parse_json(loads(data), now)
    except ApiError as exc:  # answered 200 so that Infobip stops retrying; kept for the operator
        reason = rejected.reason_of(exc)
        kept = rejected.add(ctx.db, "inbound", None, request.content_type, reason, data, ctx.clock.now())
        log.warning("inbound push not processed, kept as rejected push %d: %s", kept, reason)
        return render({"messageCount": 0, "stored": 0, "duplicates": 0, "processed": False, "rejected": kept,
                       "reason": reason}, g.fmt, "generic")
    outcomes, replies = handle_push(ctx, ctx.router, messages)
    stored = sum(o.stored for o in outcomes)
    resp = render({"messageCount": len(outcomes), "stored": stored, "duplicates": len(outcomes) - stored},
                  g.fmt, "generic")
    if replies:  # sent once the answer is out, in this worker thread (no app context needed)
        resp.call_on_close(lambda: send_replies(ctx, replies))
    return resp


@bp.get("/sms/1/inbox/reports", defaults={"ext": None})
@bp.get("/sms/1/inbox/reports.<any(json,xml):ext>")
def pull(ext: str | None) -> Response:
    fmt = begin(ext)
    ctx = bridge()
    params = request_params()
    caller = authenticate(params, "inbox")
    errs = Errors()
    limit = pull_limit(params, errs)
    errs.raise_if_any()
    results, pending = store.pull(ctx.db, caller.name, limit, ctx.clock.now())
    return render(message.inbox_body(results, pending), fmt, "inbox")
