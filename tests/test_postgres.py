"""The store on PostgreSQL (issue 15 items 1, 2, 6): real bridges with ``store.url: postgresql://…`` over real
HTTP, each in a fresh database; a chosen set of the store-heavy tests of other modules runs here again on
PostgreSQL (imported below: ``bridge_store`` is overridden for this module)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from gateway.clock import SystemClock
from gateway.store.engine import Database
from gateway.store.migrations import head
from gateway.store.opening import StoreUnavailable, open_store
from gateway.store.records import MessageRow, Store, SubmissionRecord
from gateway.store.schema import metadata
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count

# -- existing tests, run again on PostgreSQL --------------------------------------------------------------
from tests.test_failover import (  # noqa: F401
    test_an_unanswered_attempt_is_reconciled_on_its_upstream_never_sent_to_the_other,
    test_queued_fails_over_on_refused_connections_and_returns_once_the_primary_recovers,
)
from tests.test_idempotency import (  # noqa: F401
    test_a_store_error_while_answering_from_the_record_keeps_the_key,
    test_concurrent_requests_with_one_key_send_once,
    test_identical_get_within_window_is_answered_as_duplicate,
    test_retried_get_with_key_gets_the_first_answer_and_sends_once,
    test_reused_custom_message_id_is_refused_per_destination,
)
from tests.test_inbound import (  # noqa: F401
    test_duplicate_push_is_stored_once,
    test_keyword_routed_message_reaches_legacy_get_url_byte_exact,
    test_pull_returns_each_message_once,
)
from tests.test_queued import (  # noqa: F401
    test_prune_removes_old_finished_records_only,
    test_queued_answers_at_once_and_forwards_with_the_bridges_ids,
    test_queued_upstream_5xx_is_retried_and_a_400_becomes_a_rejected_report,
    test_sandbox_stopped_then_started_gets_every_message_exactly_once,
)
from tests.test_reply_loops import (  # noqa: F401
    test_an_automaton_answering_every_sms_is_answered_count_times_per_window,
    test_the_bridges_own_numbers_are_never_answered,
)
from tests.test_reports import (  # noqa: F401
    dlr_sandbox,
    test_duplicate_and_intermediate_reports,
    test_logs_filters_and_isolation,
    test_one_body_with_several_reports_per_message,
    test_pull_reports_once_and_only_own,
    test_receiver_down_for_n_attempts_gets_attempt_n_plus_1_on_schedule,
    test_report_reaches_json_notify_url,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bridge_store(pg_database: Callable[[], str]) -> Callable[[int], dict[str, Any]]:
    """Every bridge of this module's tests on a fresh PostgreSQL database of its own."""
    return lambda n: {"url": pg_database()}


# -- the engine ------------------------------------------------------------------------------------------
def _sub(token: str) -> SubmissionRecord:
    return SubmissionRecord("demo", "query", "queued", "advanced", None, token, None)


def _row(i: int) -> MessageRow:
    return MessageRow(f"m{i}", f"u{i}", "41793026727", None, "hi", "{}", None, None, None, False, 1, None, "queued")


def test_fresh_database_is_created_at_head_and_migrate_is_idempotent(pg_database, tmp_path):
    url = pg_database()
    cfg = tmp_path / "c.yaml"
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["store"] = {"url": url}
    cfg.write_text(yaml.safe_dump(raw))

    def migrate() -> str:
        out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(cfg), "migrate"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"at revision {head()}" in (first := migrate()) and "ran create_all" in first
    assert "nothing to do" in migrate()
    db = Database(url)
    assert db.revision() == head() and db.engine.dialect.name == "postgresql"
    db.close()


def test_a_dead_requests_key_is_reconciled_from_its_record_or_taken_over_on_postgresql(pg_database):
    from tests.test_idempotency import dead_requests_keys

    db = Database(pg_database())
    try:
        dead_requests_keys(db)
    finally:
        db.close()


def test_a_slow_requests_record_is_fenced_once_a_retry_took_its_key_on_postgresql(pg_database):
    from tests.test_idempotency import fenced_keys

    db = Database(pg_database())
    try:
        fenced_keys(db)
    finally:
        db.close()


def test_fresh_database_has_every_table_and_index_the_metadata_declares(pg_database):
    from tests.test_store_migrations import _declared, _schema

    db = Database(pg_database())
    tables, indexes = _schema(db)
    declared_tables, declared_indexes = _declared()
    assert tables.pop("alembic_version") == {"version_num"}
    insp = sa.inspect(db.engine)  # PostgreSQL lists the indexes behind UNIQUE constraints too: compare those apart
    backing = {t: {i["name"] for i in insp.get_indexes(t) if i.get("duplicates_constraint")} for t in indexes}
    uniques = {(t, tuple(i["column_names"])) for t, names in backing.items() for i in insp.get_indexes(t)
               if i["name"] in names}
    declared_uniques = {(t.name, tuple(c.name for c in u.columns)) for t in metadata.sorted_tables
                        for u in t.constraints if isinstance(u, sa.UniqueConstraint)}
    declared_uniques |= {(t.name, (c.name,)) for t in metadata.sorted_tables for c in t.columns if c.unique}
    assert uniques == declared_uniques
    plain = {t: {n: cols for n, cols in ix.items() if n not in backing[t]} for t, ix in indexes.items()}
    assert (tables, plain) == (declared_tables, declared_indexes)
    db.close()


