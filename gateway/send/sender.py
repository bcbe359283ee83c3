"""The core send path: a validated Submission goes upstream, its answer comes back canonical.

It knows nothing of wire dialects. With the ``query`` upstream a submission of several messages
becomes one GET per message sharing one bulkId; a caller's own messageIds (which the query API cannot
carry) are kept in the answer, the upstream's ids beside them in the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import UpstreamError, UpstreamUnreachable
from ..ids import new_id
from ..model import Submission, SubmissionResult
from ..sms import sms_count
from .upstream import Attempt
from .upstreams import Route, Upstreams, is_failure, not_taken

# Called after every send with (submission, result or None on failure, attempts); e.g. metrics.
SendObserver = Callable[[Submission, SubmissionResult | None, list[Attempt]], None]


_NO_SUBMISSION = Submission(messages=[])


# Called before a sync send fails over to another upstream (the previous one certainly did not take it): it
# moves the record's pin there, durably; raising stops the failover.
Moving = Callable[[Route], None]


class Sender:
    def __init__(self, upstreams: Upstreams):
        self.upstreams = upstreams
        self.upstream = upstreams.primary.client  # bulks and conversions: the primary account
        self.observers: list[SendObserver] = []

    def _notify(self, sub: Submission, result: SubmissionResult | None, attempts: list[Attempt]) -> None:
        for observe in self.observers:
            try:
                observe(sub, result, attempts)
            except Exception:  # an observer never breaks a send
                logging.getLogger("smsbridge").exception("send observer failed")

    def observe(self, attempts: list[Attempt], result: SubmissionResult | None) -> None:
        """Tell the observers about upstream calls made outside :meth:`send` (the queue worker's batches)."""
        self._notify(_NO_SUBMISSION, result, attempts)

    def send(self, sub: Submission, api: str, route: Route | None = None,
             moving: Moving | None = None) -> tuple[SubmissionResult, list[Attempt]]:
        """Send ``sub`` through ``route`` (default: the first healthy upstream). With ``moving``, a failure that
        certainly left nothing upstream (no connection, a 5xx or 401/403 answer) fails over to the next
        healthy upstream, ``moving`` being told first; an unknown outcome never does (docs/delivery.md)."""
        if api == "query" and len(sub.messages) > 1 and not sub.bulk_id:
            sub.bulk_id = new_id()
        attempts: list[Attempt] = []
        route = route or self.upstreams.pick()
        tried: list[str] = []
        try:
            while True:
                if route is None:
                    raise UpstreamUnreachable("Every upstream is failing (circuit open); nothing was sent", attempts)
                before = len(attempts)
                try:
                    result = route.client.send(sub, api, attempts)
                    self.upstreams.record(route, None)
                    break
                except UpstreamError as exc:
                    self.upstreams.record(route, exc)
                    tried.append(route.name)
                    answered = any(a.http_status is not None and a.http_status < 300 for a in attempts[before:])
                    if moving is None or answered or not (is_failure(exc) and not_taken(exc)):
                        raise
                    nxt = self.upstreams.pick(exclude=tuple(tried))
                    if nxt is None:
                        raise
                    try:
                        moving(nxt)
                    except Exception:  # the move could not be recorded: the error stands, nothing moved
                        raise exc from None
                    logging.getLogger("smsbridge").warning("upstream %s failed (%s): failing over to %s",
                                                           route.name, exc.text, nxt.name)
                    route = nxt
        except Exception:
            self._notify(sub, None, attempts)
            raise
        if api == "query":
            wanted = [d.message_id for m in sub.messages for d in m.destinations]
            for sent, own in zip(result.messages, wanted, strict=False):
                if own:
                    sent.upstream_message_id = sent.message_id
                    sent.message_id = own
        if sub.bulk_id and not result.bulk_id:
            result.bulk_id = sub.bulk_id
        counts = []
        for m in sub.messages:  # one count per message, repeated for each of its destinations
            counts += [sms_count(m.text, m.language_code, m.transliteration)] * len(m.destinations)
        for sent, count in zip(result.messages, counts, strict=False):
            sent.sms_count = count  # the bridge's own engine, the same one the preview uses
        self._notify(sub, result, attempts)
        return result, attempts
