"""The durable record: submissions, messages (one row per destination), upstream attempts, status
changes and delivery reports (schema: gateway/schema_store.py, migration 2).

Everything the rest of the bridge needs from storage goes through :class:`Store`; the SQL keeps to
what PostgreSQL also runs (no SQLite-only functions; ids read back with a query, not ``lastrowid``), so
a PostgreSQL backend can follow by swapping :class:`gateway.db.Database`.

A *message row* carries two ids: ``message_id`` (what the caller was given and sees in reports and
logs) and ``upstream_message_id`` (what the upstream knows; reports arrive with it). In queued mode
the bridge assigns ``upstream_message_id`` before sending and passes it as the custom id, so a resend
after a crash is recognised by the upstream as a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import Clock, fmt_time
from ..model import Status
from ..send.upstream import Attempt
from .engine import Database, GroupCommit

FINAL_GROUPS = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"})
OPEN_STATES = ("queued", "sending")

_MSG_COLS = (
    "submission_id, caller, entrance, mode, state, message_id, bulk_id, upstream_message_id, upstream_bulk_id,"
    " to_addr, sender, text, spec, notify_url, notify_content_type, callback_data, intermediate, callback,"
    " sms_count, status_group_id, status_group_name, status_id, status_name, status_description, sent_at,"
    " next_at, last_error, created_at, updated_at, entity_id, application_id, campaign_reference_id, send_at"
)
_MSG_SQL = f"INSERT INTO messages ({_MSG_COLS}) VALUES ({', '.join('?' * 33)})"
_NO_STATUS = (None,) * 5
_CLAIM_COLS = "id, spec, to_addr, upstream_message_id, bulk_id, tries"
_CHUNK = 500  # ids per ``IN (...)``: well under SQLite's (and PostgreSQL's) parameter limits


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def _in(ids: Sequence[int]) -> str:
    return f"id IN ({', '.join('?' * len(ids))})"


@dataclass
class MessageRow:
    """One destination of a submission, as the entrance/dispatcher hands it to the store."""

    message_id: str | None
    upstream_message_id: str | None
    to: str
    sender: str | None
    text: str
    spec: str  # JSON
    notify_url: str | None
    notify_content_type: str | None
    callback_data: str | None
    intermediate: bool
    sms_count: int | None
    status: Status | None
    state: str
    entity_id: str | None = None
    application_id: str | None = None
    campaign_reference_id: str | None = None
    send_at: float | None = None  # a scheduled message: when the upstream sends it (epoch seconds)


@dataclass
class SubmissionRecord:
    caller: str | None
    entrance: str
    mode: str
    api: str
    bulk_id: str | None
    token: str
    callback: str | None  # caller:<n> | template:<n> | None


def status_of(row: sqlite3.Row) -> dict[str, Any] | None:
    if row["status_id"] is None:
        return None
    return Status(row["status_group_id"], row["status_group_name"], row["status_id"], row["status_name"],
                  row["status_description"] or "").to_wire()


def _message_values(sid: int, sub: SubmissionRecord, rows: Sequence[MessageRow], now: float, sent_at: float | None,
                    next_at: float | None, error: str | None, upstream_bulk_id: str | None) -> list[tuple[Any, ...]]:
    """The ``_MSG_SQL`` parameters of a submission's message rows."""
    return [
        (sid, sub.caller, sub.entrance, sub.mode, r.state, r.message_id, sub.bulk_id, r.upstream_message_id,
         upstream_bulk_id, r.to, r.sender, r.text, r.spec, r.notify_url, r.notify_content_type,
         r.callback_data, int(r.intermediate), sub.callback, r.sms_count,
         *((r.status.group_id, r.status.group_name, r.status.id, r.status.name, r.status.description)
           if r.status else _NO_STATUS),
         sent_at, next_at, error, now, now, r.entity_id, r.application_id, r.campaign_reference_id, r.send_at)
        for r in rows
    ]


_Record = tuple[SubmissionRecord, Sequence[MessageRow], Sequence[Attempt], str | None, str | None, float]


