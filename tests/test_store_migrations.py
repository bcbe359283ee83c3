"""The store's schema under Alembic: a database written by the bridge before Alembic (schema version 6, or an
older one) upgrades in place and keeps serving its rows; a new database has exactly what the MetaData declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.engine import Database
from gateway.store.migrations import head, upgrade
from gateway.store.schema import metadata
from tests.conftest import DEMO
from tests.storehelp import build_legacy, build_v6, q, q1


def _schema(db: Database) -> tuple[dict[str, set[str]], dict[str, dict[str, tuple[str, ...]]]]:
    """(columns per table, {table: {index: columns}}) as the database itself reports them."""
    insp = sa.inspect(db.engine)
    tables = {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    indexes = {t: {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(t)} for t in tables
               if t != "alembic_version"}
    return tables, indexes


def _declared() -> tuple[dict[str, set[str]], dict[str, dict[str, tuple[str, ...]]]]:
    tables = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    indexes = {t.name: {i.name: tuple(c.name for c in i.columns) for i in t.indexes}  # type: ignore[misc]
               for t in metadata.sorted_tables}
    return tables, indexes


def test_a_new_database_has_every_table_and_index_the_metadata_declares(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "new.db"))
    tables, indexes = _schema(db)
    declared_tables, declared_indexes = _declared()
    assert tables.pop("alembic_version") == {"version_num"}
    assert tables == declared_tables
    assert indexes == declared_indexes
    assert db.revision() == head()
    db.close()


def test_an_upgraded_v6_database_matches_the_metadata(tmp_path: Path) -> None:
    path = str(tmp_path / "v6.db")
    build_v6(path, rows=False)
    db = Database(path)
    tables, indexes = _schema(db)
    declared_tables, declared_indexes = _declared()
    assert tables.pop("alembic_version") == {"version_num"}
    assert tables.pop("schema_migrations") == {"version", "name", "applied_at"}  # the old history is kept
    assert tables == declared_tables
    assert indexes.pop("schema_migrations") == {}
    assert indexes == declared_indexes
    db.close()


def test_a_v6_database_upgrades_in_place_and_the_bridge_serves_its_rows(tmp_path: Path, make_bridge) -> None:
    build_v6(str(tmp_path / "bridge0.db"))  # the file make_bridge's first bridge opens
    bridge = make_bridge()
    ctx = bridge.app.extensions["smsbridge"]
    assert ctx.db.revision() == head()
    versions = [r["version"] for r in q(ctx.db, "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [1, 2, 3, 4, 5, 6]  # stamped at the baseline, nothing replayed

    logs = bridge.get("/sms/1/logs", params={**DEMO, "bulkId": "b-old"})
    assert logs.status_code == 200
    got = {r["messageId"]: r for r in logs.json()["results"]}
    assert set(got) == {"m-old-1", "m-old-2"}
    assert got["m-old-1"]["text"] == "written before alembic" and got["m-old-1"]["from"] == "OldSender"
    assert got["m-old-1"]["status"]["name"] == "DELIVERED_TO_HANDSET"

    reports = bridge.get("/sms/1/reports", params=DEMO).json()["results"]
    assert [r["messageId"] for r in reports] == ["m-old-1"]  # the old report, pulled once
    assert bridge.get("/sms/1/reports", params=DEMO).json()["results"] == []

    inbox = bridge.get("/sms/1/inbox/reports", params=DEMO).json()
    assert [m["messageId"] for m in inbox["results"]] == ["in-old-1"]
    assert inbox["results"][0]["text"] == "HELLO from the past"

    job = ctx.outbox.job(1)
    assert job is not None and job.state == "dead" and job.attempts == 21 and job.url == "http://127.0.0.1:9/old"
    assert [j.id for j in ctx.outbox.dead_letters()] == [1]

    sent = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "after the upgrade"})
    assert sent.status_code == 200  # new rows go on after the old ones
    new_id = sent.json()["messages"][0]["messageId"]
    assert q1(ctx.db, "SELECT submission_id FROM messages WHERE message_id = ?", (new_id,))[0] == 2  # type: ignore[index]
    ready = bridge.get("/readyz")
    assert ready.status_code == 200  # the probe table came with revision 2


@pytest.mark.parametrize("version", [1, 3, 5])
def test_an_older_schema_version_is_brought_up_by_replaying_the_missing_migrations(tmp_path: Path,
                                                                                     version: int) -> None:
    path = str(tmp_path / f"v{version}.db")
    build_legacy(path, version)
    db = Database(path)
    assert db.revision() == head()
    versions = [r["version"] for r in q(db, "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [1, 2, 3, 4, 5, 6]
    tables, indexes = _schema(db)
    assert indexes["messages"] == _declared()[1]["messages"]
    assert tables["messages"] == _declared()[0]["messages"]
    assert upgrade(db) == []
    db.close()


def test_reopening_an_upgraded_database_runs_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "v6.db")
    build_v6(path)
    Database(path).close()
    db = Database(path)
    assert upgrade(db) == [] and db.revision() == head()
    assert q1(db, "SELECT COUNT(*) FROM messages")[0] == 2  # type: ignore[index]
    db.close()
