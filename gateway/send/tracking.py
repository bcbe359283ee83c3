"""Conversion tracking: a caller confirms a conversion for a message it sent; the bridge forwards
Infobip's end tag (``POST /ct/1/log/end/<upstream messageId>``) and records it on the message.

* The message is looked up by the id the caller was given, among **this caller's** messages only;
  another caller's id and an unknown id get the same 404, so ids cannot be probed.
* A message not yet forwarded (queued mode) or never accepted upstream (failed, rejected) gets 409:
  the upstream could not know it.
* **Idempotent:** the first conversion the upstream accepts is recorded (``converted_at``,
  ``process_key``); a repeated call answers the stored processKey without calling the upstream
  again (legacy apps fire a URL more than once: retries, link prefetchers, a pixel loaded twice).
  Every answered call is counted in ``conversion_calls``. Two calls racing before the first is
  recorded may both reach the upstream; the first processKey recorded is kept and answered.
* Upstream failures are the upstream client's typed errors, as for sends (unreachable, timed out: calling
  again is safe, refused, nonsense); the upstream's own 404 is a NotFound.
"""

from __future__ import annotations

from ..clock import Clock
from ..errors import Conflict, NotFound, UpstreamTimeout
from ..store import tracking as store
from ..store.engine import Database
from .upstream import Attempt, UpstreamClient

NOT_YET = ("queued", "sending")
NEVER = ("failed", "rejected")


def not_found(message_id: str) -> NotFound:
    """The one answer for an unknown id and another caller's id alike."""
    return NotFound(f"No message with messageId {message_id!r} sent by this caller")


class Conversions:
    """Stateless over the database and the upstream client; cheap to build per request."""

    def __init__(self, db: Database, clock: Clock, upstream: UpstreamClient,
                 carriers: dict[str, UpstreamClient] | None = None) -> None:
        """``upstream``: the primary; ``carriers``: every upstream by name (failover), the one that carried a
        message is told about its conversion."""
        self.db, self.clock, self.upstream, self.carriers = db, clock, upstream, carriers or {}

    def find(self, caller: str, message_id: str) -> store.TrackedMessage | None:
        return store.find(self.db, caller, message_id)

    def log_end(self, caller: str, message_id: str, attempts: list[Attempt] | None = None) -> str:
        """Confirm a conversion of ``caller``'s message ``message_id``; return the processKey."""
        row = self.find(caller, message_id)
        if row is None:
            raise not_found(message_id)
        if row.process_key:
            return self._recorded(row.row_id, row.process_key)
        if row.state in NOT_YET:
            raise Conflict(f"Message {message_id!r} is not forwarded yet; log the conversion once it is sent")
        if row.state in NEVER or not row.upstream_message_id:
            raise Conflict(f"Message {message_id!r} was not accepted upstream; there is no conversion to log")
        try:
            client = self.carriers.get(row.upstream or "", self.upstream)
            key = client.log_conversion(row.upstream_message_id, attempts)
        except UpstreamTimeout as exc:
            raise UpstreamTimeout("Upstream did not answer in time; the conversion may have been logged: calling "
                                  "again is safe", exc.attempts) from None
        except NotFound:
            raise NotFound(f"The upstream does not know message {message_id!r} (any more)") from None
        return self._recorded(row.row_id, key)

    def _recorded(self, row_id: int, key: str) -> str:
        """Record ``key`` unless one is recorded already; count the call; return the recorded key."""
        return store.record_conversion(self.db, row_id, key, self.clock.now())
