"""Every send entrance's guard: safe methods, idempotency keys, duplicate suppression, custom messageIds.

``@send_entrance`` wraps a send view; the view calls :func:`send` instead of ``Dispatcher.send``. Before the
send, :func:`send` reserves the request's key (``Idempotency-Key`` header or ``idempotencyKey`` parameter;
without one, a fingerprint of the caller, the URL, the format and the decoded parameters or body minus
credentials, when the duplicate window is on) and the caller's custom messageIds; after the view answered,
the wrapper stores the exact answer (status, content type, bytes) under the key, or frees the key when the
answer says nothing was sent (so a corrected retry with the same key works).

A replay answers the stored bytes with ``Idempotent-Replayed: true``; a duplicate also with
``X-Duplicate-Of: <the first answer's bulkId or messageId>``. A retry of a request whose process died after
recording its submission gets that submission's answer rebuilt from the record (the view renders it in its
dialect, with the same headers), stored under the key as its answer; nothing is sent again.

``HEAD`` on a send URL is 405 with ``Allow`` (``OPTIONS`` is Flask's own side-effect-free answer): link
checkers and prefetchers send nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, make_response, request
from werkzeug.exceptions import MethodNotAllowed

from ..config import Caller, TemplateSpec
from ..model import ApiError, SentMessage, Submission, SubmissionResult
from ..send.dispatch import Dispatcher
from ..send.idempotency import DONE, INFLIGHT, KEY, MISMATCH, RECORDED, Claim, Fenced, Slot, fingerprint
from ..send.upstream import Attempt
from ..services import Bridge, bridge
from ..wire.jsonbody import loads
from ..wire.statuses import STATUS_BY_NAME
from .common import CREDENTIAL_PARAMS, IDEMPOTENCY_PARAM, request_params
from .querystring import QueryParams

log = logging.getLogger("smsbridge")

HEADER, PARAM = "Idempotency-Key", IDEMPOTENCY_PARAM
MAX_KEY = 255
# Answers that mean nothing was sent: the key (and the custom messageIds) are freed, not bound to them.
# 502 is the upstream's refusal or failure (its 5xx, our key refused): a retry must be able to send. 504 (no
# answer in time) and 500 may hide an accepted message: they bind the key, a blind resend could double it.
SENT_NOTHING = frozenset({400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 429, 502, 503})
DUPLICATE_ID = STATUS_BY_NAME["REJECTED_DUPLICATE_MESSAGE_ID"]


class Replayed(Exception):  # noqa: N818 - not an error: the stored first answer, leaving the view early
    def __init__(self, response: Response) -> None:
        self.response = response


def send_entrance(view: Callable[..., Any]) -> Callable[..., Response]:
    """Wrap a send view (see the module docstring)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if request.method not in ("GET", "POST"):  # HEAD: would run the GET view and send
            rule = request.url_rule
            allowed = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}) if rule else ["GET"]
            raise MethodNotAllowed(valid_methods=allowed)
        g.idem, g.idem_ids, g.idem_result, g.idem_reconciled = None, [], None, False
        try:
            resp = make_response(view(*args, **kwargs))
        except Replayed as r:
            return r.response
        except Exception as exc:
            if g.idem is None and not g.idem_ids:
                raise
            resp = make_response(current_app.handle_user_exception(exc))
        try:
            _settle(resp)
        except Exception:  # the answer goes out all the same; the key stays in flight until its lease
            log.exception("idempotency: the answer could not be stored with its key")
        return resp

    return wrapper


def _settle(resp: Response) -> None:
    """Bind the first answer to the request's key, or free the key and messageIds if nothing was sent."""
    ctx = bridge().idempotency
    claim: Claim | None = g.idem
    nothing = resp.status_code in SENT_NOTHING
    if g.idem_ids and nothing:
        ctx.release_message_ids(g.caller, g.idem_ids, claim)
    if claim is None:
        return
    if g.idem_reconciled and resp.status_code >= 500 and resp.status_code != 504:
        # the record could not be read (a store error): the key stays in flight (its link to the record, which
        # was sent), answered from the record again once its lease passes; never freed, never bound to this
        return
    # a duplicate fingerprint replays successes only (a failed first try never swallows the caller's retry),
    # and the answer rebuilt from a record (it was sent, or its outcome is unknown: 504)
    if not g.idem_reconciled and (nothing or (claim.kind != KEY and resp.status_code >= 300)):
        ctx.abandon(claim)
        return
    result: SubmissionResult | None = g.idem_result
    first = next((m.message_id for m in result.messages if m.message_id), None) if result else None
    ref = (result.bulk_id if result else None) or first
    if g.idem_reconciled:  # answered from the record: a replay, like the ones after it
        _mark(resp, claim, ref)
    ctx.finish(claim, resp.status_code, resp.content_type, resp.get_data(), ref, first)


