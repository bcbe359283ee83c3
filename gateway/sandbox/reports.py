"""The sandbox's delivery reports, like Infobip's: a final status after ``sandbox.dlr_delay`` seconds,
pushed to the message's notifyUrl (JSON or XML by notifyContentType) with the push retry cycle
(1 min + 1 min·n², 20 retries, times ``sandbox.time_scale``), and served by ``GET /sms/1/reports``
(each report once) and ``GET /sms/1/logs``.

Rules (``sandbox.dlr_rules``, first match on the destination's prefix wins), e.g.::

    dlr_rules:
      - "4179000 UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER"
      - "4179001 REJECTED_DESTINATION"
      - "4179002 EXPIRED_EXPIRED"        # reported when the validityPeriod runs out (default 48 h)

A message sent with ``intermediateReport=true`` first gets a PENDING_ENROUTE report at half the delay.
Reports that are due together for the same notifyUrl share one push (up to ``PUSH_BATCH``), as Infobip's do.
The timers run on the sandbox's one scheduler (gateway/sandbox/scheduler.py), shared with inbound pushes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from flask import Blueprint, Response, g, request

from ..clock import fmt_time, scaled
from ..config import ConfigError, SandboxSettings
from ..delivery.outbox import RETRY_DELAYS, DeliveryError, HttpDeliverer
from ..entrances.querystring import parse_query
from ..redact import redact_url
from ..validate import Errors, parse_datetime, parse_int
from ..wire.formats import render
from ..wire.reports import reports_body
from ..wire.statuses import ERROR_BY_NAME, PENDING_ENROUTE, STATUS_BY_NAME, error_object
from .common import authenticate, sandbox
from .scheduler import Scheduler
from .state import SandboxState
from .v3 import CANCELED, V3State, mcc_mnc, schedule_of

log = logging.getLogger(__name__)

NO_ERROR = 0
PUSH_BATCH = 100  # reports due at the same time for one notifyUrl go out in one push (Infobip's `results` array)
STATUS, PUSH = "report.status", "report.push"  # the scheduler's job kinds
_ERROR_FOR = {"UNDELIVERABLE": "EC_ABSENT_SUBSCRIBER", "EXPIRED": "EC_VALIDITYEXPIRED"}


@dataclass(frozen=True)
class Rule:
    prefix: str
    status: str
    error: int


def parse_rules(settings: SandboxSettings) -> tuple[Rule, list[Rule]]:
    """The default outcome and the prefix rules; ConfigError names a bad rule."""
    problems: list[tuple[str, str]] = []

    def rule(prefix: str, status: str, error: str | None, path: str) -> Rule:
        if status not in STATUS_BY_NAME:
            problems.append((path, f"unknown status {status!r}"))
            return Rule(prefix, "DELIVERED_TO_HANDSET", NO_ERROR)
        group = STATUS_BY_NAME[status].group_name
        error = error or _ERROR_FOR.get(group)
        if error is not None and error not in ERROR_BY_NAME:
            problems.append((path, f"unknown error {error!r}"))
            error = None
        return Rule(prefix, status, ERROR_BY_NAME[error] if error else NO_ERROR)

    default = rule("", settings.dlr_status, None, "sandbox.dlr_status")
    rules = []
    for i, text in enumerate(settings.dlr_rules):
        parts = str(text).split()
        if len(parts) not in (2, 3) or not parts[0].isdigit():
            problems.append((f"sandbox.dlr_rules[{i}]", "must be '<prefix digits> <STATUS_NAME> [<ERROR_NAME>]'"))
            continue
        rules.append(rule(parts[0], parts[1], parts[2] if len(parts) == 3 else None, f"sandbox.dlr_rules[{i}]"))
    if problems:
        raise ConfigError(problems)
    return default, rules


class DlrEngine:
    """Plans final statuses and report pushes (with the retry cycle) on the sandbox's scheduler."""

    def __init__(self, state: SandboxState, settings: SandboxSettings, scheduler: Scheduler,
                 v3: V3State | None = None) -> None:
        self.state, self.settings, self.scheduler = state, settings, scheduler
        self.v3 = v3 or V3State()
        self.default, self.rules = parse_rules(settings)
        self.deliverer = HttpDeliverer(requests.Session(), connect_timeout=3, read_timeout=10)
        scheduler.handle(STATUS, self._statuses)
        scheduler.handle(PUSH, self._retries)

    def accepted(self, msg: dict[str, Any]) -> None:
        """A message was accepted: plan its reports."""
        rule = next((r for r in self.rules if msg["to"].startswith(r.prefix)), self.default)
        delay = max(0.0, self.settings.dlr_delay)
        if STATUS_BY_NAME[rule.status].group_name == "EXPIRED":
            delay = scaled((msg.get("validityPeriod") or 2880) * 60, self.settings.time_scale)
        plan = schedule_of(msg, self.v3)
        if plan is not None:  # scheduled (sendAt): nothing happens before its time
            delay += max(0.0, plan[1])
        if msg.get("intermediateReport"):
            self.scheduler.after(delay / 2 if plan is None else delay, STATUS,
                                 (msg["messageId"], PENDING_ENROUTE.name, NO_ERROR))
        self.scheduler.after(delay, STATUS, (msg["messageId"], rule.status, rule.error))

    def replan(self, bulk_id: str) -> None:
        """A scheduled bulk was rescheduled, resumed or canceled: plan its messages' reports again (jobs
        already planned re-check the schedule when they run, and a message ends once)."""
        with self.state.lock:
            msgs = [dict(m) for m in self.state.messages.values()
                    if m.get("bulkId") == bulk_id and m.get("doneAt") is None]
        for m in msgs:
            plan = schedule_of(m, self.v3)
            if plan is not None and plan[0] == "CANCELED":  # reported now, not at the old sendAt
                self.scheduler.after(0, STATUS, (m["messageId"], "UNDELIVERABLE_NOT_DELIVERED", 4100))
            else:
                self.accepted(m)

    def close(self) -> None:
        self.deliverer.session.close()

    # -- the scheduler's handlers --------------------------------------------------------------
    def _statuses(self, due: list[tuple[str, str, int]]) -> None:
        pushes: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        for payload in due:
            try:
                made = self._status(*payload)
                if made:
                    pushes.setdefault(made[:2], []).append(made[2])
            except Exception:  # the sandbox keeps running whatever a report does
                log.exception("sandbox report status failed")
        for (url, ctype), reports in pushes.items():  # like Infobip: reports due together share a push
            try:
                body, ct = reports_body(reports, ctype)
                self._push(url, body, ct, 0)
            except Exception:
                log.exception("sandbox report push failed")

    def _retries(self, due: list[tuple[str, bytes, str, int]]) -> None:
        for payload in due:
            try:
                self._push(*payload)
            except Exception:
                log.exception("sandbox report push failed")

    def _status(self, mid: str, status_name: str, error_id: int) -> tuple[str, str | None, dict[str, Any]] | None:
        """Apply a status; the (notifyUrl, notifyContentType, report) to push, if the message has a URL."""
        status = STATUS_BY_NAME[status_name]
        with self.state.lock:
            msg = self.state.messages.get(mid)
            scheduled = dict(msg) if msg is not None and msg.get("sendAt") else None
        if scheduled is not None:  # a scheduled message waits for its (possibly rescheduled or paused) time
            plan = schedule_of(scheduled, self.v3)
            if plan is not None and plan[0] == "PAUSED":
                return None  # resuming re-plans it (replan)
            if plan is not None and plan[0] == "PENDING" and plan[1] > 0:  # rescheduled later
                self.scheduler.after(plan[1], STATUS, (mid, status_name, error_id))
                return None
            if plan is not None and plan[0] == "CANCELED":
                if msg.get("doneAt") is not None or status.group_name == "PENDING":  # type: ignore[union-attr]
                    return None
                status, error_id = CANCELED, 4100
        final = status.group_name not in ("PENDING", "ACCEPTED")
        with self.state.lock:
            msg = self.state.messages.get(mid)
            if msg is None or msg.get("doneAt") is not None:  # one final report per message, however planned
                return None
            msg["status"], msg["error"] = status.to_wire(), error_object(error_id)
            if final:
                msg["doneAt"] = time.time()
            report = report_of(msg, final)
            url, ctype = msg.get("notifyUrl"), msg.get("notifyContentType")
        return (url, ctype, report) if url else None

    def _push(self, url: str, body: bytes, ctype: str, attempt: int) -> None:
        try:
            self.deliverer.send("POST", url, None, body, ctype)
        except DeliveryError as exc:
            if attempt >= len(RETRY_DELAYS):
                log.warning("sandbox report to %s dropped after %d retries: %s", redact_url(url), attempt, exc.reason)
                return
            delay = scaled(RETRY_DELAYS[attempt], self.settings.time_scale)
            self.scheduler.after(delay, PUSH, (url, body, ctype, attempt + 1))