class Store:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # Two groups on one write path: queued acceptances are fsynced before their caller hears "accepted";
        # sync records commit relaxed (the upstream already holds those messages; see Database.transaction).
        self._accept: GroupCommit[_Record, int] = db.group_commit(self._write_records)
        self._records: GroupCommit[_Record, int] = db.group_commit(self._write_records, relaxed=True)

    @property
    def accept_groups(self) -> tuple[int, int]:
        """Queued acceptances so far: (transactions committed, submissions they held)."""
        return self._accept.groups, self._accept.payloads

    def accept_pending(self) -> int:
        """Queued acceptances waiting for their group's transaction."""
        return self._accept.pending()

    @property
    def record_groups(self) -> tuple[int, int]:
        """Sync records so far: (transactions committed, submissions they held)."""
        return self._records.groups, self._records.payloads

    def record_pending(self) -> int:
        """Sync records waiting for their group's transaction."""
        return self._records.pending()

    # -- sends ---------------------------------------------------------------------------------
    def record(
        self,
        sub: SubmissionRecord,
        rows: Sequence[MessageRow],
        attempts: Sequence[Attempt] = (),
        error: str | None = None,
        upstream_bulk_id: str | None = None,
    ) -> int:
        """Record one submission with its messages, attempts and first status change; return its row id.

        Concurrent records share one transaction (:class:`gateway.db.GroupCommit`): under load a lock
        holder that needs the GIL back after each statement would otherwise serialise every request behind
        it. A sync send's record commits relaxed (no fsync of its own: the upstream already holds the
        message); a queued submission's acceptance goes through :meth:`accept` (fsynced)."""
        if sub.mode == "queued" and error is None and not attempts:
            return self.accept(sub, rows)
        group = self._records if sub.mode == "sync" else self._accept
        return group.submit((sub, rows, attempts, error, upstream_bulk_id, self.clock.now()))

    def accept(self, sub: SubmissionRecord, rows: Sequence[MessageRow]) -> int:
        """Commit a queued submission durably (fsynced with ``synchronous=FULL``) and return its row id.

        Concurrent acceptances share one transaction and one fsync (:class:`gateway.db.GroupCommit`);
        this returns only once the COMMIT holding this submission returned. Raises the group's error
        (nothing of it was written) or :class:`gateway.db.CommitTimeout`."""
        return self._accept.submit((sub, rows, (), None, None, self.clock.now()))

    @staticmethod
    def _write_records(c: sqlite3.Connection, group: list[_Record]) -> list[int]:
        """One group of records: a handful of statements whatever its size. The submissions' ids are
        assigned here (MAX(id)+1…, safe: the write lock is held), so the messages need no read-back."""
        first = int(c.execute("SELECT COALESCE(MAX(id), 0) FROM submissions").fetchone()[0]) + 1
        ids = list(range(first, first + len(group)))
        c.executemany(
            "INSERT INTO submissions (id, caller, entrance, mode, api, bulk_id, dlr_token, destinations, error,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(sid, sub.caller, sub.entrance, sub.mode, sub.api, sub.bulk_id, sub.token, len(rows), error, now, now)
             for sid, (sub, rows, _, error, _, now) in zip(ids, group, strict=True)],
        )
        messages: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        for sid, (sub, rows, tries, error, upstream_bulk_id, now) in zip(ids, group, strict=True):
            sent_at = now if sub.mode == "sync" and error is None else None
            next_at = now if sub.mode == "queued" else None
            messages += _message_values(sid, sub, rows, now, sent_at, next_at, error, upstream_bulk_id)
            attempts += [(sid, a.api, len(rows), now, a.http_status, round(a.duration_ms, 3), a.error) for a in tries]
        c.executemany(_MSG_SQL, messages)
        if attempts:
            c.executemany(
                "INSERT INTO upstream_attempts (submission_id, api, destinations, at, http_status, duration_ms, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", attempts)
        c.execute("INSERT INTO status_changes (message_row, at, source, status_name, group_name, detail)"
                  " SELECT id, created_at, CASE mode WHEN 'queued' THEN 'queue' ELSE 'answer' END, status_name,"
                  " status_group_name, state FROM messages WHERE submission_id BETWEEN ? AND ?", (first, ids[-1]))
        return ids

    # -- the queue (queued mode) ---------------------------------------------------------------
    # The worker's transactions (lease, release, answer, failure) commit relaxed (no fsync of their own; the
    # next acceptance's fsync covers them): losing one to a power cut only leaves rows leased or queued, which
    # are sent again, and the upstream refuses the repeated messageId as a duplicate ("already accepted").
    def claim_batch(self, max_batch: int, lease_seconds: float) -> list[sqlite3.Row]:
        """Lease up to ``max_batch`` due queued messages, the oldest due first, across submissions (many
        small queued sends share one upstream request; one select and one update per batch). Rows carry
        what forwarding needs: id, spec, to_addr, upstream_message_id, bulk_id, tries."""
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            rows = c.execute(
                f"SELECT {_CLAIM_COLS} FROM messages WHERE state = 'queued' AND next_at <= ? ORDER BY next_at, id"
                " LIMIT ?", (now, max_batch),
            ).fetchall()
            if len(rows) < max_batch:  # leases that ran out (a worker died mid-request) are due again
                rows += c.execute(
                    f"SELECT {_CLAIM_COLS} FROM messages WHERE state = 'sending' AND lease_until <= ?"
                    " ORDER BY lease_until, id LIMIT ?", (now, max_batch - len(rows)),
                ).fetchall()
            for ids in _chunks([r["id"] for r in rows]):
                # updated_at is left alone (an indexed column: one b-tree move less per row); prune skips leased rows
                c.execute(f"UPDATE messages SET state = 'sending', lease_until = ? WHERE {_in(ids)}",
                          (now + lease_seconds, *ids))
        return rows

    def release(self, ids: Sequence[int]) -> None:
        """Give leased rows back, due now (not sent in this batch)."""
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            for chunk in _chunks(list(ids)):
                c.execute(f"UPDATE messages SET state = 'queued', lease_until = NULL, next_at = ? WHERE {_in(chunk)}"
                          " AND state = 'sending'", (now, *chunk))

    def requeue_inflight(self) -> int:
        """Make every leased message due now (start-up after a crash). A resend is harmless: the
        upstream sees the same messageId and answers REJECTED_DUPLICATE_MESSAGE_ID."""
        now = self.clock.now()
        with self.db.transaction() as c:
            cur = c.execute("UPDATE messages SET state = 'queued', lease_until = NULL, next_at = ?"
                            " WHERE state = 'sending'", (now,))
        return cur.rowcount

    def batch_answered(self, batch: str, outcomes: Sequence[tuple[int, str, Status, int | None]],
                       upstream_bulk_id: str | None, attempt: Attempt, size: int,
                       retry: Sequence[tuple[int, float, str]] = ()) -> None:
        """Record an upstream answer: ``outcomes`` (row id, new state, status, smsCount); rows in
        ``retry`` (row id, next_at, reason) go back to the queue."""
        now = self.clock.now()
        same: dict[tuple[str, Status, int | None], list[int]] = {}  # most rows of a batch share one outcome
        for rid, state, status, count in outcomes:
            same.setdefault((state, status, count), []).append(rid)
        with self.db.transaction(relaxed=True) as c:
            self._attempt(c, batch, attempt, size, now)
            for (state, s, count), rids in same.items():
                for ids in _chunks(rids):
                    c.execute(
                        "UPDATE messages SET state = ?, status_group_id = ?, status_group_name = ?, status_id = ?,"
                        " status_name = ?, status_description = ?, sms_count = COALESCE(?, sms_count),"
                        " upstream_bulk_id = ?, sent_at = ?, tries = tries + 1, lease_until = NULL, last_error = NULL,"
                        f" updated_at = ? WHERE {_in(ids)}",
                        (state, s.group_id, s.group_name, s.id, s.name, s.description, count, upstream_bulk_id, now,
                         now, *ids),
                    )
                    c.execute(
                        "INSERT INTO status_changes (message_row, at, source, status_name, group_name, detail)"
                        f" SELECT id, ?, 'answer', ?, ?, ? FROM messages WHERE {_in(ids)}",
                        (now, s.name, s.group_name, state, *ids),
                    )
            self._retry(c, retry, now)

    def batch_failed(self, batch: str, attempt: Attempt, size: int, retry: Sequence[tuple[int, float, str]]) -> None:
        """The upstream was unreachable or failed: every row back to the queue at its ``next_at``."""
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            self._attempt(c, batch, attempt, size, now)
            self._retry(c, retry, now)

    def _attempt(self, c: sqlite3.Connection, batch: str, a: Attempt, size: int, now: float) -> None:
        c.execute(
            "INSERT INTO upstream_attempts (batch, api, destinations, at, http_status, duration_ms, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (batch, a.api, size, now, a.http_status, round(a.duration_ms, 3), a.error),
        )

    @staticmethod
    def _retry(c: sqlite3.Connection, retry: Sequence[tuple[int, float, str]], now: float) -> None:
        c.executemany(
            "UPDATE messages SET state = 'queued', tries = tries + 1, next_at = ?, last_error = ?,"
            " lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'sending'",
            [(at, reason, now, rid) for rid, at, reason in retry],
        )

    def next_due(self) -> float | None:
        row = self.db.query_one(
            "SELECT MIN(CASE WHEN state = 'queued' THEN next_at ELSE lease_until END) AS t FROM messages"
            " WHERE state IN ('queued', 'sending')"
        )
        return None if row is None or row["t"] is None else float(row["t"])

    def queue_depth(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM messages WHERE state IN ('queued', 'sending')")
        return int(row["n"]) if row else 0

    # -- logs (reports: gateway/store/reports.py) ------------------------------------------------
    def logs(self, caller: str, f: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """The caller's messages, newest first, filtered like Infobip's ``GET /sms/1/logs``."""
        where, args = ["caller = ?", "state != 'failed'"], [caller]  # a send that never reached the upstream is no log
        for key, col in (("from", "sender"), ("to", "to_addr"), ("generalStatus", "status_group_name")):
            if f.get(key):
                where.append(f"{col} = ?")
                args.append(f[key])
        for key, col in (("bulkId", "bulk_id"), ("messageId", "message_id")):
            if f.get(key):
                where.append(f"{col} IN ({', '.join('?' * len(f[key]))})")
                args += list(f[key])
        if f.get("sentSince") is not None:
            where.append("COALESCE(sent_at, created_at) >= ?")
            args.append(f["sentSince"])
        if f.get("sentUntil") is not None:
            where.append("COALESCE(sent_at, created_at) <= ?")
            args.append(f["sentUntil"])
        rows = self.db.query(
            f"SELECT * FROM messages WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
            [*args, limit],
        )
        return [log_entry(r) for r in rows]

    # -- retention -----------------------------------------------------------------------------
    def prune(self, retention_seconds: float) -> dict[str, int]:
        """Delete what was last updated more than ``retention_seconds`` ago: finished messages with
        their reports and status changes, empty submissions, old upstream attempts, delivered outbox
        jobs. Queued messages and dead letters are kept."""
        cutoff = self.clock.now() - retention_seconds
        old = "SELECT id FROM messages WHERE updated_at < ? AND state NOT IN ('queued', 'sending')"
        out: dict[str, int] = {}
        with self.db.transaction() as c:
            out["reports"] = c.execute(f"DELETE FROM reports WHERE message_row IN ({old})", (cutoff,)).rowcount
            out["status_changes"] = c.execute(
                f"DELETE FROM status_changes WHERE message_row IN ({old})", (cutoff,)).rowcount
            out["messages"] = c.execute(
                "DELETE FROM messages WHERE updated_at < ? AND state NOT IN ('queued', 'sending')", (cutoff,)).rowcount
            out["submissions"] = c.execute(
                "DELETE FROM submissions WHERE updated_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM messages m WHERE m.submission_id = submissions.id)", (cutoff,)).rowcount
            out["upstream_attempts"] = c.execute("DELETE FROM upstream_attempts WHERE at < ?", (cutoff,)).rowcount
            done = "SELECT id FROM outbox_jobs WHERE state = 'done' AND updated_at < ?"
            c.execute(f"DELETE FROM outbox_attempts WHERE job_id IN ({done})", (cutoff,))
            out["outbox_jobs"] = c.execute(
                "DELETE FROM outbox_jobs WHERE state = 'done' AND updated_at < ?", (cutoff,)).rowcount
        return out


def log_entry(r: sqlite3.Row) -> dict[str, Any]:
    """A message row in the ``GET /sms/1/logs`` v1 shape."""
    out: dict[str, Any] = {
        "bulkId": r["bulk_id"], "messageId": r["message_id"], "to": r["to_addr"], "from": r["sender"],
        "text": r["text"], "sentAt": fmt_time(r["sent_at"] or r["created_at"]), "doneAt": fmt_time(r["done_at"]),
        "smsCount": r["sms_count"], "mccMnc": r["mcc_mnc"],
        "price": json.loads(r["price"]) if r["price"] else None,
        "status": status_of(r),
        "error": json.loads(r["error"]) if r["error"] else None,
    }
    return {k: v for k, v in out.items() if v is not None}
