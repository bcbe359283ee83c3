"""Delivery channels (healthchecks' ``transports.py`` is the model): one small class per kind of
target, each preparing an outbox job (:class:`~gateway.delivery.outbox.NewJob`) from model objects;
the outbox delivers, retries and keeps dead letters the same way for all of them.

* :class:`NotifyUrlChannel` - a report pushed to the caller's own ``notifyUrl`` from the send, in the
  shape of the caller's entrance (Infobip's v1/v2 shape, or v3 for ``POST /sms/3/messages``), JSON or
  XML by the send's ``notifyContentType``;
* :class:`CallbackChannel` - a report to a legacy callback (URL/body templates, Kannel escapes);
* :class:`JasminDlrChannel` - a report to a Jasmin ``dlr-url`` with the DLR thrower's fields, at the
  requested level, by the requested method;
* :class:`InboundForwardChannel` - an inbound message forwarded by a routing rule (GET, or POST as a
  form, JSON, Infobip's own MO shape, Jasmin's HTTP-connector shape, or Kannel's ``post-url``: the text with
  ``X-Kannel-*`` headers).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from ..inbound.routing import CompiledRule
from ..model import InboundMessage, Report
from ..reports.callbacks import CompiledCallback, report_fields
from ..store.reports import StoredMessage
from ..wire.inbound import inbox_body
from ..wire.jasmin import DlrRequest, dlr_fields, dlr_levels, mo_fields
from ..wire.reports import report_v1, reports_body
from ..wire.v3_reports import report_v3
from .outbox import NewJob

#: Variables sent by a POST form/json forward that names no fields.
DEFAULT_FIELDS = ("messageId", "from", "to", "text", "cleanText", "keyword", "receivedAt", "smsCount",
                  "callbackData")


class NotifyUrlChannel:
    """Each report is its own outbox job (its own attempts and retry schedule), but due jobs for one
    URL in one shape and format are sent together, as Infobip does: one push of up to
    ``outbox.max_batch`` results (:func:`gateway.wire.reports.merge_reports_bodies`). The v3 shape has
    a kind of its own so that the two shapes never share a push."""

    kind = "dlr"
    kind_v3 = "dlr-v3"

    def prepare(self, report: Report, target: StoredMessage) -> NewJob:
        if target.entrance == "messages":
            result, kind = report_v3(report), self.kind_v3
        else:
            result, kind = report_v1(report), self.kind
        body, ctype = reports_body([result], target.notify_content_type)
        return NewJob(kind, target.notify_url or "", "POST", body, ctype, caller=target.caller,
                      ref=target.message_id)


class CallbackChannel:
    """A legacy callback, rendered per report: never merged (its URL and body carry one report).
    ``prepare`` raises whatever a template's filter may raise."""

    kind = "dlr-callback"

    def __init__(self, compiled: CompiledCallback) -> None:
        self.compiled = compiled

    def prepare(self, report: Report, target: StoredMessage) -> NewJob:
        url, body = self.compiled.render(report_fields(report))
        spec = self.compiled.spec
        return NewJob(self.kind, url, spec.method, body, spec.content_type if body is not None else None,
                      caller=target.caller, ref=target.message_id)


def _with_query(url: str, fields: list[tuple[str, str]]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(fields, encoding="utf-8")


def _form(fields: list[tuple[str, str]]) -> bytes:
    return urlencode(fields, encoding="utf-8").encode("ascii")


class JasminDlrChannel:
    """Jasmin's DLR thrower: an intermediate report is the SMSC level (1), the final one the terminal level
    (2), each sent if ``dlr-level`` asked for it (gateway/wire/jasmin.py); GET puts the fields in the query
    string, POST in a form body. Any 2xx is success (an ``ACK/Jasmin`` body too)."""

    kind = "dlr-jasmin"

    def prepare(self, report: Report, target: StoredMessage, dlr: DlrRequest) -> list[NewJob]:
        return [self.job(dlr, dlr_fields(report, level, target.text), target.caller, target.message_id)
                for level in dlr_levels(dlr.level, report)]

    def job(self, dlr: DlrRequest, fields: list[tuple[str, str]], caller: str | None, ref: str | None) -> NewJob:
        return _fields_job(self.kind, dlr.url, dlr.method, fields, caller, ref)

    def accepted(self, report: Report, caller: str | None, dlr: DlrRequest) -> list[NewJob]:
        """The SMSC-level receipt (level 1) of a send the upstream accepted, if ``dlr-level`` asked for it."""
        if dlr.level not in (1, 3):
            return []
        return [self.job(dlr, dlr_fields(report, 1, ""), caller, report.message_id or None)]


def _fields_job(kind: str, url: str, method: str, fields: list[tuple[str, str]], caller: str | None,
                ref: str | None) -> NewJob:
    """Jasmin's way with fields: GET puts them in the query string, POST in a form body."""
    if method == "GET":
        return NewJob(kind, _with_query(url, fields), "GET", None, None, caller=caller, ref=ref)
    return NewJob(kind, url, "POST", _form(fields), "application/x-www-form-urlencoded", caller=caller, ref=ref)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class InboundForwardChannel:
    """An inbound message to a rule's forward URL; ``prepare`` raises ``RenderError``."""

    kind = "inbound"
    kind_answer = "inbound-answer"  # a forward whose answer is the reply SMS (gateway/inbound/answers.py)

    def prepare(self, rule: CompiledRule, msg: InboundMessage, values: dict[str, Any]) -> NewJob | None:
        """The forward job (None when the rule has no forward)."""
        fwd = rule.rule.forward
        if fwd is None or rule.url is None:
            return None
        url = rule.url.render(values)["url"]
        caller, ref = rule.rule.caller, msg.message_id
        kind = self.kind_answer if fwd.answer is not None else self.kind
        if fwd.body == "jasmin":  # Jasmin's HTTP client connector
            return _fields_job(kind, url, fwd.method, mo_fields(msg), caller, ref)
        if fwd.method == "GET":
            return NewJob(kind, url, "GET", None, None, caller=caller, ref=ref)
        if fwd.body == "infobip":
            return NewJob(kind, url, "POST", _json(inbox_body([msg], 0)), "application/json", caller=caller,
                          ref=ref)
        if fwd.body == "kannel":  # Kannel's sms-service post-url: the text as the body, the rest in X-Kannel-*
            headers = {"X-Kannel-From": str(values["from"]), "X-Kannel-To": str(values["to"]),
                       "X-Kannel-Time": str(values["_t"]), "X-Kannel-SMSC": "infobip", "X-Kannel-Coding": "0",
                       "X-Kannel-Service": str(values["rule"])}
            return NewJob(kind, url, "POST", str(values["text"]).encode("utf-8"), 'text/plain; charset="UTF-8"',
                          headers=headers, caller=caller, ref=ref)
        data = rule.fields.render(values) if rule.fields else {k: values[k] for k in DEFAULT_FIELDS}
        if fwd.body == "json":
            return NewJob(kind, url, "POST", _json(data), "application/json", caller=caller, ref=ref)
        body = urlencode([(k, str(v)) for k, v in data.items()], encoding="utf-8").encode("ascii")
        return NewJob(kind, url, "POST", body, "application/x-www-form-urlencoded", caller=caller, ref=ref)
