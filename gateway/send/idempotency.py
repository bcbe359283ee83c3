"""Idempotency keys and duplicate suppression, without HTTP: a request's key (the caller's
``Idempotency-Key``, or for duplicate suppression a fingerprint of its canonical content) is reserved
durably *before* the send; the first answer is stored once known and replayed to every retry.

* same caller, same key, same content, first answer stored -> that answer again (a replay)
* same key, different content -> ``mismatch`` (422 at the edge)
* same key while the first is still in flight -> wait up to ``idempotency.wait``, then ``inflight`` (409)
* same key, same content, the first request's process died (its lease passed) -> ``recorded``: the answer is
  rebuilt from the submission it recorded (:meth:`Idempotency.answer`), nothing is sent again; or, when it
  recorded nothing (so sent nothing), ``reserved``: this request sends. The lease counts from the reservation,
  so a live but slow first request may lose its key that way: its record is fenced (:meth:`Idempotency.fence`),
  so it records and sends nothing (409), and it never frees nor overwrites the key it lost
* a caller's custom messageIds are reserved the same way for the store's retention, so a reused one is
  refused like Infobip's REJECTED_DUPLICATE_MESSAGE_ID (unless the request is a replay).

Keys and duplicate fingerprints alike. See docs/delivery.md "Retries, idempotency keys and duplicates".
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..config import Caller, IdempotencySettings, TemplateSpec
from ..errors import Unavailable, UpstreamTimeout
from ..ids import new_token
from ..model import SentMessage, Submission, SubmissionResult
from ..sms import sms_count
from ..store import idempotency as repo
from ..store.engine import DB_ERRORS, CommitTimeout, Database
from ..store.idempotency import DONE, INFLIGHT, MISMATCH, RECORDED, RESERVED, Slot
from ..store.records import Fence, Fenced
from ..wire.statuses import PENDING_ACCEPTED, STATUS_BY_NAME

__all__ = ["Claim", "Fenced", "Idempotency", "Slot", "DONE", "INFLIGHT", "MISMATCH", "RECORDED", "RESERVED",
           "fingerprint"]

log = logging.getLogger(__name__)
KEY, DEDUPE = "key", "dedupe"
DUPLICATE_ID = STATUS_BY_NAME["REJECTED_DUPLICATE_MESSAGE_ID"]


def fingerprint(caller: str, entrance: str, content: Any) -> str:
    """A stable hash of a request's canonical content (credentials already removed by the caller)."""
    raw = json.dumps([caller, entrance, content], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True, frozen=True)
class Claim:
    """One request's hold on a key: ``kind`` is ``key`` (the caller's) or ``dedupe`` (a fingerprint)."""

    kind: str
    caller: str
    key: str  # namespaced: key:<k> | dedupe:<fingerprint>
    fingerprint: str
    ttl: float
    token: str  # the request's submission is recorded under it (its dlr_token): the key's link to the record;
    # the token the key's row holds for this request (a reconciling request: the one of the record it answers from)
    displaced: str | None = None  # the token of the dead (or fenced) request whose key this one took over


