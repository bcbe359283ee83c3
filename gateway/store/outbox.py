"""The outbox's rows: jobs (``outbox_jobs``) and their attempts (``outbox_attempts``), as :class:`Job`.

Delivery, retry timing and merging live in gateway/delivery/outbox.py; this module only stores and leases.
A *due* job is pending with ``next_at`` passed, or leased with its lease run out (a crashed worker).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update

from ..redact import redact_url
from .engine import Connection, Database
from .notify import OUTBOX, notify
from .schema import outbox_attempts as A
from .schema import outbox_jobs as J

_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
_OPEN = J.c.state.in_(("pending", "leased"))


@dataclass
class Job:
    """One outbox job as stored."""

    id: int
    kind: str
    caller: str | None
    ref: str | None
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None
    attempts: int = 0
    next_at: float = 0.0
    state: str = "pending"
    last_error: str | None = None
    last_status: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        body = row["body"]
        return cls(
            id=int(row["id"]), kind=row["kind"], caller=row["caller"], ref=row["ref"], method=row["method"],
            url=row["url"], headers=json.loads(row["headers"] or "{}"),
            body=bytes(body) if body is not None else None, content_type=row["content_type"],
            attempts=int(row["attempts"]), next_at=float(row["next_at"]), state=row["state"],
            last_error=row["last_error"], last_status=row["last_status"], created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )

    def group_key(self) -> tuple[Any, ...]:
        """What jobs must share to go out as one merged request."""
        return self.kind, self.method, self.url, headers_json(self.headers), self.content_type, self.caller

    def public(self) -> dict[str, Any]:
        """A view safe to show (URL redacted, secret headers masked, body omitted)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "caller": self.caller,
            "ref": self.ref,
            "method": self.method,
            "url": redact_url(self.url),
            "headers": {
                k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()
            },
            "content_type": self.content_type,
            "body_bytes": len(self.body) if self.body is not None else 0,
            "attempts": self.attempts,
            "next_at": self.next_at,
            "state": self.state,
            "last_error": self.last_error,
            "last_status": self.last_status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def headers_json(headers: Mapping[str, str] | None) -> str:
    """How a job's headers are stored (and compared when jobs are merged)."""
    return json.dumps(dict(headers)) if headers else "{}"


def _due(now: Any) -> Any:
    return or_(and_(J.c.state == "pending", J.c.next_at <= now), and_(J.c.state == "leased", J.c.lease_until <= now))


_NOW = bindparam("now")
_IDS = bindparam("ids", expanding=True)
_INSERT = insert(J)
_DUE = select(J).where(_due(_NOW)).order_by(J.c.next_at, J.c.id).limit(bindparam("n"))
_DUE_LIKE = (select(J).where(_due(_NOW), J.c.kind == bindparam("k"), J.c.method == bindparam("m"),
                             J.c.url == bindparam("u"), J.c.headers == bindparam("h"),
                             J.c.content_type.is_not_distinct_from(bindparam("ct")),
                             J.c.caller.is_not_distinct_from(bindparam("c")))
             .order_by(J.c.next_at, J.c.id).limit(bindparam("n")))
# PostgreSQL (several processes, no process write lock): jobs another transaction is leasing are skipped
_LOCKED = {id(_DUE): _DUE.with_for_update(skip_locked=True), id(_DUE_LIKE): _DUE_LIKE.with_for_update(skip_locked=True)}


def _claim(conn: Connection, stmt: Any) -> Any:
    """``stmt`` as this dialect claims with it (``FOR UPDATE SKIP LOCKED`` but on SQLite)."""
    return stmt if conn.dialect.name == "sqlite" else _LOCKED[id(stmt)]


_LEASE = (update(J).where(J.c.id.in_(_IDS), _due(_NOW))
          .values(state="leased", lease_until=bindparam("until"), lease_token=bindparam("token"), updated_at=_NOW))
_MINE = select(J.c.id).where(J.c.lease_token == bindparam("token"))
_MINE_ONLY = and_(J.c.id == bindparam("jid"), J.c.lease_token == bindparam("token"))
_REFUSED = update(J).where(_MINE_ONLY).values(state="dead", last_error=bindparam("error"), last_status=None,
                                              lease_until=None, lease_token=None, updated_at=_NOW)
_RELEASED = update(J).where(_MINE_ONLY).values(state="pending", lease_until=None, lease_token=None, updated_at=_NOW)
_ATTEMPT = insert(A)
_FINISHED = update(J).where(_MINE_ONLY).values(
    state=bindparam("st"), attempts=bindparam("n"), next_at=bindparam("at"), last_status=bindparam("status"),
    last_error=bindparam("error"), lease_until=None, lease_token=None, updated_at=_NOW)
_NEXT_DUE = select(func.min(case((J.c.state == "pending", J.c.next_at), else_=J.c.lease_until))).where(_OPEN)
_DEPTH = select(func.count()).select_from(J).where(_OPEN)
_OLDEST = select(func.min(J.c.created_at)).where(_OPEN)
_DEAD = select(func.count()).select_from(J).where(J.c.state == "dead")
_REDRIVE = (update(J).where(J.c.id == bindparam("jid"), J.c.state == "dead")
            .values(state="pending", attempts=0, next_at=_NOW, updated_at=_NOW))


@dataclass
class Finished:
    """An attempted job's outcome to record: its new state, attempt count, next try and last result."""

    job: Job
    token: str
    at: float
    state: str
    attempts: int
    next_at: float
    status: int | None
    error: str | None
    duration_ms: float


