"""Jasmin's HTTP API (``:1401``) for applications written for Jasmin: ``GET|POST /send``, ``/balance``, ``/rate``,
``/ping``. An entrance and an exit, nothing more: the arguments become a Submission (gateway/wire/jasmin.py) that
goes through the same authentication, placeholder hygiene, validation, idempotency, queueing and records as
every other entrance; every answer and refusal leaves in Jasmin's words and statuses.

A JSON body is read when the Content-Type is ``application/json`` (Jasmin compares it for equality; a
``charset`` parameter is accepted here too); a form body on POST; the query string always.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, request

from ..errors import BridgeError, Forbidden, Throttled, Unauthorized
from ..model import ApiError
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..services import bridge
from ..sms import sms_count
from ..validate import Errors
from ..wire.jasmin import (
    BALANCE_PARAMS,
    RATE_PARAMS,
    SEND_PARAMS,
    JasminError,
    answer_error,
    answer_success,
    argument_errors,
    balance_body,
    check_arguments,
    rate_body,
    rate_from_params,
    send_from_params,
)
from .common import authenticate, check_params, guarded, json_object, request_params
from .errors import api_error
from .querystring import QueryParams, parse_form, parse_query
from .replay import accepted_now, send, send_entrance

bp = Blueprint("jasmin", __name__)

SCOPE = "jasmin"
ADDRESS_PARAMS = frozenset({"to", "from"})
_UNCHECKED = frozenset({"dlr-url"})  # a URL: checked by the caller's allow-list, not as free text


def _params() -> QueryParams:
    """Query string, form body, or a JSON object body (values as text, as Jasmin reads them).

    With ``coding=8`` Jasmin sends the content's bytes as they are: UCS-2 (UTF-16BE), as its documentation's
    example does. Those bytes are kept here (as Latin-1 characters, one per byte) for
    :func:`gateway.wire.jasmin.send_from_params` to decode."""
    raw = parse_query(request.query_string, "iso-8859-1")
    form = request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded"
    if form:
        raw = QueryParams(raw.items() + parse_form(request.get_data(), "iso-8859-1").items())
    if request.method == "POST" and request.mimetype == "application/json":
        body = _json_body()
        items = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in body.items()]
        if dict(items).get("coding") == "8" and isinstance(body.get("content"), str):
            items = [(k, body["content"].encode("utf-8").decode("iso-8859-1") if k == "content" else v)
                     for k, v in items]
        return QueryParams(raw.items() + items)
    return raw if raw.get("coding") == "8" else request_params()


def _json_body() -> dict[str, Any]:
    try:
        return json_object()
    except ApiError as exc:
        raise JasminError(400, f"Argument [body] {exc.text}") from None


def _jasmin_error(err: ApiError | BridgeError, username: str | None) -> JasminError:
    """A typed error in Jasmin's words and statuses (errors.py of jasmin.protocols.http)."""
    if isinstance(err, Unauthorized):
        return JasminError(403, f"Authentication failure for username:{username or ''}")
    if isinstance(err, Throttled):  # failed logins locked out (Jasmin has no such lock): 403 as its auth errors
        return JasminError(403, f"Authentication failure for username:{username or ''} ({err.text})")
    if isinstance(err, Forbidden):
        return JasminError(403, f"Authorization failed for username:{username or ''} ({err.text})")
    api = api_error(err)
    if api.validation_errors:
        return JasminError(400, argument_errors(api.validation_errors))
    status = {401: 403, 429: 403}.get(api.http_status, api.http_status)
    return JasminError(status, api.text)


def _answer(body: bytes, status: int = 200, ctype: str = "text/plain") -> Response:
    return Response(body, status=status, content_type=ctype)


def _guarded(render_error: Callable[[JasminError], Response], work: Callable[[QueryParams], Response]) -> Response:
    """Run ``work`` on the request's arguments; any refusal leaves in Jasmin's format (never Infobip's
    envelope)."""

    def run() -> Response:
        g.params = _params()  # the idempotency key and fingerprint read these (gateway/entrances/replay.py)
        return work(g.params)

    def translate(err: ApiError | BridgeError) -> JasminError:
        params: QueryParams | None = g.get("params")  # None: the arguments themselves were refused
        return _jasmin_error(err, params.get("username") if params else None)

    return guarded(run, JasminError, render_error, translate)


def _text_error(exc: JasminError) -> Response:
    return _answer(answer_error(exc.text), exc.status)


def _json_error(exc: JasminError) -> Response:
    return _answer(json.dumps(exc.text).encode(), exc.status, "application/json")


@bp.route("/send", methods=["GET", "POST"])
@send_entrance
def send_sms() -> Response:
    return _guarded(_text_error, _send)


def _send(params: QueryParams) -> Response:
    check_arguments(params, SEND_PARAMS, ("username", "password", "to"))
    caller = authenticate(params, SCOPE)
    ctx = bridge()
    sub, dlr = send_from_params(params, datetime.fromtimestamp(ctx.clock.now(), UTC))
    errs = Errors()
    check_params(caller.hygiene, QueryParams([(n, v) for n, v in params.items() if n not in _UNCHECKED]),
                 ADDRESS_PARAMS, errs)
    sub.caller = caller.name
    if dlr is not None:
        sub.callback = dlr.channel
    policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
    rejected = split_invalid(sub, caller.limits, flat=True, policy=policy)
    if rejected:  # one destination: it is the request
        errs.add("to", rejected[0].reason)
    validate_rest(sub, caller.limits, [], flat=True, errs=errs, policy=policy)
    errs.raise_if_any()
    result, g.attempts = send(sub, caller.upstream_api, caller)
    sent = result.messages[0]
    if sent.status.group_name == "REJECTED":
        status = 403 if "CREDIT" in sent.status.name else 412
        return _answer(answer_error(f"{sent.status.name}: {sent.status.description}"), status)
    if dlr is not None and accepted_now(caller) and sent.message_id:  # the SMSC level: the upstream took it (else the queue
        ctx.submit_events.jasmin_accepted(sent.message_id, caller.name, dlr)  # worker says so when it does)
    return _answer(answer_success(sent.message_id or ""))


@bp.route("/balance", methods=["GET", "POST"])
def balance() -> Response:
    def work(params: QueryParams) -> Response:
        check_arguments(params, BALANCE_PARAMS, ("username", "password"))
        authenticate(params, SCOPE)
        return _answer(json.dumps(balance_body()).encode(), ctype="application/json")

    return _guarded(_json_error, work)


@bp.route("/rate", methods=["GET", "POST"])
def rate() -> Response:
    def work(params: QueryParams) -> Response:
        check_arguments(params, RATE_PARAMS, ("username", "password", "to"))
        authenticate(params, SCOPE)
        _, content = rate_from_params(params)
        return _answer(json.dumps(rate_body(sms_count(content))).encode(), ctype="application/json")

    return _guarded(_json_error, work)


@bp.get("/ping")
def ping() -> Response:
    return _answer(b"Jasmin/PONG")
