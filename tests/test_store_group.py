"""Sync records share transactions too (gateway/db.py GroupCommit, relaxed): under load a writer that
needs the GIL back after every statement would otherwise hold the write lock for everyone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count, db_rows


def _send(url: str, texts: list[str]) -> list[requests.Response]:
    def one(text: str) -> requests.Response:
        return requests.get(url + "/sms/1/text/query", timeout=30,
                            params={**DEMO, "to": "41793026727,41793026834", "text": text})

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, texts))


def test_concurrent_sync_records_share_one_transaction_and_keep_each_submission_apart(make_bridge, sandbox):
    # Issue 13 item 5: a sync send is recorded (fsynced, in a shared group) *before* it is forwarded, and its
    # answer completes the record in a second shared (relaxed) group. No duplicate suppression here: its
    # reservation writes before the send, so the held write lock would stop the sends short of the group.
    bridge = make_bridge(lambda raw: raw.update(idempotency={"dedupe_window": 0}))
    ctx = bridge.app.extensions["smsbridge"]
    texts = [f"sync-{i}" for i in range(8)]
    before, before_accept = ctx.store.record_groups, ctx.store.accept_groups
    out: list[requests.Response] = []
    with ctx.db.writer():  # every send waits for its record's commit before it is forwarded
        t = threading.Thread(target=lambda: out.extend(_send(bridge.url, texts)))
        t.start()
        wait_for(lambda: ctx.store.accept_pending() == 8, what="8 sync records waiting for one commit")
        assert db_count(ctx.db, "submissions") == 0 and sandbox.sends() == []  # nothing sent before its record
    t.join(30)
    assert [r.status_code for r in out] == [200] * 8
    assert ctx.store.accept_groups == (before_accept[0] + 1, before_accept[1] + 8)  # one fsync for the 8
    assert ctx.store.record_groups[1] == before[1] + 8 and ctx.store.record_groups[0] <= before[0] + 8
    answered = {m["messageId"]: text for r, text in zip(out, texts, strict=True) for m in r.json()["messages"]}
    msgs = db_rows(ctx.db, "messages")
    destinations = {s.id: s.destinations for s in db_rows(ctx.db, "submissions")}
    assert {m.message_id: m.text for m in msgs} == answered  # each message under its own submission
    assert {m.state for m in msgs} == {"sent"} and len({m.submission_id for m in msgs}) == 8
    assert all(destinations[m.submission_id] == 2 for m in msgs)
    assert db_count(ctx.db, "upstream_attempts") == 8  # one query-API GET each
    changes = db_rows(ctx.db, "status_changes", "source", "detail")
    assert sorted(c.detail for c in changes) == ["sending"] * 16 + ["sent"] * 16
    logs = requests.get(bridge.url + "/sms/1/logs", params={**DEMO, "limit": 100}, timeout=10).json()["results"]
    assert {r["messageId"] for r in logs} == set(answered)