def test_bridges_opening_one_new_database_at_once_migrate_it_once(pg_database):
    url = pg_database()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            open_store(url).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = Database(url, migrate=False)
    assert db.revision() == head()
    db.close()


def test_newer_schema_is_refused_with_what_to_run(pg_database, tmp_path):
    url = pg_database()
    db = Database(url)
    with db.transaction() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    db.close()
    with pytest.raises(StoreUnavailable) as err:
        open_store(url)
    assert "9999_from_the_future" in str(err.value) and "newer than this bridge" in str(err.value)
    assert "run the smsbridge release" in str(err.value)
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["store"] = {"url": url}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(cfg), "--port", "0",
                          "--sandbox-port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr
    assert "newer than this bridge knows" in out.stderr


def test_password_in_the_url_never_shows(pg_database):
    url = pg_database().replace("postgres@", "postgres:s3cret-pw@").rsplit("/", 1)[0] + "/no_such_db_here"
    with pytest.raises(StoreUnavailable) as err:
        open_store(url)
    assert "s3cret-pw" not in str(err.value) and "no_such_db_here" in str(err.value)


def test_concurrent_group_writes_get_distinct_ids_across_databases_handles(pg_database):
    """Two Database objects (two processes' worth: no shared write lock) accept at once: every submission
    gets its own id from the sequence, and every message its first status change."""
    url = pg_database()
    dbs = [Database(url), Database(url)]
    stores = [Store(d, SystemClock()) for d in dbs]
    ids: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for i in range(40):
            sid = stores[k % 2].accept(_sub(f"t{k}-{i}"), [_row(k * 1000 + i)])
            with lock:
                ids.append(sid)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 240
    assert db_count(dbs[0], "messages") == 240 and db_count(dbs[0], "status_changes") == 240
    for d in dbs:
        d.close()


def test_claims_across_handles_never_overlap(pg_database):
    """Workers of two handles claim the queue at once (FOR UPDATE SKIP LOCKED): each row leased once."""
    url = pg_database()
    dbs = [Database(url), Database(url)]
    stores = [Store(d, SystemClock()) for d in dbs]
    for i in range(300):
        stores[0].accept(_sub(f"c{i}"), [_row(i)])
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def work(k: int) -> None:
        barrier.wait()
        while batch := stores[k % 2].claim_batch(7, 300):
            with lock:
                claimed.extend(m.row_id for m in batch)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 300
    for d in dbs:
        d.close()


# -- bridges ---------------------------------------------------------------------------------------------
def test_sync_send_and_log_on_postgresql(make_bridge, sandbox):
    bridge = make_bridge()
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727,41793026834", "text": "pg hello"})
    assert r.status_code == 200, r.text
    ids = {m["messageId"] for m in r.json()["messages"]}
    assert {m["messageId"] for m in sandbox.messages()} == ids
    db = bridge.app.extensions["smsbridge"].db
    assert db.engine.dialect.name == "postgresql"
    wait_for(lambda: db_count(db, "messages", state="sent") == 2, what="both sent")
    logs = bridge.get("/sms/1/logs", params=DEMO).json()["results"]
    assert {e["messageId"] for e in logs} == ids


def test_two_bridges_on_one_database_send_each_queued_message_once(make_bridge, sandbox, pg_database):
    url = pg_database()

    def queued(raw: dict[str, Any]) -> None:
        raw["store"] = {"url": url}
        raw["callers"]["demo"].update(mode="queued", upstream_api="advanced")
        raw["queue"] = {"time_scale": 0.01, "max_batch": 5, "workers": 3}

    a, b = make_bridge(queued), make_bridge(queued)
    sent: set[str] = set()
    for i in range(30):
        bridge = (a, b)[i % 2]
        r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"4179{i:07d}", "text": f"n{i}"})
        assert r.status_code == 200, r.text
        sent |= {m["messageId"] for m in r.json()["messages"]}
    wait_for(lambda: len(sandbox.messages()) >= 30, timeout=30, what="all forwarded")
    db = a.app.extensions["smsbridge"].db
    wait_for(lambda: db_count(db, "messages", state="sent") == 30, timeout=30, what="all sent")
    got = [m["messageId"] for m in sandbox.messages()]
    assert sorted(got) == sorted(sent)  # each once: no row claimed by both bridges
