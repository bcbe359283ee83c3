"""The database engine: a SQLAlchemy ``Engine``, one connection per thread, explicit transactions.

Durability policy (SQLite): the database runs in WAL mode. With ``synchronous=FULL`` (the default) every
committed transaction is fsynced to the WAL before ``COMMIT`` returns, so an acknowledged write (a stored
report, an enqueued outbox job) survives a power loss. ``synchronous=NORMAL`` skips that fsync: the database
never corrupts, but the last transactions before a power loss (not a process crash) may be lost; choose it
only when throughput matters more than those last writes.

Transactions are the engine's own: the driver runs in autocommit (SQLAlchemy's ``AUTOCOMMIT`` isolation, so
SQLAlchemy never begins or commits on its own) and :meth:`Database.transaction` emits ``BEGIN IMMEDIATE`` …
``COMMIT`` itself. Everything SQLite-specific (PRAGMAs, ``BEGIN IMMEDIATE``, the in-process write lock)
stays in the SQLite branches of :class:`Database`; statements elsewhere are SQLAlchemy Core, so a
PostgreSQL URL can follow with the same repositories.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from .notify import Listener

SYNCHRONOUS_MODES = ("FULL", "NORMAL")

#: What a failed statement or commit raises: SQLAlchemy's wrapped errors, or the driver's own (from
#: :class:`Prepared` statements and the engine's own BEGIN/COMMIT on the driver connection).
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error)

#: The store cannot be reached now (a lost or refused server connection, every pooled connection taken
#: for longer than the busy timeout): the request is answered 503, retry later, not a 500.
UNREACHABLE: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.TimeoutError)

P = TypeVar("P")  # what a group-commit caller hands over
R = TypeVar("R")  # what it gets back once committed


class Connection(sa.Connection):
    """A SQLAlchemy ``Connection`` that also holds the driver's connection (for :class:`Prepared`)."""

    raw: Any = None  # the driver's connection (set by Database.connection)


class Prepared:
    """A Core statement compiled once per dialect (and per IN-list length) to the driver's own SQL and run on
    the driver's cursor: for the few hottest statements only, where SQLAlchemy's per-execution parameter work
    (expanding IN lists, a dict per row) cost more than SQLite itself. The statement stays Core, so each
    dialect gets its own SQL; parameters must need no type processing (numbers, strings, bytes, None). On a
    driver whose paramstyle is not ``qmark`` (not SQLite) it runs through SQLAlchemy as usual.

    ``expanding`` names the statement's one expanding ``bindparam`` (an ``IN`` list), if any; ``keys`` the
    columns an ``insert()`` sets (its parameters, in that order)."""

    def __init__(self, stmt: Any, expanding: str | None = None, keys: Sequence[str] | None = None) -> None:
        self.stmt, self.expanding, self.keys = stmt, expanding, list(keys) if keys else None
        self._getter = (operator.itemgetter(*self.keys) if len(self.keys) > 1 else lambda r: (r[self.keys[0]],)
                        ) if self.keys else None
        self._cache: dict[tuple[str, int], tuple[str, list[str], dict[str, Any]]] = {}

    def _compiled(self, dialect: Any, n: int) -> tuple[str, list[str], dict[str, Any]]:
        key = (dialect.name, n)
        hit = self._cache.get(key)
        if hit is None:
            comp = self.stmt.compile(dialect=dialect, column_keys=self.keys)
            sql, names = comp.string, list(comp.positiontup or [])
            if self.expanding:  # SQLAlchemy leaves the IN list to execution time: render it for n values
                sql = sql.replace(f"__[POSTCOMPILE_{self.expanding}]", ", ".join("?" * n))
            if self.keys and names != self.keys:
                raise ValueError(f"an insert of {self.keys} compiled to parameters {names}")
            hit = self._cache[key] = (sql, names, comp.params)  # params: the values built into the statement
        return hit

    def _args(self, names: list[str], fixed: dict[str, Any], params: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for k in names:
            if k == self.expanding:
                out += params[k]
            else:
                out.append(params[k] if k in params else fixed[k])
        return out

    def run(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Execute once; returns the driver's cursor (``fetchall()``, ``rowcount``)."""
        params = params or {}
        if conn.dialect.paramstyle != "qmark":  # other drivers: SQLAlchemy's own execution (same results API)
            return conn.execute(self.stmt, dict(params))
        n = len(params[self.expanding]) if self.expanding else 0
        sql, names, fixed = self._compiled(conn.dialect, n)
        return _raw(conn).execute(sql, self._args(names, fixed, params))  # the driver's own cursor

    def many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]) -> Any:
        """``executemany`` (no expanding parameter): one row of parameters per mapping, or per tuple in the
        order of ``keys`` (an insert's hottest form: no dict per row)."""
        dialect = conn.dialect
        tuples = bool(rows) and type(rows[0]) is tuple
        if dialect.paramstyle != "qmark":  # other drivers: SQLAlchemy's own execution
            if tuples:
                rows = [dict(zip(self.keys or (), r, strict=True)) for r in rows]  # type: ignore[arg-type]
            return conn.execute(self.stmt, [dict(r) for r in rows])  # type: ignore[arg-type]
        sql, names, fixed = self._compiled(dialect, 0)
        cur = _raw(conn)  # sqlite3.Connection.executemany: a cursor of its own
        if tuples:  # in ``keys`` order, which is the compiled order (checked when compiled)
            return cur.executemany(sql, rows)
        if self._getter is not None:
            return cur.executemany(sql, [self._getter(r) for r in rows])
        return cur.executemany(sql, [self._args(names, fixed, r) for r in rows])


