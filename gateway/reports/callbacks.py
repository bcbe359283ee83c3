"""Legacy report callbacks: the variables a callback template sees, and the compiled templates.

A callback is configured on the caller or the template: a URL (and optional body) template rendered
in Jinja's sandbox (gateway/render.py) with the report's fields, called by GET or POST. Kannel
``dlr-url`` escapes are aliases in callback templates (legacy-gateways.md §1.3):

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

Every value put in a callback URL is percent-encoded, so ``{{ to }}`` and ``%p`` are safe in a query
string; a POST ``body`` template gets raw values (use ``|urlencode`` there). A missing value renders
as "" in both, as in every template of the bridge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import meta

from ..clock import fmt_time
from ..config import Callback, Config, ConfigError
from ..model import Report, Status
from ..render import kannel_to_jinja, make_environment

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


def report_fields(r: Report) -> dict[str, Any]:
    """The variables a callback template sees (camelCase report fields plus Kannel aliases)."""
    status, error, price, done = r.status, r.error, r.price, r.done_at
    to, sender = r.to or "", r.sender or ""
    group = status.group_name if status else ""
    f: dict[str, Any] = {
        "messageId": r.message_id or "", "bulkId": r.bulk_id or "", "to": to, "from": sender,
        "status": status.name if status else "", "statusName": status.name if status else "",
        "statusId": status.id if status else "", "statusGroup": group,
        "statusGroupId": status.group_id if status else "", "statusDescription": status.description if status else "",
        "errorName": error.name if error else "", "errorId": error.id if error else "",
        "errorGroup": error.group_name if error else "", "errorDescription": error.description if error else "",
        "permanent": bool(error and error.permanent),
        "sentAt": fmt_time(r.sent_at) or "", "doneAt": fmt_time(done) or "",
        "smsCount": r.sms_count if r.sms_count is not None else "",
        "price": price.price_per_message if price and price.price_per_message is not None else "",
        "currency": (price.currency if price else None) or "", "mccMnc": r.mcc_mnc or "",
        "callbackData": r.callback_data or "", "intermediate": r.intermediate,
        "caller": r.caller or "", "upstreamMessageId": r.upstream_message_id or "",
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

    def render(self, fields: Mapping[str, Any]) -> tuple[str, bytes | None]:
        url = self.url.render(fields)
        body = self.body.render(fields).encode("utf-8") if self.body is not None else None
        return url, body


_SAMPLE = Report("1", Status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"),
                 done_at=1577836800.0)


def compile_callbacks(config: Config) -> dict[str, CompiledCallback]:
    """Compile every configured callback (``caller:<n>``, ``template:<n>``); ConfigError names the
    broken ones with their key paths."""
    url_env, body_env = make_environment(url=True), make_environment()
    specs = [(f"caller:{n}", f"callers.{n}.callback", c.callback) for n, c in config.callers.items()]
    specs += [(f"template:{n}", f"templates.{n}.callback", t.callback) for n, t in config.templates.items()]
    out, problems = {}, []
    sample = report_fields(_SAMPLE)
    for name, path, spec in specs:
        if spec is None:
            continue
        compiled: dict[str, Any] = {}
        for part, env, src in (("url", url_env, spec.url), ("body", body_env, spec.body)):
            if src is None:
                continue
            try:
                source = kannel_to_jinja(src, KANNEL, "%25" if part == "url" else "%")[0]
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
