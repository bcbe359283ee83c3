"""Reports in: a delivery-report body pushed to ``/hooks/dlr/<token>`` is matched, stored and relayed.

The token (one per submission, 192 random bits) is the only credential: an unknown token is refused
with 404 before the body is read. Items are matched by the upstream's messageId within that
submission; unknown ids are counted and ignored. Storing is idempotent (a report repeated by the
upstream's retry cycle is recognised and neither stored nor relayed twice); the report and its
outbox jobs commit in one transaction. Reports in the PENDING/ACCEPTED groups are *intermediate*.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..clock import Clock, fmt_time, parse_time
from ..delivery.outbox import NewJob
from ..model import ApiError, Status
from ..store.engine import Database
from ..store.records import Store, status_of
from ..wire.reports import parse_reports
from .relay import Relay

log = logging.getLogger(__name__)

INTERMEDIATE_GROUPS = frozenset({"PENDING", "ACCEPTED"})
_CHUNK = 500  # ids per IN (...) lookup (SQLite allows 32,766 parameters; this keeps statements small)


def caller_report(item: dict[str, Any], msg: sqlite3.Row) -> dict[str, Any]:
    """The report as the caller sees it: the caller's ids and callbackData, the upstream's status."""
    status = item.get("status")
    out: dict[str, Any] = {
        "bulkId": msg["bulk_id"], "messageId": msg["message_id"], "to": msg["to_addr"], "from": msg["sender"],
        "sentAt": item.get("sentAt") or fmt_time(msg["sent_at"] or msg["created_at"]),
        "doneAt": item.get("doneAt"), "smsCount": item.get("smsCount") or msg["sms_count"],
        "mccMnc": item.get("mccMnc"), "callbackData": msg["callback_data"], "price": item.get("price"),
        "status": Status.from_wire(status).to_wire() if isinstance(status, dict) else status_of(msg),
        "error": item.get("error") if isinstance(item.get("error"), dict) else None,
    }
    return {k: v for k, v in out.items() if v is not None}


class ReportIntake:
    def __init__(self, db: Database, store: Store, relay: Relay, clock: Clock) -> None:
        self.db, self.store, self.relay, self.clock = db, store, relay, clock

    def submission(self, token: str) -> sqlite3.Row:
        """The submission a report address belongs to; 404 for an unknown (forged) token."""
        sub = self.store.submission_by_token(token)
        if sub is None:
            raise ApiError(404, "NOT_FOUND", "Unknown report address")
        return sub

    def accept(self, sub: sqlite3.Row, body: bytes, content_type: str | None) -> dict[str, int]:
        """Store and relay the reports in ``body``; counts of new, duplicate and unknown items.

        One transaction per pushed body: the messages are looked up with one query, the reports
        stored, and their outbox jobs inserted with one statement at the end."""
        items = parse_reports(body, content_type)
        counts = {"stored": 0, "duplicates": 0, "unknown": 0}
        jobs: list[NewJob] = []
        with self.db.transaction() as c:
            found = self._messages(c, sub["id"], [str(item.get("messageId", "")) for item in items])
            seen: set[int] = set()
            for item in items:
                msg = found.get(str(item.get("messageId", "")))
                if msg is None:
                    counts["unknown"] += 1
                    continue
                if msg["id"] in seen:  # a second report for it in this body: see what the first one changed
                    msg = c.execute("SELECT * FROM messages WHERE id = ?", (msg["id"],)).fetchone()
                seen.add(msg["id"])
                self._one(c, msg, caller_report(item, msg), counts, jobs)
            self.relay.enqueue_jobs(c, jobs)
        if counts["unknown"]:
            log.warning("report for submission %s: %d item(s) with unknown messageId", sub["id"], counts["unknown"])
        return counts

    @staticmethod
    def _messages(c: sqlite3.Connection, submission_id: int, ids: Sequence[str]) -> dict[str, sqlite3.Row]:
        """The submission's messages by the id a report names: the upstream's messageId, or the
        bridge's own while the upstream's is not known (for a whole
        body at once, through the ``messages_report`` index; the first row wins)."""
        wanted = sorted(set(ids))
        out: dict[str, sqlite3.Row] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in c.execute(f"SELECT * FROM messages WHERE submission_id = ? AND upstream_message_id IN ({marks})"
                                 " ORDER BY id", (submission_id, *chunk)):
                out.setdefault(row["upstream_message_id"], row)
            rest = [m for m in chunk if m not in out]
            if rest:
                marks = ",".join("?" * len(rest))
                for row in c.execute(f"SELECT * FROM messages WHERE submission_id = ? AND upstream_message_id IS NULL"
                                     f" AND message_id IN ({marks}) ORDER BY id", (submission_id, *rest)):
                    out.setdefault(row["message_id"], row)
        return out

    def _one(self, c: sqlite3.Connection, msg: sqlite3.Row, report: dict[str, Any], counts: dict[str, int],
             jobs: list[NewJob]) -> None:
        group = (report.get("status") or {}).get("groupName")
        intermediate = group in INTERMEDIATE_GROUPS
        if self.store.record_report(c, msg, report, intermediate, parse_time(report.get("doneAt"))):
            counts["stored"] += 1
            jobs += self.relay.jobs(msg, report, intermediate)
        else:
            counts["duplicates"] += 1

    def rejected(self, row_ids: Sequence[int]) -> None:
        """A queued message the upstream rejected gets a final report of its own (the caller was told
        PENDING_ACCEPTED), stored and relayed like a pushed one."""
        counts = {"stored": 0, "duplicates": 0, "unknown": 0}
        jobs: list[NewJob] = []
        with self.db.transaction() as c:
            for rid in row_ids:
                msg = c.execute("SELECT * FROM messages WHERE id = ?", (rid,)).fetchone()
                if msg is None:
                    continue
                item = {"doneAt": fmt_time(self.clock.now()), "status": status_of(msg)}
                self._one(c, msg, caller_report(item, msg), counts, jobs)
            self.relay.enqueue_jobs(c, jobs)
