"""Group commit when its leader fails outside the write itself: every waiter hears an error, none is left asleep,
nothing unwritten is acknowledged, and the next submit leads a group of its own."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.store.engine import CommitTimeout, Database, GroupCommit
from tests.helpers import wait_for


def _db(tmp_path: Path) -> Database:
    db = Database(str(tmp_path / "g.db"), migrate=False)
    with db.transaction() as c:
        c.exec_driver_sql("CREATE TABLE t (v TEXT)")
    return db


def _write(conn: Any, payloads: list[str]) -> list[str]:
    for p in payloads:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (p,))
    return list(payloads)


def _rows(db: Database) -> list[str]:
    with db.transaction() as c:
        return [r[0] for r in c.exec_driver_sql("SELECT v FROM t")]


def test_no_connection_for_the_group_fails_every_waiter_and_wakes_them(tmp_path):
    # the leader's connection fails (a PostgreSQL pool that stayed taken, a refused connect, a closed database):
    # its followers used to sleep for ever, waiting for a wake-up the failed leader never sent
    db = _db(tmp_path)
    gc: GroupCommit[str, str] = GroupCommit(db, _write, wait_seconds=1.0)
    real = db.connection
    fail = threading.Event()

    def connection() -> Any:
        if fail.is_set() and threading.current_thread().name == "leader":
            fail.clear()
            raise sa.exc.TimeoutError("all 4 pooled connections stayed taken for 10 s")
        return real()

    db.connection = connection  # type: ignore[method-assign]
    out: dict[str, Any] = {}

    def submit(name: str) -> None:
        try:
            out[name] = gc.submit(name)
        except BaseException as exc:  # noqa: BLE001 - what the caller hears is the point
            out[name] = exc

    with db.writer():  # the leader waits for the write lock; its followers queue behind it
        threads = [threading.Thread(target=submit, args=("leader",), name="leader")]
        threads[0].start()
        wait_for(lambda: gc.pending() == 1, what="the leader queued")
        threads += [threading.Thread(target=submit, args=(f"f{i}",), name=f"f{i}") for i in range(3)]
        for t in threads[1:]:
            t.start()
        wait_for(lambda: gc.pending() == 4, what="three followers queued")
        fail.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a waiter was left asleep"
    assert {type(v) for v in out.values()} == {sa.exc.TimeoutError}, out  # nothing acknowledged
    assert _rows(db) == []
    assert gc.submit("later") == "later" and _rows(db) == ["later"]  # the lead was not left taken


class _InterruptingLock:
    """The database's write lock, whose next acquire in the thread named ``leader`` raises KeyboardInterrupt (a
    signal handler's exception)."""

    def __init__(self, real: Any) -> None:
        self.real, self.armed = real, True

    def acquire(self, *a: Any, **kw: Any) -> bool:
        if self.armed and threading.current_thread().name == "leader":
            self.armed = False
            raise KeyboardInterrupt
        return self.real.acquire(*a, **kw)

    def release(self) -> None:
        self.real.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_an_interrupted_leader_does_not_keep_the_lead(tmp_path):
    # its own waiter stayed queued and was handed the lead by itself: every later submit timed out
    db = _db(tmp_path)
    db._write_lock = _InterruptingLock(db._write_lock)  # type: ignore[assignment]
    gc: GroupCommit[str, str] = GroupCommit(db, _write, wait_seconds=0.5)
    heard: list[BaseException] = []

    def leader() -> None:
        with pytest.raises(KeyboardInterrupt) as exc:
            gc.submit("interrupted")
        heard.append(exc.value)

    t = threading.Thread(target=leader, name="leader")
    t.start()
    t.join(10)
    assert len(heard) == 1 and gc.pending() == 0
    assert [gc.submit(f"x{i}") for i in range(3)] == ["x0", "x1", "x2"]  # no CommitTimeout
    assert _rows(db) == ["x0", "x1", "x2"]
    with pytest.raises(CommitTimeout):  # still bounded: a lock held past the wait times out as before
        with db.writer():
            gc.submit("late")
