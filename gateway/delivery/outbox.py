"""A durable outbox of prepared HTTP requests (delivery reports, inbound forwarding).

A *job* is one target: a method, a URL, headers and a body prepared by whoever enqueued it. Jobs
live in the database (``outbox_jobs``), so they survive restarts; every attempt is recorded in
``outbox_attempts``. Delivery follows Infobip's push retry cycle: after a failed attempt, retry
``n`` (0…19) comes ``1 min + 1 min·n²`` after the previous attempt; after the 20th retry fails the
job is a *dead letter*: kept, listed, and re-drivable.

Jobs of a kind registered with :meth:`Outbox.mergeable` (delivery reports to a notifyUrl) that are due
together and share method, URL, headers, content type and caller go out as one request, up to
``max_batch`` of them, with a merged body; every job of it still gets its own attempt row, state and
retry time, and the request's outcome applies to each.

Workers claim a job atomically (``state='leased'`` with a lease deadline and a token), so several
workers, threads or processes, never deliver the same job at the same time; a lease that expires
(a crashed worker) makes the job due again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import requests

from gateway.clock import Clock, scaled
from gateway.delivery.guard import GuardedAdapter, using_policy
from gateway.delivery.urlpolicy import HostUnresolvable, UrlNotAllowed, UrlPolicy
from gateway.redact import redact_url
from gateway.store.engine import Connection, Database
from gateway.store.outbox import Finished, Job, OutboxStore, headers_json

log = logging.getLogger(__name__)

#: Seconds between a failed attempt and retry n (n = 0…19), before the time scale.
RETRY_DELAYS: tuple[int, ...] = tuple(60 * (1 + n * n) for n in range(20))
#: The first attempt plus every retry.
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)

STATES = ("pending", "leased", "done", "dead")
METHODS = ("GET", "POST", "PUT")
RETRYABLE_4XX = (408, 429)
_MAX_BODY_READ = 64 * 1024


def retry_delay(attempts: int, time_scale: float = 1.0) -> float | None:
    """Clock seconds from a failed attempt number ``attempts`` (1-based) to the next; None = dead."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    if attempts > len(RETRY_DELAYS):
        return None
    return scaled(RETRY_DELAYS[attempts - 1], time_scale)


CLAIM_BATCH = 16  # jobs a worker leases per transaction (their outcomes are recorded in one transaction too)
#: merges the bodies of several jobs (same kind and target) into one request body, or None if they cannot be
Merge = Callable[[list[bytes | None], str | None], bytes | None]