_RESERVED: Any = object()  # a pool place being opened (see Database._take)


def _raw(conn: sa.Connection) -> Any:
    """The driver's connection under ``conn`` (kept on the engine's own connections: no property chain)."""
    raw = getattr(conn, "raw", None)
    return raw if raw is not None else conn.connection.driver_connection


def url_of(path: str) -> str:
    """A SQLAlchemy URL for ``path`` (a file name means SQLite; ``postgresql://`` means psycopg 3)."""
    if "://" not in path:
        return f"sqlite:///{path}"
    for plain in ("postgresql://", "postgres://"):
        if path.startswith(plain):
            return "postgresql+psycopg://" + path[len(plain):]
    return path


def shown(url: str) -> str:
    """``url`` safe for logs and messages: a password in it is masked (a file path is shown as is)."""
    if "://" not in url:
        return url
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("://", 1)[0] + "://…"


def _close_all(conns: list[Connection], engine: sa.Engine) -> None:
    """Close ``conns`` (emptying the list) and dispose of ``engine``."""
    while conns:
        conn = conns.pop()
        try:
            if isinstance(conn, sa.Connection):  # not a pool place still being opened
                conn.close()
        except DB_ERRORS:
            pass
    engine.dispose()


def _sqlite_setup(busy_timeout_ms: int, synchronous: str) -> Callable[[sqlite3.Connection, Any], None]:
    """The engine's ``connect`` hook for SQLite: driver autocommit and the pragmas. (A closure, not a bound
    method: the engine's listener must not keep the Database, and so its connections, alive.)"""

    def setup(dbapi: sqlite3.Connection, _record: Any) -> None:
        dbapi.isolation_level = None  # autocommit; transactions are explicit
        dbapi.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        dbapi.execute("PRAGMA journal_mode = WAL")
        dbapi.execute(f"PRAGMA synchronous = {synchronous}")
        dbapi.execute("PRAGMA foreign_keys = ON")

    return setup


