"""The v3 report and log shapes (infobip-sms-api.md §7.2, §7.6, §8.2): ``sender``, ``destination``,
``messageCount``, ``platform``, ``campaignReferenceId``; for the v3 push and the v3 pulls."""

from __future__ import annotations

from typing import Any

from ..model import Report
from .reports import error_to_wire, price_to_wire, wire_time


def _time(t: float | None) -> str | None:
    return None if t is None else wire_time(t)


def _platform(r: Report) -> dict[str, str] | None:
    out = {k: v for k, v in (("entityId", r.entity_id), ("applicationId", r.application_id)) if v}
    return out or None


def report_v3(r: Report) -> dict[str, Any]:
    """A report in the v3 shape (§7.2, §7.6)."""
    out: dict[str, Any] = {
        "bulkId": r.bulk_id, "messageId": r.message_id, "to": r.to, "sender": r.sender,
        "sentAt": _time(r.sent_at), "doneAt": _time(r.done_at), "messageCount": r.sms_count,
        "mccMnc": r.mcc_mnc, "callbackData": r.callback_data,
        "price": price_to_wire(r.price) if r.price else None, "status": r.status.to_wire() if r.status else None,
        "error": error_to_wire(r.error) if r.error else None, "platform": _platform(r),
        "campaignReferenceId": r.campaign_reference_id,
    }
    return {k: v for k, v in out.items() if v is not None}


def log_v3(r: Report, text: str) -> dict[str, Any]:
    """A message's current state (as a report) in the ``GET /sms/3/logs`` shape (§8.2)."""
    out: dict[str, Any] = {
        "sender": r.sender, "destination": r.to, "bulkId": r.bulk_id, "messageId": r.message_id or None,
        "sentAt": _time(r.sent_at), "doneAt": _time(r.done_at), "messageCount": r.sms_count,
        "price": price_to_wire(r.price) if r.price else None, "status": r.status.to_wire() if r.status else None,
        "error": error_to_wire(r.error) if r.error else None, "platform": _platform(r),
        "content": {"text": text}, "campaignReferenceId": r.campaign_reference_id, "mccMnc": r.mcc_mnc,
    }
    return {k: v for k, v in out.items() if v is not None}
