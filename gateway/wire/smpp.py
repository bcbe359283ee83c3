"""SMPP delivery receipts (SMPP v3.4 Appendix B) as Kannel's and Jasmin's DLRs carry them: the ``stat:`` of an
Infobip status group and the receipt's ``YYMMDDhhmm`` dates. What differs between the dialects stays in each."""

from __future__ import annotations

from datetime import UTC, datetime

#: Infobip's group → the receipt's ``stat:`` (a group not listed: ``UNKNOWN``); PENDING is each dialect's own
STATES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "EXPIRED": "EXPIRED", "REJECTED": "REJECTD",
          "ACCEPTED": "ACCEPTD"}


def receipt_date(ts: float | None, missing: str) -> str:
    """A receipt's ``submit date`` / ``done date`` (``YYMMDDhhmm``, UTC); ``missing`` when there is none."""
    return datetime.fromtimestamp(ts, UTC).strftime("%y%m%d%H%M") if ts else missing
