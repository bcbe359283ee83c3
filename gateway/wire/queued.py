"""The queued message's forwarding spec: an opaque string that only this module writes and reads.

A queued (or write-ahead) message keeps its advanced-API message without destinations, with the bridge's
own notifyUrl, pre-encoded once at acceptance, and the submission-level options (tracking, urlOptions,
sendingSpeedLimit) beside it. The queue worker never looks inside: it groups rows by spec, asks
:func:`options` which rows may share one upstream request, and has :func:`advanced_batch` build that
request's body straight from the specs (no round trip through the model: the worker shares the GIL with the
request threads)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..model import Message, Submission
from .legacy import message_to_advanced, submission_to_advanced

_SUB_KEYS = ("tracking", "urlOptions", "sendingSpeedLimit")
_OPTIONS = "_submission"


def submission_options(sub: Submission) -> dict[str, Any]:
    """The submission-level advanced-API options a spec carries (empty for most sends)."""
    if not (sub.tracking or sub.url_options or sub.sending_speed_limit):
        return {}
    wire = submission_to_advanced(dataclasses.replace(sub, messages=[]))
    return {k: wire[k] for k in _SUB_KEYS if k in wire}


def encode_spec(msg: Message, hook: str | None, options: dict[str, Any]) -> str:
    """``msg`` as an advanced-API message minus destinations, reporting to ``hook`` (the bridge's own
    notifyUrl; None: no reports), with the submission's ``options``."""
    dests, msg.destinations = msg.destinations, []  # request-local object: cheaper than dataclasses.replace
    try:
        body = message_to_advanced(msg)
    finally:
        msg.destinations = dests
    body.pop("destinations", None)
    if hook:
        body["notifyUrl"], body["notifyContentType"] = hook, "application/json"
    else:
        body.pop("notifyUrl", None)
        body.pop("notifyContentType", None)
    if options:
        body[_OPTIONS] = options
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def decode_specs(specs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each distinct spec parsed once."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec not in out:
            out[spec] = json.loads(spec)
    return out


def options(decoded: dict[str, Any]) -> dict[str, Any]:
    """The submission-level options of a decoded spec: rows may share a request only when these are equal."""
    return decoded.get(_OPTIONS) or {}


def advanced_batch(rows: Sequence[tuple[str, str, str | None]], decoded: dict[str, dict[str, Any]],
                   bulk_id: str | None, validity: dict[str, int] | None = None) -> dict[str, Any]:
    """The ``POST /sms/2/text/advanced`` body for ``rows`` of (spec, to, messageId), all with the same
    :func:`options`; messages of one spec share one message object with several destinations. ``validity``
    (spec -> minutes) lowers a message's ``validityPeriod`` to what is left of it after waiting in the queue."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec, to, message_id in rows:
        groups.setdefault(spec, []).append({"to": to, "messageId": message_id})
    messages = []
    for spec, destinations in groups.items():
        m = {k: v for k, v in decoded[spec].items() if k != _OPTIONS}
        left = (validity or {}).get(spec)
        if left is not None:
            own = m.get("validityPeriod")
            m["validityPeriod"] = min(own, left) if isinstance(own, int) and own > 0 else left
        m["destinations"] = destinations
        messages.append(m)
    body: dict[str, Any] = {"messages": messages, **options(decoded[rows[0][0]]), "includeSmsCountInResponse": True}
    if bulk_id:
        body["bulkId"] = bulk_id
    return body