class Idempotency:
    def __init__(self, db: Database, clock: Clock, settings: IdempotencySettings, lease_seconds: float,
                 retention_seconds: float) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.reservations = repo.Reservations(db)
        self.lease_seconds, self.retention_seconds = lease_seconds, retention_seconds
        self._cv = threading.Condition()
        self.replays: Counter[str] = Counter()  # by kind: what /metrics shows (this process)
        self.refused: Counter[str] = Counter()  # conflict (409), mismatch (422), duplicate_message_id

    def window(self, caller: Caller, template: TemplateSpec | None) -> float:
        """The duplicate window for a request: the template's, else the caller's, else the default."""
        if template is not None and template.dedupe_window is not None:
            return template.dedupe_window
        return caller.dedupe_window if caller.dedupe_window is not None else self.settings.dedupe_window

    def claim_key(self, caller: str, key: str, fp: str) -> Claim:
        return Claim(KEY, caller, f"key:{key}", fp, self.settings.ttl, new_token())

    def claim_dedupe(self, caller: str, fp: str, window: float) -> Claim:
        return Claim(DEDUPE, caller, f"dedupe:{fp}", fp, window, new_token())

    def acquire(self, claim: Claim) -> Slot:
        """Reserve ``claim``'s key, or the first request's answer (waiting while it is in flight)."""
        deadline = time.monotonic() + self.settings.wait
        while True:
            try:
                slot = self.reservations.reserve(claim.caller, claim.key, claim.fingerprint, claim.token,
                                                 self.clock.now(), claim.ttl, self.lease_seconds)
            except (*DB_ERRORS, CommitTimeout) as exc:
                log.error("idempotency: a key could not be reserved: %s", type(exc).__name__)
                raise Unavailable("The bridge could not reserve the request's idempotency key; nothing was sent: "
                                  "retry later") from None
            left = deadline - time.monotonic()
            if slot.outcome != INFLIGHT or left <= 0:
                break
            self.db.release()  # a pooled connection is not held while waiting for another request
            with self._cv:  # woken by a finish in this process; other processes are polled
                self._cv.wait(min(0.05, left))
        if slot.outcome in (DONE, RECORDED):  # answered without a send
            self.replays[claim.kind] += 1
            try:
                repo.count_replay(self.db, claim.caller, claim.key, self.clock.now())
            except DB_ERRORS as exc:  # only the UI's counter: the replay is answered all the same
                log.warning("idempotency: a replay could not be counted: %s", type(exc).__name__)
        elif slot.outcome != RESERVED:
            self.refused["conflict" if slot.outcome == INFLIGHT else "mismatch"] += 1
        return slot

    def answer(self, slot: Slot, sub: Submission) -> SubmissionResult:
        """The answer to ``sub`` rebuilt from what its first request recorded (``slot`` is ``recorded``): the
        same bulkId and messageIds, each destination's status now (pending while the queue or the
        reconciliation of a sync send carries it on). A sync send whose outcome no id can reconcile (the query
        API) raises :class:`UpstreamTimeout`, as its first request would have."""
        rec = repo.recorded(self.db, slot.ref or "")
        if any(m.state in ("sending", "unknown") and m.upstream_message_id is None for m in rec.messages):
            raise UpstreamTimeout("The first of these requests was interrupted while the upstream was taking it: its "
                                  "outcome is unknown (check /sms/1/logs before sending it again)")
        ids = {m.message_id for m in rec.messages}
        rows = iter(rec.messages)
        result = SubmissionResult(bulk_id=rec.bulk_id)
        for m in sub.messages:
            for d in m.destinations:
                if d.message_id and d.message_id not in ids:  # refused as a reused messageId the first time
                    result.messages.append(SentMessage(d.to, DUPLICATE_ID, d.message_id))
                elif (row := next(rows, None)) is not None:
                    count = row.sms_count or sms_count(m.text, m.language_code, m.transliteration)
                    result.messages.append(SentMessage(row.to, row.status or PENDING_ACCEPTED, row.message_id, count))
        return result

    def finish(self, claim: Claim, http_status: int, content_type: str | None, body: bytes, ref: str | None,
               message_id: str | None) -> None:
        """Store the first answer under ``claim``'s key (unless a retry took it over: see :meth:`fence`)."""
        try:
            self.reservations.complete(claim.caller, claim.key, claim.token, http_status, content_type, body, ref,
                                       message_id, self.clock.now())
        finally:
            self._wake()

    def abandon(self, claim: Claim) -> None:
        """The request sent nothing: free its key for a corrected retry (unless a retry took it over)."""
        try:
            repo.release(self.db, claim.caller, [claim.key], claim.token)
        finally:
            self._wake()

    def fence(self, claim: Claim) -> Fence:
        """What the send's record checks (gateway/store/records.py): ``claim``'s key still in flight under its
        token (else a retry took it over after its lease: the record fails with :class:`Fenced`, nothing is sent)
        and its lease renewed from the record."""
        return Fence(claim.caller, claim.key, self.lease_seconds)

    def reserve_message_ids(self, caller: str, ids: Sequence[str], claim: Claim | None) -> set[str]:
        """Reserve the caller's custom messageIds for the retention period (under ``claim``'s token, with those
        its key's dead holder reserved for the same content: see repo.reserve_many); return those already used."""
        if not ids:
            return set()
        try:
            taken = repo.reserve_many(self.db, caller, [f"mid:{i}" for i in ids], claim.fingerprint if claim else "",
                                      self.clock.now(), self.retention_seconds, claim.token if claim else None,
                                      claim.displaced if claim else None)
        except DB_ERRORS as exc:
            log.error("idempotency: custom messageIds could not be reserved: %s", type(exc).__name__)
            raise Unavailable("The bridge could not reserve the request's messageIds; nothing was sent: "
                              "retry later") from None
        dup = {k[4:] for k in taken}
        if dup:
            self.refused["duplicate_message_id"] += len(dup)
        return dup

    def release_message_ids(self, caller: str, ids: Iterable[str], claim: Claim | None) -> None:
        """Free the messageIds of a request that sent nothing (with ``claim``: those still held under its token)."""
        repo.release(self.db, caller, [f"mid:{i}" for i in ids], claim.token if claim else None, inflight=False)

    def prune(self) -> int:
        return repo.prune(self.db, self.clock.now())

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify_all()