def report_of(msg: dict[str, Any], final: bool = True) -> dict[str, Any]:
    """A sandbox message as an Infobip v1/v2 report."""
    out = {
        "bulkId": msg.get("bulkId"), "messageId": msg["messageId"], "to": msg["to"], "from": msg.get("from"),
        "sentAt": fmt_time(msg["sentAt"]), "doneAt": fmt_time(msg.get("doneAt") if final else time.time()),
        "smsCount": msg.get("smsCount"), "mccMnc": mcc_mnc(msg["to"]), "callbackData": msg.get("callbackData"),
        "price": {"pricePerMessage": 0.01, "currency": "EUR"}, "status": msg.get("status"), "error": msg.get("error"),
    }
    return {k: v for k, v in out.items() if v is not None}


def _log_of(msg: dict[str, Any]) -> dict[str, Any]:
    out = report_of(msg, final=msg.get("doneAt") is not None)
    out.pop("callbackData", None)
    out["text"] = msg.get("text")
    if msg.get("doneAt") is None:
        out.pop("doneAt", None)
    return out


bp = Blueprint("sandbox_reports", __name__)


def _limit(params: Any, errs: Errors) -> int:
    n = parse_int("limit", params.get("limit") or None, 1, 1000, errs)
    return 50 if n is None else n