class Database:
    """A database shared by threads (one connection each) and processes.

    ``transaction()`` opens ``BEGIN IMMEDIATE`` on SQLite (the write lock is taken at once, so a
    read-then-write inside it is atomic); nested use joins the outer transaction. Opening the database
    brings its schema to the newest Alembic revision (gateway/store/migrations)."""

    def __init__(self, path: str, synchronous: str = "FULL", busy_timeout_ms: int = 10_000,
                 migrate: bool = True, pool_size: int = 0) -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self.url = url_of(str(path))
        self.path = shown(str(path))  # for messages: a PostgreSQL URL's password masked
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.sqlite = self.url.startswith("sqlite")
        self.postgresql = self.url.startswith("postgresql")
        kw: dict[str, Any] = {}
        if self.sqlite:
            kw["connect_args"] = {"timeout": self.busy_timeout_ms / 1000, "check_same_thread": False}
        elif self.postgresql:  # statements wait at most busy_timeout for a lock (SQLite's busy_timeout)
            kw["connect_args"] = {"connect_timeout": 10,
                                  "options": f"-c lock_timeout={self.busy_timeout_ms} -c statement_timeout=0"}
        # SQLite (and PostgreSQL without pool_size): each thread keeps its own connection for its life (see
        # connection()). PostgreSQL with pool_size: a pool of at most pool_size server connections, kept open
        # and shared by the threads: a thread holds one from its first store use until release() (the end
        # of its request or of its worker's round) and waits up to pool_timeout for one when all are taken
        # (docs/deployment.md, "Sizing"). The pool is this class's own (a free list under a condition), not
        # SQLAlchemy's: a hand-over costs a list operation, not a Connection built and torn down.
        self.pooled = self.postgresql and pool_size > 0
        self.pool_size = pool_size if self.pooled else 0
        self.pool_timeout = self.busy_timeout_ms / 1000
        self._free: list[Connection] = []
        self._free_cv = threading.Condition(threading.Lock())
        self.engine = sa.create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", **kw)
        if self.sqlite:
            event.listen(self.engine, "connect", _sqlite_setup(self.busy_timeout_ms, self.synchronous))
        self._local = threading.local()
        self._lock = threading.Lock()
        # One writer at a time inside this process: threads queue on a lock instead of SQLite's busy
        # handler, which sleeps with a growing back-off (up to 100 ms a try) and lets newcomers overtake a
        # waiting thread, so under load some requests starved for a second. Other processes (the CLI)
        # still meet busy_timeout.
        self._write_lock = threading.Lock()
        self._conns: list[Connection] = []
        self._closed = False
        self.listener: Listener | None = None  # PostgreSQL: this process's LISTEN connection (see listen())
        # Connections sit in reference cycles inside SQLAlchemy's pool: close them when this object goes,
        # not at some later garbage collection (a process that opens many databases would run out of files).
        weakref.finalize(self, _close_all, self._conns, self.engine)
        if migrate:
            from .migrations import upgrade
            upgrade(self)

    # -- connections ---------------------------------------------------------------------------
    def connection(self) -> Connection:
        """This thread's connection: opened (and configured) on first use, or taken from the pool."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        conn = self._take() if self.pooled else None
        if conn is None:
            conn = self._open()
        self._local.conn = conn
        self._local.raw = conn.raw
        self._local.tx = False
        self._local.after_commit = []
        return conn

    def _open(self) -> Connection:
        """A new connection, counted among this object's; pooled, in the place :meth:`_take` reserved for it."""
        try:
            conn = Connection(self.engine)
            conn.raw = conn.connection.driver_connection
        except BaseException:
            if self.pooled:
                with self._lock:
                    self._conns.remove(_RESERVED)
            raise
        with self._lock:  # the reserved place becomes the connection in one step: the pool never counts both
            if self.pooled:
                self._conns.remove(_RESERVED)
            self._conns.append(conn)
        return conn

    def _take(self) -> Connection | None:
        """A free pooled connection, or None when this thread may open a new one (the pool is not full: a place
        is reserved for it, see :meth:`_open`); waits up to ``pool_timeout`` while every connection is taken,
        then raises ``sa.exc.TimeoutError``."""
        deadline = None
        with self._free_cv:
            while not self._free:
                with self._lock:
                    if len(self._conns) < self.pool_size:
                        self._conns.append(_RESERVED)  # a place, replaced once its connection is open
                        return None
                if deadline is None:
                    deadline = time.monotonic() + self.pool_timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise sa.exc.TimeoutError(f"all {self.pool_size} pooled connections to {self.path} stayed "
                                              f"taken for {self.pool_timeout:g} s")
                self._free_cv.wait(left)
            return self._free.pop()

    def pool_counts(self) -> tuple[int, int]:
        """(connections open, of which free) of the pool; (0, 0) without one."""
        if not self.pooled:
            return 0, 0
        with self._free_cv, self._lock:
            return sum(1 for c in self._conns if c is not _RESERVED), len(self._free)

    def release(self) -> None:
        """Give this thread's connection back to the pool (pooled PostgreSQL only; nothing inside a
        transaction or without a pool): called at the end of each request and each worker round."""
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or not self.pooled or local.tx:
            return
        local.conn = local.raw = None
        with self._free_cv:
            self._free.append(conn)
            self._free_cv.notify()

    def in_transaction(self) -> bool:
        """Whether this thread has a transaction open."""
        return getattr(self._local, "tx", False)

    def listen(self, channel: str, fn: Callable[[], None]) -> None:
        """PostgreSQL: call ``fn`` whenever another transaction (of any process) notifies ``channel``
        (gateway/store/notify.py); one listening connection per Database. Nothing on SQLite."""
        if not self.postgresql:
            return
        with self._lock:
            if self.listener is None:
                self.listener = Listener(self.url, {"connect_timeout": 10})
        self.listener.subscribe(channel, fn)

    def unlisten(self) -> None:
        """Stop listening (its connection closes); :meth:`listen` starts again."""
        with self._lock:
            listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()

    def close(self) -> None:
        """Close every connection this object opened (all threads) and the engine."""
        self.unlisten()
        with self._lock:
            self._closed = True
        _close_all(self._conns, self.engine)
        with self._free_cv:
            self._free.clear()
        self._local = threading.local()

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error); yields the connection.

        ``relaxed`` commits this one transaction with ``synchronous=NORMAL``: it survives a process
        crash, not a power cut. For records whose truth lives elsewhere too (a sync send the upstream
        already holds); a later FULL commit fsyncs it with everything before it."""
        conn = self.connection()
        if self._local.tx:  # nested: join the outer transaction
            yield conn
            return
        with self._writer(), self._locked_transaction(conn, relaxed):
            yield conn
        callbacks, self._local.after_commit = self._local.after_commit, []
        for fn in callbacks:
            fn()

    def _writer(self) -> Any:
        """The in-process write lock (SQLite: one writer per file), or nothing."""
        return self._write_lock if self.sqlite else nullcontext()

    @contextmanager
    def _locked_transaction(self, conn: Connection, relaxed: bool = False) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on ``conn``; the caller holds the in-process write lock.
        ``relaxed``: this one transaction commits with ``synchronous=NORMAL`` (see :meth:`transaction`)."""
        local = self._local
        if not self.sqlite:  # PostgreSQL and others: a plain transaction (the next issue)
            raw_exec: Callable[[str], Any] = conn.exec_driver_sql
            begin, relax = "BEGIN", False
        else:
            raw_exec = local.raw.execute
            begin, relax = "BEGIN IMMEDIATE", relaxed and self.synchronous == "FULL"
        if relax:
            raw_exec("PRAGMA synchronous = NORMAL")
        try:
            raw_exec(begin)
            local.tx = True
            try:
                yield
            except BaseException:
                self._end(raw_exec, "ROLLBACK")
                raise
            try:
                raw_exec("COMMIT")
                local.tx = False
            except BaseException:  # COMMIT failed (disk full, I/O error): nothing of it is kept
                self._end(raw_exec, "ROLLBACK")
                raise
        finally:
            if relax:
                raw_exec(f"PRAGMA synchronous = {self.synchronous}")

    def _end(self, raw_exec: Callable[[str], Any], sql: str) -> None:
        local = self._local
        local.tx = False
        local.after_commit = []
        if not self.sqlite or local.raw.in_transaction:
            raw_exec(sql)

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold this process's write lock (no transaction): for tests and maintenance that must keep
        every writer of this process waiting."""
        with self._write_lock:
            yield

    def group_commit(self, write: Callable[[Connection, list[Any]], list[Any]],
                     wait_seconds: float | None = None, relaxed: bool = False) -> GroupCommit[Any, Any]:
        """A :class:`GroupCommit` on this database (``wait_seconds`` defaults to the busy timeout;
        ``relaxed`` as in :meth:`transaction`)."""
        return GroupCommit(self, write, self.busy_timeout_ms / 1000 if wait_seconds is None else wait_seconds,
                           relaxed)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this thread's open transaction commits (now, if none is open)."""
        if self.in_transaction():
            self._local.after_commit.append(fn)
        else:
            fn()

    # -- schema --------------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The Alembic revision the database is at (None: not under Alembic)."""
        from .migrations import current
        return current(self)


