"""The sandbox's inbound side: injected MO messages, pushed like Infobip pushes them, or pulled.

``POST /sandbox/inbound`` (and ``python app.py inject-inbound``) injects ``{from, to, text}``. With a
push URL configured (``sandbox.inbound_url``) the message is POSTed there in Infobip's MO_JSON_2 shape
(``{results:[…], messageCount, pendingMessageCount}``); a failure (connection error or non-2xx) is
retried on Infobip's cycle (1 min + 1 min·n², 20 retries, times ``sandbox.push_time_scale``) on the
sandbox's one scheduler (shared with report pushes); after the last retry the message is marked failed
(Infobip drops it). The push URL is given to the sandbox when it is built (``create_sandbox_app``).
Without a push URL (or with ``"push": false``) it waits for ``GET /sms/1/inbox/reports``, which returns
each message once. ``POST /ct/1/log/end/<messageId>`` answers ``{"processKey": …}`` for a message the
sandbox accepted (404 otherwise) and remembers the conversion on that message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Response, g, jsonify, request

from ..delivery.outbox import retry_delay
from ..entrances.querystring import parse_query
from ..ids import new_id
from ..model import ApiError
from ..redact import redact_url
from ..sms import analyse
from ..validate import Errors, format_datetime, parse_int
from ..wire.formats import render
from ..wire.inbound import pull_body
from .common import authenticate, sandbox
from .scheduler import Scheduler

log = logging.getLogger(__name__)
PUSH = "inbound.push"  # the scheduler's job kind


class InboundPusher:
    """Injected messages: pushes planned on the sandbox's scheduler, and the pull queue."""

    def __init__(self, url: str, time_scale: float, scheduler: Scheduler) -> None:
        self.url, self.time_scale, self.scheduler = url, time_scale, scheduler
        self.session = requests.Session()
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []  # every injected message with its push state
        self.pull_queue: deque[dict[str, Any]] = deque()
        scheduler.handle(PUSH, self._pushes)

    def inject(self, msg: dict[str, Any], push: bool) -> dict[str, Any]:
        entry = {"message": msg, "state": "pending" if push and self.url else "pull", "attempts": 0,
                 "lastError": None}
        with self._lock:
            self.entries.append(entry)
            if entry["state"] == "pull":
                self.pull_queue.append(msg)
                return entry
            entry["url"] = self.url
            self.scheduler.after(0, PUSH, entry)
        return entry

    def pull(self, limit: int, filters: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` waiting messages matching ``filters`` (applicationId, entityId, ...), each once."""
        wanted = {k: v for k, v in (filters or {}).items() if v}
        with self._lock:
            out: list[dict[str, Any]] = []
            keep: list[dict[str, Any]] = []
            for m in self.pull_queue:
                if len(out) < limit and all(m.get(k) == v for k, v in wanted.items()):
                    out.append(m)
                else:
                    keep.append(m)
            self.pull_queue.clear()
            self.pull_queue.extend(keep)
            return out, len(self.pull_queue)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{k: v for k, v in e.items() if k != "url"} for e in self.entries]

    def reset(self) -> None:
        """Forget injected messages (their planned pushes go with the scheduler's reset)."""
        with self._lock:
            for e in self.entries:
                if e["state"] == "pending":
                    e["state"] = "cancelled"
            self.entries.clear()
            self.pull_queue.clear()

    def close(self) -> None:
        self.session.close()

    def _pushes(self, due: list[dict[str, Any]]) -> None:
        for entry in due:
            self._push(entry)

    def _push(self, entry: dict[str, Any]) -> None:
        body = pull_body([entry["message"]], 0)
        error = None
        try:
            resp = self.session.post(entry["url"], json=body, timeout=(3, 10), allow_redirects=False)
            resp.close()
            if not 200 <= resp.status_code < 300:
                error = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        with self._lock:
            if entry["state"] != "pending":  # reset meanwhile
                return
            entry["attempts"] += 1
            if error is None:
                entry["state"], entry["lastError"] = "delivered", None
                return
            entry["lastError"] = error
            delay = retry_delay(entry["attempts"], self.time_scale)
            if delay is None:
                entry["state"] = "failed"
                log.warning("sandbox: inbound %s not delivered to %s after %d attempts", entry["message"]["messageId"],
                            redact_url(entry["url"]), entry["attempts"])
                return
            self.scheduler.after(delay, PUSH, entry)


def _message(body: dict[str, Any]) -> dict[str, Any]:
    errs = Errors()
    for key in ("from", "to", "text"):
        if not isinstance(body.get(key), str) or (key != "text" and not body[key].strip()):
            errs.add(key, "is required (a string)")
    errs.raise_if_any()
    text: str = body["text"]
    keyword = str(body.get("keyword") or "").strip().upper()
    first, _, rest = text.strip().partition(" ")
    matched = bool(keyword) and first.upper() == keyword
    return {
        "messageId": new_id(), "from": body["from"].strip().lstrip("+"), "to": body["to"].strip().lstrip("+"),
        "text": text, "cleanText": rest.strip() if matched else text, "keyword": keyword if matched else "",
        "receivedAt": format_datetime(datetime.now(UTC)), "smsCount": analyse(text).message_count,
        "price": {"pricePerMessage": 0.0, "currency": "EUR"},
        **{k: str(body[k]) for k in ("callbackData", "applicationId", "entityId", "campaignReferenceId")
           if body.get(k) is not None},
    }


bp = Blueprint("sandbox_inbound", __name__)


@bp.post("/sandbox/inbound")
def inject() -> Response:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError.bad_request("body", "must be a JSON object {from, to, text}")
    entry = sandbox().inbound.inject(_message(body), push=body.get("push", True) is not False)
    return jsonify({**entry["message"], "delivery": entry["state"]})


@bp.get("/sandbox/inbound")
def injected() -> Response:
    return jsonify(sandbox().inbound.snapshot())


@bp.get("/sms/1/inbox/reports", defaults={"ext": None})
@bp.get("/sms/1/inbox/reports.<any(json,xml):ext>")
def inbox(ext: str | None) -> Response:
    params = parse_query(request.query_string)
    authenticate(params.get("username"), params.get("password"))
    errs = Errors()
    limit = parse_int("limit", params.get("limit"), 1, 1000, errs)
    errs.raise_if_any()
    filters = {k: params.get(k) or "" for k in ("applicationId", "entityId", "campaignReferenceId")}
    results, pending = sandbox().inbound.pull(limit or 50, filters)
    return render(pull_body(results, pending), g.fmt, "inbox")


@bp.post("/ct/1/log/end/<message_id>")
def conversion(message_id: str) -> Response:
    authenticate()
    state = sandbox().state
    with state.lock:
        msg = state.messages.get(message_id)
        if msg is None:
            raise ApiError(404, "NOT_FOUND", f"No message with messageId {message_id!r}")
        process_key = msg.get("processKey") or str(uuid.uuid4())
        msg["processKey"] = process_key
        msg.setdefault("conversions", []).append(time.time())
    return render({"processKey": process_key}, g.fmt, "generic")