def _ids(params: Any, name: str) -> set[str]:
    return {v.strip() for value in params.getall(name) for v in value.split(",") if v.strip()}


@bp.get("/sms/1/reports", defaults={"ext": None})
@bp.get("/sms/1/reports.<any(json,xml):ext>")
def sandbox_reports(ext: str | None) -> Response:
    authenticate()
    params = parse_query(request.query_string)
    errs = Errors()
    limit = _limit(params, errs)
    errs.raise_if_any()
    bulk, mids = _ids(params, "bulkId"), _ids(params, "messageId")
    out = []
    state = sandbox().state
    with state.lock:
        for m in state.messages.values():
            if len(out) >= limit:
                break
            if m.get("doneAt") is None or m.get("pulled") or (bulk and m.get("bulkId") not in bulk) \
                    or (mids and m["messageId"] not in mids):
                continue
            m["pulled"] = True
            out.append(report_of(m))
    return render({"results": out}, g.fmt, "reports")


@bp.get("/sms/1/logs", defaults={"ext": None})
@bp.get("/sms/1/logs.<any(json,xml):ext>")
def sandbox_logs(ext: str | None) -> Response:
    authenticate()
    params = parse_query(request.query_string)
    errs = Errors()
    limit = _limit(params, errs)
    since = parse_datetime("sentSince", params.get("sentSince"), errs)
    until = parse_datetime("sentUntil", params.get("sentUntil"), errs)
    errs.raise_if_any()
    bulk, mids = _ids(params, "bulkId"), _ids(params, "messageId")
    general = (params.get("generalStatus") or "").upper()
    out = []
    state = sandbox().state
    with state.lock:
        for m in reversed(list(state.messages.values())):
            group = (m.get("status") or {}).get("groupName", "PENDING")
            if (bulk and m.get("bulkId") not in bulk) or (mids and m["messageId"] not in mids) \
                    or (general and group != general) or (params.get("to") and m["to"] != params.get("to")) \
                    or (params.get("from") and m.get("from") != params.get("from")) \
                    or (since and m["sentAt"] < since.timestamp()) or (until and m["sentAt"] > until.timestamp()):
                continue
            out.append(_log_of(m))
            if len(out) >= limit:
                break
    return render({"results": out}, g.fmt, "logs")
