"""The caller's pulls in Infobip's v3 shapes (infobip-sms-api.md §7.6, §8.2), read from the record.

* :func:`pull_reports` - ``GET /sms/3/reports``: final reports not fetched yet, oldest first. One
  ``reports.pulled_at`` flag per report is shared with ``GET /sms/1/reports``: a report is handed out
  once, by whichever generation asks first (Infobip keeps one report store per account too).
* :func:`logs` - ``GET /sms/3/logs``: the caller's messages, newest first, re-readable, with keyset
  cursor paging (the cursor is the last row's id, base64url; it never skips or repeats a row when new
  messages arrive between pages).
* :func:`report_v3` / :func:`log_v3` - the v3 shapes (``sender``, ``destination``, ``messageCount``,
  ``platform``, ``campaignReferenceId``), also used by gateway/relay.py for the v3 push.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from ..clock import fmt_time
from ..store.records import Store, status_of

#: filters on a single message column, by v3 query parameter
COLUMNS = {"entityId": "entity_id", "applicationId": "application_id", "campaignReferenceId": "campaign_reference_id",
           "sender": "sender", "destination": "to_addr", "generalStatus": "status_group_name"}
LISTS = {"bulkId": "bulk_id", "messageId": "message_id", "campaignReferenceId": "campaign_reference_id"}


def _platform(row: Mapping[str, Any]) -> dict[str, str] | None:
    out = {k: row[c] for k, c in (("entityId", "entity_id"), ("applicationId", "application_id")) if row[c]}
    return out or None


def report_v3(report: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored (v1/v2-shaped) report of message ``row`` in the v3 shape (§7.2, §7.6)."""
    out: dict[str, Any] = {
        "bulkId": report.get("bulkId"), "messageId": report.get("messageId"), "to": report.get("to"),
        "sender": report.get("from"), "sentAt": report.get("sentAt"), "doneAt": report.get("doneAt"),
        "messageCount": report.get("smsCount"), "mccMnc": report.get("mccMnc"),
        "callbackData": report.get("callbackData"), "price": report.get("price"), "status": report.get("status"),
        "error": report.get("error"), "platform": _platform(row), "campaignReferenceId": row["campaign_reference_id"],
    }
    return {k: v for k, v in out.items() if v is not None}


def log_v3(r: sqlite3.Row) -> dict[str, Any]:
    """A message row in the ``GET /sms/3/logs`` shape (§8.2)."""
    sent = r["send_at"] if r["send_at"] and r["status_group_name"] == "PENDING" else (r["sent_at"] or r["created_at"])
    out: dict[str, Any] = {
        "sender": r["sender"], "destination": r["to_addr"], "bulkId": r["bulk_id"], "messageId": r["message_id"],
        "sentAt": fmt_time(sent), "doneAt": fmt_time(r["done_at"]), "messageCount": r["sms_count"],
        "price": json.loads(r["price"]) if r["price"] else None, "status": status_of(r),
        "error": json.loads(r["error"]) if r["error"] else None, "platform": _platform(r),
        "content": {"text": r["text"]}, "campaignReferenceId": r["campaign_reference_id"], "mccMnc": r["mcc_mnc"],
    }
    return {k: v for k, v in out.items() if v is not None}


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


def pull_reports(store: Store, caller: str, singles: Mapping[str, str | None], lists: Mapping[str, Sequence[str]],
                 limit: int) -> list[dict[str, Any]]:
    """The caller's final reports not fetched yet (by either generation), in the v3 shape; each once."""
    where, args = _where(caller, singles, lists)
    where += ["r.caller = ?", "r.pulled_at IS NULL", "r.intermediate = 0"]
    args.append(caller)
    with store.db.transaction() as c:
        rows = c.execute(
            f"SELECT r.id AS report_id, r.body, m.entity_id, m.application_id, m.campaign_reference_id"
            f" FROM reports r JOIN messages m ON m.id = r.message_row WHERE {' AND '.join(where)}"
            f" ORDER BY r.id LIMIT ?", [*args, limit],
        ).fetchall()
        c.executemany("UPDATE reports SET pulled_at = ? WHERE id = ?",
                      [(store.clock.now(), r["report_id"]) for r in rows])
    return [report_v3(json.loads(r["body"]), r) for r in rows]


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"m{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The row id a cursor this API returned stands for; None if it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text[1:]) if text.startswith("m") else None
    except (ValueError, UnicodeDecodeError):
        return None


def logs(store: Store, caller: str, f: Mapping[str, Any], limit: int,
         before: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the caller's logs (newest first) and the next page's cursor (None: last page)."""
    singles = {k: f.get(k) for k in ("entityId", "applicationId", "sender", "destination", "generalStatus")}
    lists = {k: f.get(k) or [] for k in LISTS}
    where, args = _where(caller, singles, lists)
    where.append("m.state != 'failed'")  # a send that never reached the upstream is no log
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
    rows = store.db.query(f"SELECT m.* FROM messages m WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?",
                          [*args, limit + 1])
    page = rows[:limit]
    return [log_v3(r) for r in page], (encode_cursor(page[-1]["id"]) if len(rows) > limit else None)
