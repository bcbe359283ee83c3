"""SMSEagle's API v1 for applications written for an SMSEagle device (LibreNMS, Zabbix, OpManager, Apprise …):
``GET|POST /http_api/send_sms`` (and the older ``/index.php/http_api/send_sms``) and the JSON-RPC
``POST /jsonrpc/sms`` method ``sms.send_sms``. An entrance and an exit, nothing more: the parameters become a
Submission (gateway/wire/smseagle.py) that goes through the same authentication, placeholder hygiene,
validation, idempotency, queueing and records as every other entrance; answers and refusals leave in
SMSEagle's words.

``access_token`` is a caller's API key (``api_key``/``api_key_hash``, the same key as ``Authorization: App``);
``login``/``pass`` are its username and password. Refusals carry a real HTTP status (400, 401, 403, 429, 503)
where the device answers 200: applications read the body, and monitoring sees the failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, request

from ..config import Caller
from ..errors import BridgeError, Forbidden, Throttled, Unauthorized
from ..model import ApiError, SubmissionResult
from ..send.policy import SendPolicy
from ..send.rejects import split_invalid, validate_rest
from ..services import bridge
from ..validate import Errors
from ..wire.smseagle import (
    SEND_PARAMS,
    WRONG_LOGIN,
    WRONG_TOKEN,
    EagleError,
    Outcome,
    rpc_answer,
    rpc_error,
    rpc_params,
    send_from_params,
    text_answer,
    wrong,
    xml_answer,
    xml_error,
)
from .common import authenticate, check_params, finish_rejected, guarded, json_object, request_params
from .errors import api_error
from .querystring import QueryParams, parse_form, parse_query
from .replay import send, send_entrance

bp = Blueprint("smseagle", __name__)

SCOPE = "smseagle"
_SECRETS = frozenset({"access_token", "login", "pass"})
Render = Callable[[list[Outcome] | None, EagleError | None], Response]


def _caller(params: QueryParams) -> Caller:
    """``access_token`` (the caller's API key) or ``login``/``pass``; throttled like every login."""
    ctx = bridge()
    token = params.get("access_token")
    if token is None:
        creds = [(n, v) for n, k in (("username", "login"), ("password", "pass")) if (v := params.get(k)) is not None]
        try:
            return authenticate(QueryParams(creds), SCOPE)
        except Unauthorized:
            raise EagleError(401, WRONG_LOGIN) from None
    keys = ctx.throttle.keys(None, request.remote_addr)
    ctx.throttle.check(keys, "api")
    try:
        caller = ctx.auth.check_api_key(token)
    except Unauthorized:
        ctx.throttle.failed(keys, "api")
        raise EagleError(401, WRONG_TOKEN) from None
    ctx.throttle.succeeded(caller.name)
    ctx.auth.require_scope(caller, SCOPE)
    g.caller = caller.name
    return caller


def _eagle_error(err: ApiError | BridgeError) -> EagleError:
    if isinstance(err, Throttled):
        return EagleError(429, f"Too many failed logins: {err.text}")
    if isinstance(err, Forbidden):
        return EagleError(403, f"Access denied: {err.text}")
    api = api_error(err)
    if api.validation_errors:
        name, reasons = next(iter(api.validation_errors.items()))
        return wrong(name, reasons[0])
    return EagleError(api.http_status, api.text)


def _outcomes(result: SubmissionResult) -> list[Outcome]:
    return [(m.message_id, None) if m.status.group_name != "REJECTED"
            else (None, f"Wrong or missing >>to<< parameter ({m.to}: {m.status.description})")
            for m in result.messages]


def _send(params: QueryParams) -> list[Outcome]:
    for name in params.names():
        if name not in SEND_PARAMS:
            raise wrong(name, "is not a parameter of send_sms")
    caller = _caller(params)
    parsed = send_from_params(params)
    sub = parsed.submission
    errs = Errors()
    check_params(caller.hygiene, params, frozenset({"to"}), errs, skip=_SECRETS)
    sub.caller = caller.name
    policy = SendPolicy.of(caller)  # senders, destinations, default country (403 naming the rule)
    rejected = split_invalid(sub, caller.limits, flat=True, policy=policy)
    validate_rest(sub, caller.limits, rejected, flat=True, errs=errs, policy=policy)
    errs.raise_if_any()
    if parsed.test:  # simulated: nothing recorded, nothing sent (the device answers ID=0)
        return [("0", None) for _ in range(sub.destination_count + len(rejected))]
    result, g.attempts = send(sub, caller.upstream_api, caller)
    return _outcomes(finish_rejected(sub, caller.upstream_api, result, rejected))


def _guarded(render: Render, work: Callable[[], list[Outcome]]) -> Response:
    """Run ``work``; its outcomes and any refusal leave as ``render`` shapes them (never Infobip's envelope)."""
    return guarded(lambda: render(work(), None), EagleError, lambda err: render(None, err), _eagle_error)


@bp.route("/http_api/send_sms", methods=["GET", "POST"])
@bp.route("/index.php/http_api/send_sms", methods=["GET", "POST"])
@send_entrance
def send_sms() -> Response:
    raw = parse_query(request.query_string, "iso-8859-1")  # never fails: the answer's format even for bad bytes
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        raw = QueryParams(raw.items() + parse_form(request.get_data(), "iso-8859-1").items())
    xml = raw.get("responsetype") == "xml"

    def render(outcomes: list[Outcome] | None, err: EagleError | None) -> Response:
        if xml:
            body = xml_answer(outcomes) if outcomes is not None else xml_error(err.text if err else "")
            return Response(body, status=err.status if err else 200, content_type="application/xml; charset=utf-8")
        body = text_answer(outcomes) if outcomes is not None else (err.text if err else "")
        return Response(body, status=err.status if err else 200, content_type="text/plain; charset=utf-8")

    def work() -> list[Outcome]:
        params = request_params()
        if params.get("responsetype") not in (None, "text", "xml"):
            raise wrong("responsetype", "text or xml")
        return _send(QueryParams([(n, v) for n, v in params.items() if n != "responsetype"]))

    return _guarded(render, work)


@bp.post("/jsonrpc/sms")
@bp.post("/index.php/jsonrpc/sms")
@send_entrance
def jsonrpc() -> Response:
    state: dict[str, Any] = {"extended": False}

    def render(outcomes: list[Outcome] | None, err: EagleError | None) -> Response:
        extended = state["extended"]
        body = rpc_answer(outcomes, extended) if outcomes is not None else rpc_error(err.text if err else "", extended)
        return Response(json.dumps(body), status=err.status if err else 200, content_type="application/json")

    def work() -> list[Outcome]:
        try:
            method, params = rpc_params(json_object())
        except ApiError as exc:
            raise EagleError(400, f"Wrong parameters ({exc.text})") from None
        kind = params.get("responsetype") or "simple"
        state["extended"] = kind == "extended"
        if method != "sms.send_sms":
            raise EagleError(400, f"Wrong parameters (unknown method {method!r}; the bridge offers sms.send_sms)")
        if kind not in ("simple", "extended"):
            raise wrong("responsetype", "simple or extended")
        return _send(QueryParams([(n, v) for n, v in params.items() if n != "responsetype"]))

    return _guarded(render, work)
