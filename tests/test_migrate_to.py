"""``python app.py migrate-to postgresql://…`` (issue 15 item 1): a record built on SQLite by a real bridge
(sync and queued sends, reports relayed and waiting for a pull, an inbound message, an idempotency key) is
copied into a fresh PostgreSQL database, and a bridge started there carries on with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from gateway.store.engine import Database
from gateway.store.transfer import holdings
from tests.conftest import DEMO, default_raw_config, running_sandbox
from tests.helpers import wait_for
from tests.storehelp import db_count
from tests.test_inbound import mo, pull, push, with_inbound

ROOT = Path(__file__).resolve().parent.parent
QUEUED = {"username": "q", "password": "q"}


def _callers(raw: dict[str, Any]) -> None:
    with_inbound([{"name": "kept", "caller": "demo", "pull": True}])(raw)
    raw["callers"]["q"] = {"password": "q", "scopes": ["query", "reports", "logs"], "mode": "queued",
                           "upstream_api": "advanced"}


def _migrate_to(config: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(config), "migrate-to", url,
                           *extra], cwd=config.parent, capture_output=True, text=True, timeout=120)


def _max_id(db: Database, table: str) -> int:
    return int(db.connection().exec_driver_sql(f"SELECT MAX(id) FROM {table}").scalar() or 0)


def test_a_sqlite_record_moves_to_postgresql_and_a_bridge_there_carries_on(pg_database, make_bridge, receiver,
                                                                          tmp_path):
    url = pg_database()
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        old = make_bridge(_callers, upstream_url=fast.url)
        ctx = old.app.extensions["smsbridge"]
        relayed = old.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "relayed",
                                                       "notifyUrl": receiver.url("/dlr")}).json()
        kept = old.get("/sms/1/text/query", params={**DEMO, "to": "41793026728", "text": "kept"}).json()
        queued = old.get("/sms/1/text/query", params={**QUEUED, "to": "41793026729", "text": "queued"}).json()
        keyed = old.get("/sms/1/text/query", params={**DEMO, "to": "41793026730", "text": "keyed"},
                        headers={"Idempotency-Key": "move-me-1"})
        assert keyed.status_code == 200, keyed.text
        inbound = mo("still to pull")
        assert push(old, inbound).status_code == 200
        assert queued["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
        wait_for(lambda: db_count(ctx.db, "reports") == 4, timeout=20, what="four reports stored")
        wait_for(lambda: receiver.count() == 1 and ctx.outbox.depth() == 0, what="the report relayed")
        old_ids = {m["messageId"] for r in (relayed, kept, queued, keyed.json()) for m in r["messages"]}
        before = holdings(ctx.db)
        assert {"submissions", "messages", "reports", "outbox_jobs", "outbox_attempts", "inbound_messages",
                "inbound_pull", "idempotency", "status_changes", "upstream_attempts"} <= set(before)

        raw = default_raw_config()
        _callers(raw)
        raw["store"] = {"path": ctx.config.store.path}
        config = tmp_path / "old.yaml"
        config.write_text(yaml.safe_dump(raw))
        out = _migrate_to(config, url)
        assert out.returncode == 0, out.stderr
        assert "rows copied" in out.stdout.splitlines()[0]
        lines = dict(line.split() for line in out.stdout.splitlines()[1:-1])
        assert {t: int(lines[t]) for t in before} == before  # every table, every row

        again = _migrate_to(config, url)  # a target that holds a record is refused, saying why
        assert again.returncode == 1 and "already holds a record" in again.stderr and "--force" in again.stderr
        assert "Traceback" not in again.stderr
        forced = _migrate_to(config, url, "--force")
        assert forced.returncode == 0, forced.stderr
        pg = Database(url)
        assert holdings(pg) == before
        copied_max = {t: _max_id(pg, t) for t in ("submissions", "messages", "reports", "outbox_jobs")}
        pg.close()

        sends = len(fast.messages())
        new = make_bridge(lambda r: (_callers(r), r.update(store={"url": url})), upstream_url=fast.url)
        pulled = new.get("/sms/1/reports", params=DEMO).json()["results"]  # reports copied, not pulled yet
        assert {r["messageId"] for r in pulled} == {m["messageId"] for r in (relayed, kept, keyed.json())
                                                      for m in r["messages"]}
        replay = new.get("/sms/1/text/query", params={**DEMO, "to": "41793026730", "text": "keyed"},
                         headers={"Idempotency-Key": "move-me-1"})
        assert replay.status_code == 200 and replay.json() == keyed.json()
        assert len(fast.messages()) == sends  # replayed from the copied key: nothing sent again
        inbox = pull(new).json()
        assert [m["messageId"] for m in inbox["results"]] == [inbound["messageId"]]
        logs = new.get("/sms/1/logs", params=DEMO).json()["results"]
        assert {e["messageId"] for e in logs} == old_ids - {queued["messages"][0]["messageId"]}
        fresh = new.get("/sms/1/text/query", params={**DEMO, "to": "41793026731", "text": "fresh",
                                                     "notifyUrl": receiver.url("/dlr")})
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["messages"][0]["messageId"] not in old_ids
        wait_for(lambda: receiver.count() == 2, timeout=10, what="the new message's report relayed from PostgreSQL")
        db = new.app.extensions["smsbridge"].db
        for table, top in copied_max.items():  # the sequences were set past the copied ids
            assert _max_id(db, table) > top, table
        rows = db.connection().execute(sa.text("SELECT COUNT(*) FROM messages")).scalar_one()
        assert rows == before["messages"] + 1


def test_migrate_to_refuses_what_is_not_postgresql_in_one_sentence(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "a.db")}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = _migrate_to(config, "sqlite:///other.db")
    assert out.returncode == 2 and "is not a PostgreSQL URL" in out.stderr and "Traceback" not in out.stderr
