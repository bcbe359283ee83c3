"""Database: WAL + synchronous policy, per-thread connections, transactions, Alembic at open."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway.store.engine import Connection, Database
from gateway.store.migrations import head, upgrade
from gateway.store.migrations.legacy import split_statements
from tests.storehelp import q, q1, scratch, scratch_t


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "t.db")


def test_wal_and_synchronous_full_by_default(path) -> None:
    db = Database(path)
    try:
        assert q1(db, "PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
        assert q1(db, "PRAGMA synchronous")[0] == 2  # FULL  # type: ignore[index]
        assert q1(db, "PRAGMA busy_timeout")[0] == 10_000  # type: ignore[index]
        assert q1(db, "PRAGMA foreign_keys")[0] == 1  # type: ignore[index]
    finally:
        db.close()


def test_synchronous_normal_and_invalid(path) -> None:
    db = Database(path, synchronous="normal")
    assert q1(db, "PRAGMA synchronous")[0] == 1  # type: ignore[index]
    db.close()
    with pytest.raises(ValueError, match="synchronous"):
        Database(path, synchronous="OFF")


def test_relaxed_transaction_commits_with_normal_then_restores_full(path) -> None:
    db = scratch(path)
    with db.transaction(relaxed=True) as c:
        assert q1(db, "PRAGMA synchronous")[0] == 1  # type: ignore[index]
        c.execute(insert(scratch_t), [{"v": "x"}])
    assert q1(db, "PRAGMA synchronous")[0] == 2  # type: ignore[index]
    db.close()


def test_a_new_database_is_at_head_and_reopening_runs_nothing(path) -> None:
    db = Database(path)
    assert db.revision() == head()
    names = {r["name"] for r in q(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "outbox_jobs", "outbox_attempts", "messages", "ops_probe"} <= names
    db.close()
    again = Database(path)
    assert again.revision() == head()
    assert upgrade(again) == []
    again.close()


def test_transaction_commit_rollback_and_nesting(path) -> None:
    db = scratch(path)
    with db.transaction() as conn:
        assert isinstance(conn, Connection)
        conn.execute(insert(scratch_t), [{"v": "1"}])
        with db.transaction() as inner:  # joins the outer transaction
            assert inner is conn
            inner.execute(insert(scratch_t), [{"v": "2"}])
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute(insert(scratch_t), [{"v": "3"}])
            raise RuntimeError("boom")
    assert db.connection().execute(select(scratch_t.c.v).order_by(scratch_t.c.v)).scalars().all() == ["1", "2"]
    db.close()


def test_after_commit_runs_only_on_commit(path) -> None:
    db = Database(path, migrate=False)
    ran: list[str] = []
    with db.transaction():
        db.after_commit(lambda: ran.append("a"))
        assert ran == []
    assert ran == ["a"]
    with pytest.raises(RuntimeError):
        with db.transaction():
            db.after_commit(lambda: ran.append("b"))
            raise RuntimeError
    db.after_commit(lambda: ran.append("c"))  # no transaction: runs now
    assert ran == ["a", "c"]
    db.close()


def test_one_connection_per_thread_reused(path) -> None:
    db = Database(path, migrate=False)
    mine = db.connection()
    assert db.connection() is mine
    other: list[Connection] = []
    t = threading.Thread(target=lambda: other.append(db.connection()))
    t.start()
    t.join()
    assert other and other[0] is not mine
    db.close()
    with pytest.raises(RuntimeError, match="closed"):
        db.connection()


def test_split_statements() -> None:
    sql = "CREATE TABLE a (x TEXT DEFAULT ';');\n-- comment\nCREATE TABLE b (y INTEGER);\n"
    assert split_statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT ';');", "-- comment\nCREATE TABLE b (y INTEGER);"]
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE c (z INTEGER")
