"""Reports out: each stored delivery report becomes durable outbox jobs (gateway/outbox.py).

Two channels, one small class each (the healthchecks transport style):

* :class:`NotifyUrlChannel` - the caller's own ``notifyUrl`` from the send, in Infobip's v1/v2 report
  shape, JSON or XML by the send's ``notifyContentType``, with the caller's ``callbackData``;
* :class:`CallbackChannel` - a legacy callback configured on the caller or the template: a URL (and
  optional body) template rendered in Jinja's sandbox with the report's fields, called by GET or POST.

Kannel ``dlr-url`` escapes are aliases in callback templates (legacy-gateways.md §1.3):

====  ============================================================================================
%d    DLR type: 1 delivered, 2 undeliverable/expired, 4 pending (intermediate), 8 accepted, 16 rejected
%p    the destination handset (``to``); %q the same with a leading ``+``
%P    the sender of the message (``from``); %Q the same with a leading ``+`` when numeric
%A    the status description (Kannel: the SMSC's DLR text)
%T    doneAt as a UNIX time; %t doneAt as ``YYYY-MM-DD+HH:MM:SS`` (UTC)
%F    the upstream's (Infobip's) messageId (Kannel: the SMSC's id)
%I    the messageId the caller was given (Kannel's %I is the DLR's own id; the MT id is more useful)
%B    the error id (Kannel: the SMPP ``err`` field)
%n    the caller's name;  %i  ``infobip``;  %%  a percent sign (``%25`` in a URL, ``%`` in a body)
====  ============================================================================================

Every value put in a callback URL is percent-encoded (Jinja ``finalize``), so ``{{ to }}`` and ``%p``
are safe in a query string; a POST ``body`` template gets raw values (use ``|urlencode`` there).
Reports are relayed when final; intermediate ones only for messages sent with
``intermediateReport=true``.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

from ..clock import parse_time
from ..config import Callback, Config, ConfigError
from ..delivery.outbox import NewJob, Outbox
from ..wire.reports import merge_reports_bodies, reports_body
from .pulls import report_v3

log = logging.getLogger(__name__)

DLR_TYPES = {"DELIVERED": 1, "UNDELIVERABLE": 2, "EXPIRED": 2, "PENDING": 4, "ACCEPTED": 8, "REJECTED": 16}
KANNEL = {
    "d": "kannel_d", "p": "kannel_p", "P": "kannel_P", "q": "kannel_q", "Q": "kannel_Q", "A": "kannel_A",
    "T": "kannel_T", "t": "kannel_t", "F": "kannel_F", "I": "kannel_I", "B": "kannel_B", "n": "kannel_n",
    "i": "kannel_i",
}
FIELDS = (
    "messageId", "bulkId", "to", "from", "status", "statusName", "statusId", "statusGroup", "statusGroupId",
    "statusDescription", "errorName", "errorId", "errorGroup", "errorDescription", "permanent", "sentAt",
    "doneAt", "smsCount", "price", "currency", "mccMnc", "callbackData", "intermediate", "caller",
    "upstreamMessageId", "dlrType", *KANNEL.values(),
)
_ESCAPE = re.compile(r"%([%" + "".join(KANNEL) + "])")


def kannel_to_jinja(src: str, percent: str = "%") -> str:
    """``…&type=%d`` -> ``…&type={{ kannel_d }}``; ``%%`` -> ``percent``; other ``%xx`` untouched."""
    return _ESCAPE.sub(lambda m: percent if m.group(1) == "%" else "{{ " + KANNEL[m.group(1)] + " }}", src)


def _quote(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def report_fields(report: Mapping[str, Any], msg: Mapping[str, Any], intermediate: bool) -> dict[str, Any]:
    """The variables a callback template sees (camelCase report fields plus Kannel aliases)."""
    status, error, price = report.get("status") or {}, report.get("error") or {}, report.get("price") or {}
    done = parse_time(report.get("doneAt"))
    to, sender = report.get("to") or "", report.get("from") or ""
    group = status.get("groupName") or ""
    f: dict[str, Any] = {
        "messageId": report.get("messageId") or "", "bulkId": report.get("bulkId") or "", "to": to, "from": sender,
        "status": status.get("name") or "", "statusName": status.get("name") or "", "statusId": status.get("id", ""),
        "statusGroup": group, "statusGroupId": status.get("groupId", ""),
        "statusDescription": status.get("description") or "",
        "errorName": error.get("name") or "", "errorId": error.get("id", ""), "errorGroup": error.get("groupName") or "",
        "errorDescription": error.get("description") or "", "permanent": bool(error.get("permanent", False)),
        "sentAt": report.get("sentAt") or "", "doneAt": report.get("doneAt") or "",
        "smsCount": report.get("smsCount", ""), "price": price.get("pricePerMessage", ""),
        "currency": price.get("currency") or "", "mccMnc": report.get("mccMnc") or "",
        "callbackData": report.get("callbackData") or "", "intermediate": intermediate,
        "caller": msg.get("caller") or "", "upstreamMessageId": msg.get("upstream_message_id") or "",
        "dlrType": DLR_TYPES.get(group, 2),
    }
    f.update({
        "kannel_d": f["dlrType"], "kannel_p": to, "kannel_P": sender, "kannel_q": "+" + to if to else "",
        "kannel_Q": "+" + sender if sender.isdigit() else sender, "kannel_A": f["statusDescription"],
        "kannel_T": int(done) if done else "",
        "kannel_t": datetime.fromtimestamp(done, UTC).strftime("%Y-%m-%d+%H:%M:%S") if done else "",
        "kannel_F": f["upstreamMessageId"], "kannel_I": f["messageId"], "kannel_B": f["errorId"],
        "kannel_n": f["caller"], "kannel_i": "infobip",
    })
    return f


@dataclass
class CompiledCallback:
    name: str
    spec: Callback
    url: Any  # jinja2.Template
    body: Any | None

    def prepare(self, fields: Mapping[str, Any]) -> tuple[str, bytes | None]:
        url = self.url.render(fields)
        body = self.body.render(fields).encode("utf-8") if self.body is not None else None
        return url, body


def compile_callbacks(config: Config) -> dict[str, CompiledCallback]:
    """Compile every configured callback (``caller:<n>``, ``template:<n>``); ConfigError names the
    broken ones with their key paths."""
    url_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_quote)
    body_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    specs = [(f"caller:{n}", f"callers.{n}.callback", c.callback) for n, c in config.callers.items()]
    specs += [(f"template:{n}", f"templates.{n}.callback", t.callback) for n, t in config.templates.items()]
    out, problems = {}, []
    sample = report_fields({"status": {"groupName": "DELIVERED"}, "doneAt": "2020-01-01T00:00:00.000+0000"}, {},
                           False)
    for name, path, spec in specs:
        if spec is None:
            continue
        compiled: dict[str, Any] = {}
        for part, env, src in (("url", url_env, spec.url), ("body", body_env, spec.body)):
            if src is None:
                continue
            try:
                source = kannel_to_jinja(src, "%25" if part == "url" else "%")
                unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - set(FIELDS))
                if unknown:
                    problems.append((f"{path}.{part}", f"uses unknown field(s) {', '.join(unknown)}; known: "
                                     f"{', '.join(f for f in FIELDS if not f.startswith('kannel_'))} and Kannel %-escapes"))
                    continue
                compiled[part] = env.from_string(source)
                compiled[part].render(sample)
            except Exception as exc:  # compile or sandbox error: reported, never a trace
                problems.append((f"{path}.{part}", f"does not compile or render: {exc}"))
        if "url" in compiled and (spec.body is None or "body" in compiled):
            out[name] = CompiledCallback(name, spec, compiled["url"], compiled.get("body"))
    if problems:
        raise ConfigError(problems)
    return out


class NotifyUrlChannel:
    """The report in the shape of the caller's entrance, whatever the upstream: Infobip's v1/v2 shape
    (``from``, ``smsCount``), or the v3 shape (``sender``, ``messageCount``, ``platform``,
    ``campaignReferenceId``: infobip-sms-api.md §7.2) for a message sent to ``POST /sms/3/messages``
    (``messages.entrance = 'messages'``).

    Each report is its own outbox job (its own attempts and retry schedule), but due jobs for one URL
    in one shape and format are sent together, as Infobip does: one push of up to ``outbox.max_batch``
    results (:func:`gateway.dlr.merge_reports_bodies`). The v3 shape has a kind of its own so that
    the two shapes never share a push."""

    kind = "dlr"
    kind_v3 = "dlr-v3"

    def prepare(self, report: dict[str, Any], msg: Mapping[str, Any]) -> tuple[str, str, str, bytes, str]:
        """(kind, method, URL, body, content type) of the push of one report."""
        kind = self.kind
        if msg["entrance"] == "messages":
            report, kind = report_v3(report, msg), self.kind_v3
        body, ctype = reports_body([report], msg["notify_content_type"])
        return kind, "POST", msg["notify_url"], body, ctype


class CallbackChannel:
    """A legacy callback, rendered per report: never merged (its URL and body carry one report)."""

    kind = "dlr-callback"

    def __init__(self, compiled: CompiledCallback) -> None:
        self.compiled = compiled

    def prepare(self, report: dict[str, Any], msg: Mapping[str, Any], intermediate: bool) -> tuple[str, str, bytes | None, str | None]:
        url, body = self.compiled.prepare(report_fields(report, dict(msg), intermediate))
        spec = self.compiled.spec
        return spec.method, url, body, spec.content_type if body is not None else None


class Relay:
    """Turns a stored report into outbox jobs, inside the transaction that stored it."""

    def __init__(self, config: Config, outbox: Outbox) -> None:
        self.outbox = outbox
        self.callbacks = {n: CallbackChannel(c) for n, c in compile_callbacks(config).items()}
        self.notify = NotifyUrlChannel()
        for kind in (NotifyUrlChannel.kind, NotifyUrlChannel.kind_v3):
            outbox.mergeable(kind, merge_reports_bodies)

    def jobs(self, msg: sqlite3.Row, report: dict[str, Any], intermediate: bool) -> list[NewJob]:
        """The outbox jobs for the report: the message's notifyUrl and legacy callback, if any."""
        if intermediate and not msg["intermediate"]:
            return []
        jobs = []
        if msg["notify_url"]:
            kind, method, url, body, ctype = self.notify.prepare(report, msg)
            jobs.append(NewJob(kind, url, method, body, ctype, caller=msg["caller"], ref=msg["message_id"]))
        channel = self.callbacks.get(msg["callback"] or "")
        if channel is not None:
            try:
                method, url, cbody, cctype = channel.prepare(report, msg, intermediate)
                jobs.append(NewJob(CallbackChannel.kind, url, method, cbody, cctype, caller=msg["caller"],
                                   ref=msg["message_id"]))
            except Exception as exc:  # a filter may raise anything: logged (type only), never a trace
                log.warning("callback %s for message %s failed to render: %s", channel.compiled.name,
                            msg["message_id"], type(exc).__name__)
        return jobs

    def enqueue_jobs(self, conn: sqlite3.Connection, jobs: list[NewJob]) -> int:
        """Queue ``jobs`` (of many reports: one statement) in the open transaction; return the jobs made."""
        made = 0
        for job, refused in zip(jobs, self.outbox.enqueue_many(jobs, conn=conn), strict=True):
            if refused is None:
                made += 1
            else:
                log.warning("report for message %s not relayed (%s): %s", job.ref, job.kind, refused)
        return made

    def enqueue(self, conn: sqlite3.Connection, msg: sqlite3.Row, report: dict[str, Any], intermediate: bool) -> int:
        """Queue the report for the message's notifyUrl and legacy callback; return the jobs made."""
        return self.enqueue_jobs(conn, self.jobs(msg, report, intermediate))
