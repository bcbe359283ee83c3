"""The inbound tables (migration 3): messages stored once, the pull queue, auto-replies.

Messages go in and come out as :class:`~gateway.model.InboundMessage`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..model import InboundMessage, Price
from ..wire.reports import price_from_wire, price_to_wire
from .engine import Database


@dataclass
class StoredInbound:
    """A stored message with its routing outcome and replies (for tests and operators)."""

    message: InboundMessage
    rule: str | None
    forward_job: int | None
    forward_error: str | None
    replies: list[dict[str, Any]] = field(default_factory=list)


def _price_json(p: Price | None) -> str | None:
    return None if p is None else json.dumps(price_to_wire(p))


def insert_message(conn: sqlite3.Connection, msg: InboundMessage, now: float) -> int | None:
    """Store ``msg``; return its row id, or None if this messageId is already stored (a re-push)."""
    cur = conn.execute(
        "INSERT INTO inbound_messages (message_id, sender, receiver, text, clean_text, keyword, received_at,"
        " sms_count, price, callback_data, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO NOTHING",
        (msg.message_id, msg.sender, msg.to, msg.text, msg.clean_text, msg.keyword, msg.received_at, msg.sms_count,
         _price_json(msg.price), msg.callback_data, json.dumps(msg.extra) if msg.extra else None, now),
    )
    return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None


def set_outcome(conn: sqlite3.Connection, inbound_id: int, rule: str | None, job: int | None,
                error: str | None) -> None:
    conn.execute("UPDATE inbound_messages SET rule = ?, forward_job = ?, forward_error = ? WHERE id = ?",
                 (rule, job, error, inbound_id))


def keep_for_pull(conn: sqlite3.Connection, inbound_id: int, callers: tuple[str, ...]) -> None:
    conn.executemany("INSERT OR IGNORE INTO inbound_pull (caller, inbound_id) VALUES (?, ?)",
                     [(c, inbound_id) for c in callers])


def add_reply(conn: sqlite3.Connection, inbound_id: int, rule: str, caller: str, to: str, now: float) -> int:
    cur = conn.execute(
        "INSERT INTO inbound_replies (inbound_id, rule, caller, to_number, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'pending', ?, ?)", (inbound_id, rule, caller, to, now, now))
    return int(cur.lastrowid or 0)


def finish_reply(db: Database, reply_id: int, now: float, message_id: str | None = None, status: str | None = None,
                 error: str | None = None) -> None:
    db.execute("UPDATE inbound_replies SET state = ?, message_id = ?, status = ?, error = ?, updated_at = ?"
               " WHERE id = ?", ("failed" if error else "sent", message_id, status, error, now, reply_id))


def _message(row: sqlite3.Row) -> InboundMessage:
    return InboundMessage(
        row["message_id"], row["sender"], row["receiver"], row["text"],
        row["clean_text"] if row["clean_text"] is not None else row["text"], row["keyword"] or "",
        row["received_at"], row["sms_count"] or 1,
        price_from_wire(json.loads(row["price"])) if row["price"] else None,
        row["callback_data"], json.loads(row["extra"]) if row["extra"] else {},
    )


def pull(db: Database, caller: str, limit: int, now: float) -> tuple[list[InboundMessage], int]:
    """Up to ``limit`` of ``caller``'s unfetched messages, oldest first, marked fetched in the same
    transaction (each is returned once); and how many are still pending after them."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT m.* FROM inbound_pull p JOIN inbound_messages m ON m.id = p.inbound_id"
            " WHERE p.caller = ? AND p.fetched_at IS NULL ORDER BY p.inbound_id LIMIT ?", (caller, limit)).fetchall()
        conn.executemany("UPDATE inbound_pull SET fetched_at = ? WHERE caller = ? AND inbound_id = ?",
                         [(now, caller, r["id"]) for r in rows])
        pending = conn.execute("SELECT COUNT(*) FROM inbound_pull WHERE caller = ? AND fetched_at IS NULL",
                               (caller,)).fetchone()[0]
    return [_message(r) for r in rows], int(pending)


def message(db: Database, message_id: str) -> StoredInbound | None:
    """One stored message with its routing outcome and replies (for tests and operators)."""
    row = db.query_one("SELECT * FROM inbound_messages WHERE message_id = ?", (message_id,))
    if row is None:
        return None
    replies = db.query("SELECT rule, caller, to_number, state, message_id, status, error FROM inbound_replies"
                       " WHERE inbound_id = ? ORDER BY id", (row["id"],))
    return StoredInbound(_message(row), row["rule"], row["forward_job"], row["forward_error"],
                         [dict(r) for r in replies])
