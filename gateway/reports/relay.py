"""Reports out: each stored delivery report becomes durable outbox jobs (gateway/delivery/outbox.py),
through the delivery channels of gateway/delivery/channels.py: the caller's own ``notifyUrl``
(:class:`NotifyUrlChannel`) and a legacy callback configured on the caller or the template
(:class:`CallbackChannel`, templates in gateway/reports/callbacks.py), or a dialect's own report
channel named on the message instead (:class:`JasminDlrChannel` for Jasmin's ``dlr-url``,
:class:`KannelDlrChannel` for a Kannel ``dlr-url`` given to ``/cgi-bin/sendsms``).

Reports are relayed when final; intermediate ones only for messages sent with
``intermediateReport=true``.
"""

from __future__ import annotations

import logging

from ..config import Config
from ..delivery.channels import CallbackChannel, JasminDlrChannel, NotifyUrlChannel
from ..delivery.kannel import KannelDlrChannel
from ..delivery.outbox import NewJob, Outbox
from ..model import Report
from ..store.engine import Connection
from ..store.reports import StoredMessage
from ..wire.jasmin import DlrRequest
from ..wire.reports import merge_reports_bodies
from .callbacks import compile_callbacks

__all__ = ["Relay", "compile_callbacks"]

log = logging.getLogger(__name__)


class Relay:
    """Turns a stored report into outbox jobs, inside the transaction that stored it."""

    def __init__(self, config: Config, outbox: Outbox) -> None:
        self.outbox = outbox
        self.callbacks = {n: CallbackChannel(c) for n, c in compile_callbacks(config).items()}
        self.notify = NotifyUrlChannel()
        self.jasmin = JasminDlrChannel()
        self.kannel = KannelDlrChannel()
        for kind in (NotifyUrlChannel.kind, NotifyUrlChannel.kind_v3):
            outbox.mergeable(kind, merge_reports_bodies)

    def jobs(self, target: StoredMessage, report: Report) -> list[NewJob]:
        """The outbox jobs for the report: the message's notifyUrl and legacy callback, if any."""
        if report.intermediate and not target.intermediate:
            return []
        jasmin = DlrRequest.from_channel(target.callback, target.notify_url)
        if jasmin is not None:  # the message's URL is the dlr-url: Jasmin's fields, never Infobip's shape
            return self.jasmin.prepare(report, target, jasmin)
        jobs = []
        dlr_url = self.kannel.wants(target)  # the notify URL is a Kannel dlr-url (gateway/delivery/kannel.py)
        if dlr_url:
            kannel = self.kannel.prepare(report, target)
            jobs += [kannel] if kannel else []
        elif target.notify_url:
            jobs.append(self.notify.prepare(report, target))
        # a request's dlr-url replaces the caller's callback (as a sendsms-user's default dlr-url): its channel
        # is the message's callback
        channel = None if dlr_url else self.callbacks.get(target.callback or "")
        if channel is not None:
            try:
                jobs.append(channel.prepare(report, target))
            except Exception as exc:  # a filter may raise anything: logged (type only), never a trace
                log.warning("callback %s for message %s failed to render: %s", channel.compiled.name,
                            target.message_id, type(exc).__name__)
        return jobs

    def enqueue_jobs(self, conn: Connection, jobs: list[NewJob]) -> int:
        """Queue ``jobs`` (of many reports: one statement) in the open transaction; return the jobs made."""
        made = 0
        for job, refused in zip(jobs, self.outbox.enqueue_many(jobs, conn=conn), strict=True):
            if refused is None:
                made += 1
            else:
                log.warning("report for message %s not relayed (%s): %s", job.ref, job.kind, refused)
        return made
