"""``GET|POST /cgi-bin/sendsms``: Kannel's smsbox, for applications written for Kannel (docs/migrating-from-kannel.md).

The request is read in Kannel's terms (gateway/wire/kannel.py), converted to a Submission and sent like any
other (the caller's credentials and ``kannel`` scope, placeholder hygiene, validation, idempotency and duplicate
suppression, the caller's mode); the answer is smsbox's: ``202 0: Accepted for delivery`` once the upstream
accepted it, ``202 3: Queued for later delivery`` once it is durably queued, Kannel's error texts otherwise.
A POST is a form (``application/x-www-form-urlencoded``), Kannel's ``text/plain`` body with ``X-Kannel-*``
headers, or Kannel's ``text/xml`` (``<message><submit>…``); the parameters of the query string count too.

Each answer also carries ``X-Smsbridge-Messages``: ``<to>=<messageId>:<STATUS_NAME>`` per destination, in the
request's order (the first 100), and ``X-Smsbridge-Bulk-Id`` for several (Kannel gives no id; the body stays
Kannel's byte for byte).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException

from ..config import Caller
from ..errors import (
    BridgeError,
    Conflict,
    PolicyRefused,
    Throttled,
    Unauthorized,
    Unavailable,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
    ValidationFailed,
)
from ..errors import Forbidden as ForbiddenError
from ..model import ApiError, Message, Report, Submission, SubmissionResult
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..services import bridge
from ..validate import Errors
from ..wire import kannel as k
from .common import authenticate, check_params, finish_rejected
from .querystring import QueryParams
from .replay import accepted_now, send, send_entrance

log = logging.getLogger("smsbridge")
bp = Blueprint("kannel", __name__)
SCOPE = "kannel"
ENTRANCE = "kannel"


def _split(raw: bytes) -> list[tuple[str, bytes]]:
    """A query string or form body as (name, raw value bytes): ``+`` is a space, ``%XX`` decoded once."""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace"),
                      unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def _pairs() -> list[tuple[str, bytes]]:
    pairs = _split(request.query_string)
    if request.method != "POST" or not request.content_length and not request.get_data():
        return pairs
    if request.mimetype == "application/x-www-form-urlencoded":
        return pairs + _split(request.get_data())
    if request.mimetype == "text/xml":  # Kannel's XML sendsms
        return pairs + k.xml_pairs(request.get_data())
    if request.mimetype in ("text/plain", "application/octet-stream", ""):
        charset = request.mimetype_params.get("charset")  # Kannel: the body's charset is the Content-Type's
        return pairs + ([("charset", charset.encode())] if charset else []) + k.headers_pairs(
            request.headers, request.get_data())
    raise k.KannelAnswer(k.INVALID_CONTENT_TYPE[0], f"{k.INVALID_CONTENT_TYPE[1]}: {request.mimetype} is not "
                         "supported; send a form (application/x-www-form-urlencoded), text/plain with X-Kannel-* "
                         "headers, or Kannel's text/xml")


MAX_LISTED = 100  # receivers listed in X-Smsbridge-Messages: clients refuse header lines over 64 KiB


def _answer(status: int, text: str, result: SubmissionResult | None = None) -> Response:
    resp = Response(text, status=status)
    for name, value in k.HEADERS:
        resp.headers[name] = value
    if result is not None and result.messages:
        listed = [f"{quote(m.to, safe='+')}={quote(m.message_id or '', safe='')}:{m.status.name}"
                  for m in result.messages[:MAX_LISTED]]  # a refused receiver is as given: ASCII-safe here
        more = len(result.messages) - MAX_LISTED
        resp.headers["X-Smsbridge-Messages"] = ", ".join(listed) + (f", ...{more} more" if more > 0 else "")
        if result.bulk_id:
            resp.headers["X-Smsbridge-Bulk-Id"] = result.bulk_id
    return resp


def _authenticate(pairs: list[tuple[str, bytes]]) -> Caller:
    """The caller of ``username``/``user`` and ``password``/``pass`` (Kannel prefers the long names); a
    credential given twice is refused (which one would count is a guess an attacker could exploit)."""
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in ("username", "user", "password", "pass"):
            given.setdefault(name, []).append(value.decode("utf-8", "replace"))
    if any(len(v) > 1 for v in given.values()):
        raise k.KannelAnswer.of(k.AUTH_FAILED)
    username = (given.get("username") or given.get("user") or [None])[0]
    password = (given.get("password") or given.get("pass") or [None])[0]
    creds = QueryParams([(n, v) for n, v in (("username", username), ("password", password)) if v is not None])
    return authenticate(creds, SCOPE)


def _events(result: SubmissionResult, sub: Submission, msg: Message) -> None:
    """Kannel's DLR events 8 (accepted) and 16 (refused) of a sync send's answer."""
    mask = k.mask_of(sub.callback)
    if not mask or not mask & (8 | 16) or not msg.notify_url:
        return
    events = []
    for sent in result.messages:
        if not sent.message_id and sent.status.group_name == "REJECTED" and sent.status.id == 52:
            continue  # refused by the bridge before sending (an invalid number): Kannel denies it, no DLR
        kind = 16 if sent.status.group_name == "REJECTED" else 8
        events.append((kind, Report(sent.message_id or "", sent.status, to=sent.to, sender=msg.sender,
                                    upstream_message_id=sent.upstream_message_id or sent.message_id,
                                    caller=sub.caller)))
    try:
        bridge().submit_events.answered(events, msg.notify_url, mask, sub.caller)
    except Exception:  # the send stands; only these events are lost (logged)
        log.exception("kannel: DLR events of a send could not be queued")


@bp.route("/cgi-bin/sendsms", methods=["GET", "POST"])
@send_entrance
def sendsms() -> Response:
    ctx = bridge()
    pairs = _pairs()
    caller = _authenticate(pairs)
    req = k.read_sendsms(pairs)
    decoded = [(n, v.decode("utf-8", "replace")) for n, v in pairs if n != "text"] + [("text", req.text)]
    g.params = QueryParams([({"user": "username", "pass": "password"}.get(n, n), v) for n, v in decoded])
    errs = Errors()
    check_params(caller.hygiene, QueryParams([(n, v) for n, v in decoded if n in ("to", "from", "text")]),
                 frozenset({"to", "from"}), errs)
    msg, channel = k.to_message(req, caller.name, caller.callback is not None, ctx.clock.now())
    sub = Submission(messages=[msg], include_sms_count=True, caller=caller.name, entrance=ENTRANCE, callback=channel)
    policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
    rejected = split_invalid(sub, caller.limits, flat=True, policy=policy)  # one bad number never cancels the rest
    validate_rest(sub, caller.limits, rejected, flat=True, errs=errs, policy=policy)
    result, g.attempts = send(sub, caller.upstream_api, caller)
    result = finish_rejected(sub, caller.upstream_api, result, rejected)
    sent = [m for m in result.messages if m.status.group_name != "REJECTED"]
    if not sent:
        return _answer(*k.NOT_ROUTABLE, result)
    if accepted_now(caller):
        _events(result, sub, msg)
        return _answer(*k.ACCEPTED, result)
    return _answer(*k.QUEUED, result)


# -- every error in Kannel's words --------------------------------------------------------------------------------
def _error(status: int, text: str) -> Response:
    return _answer(status, text)


@bp.errorhandler(k.KannelAnswer)
def _kannel(err: k.KannelAnswer) -> Response:
    return _error(err.status, err.text)


def _validation(errors: dict[str, list[str]]) -> Response:
    return _error(400, k.refusal(errors))


@bp.errorhandler(ApiError)
def _api(err: ApiError) -> Response:
    if err.validation_errors:
        return _validation(err.validation_errors)
    if err.http_status in (401, 403):
        return _error(*k.AUTH_FAILED)
    return _error(err.http_status, err.text)


_MAPPED: list[tuple[type[BridgeError], Any]] = [
    (Unauthorized, k.AUTH_FAILED), (ForbiddenError, k.AUTH_FAILED), (Unavailable, k.TEMPORAL),
    (UpstreamUnreachable, k.TEMPORAL),
]


@bp.errorhandler(BridgeError)
def _bridge_error(err: BridgeError) -> Response:
    if isinstance(err, ValidationFailed):
        return _validation(err.errors)
    if isinstance(err, Throttled):
        resp = _error(429, f"{k.TEMPORAL[1]} {err.text}")
        resp.headers["Retry-After"] = str(int(err.retry_after) + 1)
        return resp
    if isinstance(err, PolicyRefused):  # the rule, in Kannel's way of refusing numbers it may not reach
        return _error(403, f"Denied: {err.text}")
    for kind, answer in _MAPPED:
        if isinstance(err, kind):
            return _error(*answer)
    if isinstance(err, UpstreamRefused) and err.status == 400:
        return _validation(dict(err.errors) or {"text": [err.text]})
    if isinstance(err, UpstreamRefused) and (err.status == 429 or err.status >= 500):
        return _error(*k.TEMPORAL)
    if isinstance(err, UpstreamTimeout):  # the outcome is unknown: reconciled by the bridge, never resent blindly
        return _error(504, f"{k.SENDING_FAILED[1]} {err.text}")
    if isinstance(err, Conflict):
        return _error(409, err.text)
    return _error(502, f"{k.SENDING_FAILED[1]} {err.text}")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    resp = _error(exc.code or 500, exc.description or exc.name)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return resp


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path, exc_info=exc)
    return _error(*k.SENDING_FAILED)