def _request_params() -> QueryParams:
    """The parameters as the entrance decoded them (``g.params``: e.g. Jasmin's raw UCS-2 content), else the
    query string and form body decoded the usual way."""
    params = g.get("params")
    return params if params is not None else request_params()


def request_key() -> str | None:
    """The caller's idempotency key (header or parameter), checked; None when not given."""
    header = request.headers.get(HEADER)
    if header is not None:
        header = header.strip()
        if len(header) >= 2 and header[0] == header[-1] == '"':  # the IETF draft's sf-string form
            header = header[1:-1]
    params = _request_params().getall(PARAM)
    if len(params) > 1:
        raise ApiError.bad_request(PARAM, "is given more than once; give one idempotency key")
    param = params[0] if params else None
    if header is not None and param is not None and header != param:
        raise ApiError.bad_request(PARAM, f"differs from the {HEADER} header; give one idempotency key")
    key = header if header is not None else param
    if key is None:
        return None
    name = HEADER if header is not None else PARAM
    if not key:
        raise ApiError.bad_request(name, "is empty; give a unique value per message, e.g. a UUID")
    if len(key) > MAX_KEY or not all(" " <= ch <= "~" for ch in key):
        raise ApiError.bad_request(name, f"must be 1 to {MAX_KEY} printable ASCII characters")
    return key


def _content(caller: str) -> str:
    """The request's fingerprint: caller, URL, format, decoded parameters (and JSON body) minus credentials."""
    params = sorted((n, v) for n, v in _request_params().items() if n not in CREDENTIAL_PARAMS and n != PARAM)
    data = request.get_data()
    body: Any = None
    if data and request.mimetype != "application/x-www-form-urlencoded":  # a form's fields are in params
        try:
            body = loads(data, "body")  # canonical: key order and escapes do not matter
        except ApiError:
            body = data.hex()
    return fingerprint(caller, request.path, [g.get("fmt"), params, body])


def _replay(slot: Slot, claim: Claim) -> Response:
    return _mark(Response(slot.body or b"", status=slot.http_status or 200, content_type=slot.content_type), claim,
                 slot.ref)


def _mark(resp: Response, claim: Claim, ref: str | None) -> Response:
    resp.headers["Idempotent-Replayed"] = "true"
    if claim.kind != KEY and ref:
        resp.headers["X-Duplicate-Of"] = ref
    return resp


def _acquire(caller: Caller, template: TemplateSpec | None) -> Slot | None:
    """Reserve the request's key or fingerprint; raise Replayed, 409 or 422 instead when it is taken. The slot
    when its first request died after recording its submission (``recorded``: answered from the record)."""
    ctx = bridge().idempotency
    key = request_key()
    if key is not None:
        claim = ctx.claim_key(caller.name, key, _content(caller.name))
    else:
        window = ctx.window(caller, template)
        if window <= 0:
            return None
        claim = ctx.claim_dedupe(caller.name, _content(caller.name), window)
    slot = ctx.acquire(claim)
    if slot.outcome == DONE:
        raise Replayed(_replay(slot, claim))
    what = f"{HEADER} {key!r}" if key is not None else "An identical request"
    if slot.outcome == MISMATCH:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", f"{what} was already used by this caller for a different "
                       "request (other parameters or body); use a new key for a new message")
    if slot.outcome == INFLIGHT:
        raise ApiError(409, "CONFLICT", f"{what} is still being processed (or its first attempt never finished); "
                       "retry later to get its answer")
    if slot.outcome == RECORDED:  # it holds the key, whose row stays under the record's token (finish checks it)
        claim = dataclasses.replace(claim, token=slot.ref or "")
    elif slot.ref is not None:  # taken over from a request that recorded nothing: its messageIds are ours
        claim = dataclasses.replace(claim, displaced=slot.ref)
    g.idem = claim
    return slot if slot.outcome == RECORDED else None


