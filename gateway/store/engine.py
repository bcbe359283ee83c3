"""SQLite persistence: one connection per thread, explicit transactions, versioned migrations.

Durability policy: the database runs in WAL mode. With ``synchronous=FULL`` (the default) every
committed transaction is fsynced to the WAL before ``COMMIT`` returns, so an acknowledged write
(a stored report, an enqueued outbox job) survives a power loss. ``synchronous=NORMAL`` skips that
fsync: the database never corrupts, but the last transactions before a power loss (not a process
crash) may be lost; choose it only when throughput matters more than those last writes.

Everything SQLite-specific (PRAGMAs, ``BEGIN IMMEDIATE``, statement splitting) stays inside
:class:`Database`; the migration SQL keeps to types and statements PostgreSQL also accepts where
that is cheap, so a PostgreSQL backend with the same interface can follow.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .schema_inbound import INBOUND_V3
from .schema_pulls import V3_PULLS
from .schema_records import STORE_INDEXES_V6, STORE_V2
from .schema_tracking import CONVERSION_V4

Migration = tuple[int, str, str]

_OUTBOX_V1 = """
CREATE TABLE outbox_jobs (
    id INTEGER PRIMARY KEY,            -- PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY
    kind TEXT NOT NULL,
    caller TEXT,
    ref TEXT,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,             -- JSON object
    body BLOB,                         -- PostgreSQL: BYTEA
    content_type TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,             -- epoch seconds; PostgreSQL: DOUBLE PRECISION
    state TEXT NOT NULL,               -- pending | leased | done | dead
    lease_until REAL,
    lease_token TEXT,
    last_error TEXT,
    last_status INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, next_at);
CREATE INDEX outbox_jobs_ref ON outbox_jobs (kind, ref);
CREATE TABLE outbox_attempts (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES outbox_jobs (id),
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    http_status INTEGER,
    error TEXT,
    duration_ms REAL NOT NULL
);
CREATE INDEX outbox_attempts_job ON outbox_attempts (job_id);
"""

#: The schema history, applied in order at open. Append a new ``(version, name, sql)`` to add one;
#: never edit a migration that has shipped.
MIGRATIONS: list[Migration] = [
    (1, "outbox", _OUTBOX_V1),
    (2, "store", STORE_V2),
    (3, "inbound", INBOUND_V3),
    (4, "conversion", CONVERSION_V4),
    (5, "v3 pulls", V3_PULLS),
    (6, "message indexes", STORE_INDEXES_V6),
]

SYNCHRONOUS_MODES = ("FULL", "NORMAL")

P = TypeVar("P")  # what a group-commit caller hands over
R = TypeVar("R")  # what it gets back once committed


def split_statements(sql: str) -> list[str]:
    """Split a migration script into complete statements (no ``executescript``: it commits)."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip().strip(";").strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")
    return out