class DeliveryError(Exception):
    """A failed delivery; ``reason`` is a human sentence without secrets, ``status`` the HTTP status.

    ``permanent`` failures are not retried.
    """

    def __init__(self, reason: str, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.permanent = permanent


class NewJob(NamedTuple):
    """A job to enqueue (see :meth:`Outbox.enqueue`)."""

    kind: str
    url: str
    method: str = "POST"
    body: bytes | str | None = None
    content_type: str | None = None
    headers: Mapping[str, str] | None = None
    caller: str | None = None
    ref: str | None = None


class Answer(NamedTuple):
    """What a caller's URL answered (kept only for kinds registered with :meth:`Outbox.on_answer`)."""

    status: int
    body: bytes
    content_type: str | None
    headers: Mapping[str, str]


#: (job, lease token, attempt time, 2xx status | error | None = not attempted, duration ms, refused reason)
Outcome = tuple[Job, str, float, int | DeliveryError | None, float, str | None]


class HttpDeliverer:
    """The one outbound HTTP helper: owns timeouts and redirect policy, and turns every failure
    into a :class:`DeliveryError` with a sentence fit for an operator (never the URL's secrets)."""

    def __init__(
        self,
        session: requests.Session,
        connect_timeout: float = 5,
        read_timeout: float = 10,
        retry_on_4xx: bool = True,
    ) -> None:
        self.session = session
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_on_4xx = retry_on_4xx

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        policy: UrlPolicy | None = None,
        answer: list[Answer] | None = None,
    ) -> int:
        """Send the request; return the 2xx status or raise :class:`DeliveryError` (or :class:`UrlNotAllowed`
        when the address connected to is refused by ``policy`` or is the process's own). With ``answer``, the
        answer's body (up to 64 KiB), content type and headers are appended to it."""
        hdrs = dict(headers or {})
        if content_type and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = content_type
        where = f"{method} {redact_url(url)}"
        try:
            with using_policy(policy):
                resp = self.session.request(
                    method,
                    url,
                    headers=hdrs,
                    data=body,
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
        except requests.RequestException as exc:
            raise DeliveryError(f"{where}: {self._describe(exc)}") from None
        kept: list[bytes] = []
        try:
            read = 0
            for chunk in resp.iter_content(8192):  # drain a little so the connection can be reused
                read += len(chunk)
                if answer is not None:
                    kept.append(chunk)
                if read >= _MAX_BODY_READ:
                    break
        except requests.RequestException:
            pass  # the status line is what counts
        finally:
            resp.close()
        status = resp.status_code
        if answer is not None:
            answer.append(Answer(status, b"".join(kept)[:_MAX_BODY_READ], resp.headers.get("Content-Type"),
                                 dict(resp.headers)))
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise DeliveryError(
                f"{where}: the server answered HTTP {status}, a redirect; redirects are not followed", status
            )
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            permanent = not self.retry_on_4xx
            raise DeliveryError(f"{where}: the server refused the request with HTTP {status}", status, permanent)
        raise DeliveryError(f"{where}: the server answered HTTP {status}", status)

    def _describe(self, exc: requests.RequestException) -> str:
        causes = _causes(exc)
        if isinstance(exc, requests.ConnectTimeout):
            return f"could not connect within {self.connect_timeout:g} s"
        if isinstance(exc, requests.ReadTimeout):
            return f"connected, but no answer within {self.read_timeout:g} s"
        if isinstance(exc, requests.exceptions.SSLError):
            return "the TLS handshake failed (certificate or protocol)"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "the connection was refused (nothing listening)"
        if any(type(c).__name__ == "NameResolutionError" for c in causes) or any(
            isinstance(c, OSError) and c.__class__.__name__ == "gaierror" for c in causes
        ):
            return "the host name could not be resolved"
        if any(isinstance(c, ConnectionResetError) for c in causes):
            return "the connection was reset by the server"
        if isinstance(exc, requests.ConnectionError):
            return "the connection failed or was dropped before an answer"
        return f"the request failed ({type(exc).__name__})"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts, and exceptions carried in args / ``reason``."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        e = todo.pop()
        if any(e is s for s in seen):
            continue
        seen.append(e)
        nxt = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(x for x in nxt if isinstance(x, BaseException))
    return seen


def _id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3, 7`` (for one log line per merged request)."""
    ids = sorted(ids)
    spans: list[list[int]] = [[ids[0], ids[0]]]
    for cur in ids[1:]:
        if cur == spans[-1][1] + 1:
            spans[-1][1] = cur
        else:
            spans.append([cur, cur])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _public_only(caller: str | None) -> UrlPolicy:
    return UrlPolicy(allow_public=True)


class Outbox:
    """The durable outbox: ``enqueue`` jobs, deliver them with workers or ``run_due``."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        session: requests.Session | None = None,
        time_scale: float = 1.0,
        workers: int = 2,
        lease_seconds: float = 60,
        connect_timeout: float = 5,
        read_timeout: float = 10,
        retry_on_4xx: bool = True,
        policy_for: Callable[[str | None], UrlPolicy] | None = None,
        idle_wait: float = 5.0,
        max_batch: int = 100,
    ) -> None:
        """``idle_wait`` caps a worker's sleep so jobs enqueued by another process are noticed;
        ``max_batch`` caps the jobs one merged request carries (see :meth:`mergeable`)."""
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if lease_seconds <= connect_timeout + read_timeout:
            raise ValueError("lease_seconds must exceed connect_timeout + read_timeout")
        self.db = db
        self.store = OutboxStore(db)
        self.clock = clock
        self.time_scale = time_scale
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.idle_wait = idle_wait
        self.max_batch = max(1, max_batch)
        self._merge: dict[str, Merge] = {}
        self._answers: dict[str, Callable[[Job, Answer], None]] = {}
        self.policy_for = policy_for or _public_only
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        for prefix in ("http://", "https://"):  # the connected address is checked too (no DNS rebinding)
            self.session.mount(prefix, GuardedAdapter())
        self.deliverer = HttpDeliverer(self.session, connect_timeout, read_timeout, retry_on_4xx)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._counters = {"attempts": 0, "delivered": 0, "retries": 0, "dead": 0}

    # -- enqueue -------------------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        url: str,
        method: str = "POST",
        body: bytes | str | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        caller: str | None = None,
        ref: str | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Store a job due now and return its id; raise :class:`UrlNotAllowed` if the caller's
        policy refuses the URL. With ``conn`` (inside an open transaction) the job commits with it."""
        job = NewJob(kind, url, method, body, content_type, headers, caller, ref)
        params = self._params(job, self.clock.now())
        self._check(job.caller, job.url)
        if conn is not None:
            job_id = self.store.add(conn, params)
            self._wake_after(conn)
            return job_id
        with self.db.transaction() as c:
            job_id = self.store.add(c, params)
        self._wake.set()
        return job_id

    def enqueue_many(self, jobs: Sequence[NewJob], conn: Connection | None = None) -> list[str | None]:
        """Store ``jobs`` due now with one statement (``executemany``): per job, None if queued or the
        reason the caller's policy refused its URL (that job is not stored). The policy is asked once per
        caller and URL. With ``conn`` (inside an open transaction) the jobs commit with it."""
        now = self.clock.now()
        verdicts: dict[tuple[str | None, str], str | None] = {}
        out: list[str | None] = []
        rows = []
        for job in jobs:
            key = (job.caller, job.url)
            if key not in verdicts:
                try:
                    self._check(job.caller, job.url)
                    verdicts[key] = None
                except UrlNotAllowed as exc:
                    verdicts[key] = exc.reason
            out.append(verdicts[key])
            if verdicts[key] is None:
                rows.append(self._params(job, now))
        if not rows:
            return out
        if conn is not None:
            self.store.add_many(conn, rows)
            self._wake_after(conn)
            return out
        with self.db.transaction() as c:
            self.store.add_many(c, rows)
        self._wake.set()
        return out

    def _check(self, caller: str | None, url: str) -> None:
        """Raise :class:`UrlNotAllowed` if ``caller`` may not have ``url`` called."""
        try:
            self.policy_for(caller).check(url)
        except HostUnresolvable:
            pass  # maybe a DNS hiccup: delivery checks again and retries on the schedule

    @staticmethod
    def _params(job: NewJob, now: float) -> dict[str, Any]:
        method = job.method.upper()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        body = job.body.encode("utf-8") if isinstance(job.body, str) else job.body
        return OutboxStore.row(job.kind, job.caller, job.ref, method, job.url, headers_json(job.headers), body,
                               job.content_type, now)

    def _wake_after(self, conn: Connection) -> None:
        if conn is self.db.connection():
            self.db.after_commit(self._wake.set)  # wake workers once the jobs are visible
        else:
            self._wake.set()

    # -- delivery ------------------------------------------------------------------------------
    def mergeable(self, kind: str, merge: Merge) -> None:
        """Let due jobs of ``kind`` that share method, URL, headers, content type and caller go out as one
        request (up to ``max_batch`` jobs) whose body is ``merge(bodies, content_type)``; a merge that
        answers None sends those jobs one by one."""
        self._merge[kind] = merge

    def on_answer(self, kind: str, handle: Callable[[Job, Answer], None]) -> None:
        """Hand the 2xx answer of each delivered job of ``kind`` to ``handle`` (after the delivery is recorded;
        never merged). A handler's failure is logged; the job stays delivered."""
        self._answers[kind] = handle

    def run_due(self, limit: int = 100) -> int:
        """Deliver up to ``limit`` due jobs in this thread; return the number of jobs attempted."""
        return self._run(limit, stoppable=False)

    def _run(self, limit: int, stoppable: bool) -> int:
        done = 0
        while done < limit and not (stoppable and self._stop.is_set()):
            claimed = self._claim_many(min(CLAIM_BATCH, limit - done), limit - done)
            if not claimed:
                break
            done += self._deliver_all(claimed)
        return done

    def _claim(self) -> tuple[Job, str] | None:
        """Lease the most overdue job, or None."""
        claimed = self._claim_many(1, 1)
        return claimed[0] if claimed else None

    def _deliver(self, job: Job, token: str) -> None:
        """Attempt one leased job and record the outcome."""
        self._deliver_all([(job, token)])

    def _claim_many(self, limit: int, cap: int | None = None) -> list[tuple[Job, str]]:
        """Lease up to ``limit`` of the most overdue jobs (pending, or leased with an expired lease) in
        one transaction: one commit (one fsync) per batch, not per job. Each mergeable group among them
        is then filled up to ``max_batch`` with more due jobs of the same group, ``cap`` jobs in all."""
        now = self.clock.now()
        cap = max(limit, cap or limit)
        token = uuid.uuid4().hex  # one lease token for the claim: the jobs are leased and recorded together
        with self.db.transaction() as conn:  # BEGIN IMMEDIATE: select + update under the write lock
            jobs = self.store.due(conn, now, limit)
            if self._merge and self.max_batch > 1:
                jobs += self._fill(conn, jobs, now, cap)
            if not jobs:
                return []
            mine = self.store.lease(conn, [j.id for j in jobs], now, now + self.lease_seconds, token)
        out = []
        for job in jobs:
            if job.id in mine:
                job.state = "leased"
                out.append((job, token))
        return out

    def _fill(self, conn: Connection, jobs: list[Job], now: float, cap: int) -> list[Job]:
        """More due jobs for each mergeable group in ``jobs`` (each group up to ``max_batch``, all up to ``cap``)."""
        seen = {job.id for job in jobs}
        groups: dict[tuple[Any, ...], tuple[Job, int]] = {}
        for job in jobs:
            if job.kind in self._merge:
                key = job.group_key()
                first, n = groups.get(key, (job, 0))
                groups[key] = (first, n + 1)
        more: list[Job] = []
        for first, n in groups.values():
            room = min(self.max_batch - n, cap - len(jobs) - len(more))
            if room <= 0:
                continue
            found = self.store.due_like(conn, first, now, room + n)
            more += [job for job in found if job.id not in seen][:room]
        return more

    def _units(self, claimed: list[tuple[Job, str]]) -> list[tuple[list[tuple[Job, str]], bytes | None]]:
        """The requests to make: (jobs, body) - one job with its own body, or a mergeable group (in claim
        order, at most ``max_batch``) with the merged body."""
        groups: dict[tuple[Any, ...], list[tuple[Job, str]]] = {}
        order: list[tuple[Any, ...] | tuple[Job, str]] = []
        for item in claimed:
            job = item[0]
            merge = self._merge.get(job.kind)
            if merge is None or merge([job.body], job.content_type) is None:  # not mergeable: alone
                order.append(item)
                continue
            key = (job.kind, job.method, job.url, json.dumps(job.headers), job.content_type, job.caller)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(item)
        units: list[tuple[list[tuple[Job, str]], bytes | None]] = []
        for entry in order:
            if isinstance(entry[0], Job):
                units.append(([entry], entry[0].body))  # type: ignore[list-item]
                continue
            members = groups[entry]  # type: ignore[index]
            for i in range(0, len(members), self.max_batch):
                chunk = members[i:i + self.max_batch]
                body = None if len(chunk) == 1 else self._merge[chunk[0][0].kind](
                    [j.body for j, _ in chunk], chunk[0][0].content_type)
                if len(chunk) > 1 and body is not None:
                    units.append((chunk, body))
                else:
                    units.extend(([item], item[0].body) for item in chunk)
        return units

    def _deliver_all(self, claimed: list[tuple[Job, str]]) -> int:
        """Make the claimed jobs' requests (merged where allowed), then record every job's outcome in one
        transaction. Jobs whose lease could run out before their attempt ends (the batch took long) are
        handed back untouched."""
        started = time.monotonic()
        budget = self.lease_seconds - self.deliverer.connect_timeout - self.deliverer.read_timeout
        outcomes: list[Outcome] = []
        answers: dict[int, Answer] = {}
        for jobs, body in self._units(claimed):
            if outcomes and time.monotonic() - started > budget:
                outcomes += [(job, token, 0.0, None, 0.0, None) for job, token in jobs]  # released, not attempted
                continue
            outcomes += self._attempt(jobs, body, answers)
        self._record(outcomes)
        for job, _token, _at, result, _ms, _refused in outcomes:
            if isinstance(result, int) and job.id in answers:
                try:
                    self._answers[job.kind](job, answers[job.id])
                except Exception:  # the delivery stands; what the answer was for is lost (logged)
                    log.exception("outbox job %s (%s): its answer could not be handled", job.id, job.kind)
        return sum(1 for o in outcomes if o[3] is not None or o[5] is not None)

    def _attempt(self, jobs: list[tuple[Job, str]], body: bytes | None,
                 answers: dict[int, Answer] | None = None) -> list[Outcome]:
        """One request for ``jobs`` (all to one URL for one caller): each job's (job, token, at, result,
        duration_ms, refused reason); every job of a merged request shares its outcome."""
        first = jobs[0][0]
        at = self.clock.now()
        policy = self.policy_for(first.caller)
        try:
            policy.check(first.url)
        except HostUnresolvable as exc:
            return [(job, token, at, DeliveryError(exc.reason), 0.0, None) for job, token in jobs]
        except UrlNotAllowed as exc:
            return [(job, token, at, None, 0.0, exc.reason) for job, token in jobs]
        t0 = time.perf_counter()
        result: int | DeliveryError
        kept: list[Answer] | None = [] if first.kind in self._answers and len(jobs) == 1 else None
        try:
            result = self.deliverer.send(first.method, first.url, first.headers, body, first.content_type, policy,
                                         kept)
            if kept and answers is not None:
                answers[first.id] = kept[0]
        except DeliveryError as exc:
            result = exc
        except UrlNotAllowed as exc:  # the address actually connected to was refused
            return [(job, token, at, None, (time.perf_counter() - t0) * 1000, exc.reason) for job, token in jobs]
        duration = (time.perf_counter() - t0) * 1000
        return [(job, token, at, result, duration, None) for job, token in jobs]

    def _record(self, outcomes: list[Outcome]) -> None:
        now = self.clock.now()
        done: list[tuple[Job, str, int | None, str | None, int]] = []
        refused_jobs: list[tuple[Job, str, str]] = []
        released: list[tuple[Job, str]] = []
        finished: list[Finished] = []
        for job, token, at, result, duration_ms, refused in outcomes:
            if refused is not None:  # the URL is no longer allowed: dead at once, no request made
                refused_jobs.append((job, token, refused))
                done.append((job, "refused", None, refused, job.attempts))
                continue
            if result is None:  # not attempted: back to pending as it was
                released.append((job, token))
                continue
            attempts = job.attempts + 1
            if isinstance(result, int):
                state, status, error, next_at = "done", result, None, job.next_at
            else:
                status, error = result.status, result.reason
                delay = None if result.permanent else retry_delay(attempts, self.time_scale)
                state, next_at = ("dead", job.next_at) if delay is None else ("pending", at + delay)
            finished.append(Finished(job, token, at, state, attempts, next_at, status, error, duration_ms))
            done.append((job, state, status, error, attempts))
        for job_id in self.store.record(now, refused_jobs, released, finished):
            log.warning("outbox job %s: lease lost before the attempt was recorded", job_id)
        self._log(done)

    def _log(self, done: list[tuple[Job, str, int | None, str | None, int]]) -> None:
        """Count the outcomes and log them: one line per kind, state and result (a merged request's
        jobs share one line)."""
        lines: dict[tuple[str, str, int | None, str | None, int], list[int]] = {}
        for job, state, status, error, attempts in done:
            counter = {"done": "delivered", "pending": "retries", "dead": "dead", "refused": "dead"}[state]
            with self._lock:
                if state != "refused":
                    self._counters["attempts"] += 1
                self._counters[counter] += 1
            lines.setdefault((job.kind, state, status, error, attempts), []).append(job.id)
        for (kind, state, status, error, attempts), ids in lines.items():
            which = f"job {ids[0]}" if len(ids) == 1 else f"jobs {_id_ranges(ids)}"
            if state == "refused":
                log.warning("outbox %s (%s) refused by URL policy: %s", which, kind, error)
            elif state == "done":
                log.info("outbox %s (%s) delivered: HTTP %s", which, kind, status)
            else:
                log.warning("outbox %s (%s) attempt %d failed (%s): %s", which, kind, attempts, state, error)

    # -- workers -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads (daemon)."""
        if self._threads:
            return
        self._stop.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"outbox-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the workers after their current attempt; True if all stopped within ``timeout``."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        self._threads = alive
        return not alive

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers and close the session if the outbox made it."""
        self.stop(timeout)
        if self._own_session:
            self.session.close()

    def wake(self) -> None:
        """Make idle workers look at the database now (e.g. after a ManualClock jump)."""
        self._wake.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._run(max(CLAIM_BATCH, self.max_batch), stoppable=True):
                    continue
                wait = self._seconds_until_due()
            except Exception:  # keep the worker alive; the lease brings the job back
                log.exception("outbox worker error")
                wait = 1.0
            self.db.release()  # idle: its connection back to the pool
            self._wake.wait(wait)

    def _seconds_until_due(self) -> float:
        t = self.store.next_due()
        if t is None:
            return self.idle_wait
        return min(self.idle_wait, max(0.005, t - self.clock.now()))

    # -- inspection ----------------------------------------------------------------------------
    def job(self, job_id: int) -> Job | None:
        return self.store.job(job_id)

    def jobs(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs, newest first, optionally of one state."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        return self.store.jobs(state, limit, offset)

    def dead_letters(self, limit: int = 100) -> list[Job]:
        return self.jobs("dead", limit)

    def attempts(self, job_id: int) -> list[dict[str, Any]]:
        """The recorded attempts of a job, oldest first."""
        return self.store.attempts(job_id)

    def redrive(self, job_id: int) -> bool:
        """Dead → pending with attempts reset, due now; False if the job is not dead."""
        if self.store.redrive(job_id, self.clock.now()):
            self._wake.set()
            return True
        return False

    def depth(self) -> int:
        """Jobs not finished yet (pending + leased)."""
        return self.store.depth()

    def oldest_age(self) -> float | None:
        """Seconds since the oldest unfinished job was enqueued, or None."""
        t = self.store.oldest_created()
        return None if t is None else max(0.0, self.clock.now() - t)

    def stats(self) -> dict[str, int]:
        """This instance's counters (attempts, delivered, retries, dead) plus depth and dead letters."""
        with self._lock:
            out = dict(self._counters)
        out["depth"] = self.depth()
        out["dead_letters"] = self.store.dead()
        return out
