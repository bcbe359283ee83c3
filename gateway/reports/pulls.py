"""The caller's pulls in Infobip's v3 shapes (infobip-sms-api.md §7.6, §8.2), read from the record.

* :func:`pull_reports` - ``GET /sms/3/reports``: final reports not fetched yet, oldest first. One
  ``reports.pulled_at`` flag per report is shared with ``GET /sms/1/reports``: a report is handed out
  once, by whichever generation asks first (Infobip keeps one report store per account too).
* :func:`pull_reports_v1` - ``GET /sms/1/reports``: the same, in the v1/v2 shape.
* :func:`logs` - ``GET /sms/3/logs``: the caller's messages, newest first, re-readable, with keyset
  cursor paging (the cursor is the last row's id, base64url; it never skips or repeats a row when new
  messages arrive between pages).

The shapes are gateway/wire/v3_reports.py's.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import Report
from ..store import reports as repo
from ..store.records import Store
from ..store.reports import StoredMessage
from ..wire.reports import log_v1, report_v1
from ..wire.v3_reports import log_v3, report_v3


def pull_reports_v1(store: Store, caller: str, bulk_ids: Sequence[str], message_ids: Sequence[str],
                    limit: int) -> list[dict[str, Any]]:
    """``GET /sms/1/reports``: the same reports (each once, across generations) in the v1/v2 shape."""
    lists = {"bulkId": bulk_ids, "messageId": message_ids}
    return [report_v1(r) for r in repo.pull_reports(store.db, store.clock.now(), caller, {}, lists, limit)]


def pull_reports(store: Store, caller: str, singles: Mapping[str, str | None], lists: Mapping[str, Sequence[str]],
                 limit: int) -> list[dict[str, Any]]:
    """The caller's final reports not fetched yet (by either generation), in the v3 shape; each once."""
    return [report_v3(r) for r in repo.pull_reports(store.db, store.clock.now(), caller, singles, lists, limit)]


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"m{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The row id a cursor this API returned stands for; None if it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text[1:]) if text.startswith("m") else None
    except (ValueError, UnicodeDecodeError):
        return None


def message_state(m: StoredMessage) -> Report:
    """A message's current state as a report (what a log entry shows): a scheduled message still
    pending shows its sendAt as sentAt."""
    pending = m.status is not None and m.status.group_name == "PENDING"
    return Report(
        message_id=m.message_id or "", status=m.status, error=m.error, bulk_id=m.bulk_id, to=m.to, sender=m.sender,
        price=m.price, sent_at=m.send_at if m.send_at and pending else (m.sent_at or m.created_at),
        done_at=m.done_at, sms_count=m.sms_count, mcc_mnc=m.mcc_mnc, callback_data=m.callback_data,
        upstream_message_id=m.upstream_message_id, caller=m.caller, entity_id=m.entity_id,
        application_id=m.application_id, campaign_reference_id=m.campaign_reference_id,
    )


def logs_v1(store: Store, caller: str, f: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """The caller's newest messages filtered like ``GET /sms/1/logs`` (the same filters as :func:`logs`), in
    the v1 shape."""
    return [log_v1(message_state(m), m.text) for m in repo.logged_messages(store.db, caller, f, limit)]


def logs(store: Store, caller: str, f: Mapping[str, Any], limit: int,
         before: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the caller's logs (newest first) and the next page's cursor (None: last page)."""
    rows = repo.logged_messages(store.db, caller, f, limit + 1, before)
    page = rows[:limit]
    return [log_v3(message_state(m), m.text) for m in page], (encode_cursor(page[-1].id) if len(rows) > limit else None)
