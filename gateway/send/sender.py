"""The core send path: a validated Submission goes upstream, its answer comes back canonical.

It knows nothing of wire dialects. With the ``query`` upstream a submission of several messages
becomes one GET per message sharing one bulkId; a caller's own messageIds (which the query API cannot
carry) are kept in the answer, the upstream's ids beside them in the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..ids import new_id
from ..model import Submission, SubmissionResult
from ..sms import sms_count
from .upstream import Attempt, UpstreamClient

# Called after every send with (submission, result or None on failure, attempts); e.g. metrics.
SendObserver = Callable[[Submission, SubmissionResult | None, list[Attempt]], None]


_NO_SUBMISSION = Submission(messages=[])


class Sender:
    def __init__(self, upstream: UpstreamClient):
        self.upstream = upstream
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

    def send(self, sub: Submission, api: str) -> tuple[SubmissionResult, list[Attempt]]:
        if api == "query" and len(sub.messages) > 1 and not sub.bulk_id:
            sub.bulk_id = new_id()
        attempts: list[Attempt] = []
        try:
            result = self.upstream.send(sub, api, attempts)
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
