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
State lives in the app (``app.extensions``); one daemon thread runs the timers, started on first use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask, Response, current_app, g, request

from ..clock import fmt_time, scaled
from ..config import ConfigError, SandboxSettings
from ..delivery.outbox import RETRY_DELAYS, DeliveryError, HttpDeliverer
from ..entrances.querystring import parse_query
from ..redact import redact_url
from ..validate import Errors, parse_datetime, parse_int
from ..wire.formats import render
from ..wire.reports import reports_body
from ..wire.statuses import ERROR_BY_NAME, PENDING_ENROUTE, STATUS_BY_NAME, error_object
from .state import SandboxState
from .v3 import mcc_mnc

log = logging.getLogger(__name__)

NO_ERROR = 0
PUSH_BATCH = 100  # reports due at the same time for one notifyUrl go out in one push (Infobip's `results` array)
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
    """Timers for final statuses and report pushes (with the retry cycle)."""

    def __init__(self, state: SandboxState, settings: SandboxSettings) -> None:
        self.state, self.settings = state, settings
        self.default, self.rules = parse_rules(settings)
        self.deliverer = HttpDeliverer(requests.Session(), connect_timeout=3, read_timeout=10)
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped by reset(): timers from before are dropped

    # -- scheduling ----------------------------------------------------------------------------
    def _at(self, due: float, kind: str, payload: Any) -> None:
        with self._cv:
            heapq.heappush(self._heap, (due, next(self._seq), kind, (self._generation, payload)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-dlr", daemon=True)
                self._thread.start()
            self._cv.notify()

    def accepted(self, msg: dict[str, Any]) -> None:
        """A message was accepted: plan its reports."""
        now = time.time()
        rule = next((r for r in self.rules if msg["to"].startswith(r.prefix)), self.default)
        delay = max(0.0, self.settings.dlr_delay)
        if STATUS_BY_NAME[rule.status].group_name == "EXPIRED":
            delay = scaled((msg.get("validityPeriod") or 2880) * 60, self.settings.time_scale)
        if msg.get("intermediateReport"):
            self._at(now + delay / 2, "status", (msg["messageId"], PENDING_ENROUTE.name, NO_ERROR))
        self._at(now + delay, "status", (msg["messageId"], rule.status, rule.error))

    def reset(self) -> None:
        with self._cv:
            self._generation += 1
            self._heap.clear()

    # -- the timer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            due: list[tuple[str, Any]] = []
            with self._cv:
                while not self._heap or self._heap[0][0] > time.time():
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.time()))
                now = time.time()
                while self._heap and self._heap[0][0] <= now and len(due) < PUSH_BATCH:
                    _, _, kind, (gen, payload) = heapq.heappop(self._heap)
                    if gen == self._generation:
                        due.append((kind, payload))
            pushes: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
            for kind, payload in due:
                try:
                    if kind == "status":
                        made = self._status(*payload)
                        if made:
                            pushes.setdefault(made[:2], []).append(made[2])
                    else:
                        self._push(*payload)
                except Exception:  # the sandbox keeps running whatever a push does
                    log.exception("sandbox report %s failed", kind)
            for (url, ctype), reports in pushes.items():  # like Infobip: reports due together share a push
                try:
                    body, ct = reports_body(reports, ctype)
                    self._push(url, body, ct, 0)
                except Exception:
                    log.exception("sandbox report push failed")

    def _status(self, mid: str, status_name: str, error_id: int) -> tuple[str, str | None, dict[str, Any]] | None:
        """Apply a status; the (notifyUrl, notifyContentType, report) to push, if the message has a URL."""
        status = STATUS_BY_NAME[status_name]
        final = status.group_name not in ("PENDING", "ACCEPTED")
        with self.state.lock:
            msg = self.state.messages.get(mid)
            if msg is None:
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
            self._at(time.time() + delay, "push", (url, body, ctype, attempt + 1))


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


def install_reports(app: Flask, settings: SandboxSettings, auth: Any) -> DlrEngine:
    """Register the sandbox's report endpoints on ``app`` and return its engine."""
    engine = DlrEngine(app.extensions["sandbox"], settings)
    app.extensions["sandbox.dlr"] = engine

    def state() -> SandboxState:
        return current_app.extensions["sandbox"]

    def limit_of(params: Any, errs: Errors) -> int:
        n = parse_int("limit", params.get("limit") or None, 1, 1000, errs)
        return 50 if n is None else n

    def ids(params: Any, name: str) -> set[str]:
        return {v.strip() for value in params.getall(name) for v in value.split(",") if v.strip()}

    @app.get("/sms/1/reports", defaults={"ext": None})
    @app.get("/sms/1/reports.<any(json,xml):ext>")
    def sandbox_reports(ext: str | None) -> Response:
        auth()
        params = parse_query(request.query_string)
        errs = Errors()
        limit = limit_of(params, errs)
        errs.raise_if_any()
        bulk, mids = ids(params, "bulkId"), ids(params, "messageId")
        out = []
        with state().lock:
            for m in state().messages.values():
                if len(out) >= limit:
                    break
                if m.get("doneAt") is None or m.get("pulled") or (bulk and m.get("bulkId") not in bulk) \
                        or (mids and m["messageId"] not in mids):
                    continue
                m["pulled"] = True
                out.append(report_of(m))
        return render({"results": out}, g.fmt, "reports")

    @app.get("/sms/1/logs", defaults={"ext": None})
    @app.get("/sms/1/logs.<any(json,xml):ext>")
    def sandbox_logs(ext: str | None) -> Response:
        auth()
        params = parse_query(request.query_string)
        errs = Errors()
        limit = limit_of(params, errs)
        since = parse_datetime("sentSince", params.get("sentSince"), errs)
        until = parse_datetime("sentUntil", params.get("sentUntil"), errs)
        errs.raise_if_any()
        bulk, mids = ids(params, "bulkId"), ids(params, "messageId")
        general = (params.get("generalStatus") or "").upper()
        out = []
        with state().lock:
            for m in reversed(list(state().messages.values())):
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

    return engine