def accepted_now(caller: Caller) -> bool:
    """Whether this request's send was taken by the upstream now (a sync caller and a 2xx among the attempts),
    not handed to the queue: the dialects' "accepted by the SMSC" events (Kannel's 8, Jasmin's level 1)."""
    return Dispatcher.mode_of(caller, None) == "sync" and any(
        a.http_status is not None and 200 <= a.http_status < 300 for a in g.get("attempts") or ())


def send(sub: Submission, api: str, caller: Caller,
         template: TemplateSpec | None = None) -> tuple[SubmissionResult, list[Attempt]]:
    """``Dispatcher.send`` behind the request's key: a replay never reaches it, and destinations whose custom
    messageId the caller already used get REJECTED_DUPLICATE_MESSAGE_ID (Infobip's answer) instead."""
    ctx = bridge()
    recorded = _acquire(caller, template)
    if recorded is not None:  # its first request died after recording it: that record is the answer
        g.idem_reconciled = True
        g.idem_result = ctx.idempotency.answer(recorded, sub)
        return g.idem_result, []
    wanted = [d.message_id for m in sub.messages for d in m.destinations if d.message_id]
    if not wanted:
        result, attempts = _dispatch(ctx, sub, api, caller, template)
        g.idem_result = result
        return result, attempts
    unique = list(dict.fromkeys(wanted))
    taken = ctx.idempotency.reserve_message_ids(caller.name, unique, g.idem)
    g.idem_ids = [i for i in unique if i not in taken]
    seen: set[str] = set()
    refused: set[tuple[int, int]] = set()
    for mi, m in enumerate(sub.messages):
        for di, d in enumerate(m.destinations):
            if d.message_id and (d.message_id in taken or d.message_id in seen):
                refused.add((mi, di))
            elif d.message_id:
                seen.add(d.message_id)
    if not refused:
        result, attempts = _dispatch(ctx, sub, api, caller, template)
        g.idem_result = result
        return result, attempts
    return _send_rest(sub, refused, api, caller, template)


def _dispatch(ctx: Bridge, sub: Submission, api: str, caller: Caller,
              template: TemplateSpec | None) -> tuple[SubmissionResult, list[Attempt]]:
    """``Dispatcher.send`` recording ``sub`` under the request's key (fenced: see Idempotency.fence); a key
    taken over by a retry meanwhile (this request was slower than the key's lease) is 409, nothing sent."""
    claim: Claim | None = g.idem
    if claim is None:
        return ctx.dispatch.send(sub, api, caller, template)
    try:
        return ctx.dispatch.send(sub, api, caller, template, claim.token, ctx.idempotency.fence(claim))
    except Fenced:
        ctx.idempotency.refused["conflict"] += 1
        log.warning("idempotency: a key was taken over by a retry before its first request recorded its send; "
                    "that request sent nothing")
        what = f"{HEADER} {claim.key[4:]!r}" if claim.kind == KEY else "An identical request"
        raise ApiError(409, "CONFLICT", f"{what} was taken over by a retry while this request was being "
                       "processed (it took longer than the key's lease); this request sent nothing: retry to get "
                       "the retry's answer") from None


def _send_rest(sub: Submission, refused: set[tuple[int, int]], api: str, caller: Caller,
               template: TemplateSpec | None) -> tuple[SubmissionResult, list[Attempt]]:
    """Send the destinations not refused; answer every destination in the request's order."""
    rest = dataclasses.replace(sub, messages=[
        dataclasses.replace(m, destinations=[d for di, d in enumerate(m.destinations) if (mi, di) not in refused])
        for mi, m in enumerate(sub.messages)])
    rest.messages = [m for m in rest.messages if m.destinations]
    if rest.messages:
        result, attempts = _dispatch(bridge(), rest, api, caller, template)
    else:  # every destination refused: nothing goes upstream
        result, attempts = SubmissionResult(bulk_id=sub.bulk_id), []
    sent = iter(result.messages)
    merged = SubmissionResult(bulk_id=result.bulk_id or sub.bulk_id)
    for mi, m in enumerate(sub.messages):
        for di, d in enumerate(m.destinations):
            if (mi, di) in refused:
                merged.messages.append(SentMessage(d.to, DUPLICATE_ID, d.message_id))
            else:
                merged.messages.append(next(sent))
    g.idem_result = merged
    return merged, attempts
