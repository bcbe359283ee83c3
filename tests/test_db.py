"""Database: WAL + synchronous policy, per-thread connections, transactions, migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.store.engine import MIGRATIONS, Database, split_statements


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "t.db")


def test_wal_and_synchronous_full_by_default(path) -> None:
    db = Database(path)
    try:
        assert db.query_one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
        assert db.query_one("PRAGMA synchronous")[0] == 2  # FULL  # type: ignore[index]
        assert db.query_one("PRAGMA busy_timeout")[0] == 10_000  # type: ignore[index]
    finally:
        db.close()


def test_synchronous_normal_and_invalid(path) -> None:
    db = Database(path, synchronous="normal")
    assert db.query_one("PRAGMA synchronous")[0] == 1  # type: ignore[index]
    db.close()
    with pytest.raises(ValueError, match="synchronous"):
        Database(path, synchronous="OFF")


def test_migrations_applied_once_and_tracked(path) -> None:
    db = Database(path)
    assert db.schema_version() == MIGRATIONS[-1][0]
    names = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_migrations", "outbox_jobs", "outbox_attempts"} <= names
    db.close()
    again = Database(path)  # reopening is idempotent
    rows = again.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in MIGRATIONS]
    assert again.migrate(MIGRATIONS) == []
    again.close()


def test_adding_a_migration_is_one_registration(path) -> None:
    Database(path).close()
    nxt = MIGRATIONS[-1][0] + 1
    extra = [*MIGRATIONS, (nxt, "extra", "CREATE TABLE extra_things (id TEXT PRIMARY KEY, body TEXT);\n"
                                        "CREATE INDEX extra_things_body ON extra_things (body);")]
    db = Database(path, migrations=extra)
    assert db.schema_version() == nxt
    db.execute("INSERT INTO extra_things (id, body) VALUES ('m1', 'hi')")
    assert db.migrate(extra) == []
    db.close()


def test_failing_migration_rolls_back_entirely(path) -> None:
    bad = [*MIGRATIONS, (MIGRATIONS[-1][0] + 1, "broken", "CREATE TABLE half (x INTEGER);\nTHIS IS NOT SQL;")]
    with pytest.raises(sqlite3.OperationalError):
        Database(path, migrations=bad)
    db = Database(path)
    assert db.schema_version() == MIGRATIONS[-1][0]
    assert db.query("SELECT name FROM sqlite_master WHERE name = 'half'") == []
    db.close()


def test_migration_versions_must_ascend(path) -> None:
    with pytest.raises(ValueError, match="ascending"):
        Database(path, migrations=[(2, "b", "SELECT 1;"), (1, "a", "SELECT 1;")])


def test_transaction_commit_rollback_and_nesting(path) -> None:
    db = Database(path, migrations=[(1, "t", "CREATE TABLE t (x INTEGER);")])
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        with db.transaction() as inner:  # joins the outer transaction
            assert inner is conn
            inner.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (3)")
            raise RuntimeError("boom")
    assert [r["x"] for r in db.query("SELECT x FROM t ORDER BY x")] == [1, 2]
    db.close()


def test_after_commit_runs_only_on_commit(path) -> None:
    db = Database(path, migrations=[])
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
    db = Database(path, migrations=[])
    mine = db.connection()
    assert db.connection() is mine
    other: list[sqlite3.Connection] = []
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
