"""Helpers shared by the entrances: format choice, caller resolution, placeholder hygiene."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g, request

from ..accepts import CREDENTIAL_PARAMS, IDEMPOTENCY_PARAM
from ..config import Caller
from ..errors import BridgeError, Throttled, Unauthorized
from ..ids import new_token
from ..model import ApiError, Submission, SubmissionResult
from ..numbers import search_form
from ..placeholders import Hygiene
from ..send.rejects import Rejected, merge_rejected, rejected_rows
from ..services import bridge
from ..store.engine import DB_ERRORS, CommitTimeout
from ..store.records import SubmissionRecord
from ..validate import Errors, parse_datetime, parse_enum, parse_int
from ..wire.formats import JSON, negotiate
from ..wire.jsonbody import loads
from ..wire.statuses import GROUPS
from .querystring import QueryParams, parse_form, parse_query

log = logging.getLogger("smsbridge")

__all__ = ["CREDENTIAL_PARAMS", "IDEMPOTENCY_PARAM"]  # defined in gateway/accepts.py, shared with the URL builder


def request_params() -> QueryParams:
    """The query string's parameters, plus a form body's on POST; decoded once per request, strictly (the
    send guard and the view share them: ``QueryParams`` is read-only)."""
    params: QueryParams | None = g.get("request_params")
    if params is not None:
        return params
    charset = bridge().config.server.default_charset
    params = parse_query(request.query_string, charset)
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        params = QueryParams(params.items() + parse_form(request.get_data(), charset).items())
    g.request_params = params
    return params


def json_body(what: str = "body") -> Any:
    """The request's JSON body, read strictly (depth, encoding, lone surrogates): 400 naming the field."""
    return loads(request.get_data(), what)


def json_object(what: str = "body") -> dict[str, Any]:
    """:func:`json_body` that must be an object."""
    body = json_body(what)
    if not isinstance(body, dict):
        raise ApiError.bad_request(what, "must be a JSON object")
    return body


PULL_DEFAULT, PULL_MAX = 50, 1000  # Infobip's pulls: limit defaults to 50, at most 1000


def pull_limit(params: QueryParams, errs: Errors) -> int:
    """The ``limit`` of a pull (reports, logs, inbox): 1..1000, default 50."""
    limit = parse_int("limit", params.get("limit") or None, 1, PULL_MAX, errs)
    return PULL_DEFAULT if limit is None else limit


def log_filters(params: QueryParams, errs: Errors, sender: str, destination: str) -> dict[str, Any]:
    """The filters both log pulls share (v1 names the sender and destination parameters ``from``/``to``, v3
    ``sender``/``destination``): the time window, the general status, bulk and message ids; bad values into
    ``errs``. Keys are the store's (``reports.pulls.logs``)."""
    since = parse_datetime("sentSince", params.get("sentSince"), errs)
    until = parse_datetime("sentUntil", params.get("sentUntil"), errs)
    status = parse_enum("generalStatus", (params.get("generalStatus") or "").upper() or None,
                        tuple(GROUPS.values()), errs)
    return {
        "sender": params.get(sender), "generalStatus": status,
        "destination": search_form(params.get(destination) or "") or None,  # stored as international digits
        "bulkId": param_list(params, "bulkId"), "messageId": param_list(params, "messageId"),
        "sentSince": since.timestamp() if since else None, "sentUntil": until.timestamp() if until else None,
    }


def param_list(params: QueryParams, name: str) -> list[str]:
    """A multi-valued filter given as repeated keys and/or comma lists (``bulkId=a&bulkId=b,c``)."""
    return [v.strip() for value in params.getall(name) for v in value.split(",") if v.strip()]


def begin(ext: str | None) -> str:
    """Pick the response format first, so that even an auth error comes back in it."""
    g.fmt = negotiate(request, ext)
    return g.fmt


