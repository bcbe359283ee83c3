"""Kannel's ``dlr-url`` as a delivery channel: a message sent through ``/cgi-bin/sendsms`` with a ``dlr-url`` and a
``dlr-mask`` keeps the URL as its notify URL (the request's own escapes already filled) and names this channel,
with the mask, as its report channel (``callback`` = ``kannel:31``, gateway/wire/kannel.py). Each event the mask asks for is
one GET of that URL with the event's escapes filled, through the outbox (its retry cycle, dead letters, the
caller's allow-list):

* 1 delivered, 2 failed (undeliverable, expired), 4 buffered (Infobip's intermediate PENDING reports; 32 when only
  bit 32 is set), 16 rejected: from the upstream's delivery reports (gateway/reports/relay.py);
* (Jasmin's level-1 receipt, the SMSC's submit_sm_resp, is the same event: :meth:`SubmitEvents.accepted` makes
  it for a queued message, :meth:`SubmitEvents.jasmin_accepted` for a sync one);
* 8 accepted by the upstream (Kannel: the SMSC's submit ack, ``%A`` = ``ACK/``) and 16 refused in the upstream's
  answer to the send (``NACK/<status id>/<description>``): when the answer is recorded - by the entrance for a
  sync send, by the queue worker (:meth:`SubmitEvents.accepted`) for a queued one.

The job of an 8 is made after the answer is recorded, in its own transaction: a crash between the two loses that
one event (Kannel keeps them in memory only); a resend refused as a duplicate after a lost answer fires it then.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..clock import Clock
from ..model import Report
from ..store import reports as repo
from ..store.engine import Database
from ..store.reports import StoredMessage
from ..wire.jasmin import CHANNEL as JASMIN_CHANNEL
from ..wire.jasmin import DlrRequest
from ..wire.kannel import CHANNEL, dlr_text, event_of, fill, mask_of, report_escapes
from ..wire.statuses import PENDING_ACCEPTED
from .channels import JasminDlrChannel
from .outbox import NewJob, Outbox

KIND = "kannel-dlr"


def nack(report: Report) -> str:
    """``%A`` of a refusal: Kannel's ``NACK/`` and the reason."""
    status = report.status
    return f"NACK/{status.id}/{status.description}" if status else "NACK/"


def job(kind: int, report: Report, url: str, caller: str | None, at: float) -> NewJob:
    """One DLR event as an outbox job: a GET of the dlr-url with the event's escapes filled."""
    text = "ACK/" if kind == 8 else nack(report) if kind == 16 else dlr_text(report)
    return NewJob(KIND, fill(url, report_escapes(kind, report, text, at)), "GET", None, None, caller=caller,
                  ref=report.message_id or None)


class KannelDlrChannel:
    """A report for a message whose notify URL is a Kannel dlr-url (see the module docstring)."""

    kind = KIND

    @staticmethod
    def wants(target: StoredMessage) -> bool:
        return mask_of(target.callback) is not None

    def prepare(self, report: Report, target: StoredMessage) -> NewJob | None:
        """The job of ``report``, or None when the mask does not ask for its event."""
        kind = event_of(report, mask_of(target.callback) or 0)
        if kind is None or not target.notify_url:
            return None
        return job(kind, report, target.notify_url, target.caller, report.done_at or time.time())


def submit_report(msg: StoredMessage) -> Report:
    """The report an upstream's acceptance of ``msg`` makes (event 8)."""
    return Report(msg.message_id or "", PENDING_ACCEPTED, to=msg.to, sender=msg.sender,
                  upstream_message_id=msg.upstream_message_id, caller=msg.caller, intermediate=True)


class SubmitEvents:
    """Events 8 (and 16) of the upstream's answer to a send (see the module docstring)."""

    def __init__(self, db: Database, outbox: Outbox, clock: Clock) -> None:
        self.db, self.outbox, self.clock = db, outbox, clock
        self.jasmin = JasminDlrChannel()

    def answered(self, events: Sequence[tuple[int, Report]], url: str, mask: int, caller: str | None) -> None:
        """A sync send's answer: ``(kind, report)`` per destination; those ``mask`` asks for become jobs."""
        now = self.clock.now()
        jobs = [job(kind, report, url, caller, now) for kind, report in events if mask & kind]
        if jobs:
            self.outbox.enqueue_many(jobs)

    def accepted(self, row_ids: Sequence[int]) -> None:
        """Queued messages the upstream accepted: an 8 for those sent with a Kannel dlr-url asking for it, a
        level-1 receipt for those sent with a Jasmin dlr-url asking for it."""
        now = self.clock.now()
        jobs: list[NewJob] = []
        for m in repo.messages_with_channel(self.db.connection(), row_ids, CHANNEL, JASMIN_CHANNEL):
            dlr = DlrRequest.from_channel(m.callback, m.notify_url)
            if dlr is not None:
                jobs += self.jasmin.accepted(submit_report(m), m.caller, dlr)
            elif (mask_of(m.callback) or 0) & 8 and m.notify_url:
                jobs.append(job(8, submit_report(m), m.notify_url, m.caller, now))
        if jobs:
            self.outbox.enqueue_many(jobs)

    def jasmin_accepted(self, message_id: str, caller: str | None, dlr: DlrRequest) -> None:
        """A sync send through Jasmin's ``/send`` the upstream accepted: its level-1 receipt, if asked for."""
        report = Report(message_id, PENDING_ACCEPTED, caller=caller, intermediate=True)
        jobs = self.jasmin.accepted(report, caller, dlr)
        if jobs:
            self.outbox.enqueue_many(jobs)