class OutboxStore:
    """Storage of the outbox: enqueue, lease, record outcomes, inspect."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- enqueue -------------------------------------------------------------------------------
    @staticmethod
    def row(kind: str, caller: str | None, ref: str | None, method: str, url: str, headers: str,
             body: bytes | None, content_type: str | None, now: float) -> dict[str, Any]:
        return {"kind": kind, "caller": caller, "ref": ref, "method": method, "url": url, "headers": headers,
                "body": body, "content_type": content_type, "attempts": 0, "next_at": now, "state": "pending",
                "created_at": now, "updated_at": now}  # a job due now

    def add(self, conn: Connection, row: dict[str, Any]) -> int:
        """Insert one job (a :meth:`row`); return its id."""
        notify(conn, OUTBOX)  # other processes' idle outbox workers wake once this commits
        return int(conn.execute(_INSERT, row).inserted_primary_key[0])  # type: ignore[index]

    def add_many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert jobs (:meth:`row` each) with one ``executemany``."""
        conn.execute(_INSERT, list(rows))
        notify(conn, OUTBOX)

    # -- leases --------------------------------------------------------------------------------
    @staticmethod
    def due(conn: Connection, now: float, limit: int) -> list[Job]:
        """The most overdue jobs, up to ``limit``."""
        return [Job.from_row(r) for r in conn.execute(_claim(conn, _DUE), {"now": now, "n": limit}).mappings()]

    @staticmethod
    def due_like(conn: Connection, job: Job, now: float, limit: int) -> list[Job]:
        """Due jobs that could be merged with ``job`` (same :meth:`Job.group_key`), ``job`` itself included."""
        k, m, u, h, ct, c = job.group_key()
        params = {"now": now, "k": k, "m": m, "u": u, "h": h, "ct": ct, "c": c, "n": limit}
        return [Job.from_row(r) for r in conn.execute(_claim(conn, _DUE_LIKE), params).mappings()]

    @staticmethod
    def lease(conn: Connection, ids: list[int], now: float, until: float, token: str) -> set[int]:
        """Lease the due jobs among ``ids`` with ``token``; return the ids this lease holds."""
        n = conn.execute(_LEASE, {"ids": ids, "now": now, "until": until, "token": token}).rowcount
        if n == len(ids):
            return set(ids)
        return set(conn.execute(_MINE, {"token": token}).scalars())  # SQLite: cannot happen under the write lock

    # -- outcomes ------------------------------------------------------------------------------
    def record(self, now: float, refused: Sequence[tuple[Job, str, str]], released: Sequence[tuple[Job, str]],
               finished: Sequence[Finished]) -> list[int]:
        """In one transaction: ``refused`` jobs (job, token, reason) dead without a request, ``released`` ones
        back to pending untouched, ``finished`` ones with their attempt recorded. Returns the ids of finished
        jobs whose lease was lost before the outcome was recorded (nothing of them changed)."""
        lost: list[int] = []
        with self.db.transaction() as conn:
            if refused:
                conn.execute(_REFUSED, [{"jid": j.id, "token": t, "error": f"not sent: {why}", "now": now}
                                        for j, t, why in refused])
            if released:
                conn.execute(_RELEASED, [{"jid": j.id, "token": t, "now": now} for j, t in released])
            for f in finished:
                conn.execute(_ATTEMPT, {"job_id": f.job.id, "attempt": f.attempts, "at": f.at,
                                        "http_status": f.status, "error": f.error,
                                        "duration_ms": round(f.duration_ms, 3)})
                n = conn.execute(_FINISHED, {"jid": f.job.id, "token": f.token, "st": f.state, "n": f.attempts,
                                             "at": f.next_at, "status": f.status, "error": f.error,
                                             "now": now}).rowcount
                if n != 1:
                    lost.append(f.job.id)
        return lost

    # -- inspection ----------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When the next job is due (or its lease runs out); None: nothing open."""
        t = self.db.connection().execute(_NEXT_DUE).scalar()
        return None if t is None else float(t)

    def job(self, job_id: int) -> Job | None:
        row = self.db.connection().execute(select(J).where(J.c.id == job_id)).mappings().first()
        return Job.from_row(row) if row else None

    def jobs(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs, newest first, optionally of one state."""
        q = select(J)
        if state:
            q = q.where(J.c.state == state)
        q = q.order_by(J.c.id.desc()).limit(limit).offset(offset)
        return [Job.from_row(r) for r in self.db.connection().execute(q).mappings()]

    def attempts(self, job_id: int) -> list[dict[str, Any]]:
        """The recorded attempts of a job, oldest first."""
        q = (select(A.c.attempt, A.c.at, A.c.http_status, A.c.error, A.c.duration_ms)
             .where(A.c.job_id == job_id).order_by(A.c.attempt, A.c.id))
        return [dict(r) for r in self.db.connection().execute(q).mappings()]

    def redrive(self, job_id: int, now: float) -> bool:
        """Dead → pending with attempts reset, due ``now``; False if the job is not dead."""
        with self.db.transaction() as conn:
            if conn.execute(_REDRIVE, {"jid": job_id, "now": now}).rowcount != 1:
                return False
            notify(conn, OUTBOX)
            return True

    def depth(self) -> int:
        """Jobs not finished yet (pending + leased)."""
        return int(self.db.connection().execute(_DEPTH).scalar_one())

    def oldest_created(self) -> float | None:
        """When the oldest unfinished job was enqueued."""
        t = self.db.connection().execute(_OLDEST).scalar()
        return None if t is None else float(t)

    def dead(self) -> int:
        """Dead letters."""
        return int(self.db.connection().execute(_DEAD).scalar_one())
