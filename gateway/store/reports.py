"""Reports in the record: the messages a report names, storing a report once, the report pulls and
the v3 log query. Rows leave this module as :class:`StoredMessage` and :class:`~gateway.model.Report`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import Price, Report, ReportError, Status
from ..wire.reports import (
    error_from_wire,
    error_to_wire,
    price_from_wire,
    price_to_wire,
    report_from_wire,
    report_v1,
)
from .engine import Database

FINAL_GROUPS = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"})
_CHUNK = 500  # ids per IN (...) lookup (SQLite allows 32,766 parameters; this keeps statements small)

#: filters on a single message column, by v3 query parameter
COLUMNS = {"entityId": "entity_id", "applicationId": "application_id", "campaignReferenceId": "campaign_reference_id",
           "sender": "sender", "destination": "to_addr", "generalStatus": "status_group_name"}
LISTS = {"bulkId": "bulk_id", "messageId": "message_id", "campaignReferenceId": "campaign_reference_id"}


@dataclass(slots=True)
class StoredMessage:
    """A message row as the report and log flows need it (the report's target)."""

    id: int
    caller: str | None
    entrance: str
    message_id: str | None
    bulk_id: str | None
    upstream_message_id: str | None
    to: str
    sender: str | None
    text: str
    notify_url: str | None
    notify_content_type: str | None
    callback_data: str | None
    intermediate: bool
    callback: str | None
    sms_count: int | None
    status: Status | None
    error: ReportError | None
    price: Price | None
    mcc_mnc: str | None
    send_at: float | None
    sent_at: float | None
    done_at: float | None
    created_at: float
    entity_id: str | None
    application_id: str | None
    campaign_reference_id: str | None


def _stored(r: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        r["id"], r["caller"], r["entrance"], r["message_id"], r["bulk_id"], r["upstream_message_id"], r["to_addr"],
        r["sender"], r["text"], r["notify_url"], r["notify_content_type"], r["callback_data"], bool(r["intermediate"]),
        r["callback"], r["sms_count"],
        None if r["status_id"] is None else Status(r["status_group_id"], r["status_group_name"], r["status_id"],
                                                   r["status_name"], r["status_description"] or ""),
        error_from_wire(json.loads(r["error"])) if r["error"] else None,
        price_from_wire(json.loads(r["price"])) if r["price"] else None,
        r["mcc_mnc"], r["send_at"], r["sent_at"], r["done_at"], r["created_at"], r["entity_id"], r["application_id"],
        r["campaign_reference_id"],
    )


def submission_by_token(db: Database, token: str) -> int | None:
    """The id of the submission a report address (``dlr_token``) belongs to."""
    row = db.query_one("SELECT id FROM submissions WHERE dlr_token = ?", (token,))
    return None if row is None else int(row["id"])


def messages_for_reports(c: sqlite3.Connection, submission_id: int, ids: Sequence[str]) -> dict[str, StoredMessage]:
    """The submission's messages by the id a report names: the upstream's messageId, or the bridge's
    own while the upstream's is not known (for a whole body at once, through the ``messages_report``
    index; the first row wins)."""
    wanted = sorted(set(ids))
    out: dict[str, StoredMessage] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in c.execute(f"SELECT * FROM messages WHERE submission_id = ? AND upstream_message_id IN ({marks})"
                             " ORDER BY id", (submission_id, *chunk)):
            if row["upstream_message_id"] not in out:
                out[row["upstream_message_id"]] = _stored(row)
        rest = [m for m in chunk if m not in out]
        if rest:
            marks = ",".join("?" * len(rest))
            for row in c.execute(f"SELECT * FROM messages WHERE submission_id = ? AND upstream_message_id IS NULL"
                                 f" AND message_id IN ({marks}) ORDER BY id", (submission_id, *rest)):
                if row["message_id"] not in out:
                    out[row["message_id"]] = _stored(row)
    return out


def message_by_row(c: sqlite3.Connection, row_id: int) -> StoredMessage | None:
    row = c.execute("SELECT * FROM messages WHERE id = ?", (row_id,)).fetchone()
    return None if row is None else _stored(row)


def record_report(c: sqlite3.Connection, msg: StoredMessage, report: Report, now: float) -> bool:
    """Store ``report`` for ``msg``; False if it is a duplicate. A final report sets the message's
    status; an intermediate one only while no final status is known."""
    status = report.status
    done = report_v1(report)
    dedupe = f"{msg.id}|{status.id if status else None}|{done.get('doneAt')}|{int(report.intermediate)}"
    cur = c.execute(
        "INSERT INTO reports (message_row, caller, dedupe, intermediate, body, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe) DO NOTHING",
        (msg.id, msg.caller, dedupe, int(report.intermediate), json.dumps(done, ensure_ascii=False), now),
    )
    if cur.rowcount != 1:
        return False
    c.execute(
        "INSERT INTO status_changes (message_row, at, source, status_name, group_name, detail)"
        " VALUES (?, ?, 'report', ?, ?, ?)",
        (msg.id, now, status.name if status else None, status.group_name if status else None,
         "intermediate" if report.intermediate else "final"),
    )
    if report.intermediate and msg.status is not None and msg.status.group_name in FINAL_GROUPS:
        return True
    err, price = report.error, report.price
    c.execute(
        "UPDATE messages SET status_group_id = ?, status_group_name = ?, status_id = ?, status_name = ?,"
        " status_description = ?, error = ?, price = COALESCE(?, price), mcc_mnc = COALESCE(?, mcc_mnc),"
        " done_at = COALESCE(?, done_at), updated_at = ? WHERE id = ?",
        (*((status.group_id, status.group_name, status.id, status.name, status.description) if status
           else (None,) * 5),
         json.dumps(error_to_wire(err)) if err else None, json.dumps(price_to_wire(price)) if price else None,
         report.mcc_mnc, None if report.intermediate else report.done_at, now, msg.id),
    )
    return True


def _where(caller: str, singles: Mapping[str, str | None], lists: Mapping[str, Sequence[str]]) -> tuple[list[str],
                                                                                                    list[Any]]:
    where, args = ["m.caller = ?"], [caller]
    for key, value in singles.items():
        if value:
            where.append(f"m.{COLUMNS[key]} = ?")
            args.append(value)
    for key, values in lists.items():
        if values:
            where.append(f"m.{LISTS[key]} IN ({', '.join('?' * len(values))})")
            args += list(values)
    return where, args


def pull_reports(db: Database, now: float, caller: str, singles: Mapping[str, str | None],
                 lists: Mapping[str, Sequence[str]], limit: int) -> list[Report]:
    """The caller's final reports not pulled yet (by either generation), oldest first; each once."""
    where, args = _where(caller, singles, lists)
    where += ["r.caller = ?", "r.pulled_at IS NULL", "r.intermediate = 0"]
    args.append(caller)
    with db.transaction() as c:
        rows = c.execute(
            f"SELECT r.id AS report_id, r.body, m.entity_id, m.application_id, m.campaign_reference_id"
            f" FROM reports r JOIN messages m ON m.id = r.message_row WHERE {' AND '.join(where)}"
            f" ORDER BY r.id LIMIT ?", [*args, limit],
        ).fetchall()
        c.executemany("UPDATE reports SET pulled_at = ? WHERE id = ?", [(now, r["report_id"]) for r in rows])
    out = []
    for r in rows:
        report = report_from_wire(json.loads(r["body"]))
        report.entity_id, report.application_id = r["entity_id"], r["application_id"]
        report.campaign_reference_id = r["campaign_reference_id"]
        out.append(report)
    return out


def logged_messages(db: Database, caller: str, f: Mapping[str, Any], limit: int,
                    before: int | None = None) -> list[StoredMessage]:
    """Up to ``limit`` of the caller's messages with row id below ``before``, newest first, filtered
    like ``GET /sms/3/logs``; sends that never reached the upstream are no log."""
    singles = {k: f.get(k) for k in ("entityId", "applicationId", "sender", "destination", "generalStatus")}
    lists = {k: f.get(k) or [] for k in LISTS}
    where, args = _where(caller, singles, lists)
    where.append("m.state != 'failed'")
    if f.get("mcc"):
        where.append("substr(m.mcc_mnc, 1, 3) = ?")
        args.append(f["mcc"])
    if f.get("mnc"):
        where.append("substr(m.mcc_mnc, 4) = ?")
        args.append(f["mnc"])
    if f.get("sentSince") is not None:
        where.append("COALESCE(m.sent_at, m.created_at) >= ?")
        args.append(f["sentSince"])
    if f.get("sentUntil") is not None:
        where.append("COALESCE(m.sent_at, m.created_at) <= ?")
        args.append(f["sentUntil"])
    if before is not None:
        where.append("m.id < ?")
        args.append(before)
    rows = db.query(f"SELECT m.* FROM messages m WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?",
                    [*args, limit])
    return [_stored(r) for r in rows]
