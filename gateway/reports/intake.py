"""Reports in: a delivery-report body pushed to ``/hooks/dlr/<token>`` is matched, stored and relayed.

The token (one per submission, 192 random bits) is the only credential: an unknown token is refused
with 404 before the body is read. Items are matched by the upstream's messageId within that
submission; unknown ids are counted and ignored. Storing is idempotent (a report repeated by the
upstream's retry cycle is recognised and neither stored nor relayed twice); the report and its
outbox jobs commit in one transaction. Reports in the PENDING/ACCEPTED groups are *intermediate*.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..clock import Clock
from ..delivery.outbox import NewJob
from ..errors import NotFound
from ..model import ApiError, Report
from ..store import rejected
from ..store import reports as repo
from ..store.engine import Connection, Database
from ..store.records import Store
from ..store.reports import StoredMessage
from ..wire.reports import reports_from_push
from .relay import Relay

log = logging.getLogger(__name__)

INTERMEDIATE_GROUPS = frozenset({"PENDING", "ACCEPTED"})


def caller_report(pushed: Report, msg: StoredMessage) -> Report:
    """The report as the caller sees it: the caller's ids and callbackData, the upstream's status."""
    status = pushed.status or msg.status
    return Report(
        message_id=msg.message_id or "", status=status, error=pushed.error, bulk_id=msg.bulk_id, to=msg.to,
        sender=msg.sender, price=pushed.price, sent_at=pushed.sent_at or msg.sent_at or msg.created_at,
        done_at=pushed.done_at, sms_count=pushed.sms_count or msg.sms_count, mcc_mnc=pushed.mcc_mnc,
        callback_data=msg.callback_data,
        intermediate=status is not None and status.group_name in INTERMEDIATE_GROUPS,
        upstream_message_id=msg.upstream_message_id, caller=msg.caller, entity_id=msg.entity_id,
        application_id=msg.application_id, campaign_reference_id=msg.campaign_reference_id,
    )


class ReportIntake:
    def __init__(self, db: Database, store: Store, relay: Relay, clock: Clock) -> None:
        self.db, self.store, self.relay, self.clock = db, store, relay, clock

    def submission(self, token: str) -> int:
        """The id of the submission a report address belongs to; 404 for an unknown (forged) token."""
        sub = repo.submission_by_token(self.db, token)
        if sub is None:
            raise NotFound("Unknown report address")
        return sub

    def accept(self, submission_id: int, body: bytes, content_type: str | None) -> dict[str, Any]:
        """Store and relay the reports in ``body``; counts of new, duplicate and unknown items.

        One transaction per pushed body: the messages are looked up with one query, the reports
        stored, and their outbox jobs inserted with one statement at the end. A body that cannot be
        parsed is kept in the rejected pushes (``rejected``: its id) and answered like the others, so
        that the upstream does not retry it for days: nothing in it is processed."""
        counts: dict[str, Any] = {"stored": 0, "duplicates": 0, "unknown": 0}
        try:
            pushed = reports_from_push(body, content_type)
        except ApiError as exc:
            reason = rejected.reason_of(exc)
            kept = rejected.add(self.db, "report", str(submission_id), content_type, reason, body, self.clock.now())
            log.warning("report push for submission %s not processed, kept as rejected push %d: %s", submission_id,
                        kept, reason)
            return {**counts, "processed": False, "rejected": kept, "reason": reason}
        jobs: list[NewJob] = []
        with self.db.transaction() as c:
            found = repo.messages_for_reports(c, submission_id, [p.message_id for p in pushed])
            seen: set[int] = set()
            batch: list[tuple[StoredMessage, Report]] = []
            for item in pushed:
                msg = found.get(item.message_id)
                if msg is None:
                    counts["unknown"] += 1
                    continue
                if msg.id in seen:  # a second report for it in this body: see what the first one changed
                    if any(m.id == msg.id for m, _ in batch):
                        self._record(c, batch, counts, jobs)
                        batch = []
                    msg = found[item.message_id] = repo.message_by_row(c, msg.id) or msg
                seen.add(msg.id)
                batch.append((msg, caller_report(item, msg)))
            self._record(c, batch, counts, jobs)
            self.relay.enqueue_jobs(c, jobs)
        if counts["unknown"]:
            log.warning("report for submission %s: %d item(s) with unknown messageId", submission_id,
                        counts["unknown"])
        return counts

    def _record(self, c: Connection, batch: list[tuple[StoredMessage, Report]], counts: dict[str, int],
                jobs: list[NewJob]) -> None:
        """Store a batch of reports (one per message) and prepare the jobs of the new ones."""
        for (msg, report), new in zip(batch, repo.record_reports(c, batch, self.clock.now()), strict=True):
            if new:
                counts["stored"] += 1
                jobs += self.relay.jobs(msg, report)
            else:
                counts["duplicates"] += 1

    def rejected(self, row_ids: Sequence[int]) -> None:
        """A queued message the upstream rejected gets a final report of its own (the caller was told
        PENDING_ACCEPTED), stored and relayed like a pushed one."""
        counts = {"stored": 0, "duplicates": 0, "unknown": 0}
        jobs: list[NewJob] = []
        with self.db.transaction() as c:
            batch = []
            for rid in dict.fromkeys(row_ids):
                msg = repo.message_by_row(c, rid)
                if msg is not None:
                    batch.append((msg, caller_report(Report(msg.message_id or "", done_at=self.clock.now()), msg)))
            self._record(c, batch, counts, jobs)
            self.relay.enqueue_jobs(c, jobs)
