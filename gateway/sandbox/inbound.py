"""The sandbox's inbound side: injected MO messages, pushed like Infobip pushes them, or pulled.

``POST /sandbox/inbound`` (and ``python app.py inject-inbound``) injects ``{from, to, text}``. With a
push URL configured (``sandbox.inbound_url``) the message is POSTed there in Infobip's MO_JSON_2 shape
(``{results:[…], messageCount, pendingMessageCount}``); a failure (connection error or non-2xx) is
retried on Infobip's cycle (1 min + 1 min·n², 20 retries, times ``sandbox.push_time_scale``) by one
pusher thread per sandbox; after the last retry the message is marked failed (Infobip drops it).
Without a push URL (or with ``"push": false``) it waits for ``GET /sms/1/inbox/reports``, which returns
each message once. ``POST /ct/1/log/end/<messageId>`` answers ``{"processKey": …}`` for a message the
sandbox accepted (404 otherwise) and remembers the conversion on that message.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, current_app, g, jsonify, request

from ..config import SandboxSettings
from ..delivery.outbox import retry_delay
from ..entrances.querystring import parse_query
from ..ids import new_id
from ..model import ApiError
from ..redact import redact_url
from ..sms import analyse
from ..validate import Errors, format_datetime, parse_int
from ..wire.formats import render
from ..wire.inbound import pull_body

log = logging.getLogger(__name__)
KEY = "sandbox.inbound"


class InboundPusher:
    """Injected messages: the push queue (a heap by due time, one thread) and the pull queue."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.entries: list[dict[str, Any]] = []  # every injected message with its push state
        self.pull_queue: deque[dict[str, Any]] = deque()

    def inject(self, msg: dict[str, Any], push: bool) -> dict[str, Any]:
        url = self.settings.inbound_url
        entry = {"message": msg, "state": "pending" if push and url else "pull", "attempts": 0, "lastError": None}
        with self._cond:
            self.entries.append(entry)
            if entry["state"] == "pull":
                self.pull_queue.append(msg)
                return entry
            entry["url"] = url
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-inbound-pusher", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def pull(self, limit: int, filters: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` waiting messages matching ``filters`` (applicationId, entityId, ...), each once."""
        wanted = {k: v for k, v in (filters or {}).items() if v}
        with self._cond:
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
        with self._cond:
            return [{k: v for k, v in e.items() if k != "url"} for e in self.entries]

    def reset(self) -> None:
        with self._cond:
            for e in self.entries:
                if e["state"] == "pending":
                    e["state"] = "cancelled"
            self._heap.clear()
            self.entries.clear()
            self.pull_queue.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
        self.session.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, entry = heapq.heappop(self._heap)
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
        with self._cond:
            if entry["state"] != "pending":  # reset meanwhile
                return
            entry["attempts"] += 1
            if error is None:
                entry["state"], entry["lastError"] = "delivered", None
                return
            entry["lastError"] = error
            delay = retry_delay(entry["attempts"], self.settings.push_time_scale)
            if delay is None:
                entry["state"] = "failed"
                log.warning("sandbox: inbound %s not delivered to %s after %d attempts", entry["message"]["messageId"],
                            redact_url(entry["url"]), entry["attempts"])
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), entry))
            self._cond.notify()


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


def register_inbound(app: Flask, auth: Any) -> None:
    """Add the inbound and conversion routes to the sandbox app; ``auth()`` is its Infobip auth check."""
    app.extensions[KEY] = InboundPusher(app.extensions["sandbox.settings"])

    def pusher() -> InboundPusher:
        return current_app.extensions[KEY]

    @app.before_request
    def _reset_inbound() -> None:  # POST /sandbox/reset also forgets injected messages
        if request.path == "/sandbox/reset" and request.method == "POST":
            pusher().reset()

    @app.post("/sandbox/inbound")
    def inject() -> Response:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise ApiError.bad_request("body", "must be a JSON object {from, to, text}")
        entry = pusher().inject(_message(body), push=body.get("push", True) is not False)
        return jsonify({**entry["message"], "delivery": entry["state"]})

    @app.get("/sandbox/inbound")
    def injected() -> Response:
        return jsonify(pusher().snapshot())

    @app.get("/sms/1/inbox/reports", defaults={"ext": None})
    @app.get("/sms/1/inbox/reports.<any(json,xml):ext>")
    def inbox(ext: str | None) -> Response:
        params = parse_query(request.query_string)
        auth(params.get("username"), params.get("password"))
        errs = Errors()
        limit = parse_int("limit", params.get("limit"), 1, 1000, errs)
        errs.raise_if_any()
        filters = {k: params.get(k) or "" for k in ("applicationId", "entityId", "campaignReferenceId")}
        results, pending = pusher().pull(limit or 50, filters)
        return render(pull_body(results, pending), g.fmt, "inbox")

    @app.post("/ct/1/log/end/<message_id>")
    def conversion(message_id: str) -> Response:
        auth()
        state = current_app.extensions["sandbox"]
        with state.lock:
            msg = state.messages.get(message_id)
            if msg is None:
                raise ApiError(404, "NOT_FOUND", f"No message with messageId {message_id!r}")
            process_key = msg.get("processKey") or str(uuid.uuid4())
            msg["processKey"] = process_key
            msg.setdefault("conversions", []).append(time.time())
        return render({"processKey": process_key}, g.fmt, "generic")