def authenticate(params: QueryParams | None, scope: str) -> Caller:
    """The request's caller, with ``scope``; failed logins are throttled (gateway/throttle.py)."""
    ctx = bridge()
    for name in ("username", "password"):  # which one would count is a guess an attacker could exploit
        if params is not None and len(params.getall(name)) > 1:
            raise ApiError.bad_request(name, "is given more than once; give each credential once")
    header = request.headers.get("Authorization")
    username = params.get("username") if params else None
    password = params.get("password") if params else None
    name = ctx.auth.login_name(header, username)  # the name the check below checks
    keys = ctx.throttle.keys(name, request.remote_addr)
    reserved = ctx.throttle.check(keys, "api", lambda: ctx.auth.guessing(header, username, password))
    try:
        caller = ctx.auth.from_request(header, username, password)
    except Unauthorized:
        if header or username is not None or password is not None:  # a secret was tried (not just forgotten)
            ctx.throttle.failed(keys, "api")
            shown = name if name is None or len(name) <= 64 else f"{name[:64]}… ({len(name)} chars)"  # bounded
            log.warning("failed login for caller %r from %s", shown, request.remote_addr)
        raise
    finally:
        if reserved:
            ctx.throttle.release(keys)
    ctx.throttle.succeeded(caller.name)
    ctx.auth.require_scope(caller, scope)
    g.caller = caller.name
    return caller


def check_params(
    hygiene: Hygiene, params: QueryParams, address: frozenset[str], errs: Errors, skip: frozenset[str] = frozenset()
) -> None:
    """Unsubstituted placeholders in any parameter, named, into ``errs`` (reported with the rest)."""
    for name, value in params.items():
        if name in CREDENTIAL_PARAMS or name in skip or name == IDEMPOTENCY_PARAM:
            continue
        reason = hygiene.check(name, value, address=name in address)
        if reason:
            errs.add(name, reason)


def finish_rejected(sub: Submission, api: str, result: SubmissionResult, rejected: list[Rejected]) -> SubmissionResult:
    """Put the destinations :func:`split_invalid` took out back into the answer, and record them (state
    ``rejected``, one small submission record of their own beside the sent one, same bulkId)."""
    if not rejected:
        return result
    result = merge_rejected(result, rejected)
    record = SubmissionRecord(sub.caller, sub.entrance, "sync", api, result.bulk_id, new_token(), None)
    try:
        bridge().store.accept(record, rejected_rows(rejected))
    except (*DB_ERRORS, CommitTimeout):  # the answer stands: the rest was sent; the log misses only these rows
        log.exception("could not record %d rejected destinations", len(rejected))
    return result


def check_known(params: QueryParams, known: frozenset[str], errs: Errors, what: str = "the query API") -> None:
    """Unknown or wrongly-cased parameter names into ``errs``, each with the nearest known one: a silently
    ignored ``notifyurl`` or ``Flash`` would be an option the caller believes honoured."""
    for name in params.names():
        if name in known:
            continue
        near = [k for k in known if k.lower() == name.lower()] or \
            difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(sorted(known))}"
        errs.add(name, f"is not a parameter of {what}{hint}")


def check_submission(hygiene: Hygiene, sub: Submission, errs: Errors) -> None:
    """Placeholder hygiene on a JSON submission: addresses strictly, free text by the text rules."""
    for mi, m in enumerate(sub.messages):
        p = f"messages[{mi}]."
        for di, d in enumerate(m.destinations):
            reason = hygiene.check("to", d.to, address=True)
            if reason:
                errs.add(f"{p}destinations[{di}].to", reason)
        checks = (("from", m.sender, True), ("text", m.text, False), ("callbackData", m.callback_data, False),
                  ("notifyUrl", m.notify_url, False))
        for name, value, address in checks:
            reason = hygiene.check(name, value, address=address) if value else None
            if reason:
                errs.add(p + name, reason)


E = TypeVar("E", bound=Exception)


def guarded(work: Callable[[], Response], refusal: type[E], answer: Callable[[E], Response],
            translate: Callable[[ApiError | BridgeError], E]) -> Response:
    """Run a dialect entrance's ``work`` so that every refusal leaves in the dialect's words (never Infobip's
    envelope): its own ``refusal`` as ``answer`` shapes it, the bridge's typed errors put in its words by
    ``translate`` first; a throttled request is told when to come back (``Retry-After``)."""
    g.fmt = JSON
    try:
        return work()
    except refusal as exc:
        return answer(exc)
    except (ApiError, BridgeError) as exc:
        resp = answer(translate(exc))
        if isinstance(exc, Throttled):
            resp.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return resp