class CommitTimeout(Exception):
    """A group-commit caller's rows were not taken into a transaction within its wait: nothing of them
    was written (they were withdrawn), so nothing may be acknowledged."""


class _Waiter(Generic[P, R]):
    __slots__ = ("payload", "done", "lead", "result", "error", "_wake")

    def __init__(self, payload: P) -> None:
        self.payload = payload
        self.done = False  # set by the leader (holding the write lock) before it wakes the follower
        self.lead = False  # handed the lead by the previous leader (it had no group of its own)
        self.result: R | None = None
        self.error: BaseException | None = None
        self._wake = threading.Lock()
        self._wake.acquire()  # released once, by whoever finishes it or hands it the lead

    def sleep(self, timeout: float | None) -> bool:
        return self._wake.acquire(timeout=-1 if timeout is None else max(0.0, timeout))

    def wake(self) -> None:
        self._wake.release()


class GroupCommit(Generic[P, R]):
    """Concurrent writers share one transaction and one fsync (leader/follower).

    :meth:`submit` queues a payload. If no group is being written, its caller becomes the *leader*: it
    takes the database's write lock, then every payload queued by then, writes them with
    ``write(conn, payloads)`` (one result per payload) in one ``BEGIN IMMEDIATE`` … ``COMMIT`` and wakes
    each follower of its group by itself, then hands the lead to the first payload queued meanwhile. Each
    waiting thread is woken exactly once (no thundering herd of followers re-checking a shared condition:
    under load each such wake-up is a context switch and a turn at the GIL, and those, not SQLite, set the
    pace). While one group commits the next gathers, so the fsync cost is shared and grows with load, not
    with requests.

    Nothing is acknowledged that is not durable: a caller returns only once the COMMIT that holds its
    payload returned. If that write or COMMIT fails (the transaction rolled back), each payload of the
    group is written again in a transaction of its own, so one caller's bad row fails only that caller. The
    wait is bounded: a caller still queued after ``wait_seconds`` withdraws its payload and gets
    :class:`CommitTimeout`; one already taken by a leader waits for that leader's outcome (bounded by
    SQLite's busy timeout)."""

    def __init__(self, db: Database, write: Callable[[Connection, list[P]], list[R]],
                 wait_seconds: float, relaxed: bool = False) -> None:
        self.db, self.write, self.wait_seconds = db, write, wait_seconds
        self.relaxed = relaxed  # see Database.transaction
        self._mu = threading.Lock()
        self._pending: list[_Waiter[P, R]] = []
        self._leading = False  # a leader is taking the lock or writing a group
        self.groups = 0  # committed transactions and the payloads they held (for /metrics and tests)
        self.payloads = 0

    def pending(self) -> int:
        """Payloads queued and not yet taken by a leader."""
        with self._mu:
            return len(self._pending)

    def submit(self, payload: P) -> R:
        """Write ``payload`` in the next group; return its result once committed (see the class docstring)."""
        if self.db.in_transaction():  # inside this thread's own transaction (it holds the lock): join it
            return self.write(self.db.connection(), [payload])[0]
        # a pooled connection is not held while waiting for a leader (which may need it): the leader takes one
        # for its group and gives it back after its COMMIT
        self.db.release()
        me: _Waiter[P, R] = _Waiter(payload)
        deadline = time.monotonic() + self.wait_seconds
        with self._mu:
            self._pending.append(me)
            me.lead = not self._leading
            self._leading = True
        if not me.lead and not me.sleep(deadline - time.monotonic()):
            with self._mu:  # timed out: withdraw if no leader took it; else its leader's COMMIT decides
                if not me.done and not me.lead and me in self._pending:
                    self._pending.remove(me)
                    raise CommitTimeout(f"not committed within {self.wait_seconds:g} s")
                woken = me.done or me.lead  # woken meanwhile: its lock was released
            if not woken:
                me.sleep(None)
        if not me.done:
            self._lead(me, deadline)
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]

    def _lead(self, me: _Waiter[P, R], deadline: float) -> None:
        """Take the write lock, write every queued payload as one group, wake each of its waiters, hand the lead
        on. Whatever escapes (no connection: a PostgreSQL pool or server, a closed database; an interrupt), every
        waiter of the group and ``me`` end ``done`` with that error, and the lead passes on or ends: nobody
        sleeps for a wake-up that never comes, and nothing unwritten is acknowledged."""
        lock = self.db._write_lock
        group: list[_Waiter[P, R]] = []
        try:
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                me.error = CommitTimeout(f"not committed within {self.wait_seconds:g} s")
                return
            try:
                with self._mu:
                    group, self._pending = self._pending, []
                self._write_group(group)
            finally:
                lock.release()
                self.db.release()
        except BaseException as exc:
            for w in group:
                if not w.done:
                    w.error = exc
            if me.error is None and not me.done:
                me.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._mu:
                if me in self._pending:  # never taken into a group (timed out, or interrupted): withdrawn
                    self._pending.remove(me)
                for w in group:
                    w.done = True
                    if w is not me:
                        w.wake()
                me.done = True
                if self._pending:  # queued while this group was written: the first of them leads the next
                    nxt = self._pending[0]
                    nxt.lead = True
                    nxt.wake()
                else:
                    self._leading = False

    def _write_group(self, group: list[_Waiter[P, R]]) -> None:
        """Write ``group``'s payloads in one transaction; each waiter gets its result or its error."""
        conn = self.db.connection()
        try:
            with self.db._locked_transaction(conn, self.relaxed):
                results = self.write(conn, [w.payload for w in group])
        except Exception as exc:  # rolled back: nothing of the group was written
            if len(group) == 1:
                group[0].error = exc
                return
            self._write_alone(conn, group)  # isolate: one payload's bad row must not fail its neighbours
            return
        self.groups += 1
        self.payloads += len(group)
        for w, result in zip(group, results, strict=True):
            w.result = result

    def _write_alone(self, conn: Connection, group: list[_Waiter[P, R]]) -> None:
        """After a group failed: each payload in a transaction of its own (still under the write lock), so
        only the payloads that fail by themselves (an unencodable string, a constraint, a full disk) hear
        an error. Rare, so the cost (one commit per payload) does not matter."""
        for w in group:
            try:
                with self.db._locked_transaction(conn, self.relaxed):
                    w.result = self.write(conn, [w.payload])[0]
                self.groups += 1
                self.payloads += 1
            except Exception as exc:
                w.error = exc
            finally:
                w.done = True