class Database:
    """A SQLite database file shared by threads (one connection each) and processes.

    ``transaction()`` opens ``BEGIN IMMEDIATE`` (the write lock is taken at once, so a
    read-then-write inside it is atomic); nested use joins the outer transaction.
    """

    def __init__(
        self,
        path: str,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._lock = threading.Lock()
        # One writer at a time inside this process: threads queue on a lock instead of SQLite's busy
        # handler, which sleeps with a growing back-off (up to 100 ms a try) and lets newcomers overtake a
        # waiting thread, so under load some requests starved for a second. Other processes (the CLI)
        # still meet busy_timeout.
        self._write_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._closed = False
        self.migrate(MIGRATIONS if migrations is None else migrations)

    # -- connections ---------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and configured) on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,  # only used by its thread, but close() may run elsewhere
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._local.conn = conn
        self._local.after_commit = []
        with self._lock:
            self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened (all threads)."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error); yields the connection.

        ``relaxed`` commits this one transaction with ``synchronous=NORMAL``: it survives a process
        crash, not a power cut. For records whose truth lives elsewhere too (a sync send the upstream
        already holds); a later FULL commit fsyncs it with everything before it."""
        conn = self.connection()
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        with self._write_lock, self._locked_transaction(conn, relaxed):
            yield conn
        callbacks, self._local.after_commit = self._local.after_commit, []
        for fn in callbacks:
            fn()

    @contextmanager
    def _locked_transaction(self, conn: sqlite3.Connection, relaxed: bool = False) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on ``conn``; the caller holds the in-process write lock.
        ``relaxed``: this one transaction commits with ``synchronous=NORMAL`` (see :meth:`transaction`)."""
        relax = relaxed and self.synchronous == "FULL"
        if relax:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._local.after_commit = []
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # COMMIT failed (disk full, I/O error): nothing of it is kept
                    conn.execute("ROLLBACK")
                self._local.after_commit = []
                raise
        finally:
            if relax:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold this process's write lock (no transaction): for tests and maintenance that must keep
        every writer of this process waiting."""
        with self._write_lock:
            yield

    def group_commit(self, write: Callable[[sqlite3.Connection, list[Any]], list[Any]],
                     wait_seconds: float | None = None, relaxed: bool = False) -> GroupCommit[Any, Any]:
        """A :class:`GroupCommit` on this database (``wait_seconds`` defaults to the busy timeout;
        ``relaxed`` as in :meth:`transaction`)."""
        return GroupCommit(self, write, self.busy_timeout_ms / 1000 if wait_seconds is None else wait_seconds,
                           relaxed)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this thread's open transaction commits (now, if none is open)."""
        conn = self.connection()
        if conn.in_transaction:
            self._local.after_commit.append(fn)
        else:
            fn()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement on this thread's connection (autocommit unless in a transaction)."""
        return self.connection().execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """All rows of a query."""
        return self.connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        """The first row of a query, or None."""
        return self.connection().execute(sql, params).fetchone()

    # -- schema --------------------------------------------------------------------------------
    def migrate(self, migrations: Sequence[Migration]) -> list[int]:
        """Apply the migrations not yet applied, each in its own transaction; return their versions."""
        versions = [v for v, _, _ in migrations]
        if versions != sorted(set(versions)):
            raise ValueError(f"migration versions must be unique and ascending: {versions}")
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        applied: list[int] = []
        for version, name, sql in migrations:
            with self.transaction() as conn:  # re-checked under the write lock: safe across processes
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if done:
                    continue
                for stmt in split_statements(sql):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
                applied.append(version)
        return applied

    def schema_version(self) -> int:
        """The highest applied migration version (0 for an empty database)."""
        row = self.query_one("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row["v"]) if row and row["v"] is not None else 0


class CommitTimeout(Exception):
    """A group-commit caller's rows were not taken into a transaction within its wait: nothing of them
    was written (they were withdrawn), so nothing may be acknowledged."""


class _Waiter(Generic[P, R]):
    __slots__ = ("payload", "done", "result", "error")

    def __init__(self, payload: P) -> None:
        self.payload = payload
        self.done = False  # set by the leader (holding the write lock) before it wakes the followers
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[P, R]):
    """Concurrent writers share one transaction and one fsync (leader/follower).

    :meth:`submit` queues a payload. If no group is being written, its caller becomes the *leader*: it
    takes the database's write lock, then every payload queued by then, writes them with
    ``write(conn, payloads)`` (one result per payload) in one ``BEGIN IMMEDIATE`` … ``COMMIT`` and wakes
    every follower at once; the others wait on a condition, not on the lock, so a committed group is
    released in one wake-up instead of a lock hand-off per caller (each hand-off needs the GIL: under load
    that convoy, not SQLite, set the pace). While one group commits the next gathers, so the fsync cost
    is shared and grows with load, not with requests.

    Nothing is acknowledged that is not durable: a caller returns only once the COMMIT that holds its
    payload returned. If that write or COMMIT fails, every caller of the group gets the error (the
    transaction rolled back: none of them was written). The wait is bounded: a caller still queued after
    ``wait_seconds`` withdraws its payload and gets :class:`CommitTimeout`; one already taken by a leader
    waits for that leader's outcome (bounded by SQLite's busy timeout)."""

    def __init__(self, db: Database, write: Callable[[sqlite3.Connection, list[P]], list[R]],
                 wait_seconds: float, relaxed: bool = False) -> None:
        self.db, self.write, self.wait_seconds = db, write, wait_seconds
        self.relaxed = relaxed  # see Database.transaction
        self._cv = threading.Condition(threading.Lock())
        self._pending: list[_Waiter[P, R]] = []
        self._leading = False  # a leader is taking the lock or writing a group
        self.groups = 0  # committed transactions and the payloads they held (for /metrics and tests)
        self.payloads = 0

    def pending(self) -> int:
        """Payloads queued and not yet taken by a leader."""
        with self._cv:
            return len(self._pending)

    def submit(self, payload: P) -> R:
        """Write ``payload`` in the next group; return its result once committed (see the class docstring)."""
        conn = self.db.connection()
        if conn.in_transaction:  # inside this thread's own transaction (it holds the lock): join it
            return self.write(conn, [payload])[0]
        me: _Waiter[P, R] = _Waiter(payload)
        deadline = time.monotonic() + self.wait_seconds
        with self._cv:
            self._pending.append(me)
            while not me.done and self._leading:
                left = deadline - time.monotonic()
                if left <= 0 and me in self._pending:  # never taken: withdraw it, nothing was written
                    self._pending.remove(me)
                    raise CommitTimeout(f"not committed within {self.wait_seconds:g} s")
                self._cv.wait(left if left > 0 else None)  # taken: its leader's COMMIT decides
            if not me.done:
                self._leading = True
        if not me.done:
            self._lead(me, deadline)
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]

    def _lead(self, me: _Waiter[P, R], deadline: float) -> None:
        lock = self.db._write_lock
        try:
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                with self._cv:
                    if me in self._pending:
                        self._pending.remove(me)
                        me.error, me.done = CommitTimeout(f"not committed within {self.wait_seconds:g} s"), True
                return
            try:
                self._write_group()
            finally:
                lock.release()
        finally:
            with self._cv:
                self._leading = False
                self._cv.notify_all()

    def _write_group(self) -> None:
        with self._cv:
            group, self._pending = self._pending, []
        conn = self.db.connection()
        try:
            with self.db._locked_transaction(conn, self.relaxed):
                results = self.write(conn, [w.payload for w in group])
        except BaseException as exc:  # rolled back: every caller of the group hears it
            for w in group:
                w.error, w.done = exc, True
            return
        self.groups += 1
        self.payloads += len(group)
        for w, result in zip(group, results, strict=True):
            w.result, w.done = result, True
