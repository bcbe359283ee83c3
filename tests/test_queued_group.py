"""Queued acceptances share one transaction and one fsync (group commit, gateway/db.py GroupCommit):
everything acknowledged is committed and forwarded exactly once; a failed group acknowledges none."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import insert

from gateway.store.engine import CommitTimeout
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count, db_values, q, run, scratch, scratch_t
from tests.test_queued import queued


def _burst(url: str, texts: list[str], threads: int = 16) -> list[requests.Response]:
    """One queued GET per text (two destinations each), ``threads`` at a time, each on its own connection."""
    local = threading.local()

    def send(text: str) -> requests.Response:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s.get(url + "/sms/1/text/query", timeout=30,
                           params={**DEMO, "to": "41793026727,41793026834", "text": text})

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, texts))


def queued_held(raw: dict[str, Any]) -> None:
    """Queued, without duplicate suppression: its reservation writes before the group commit, so holding the
    write lock would stop the GETs there, short of the group this test gathers (idempotency has its tests)."""
    queued(raw)
    raw["idempotency"] = {"dedupe_window": 0}


def _held(bridge: Any, texts: list[str]) -> tuple[list[requests.Response], tuple[int, int]]:
    """Hold the bridge's write lock until every GET of ``texts`` (at most 8: the test server's threads)
    waits for a commit, then let them go: they all land in one group. Returns the answers and the store's (groups, submissions) before."""
    ctx = bridge.app.extensions["smsbridge"]
    before = ctx.store.accept_groups
    out: list[requests.Response] = []
    with ctx.db.writer():
        t = threading.Thread(target=lambda: out.extend(_burst(bridge.url, texts)))
        t.start()
        wait_for(lambda: ctx.store.accept_pending() == len(texts), what="every GET waiting for its commit")
    t.join(30)
    return out, before


def test_concurrent_queued_gets_share_commits_and_each_is_delivered_once(make_bridge, sandbox):
    bridge = make_bridge(queued_held)
    ctx = bridge.app.extensions["smsbridge"]
    held, before = _held(bridge, [f"held-{i}" for i in range(8)])
    assert [r.status_code for r in held] == [200] * 8
    assert ctx.store.accept_groups == (before[0] + 1, before[1] + 8)  # one transaction, one fsync for 8
    free = _burst(bridge.url, [f"free-{i}" for i in range(200)])
    assert [r.status_code for r in free] == [200] * 200
    groups, subs = ctx.store.accept_groups
    assert subs == 208 and groups <= subs
    given = {m["messageId"]: text for r, text in zip(held + free, [f"held-{i}" for i in range(8)] +
                                                   [f"free-{i}" for i in range(200)], strict=True)
             for m in r.json()["messages"]}
    assert len(given) == 416
    stored = set(db_values(ctx.db, "messages", "message_id", mode="queued"))
    assert stored == set(given)  # every acknowledged message is in the database
    wait_for(lambda: len(sandbox.messages()) >= 416, timeout=30, what="every accepted message upstream")
    got = sandbox.messages()
    assert len(got) == 416 and {m["messageId"]: m["text"] for m in got} == given  # once each, the caller's ids
    wait_for(lambda: db_count(ctx.db, "messages", state="sent") == 416, what="sent")
    history = db_count(ctx.db, "status_changes", source="queue")
    assert history == 416  # the acceptance step of each message's history, written by its group


def test_a_failed_group_commit_fails_only_the_bad_payload_and_commits_the_rest(make_bridge, sandbox):
    # Issue 13 item 5 changed this deliberately: it used to fail (503) every waiter of the group.
    bridge = make_bridge(queued_held)
    ctx = bridge.app.extensions["smsbridge"]
    # A real SQLite failure inside the group's transaction: one poisoned submission aborts the group's
    # transaction; each payload is then written on its own, so only the poisoned one fails.
    run(ctx.db, "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'poison'"
                   " BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END")
    texts = [f"ok-{i}" for i in range(7)] + ["poison"]
    answers, before = _held(bridge, texts)
    assert [r.status_code for r in answers] == [200] * 7 + [503]
    error = answers[-1].json()["requestError"]["serviceException"]
    assert error["messageId"] == "SERVICE_UNAVAILABLE" and "nothing was accepted" in error["text"]
    assert ctx.store.accept_groups == (before[0] + 7, before[1] + 7)  # each good one committed on its own
    assert sorted(db_values(ctx.db, "messages", "text")) == sorted([f"ok-{i}" for i in range(7)] * 2)
    assert db_count(ctx.db, "submissions") == 7
    given = {m["messageId"] for r in answers[:7] for m in r.json()["messages"]}
    wait_for(lambda: len(sandbox.messages()) >= 14, what="the accepted messages upstream")
    got = sandbox.messages()
    assert {m["messageId"] for m in got} == given and len(got) == 14  # once each; the poisoned one never
    assert "poison" not in {m["text"] for m in got}


def _write(c: Any, payloads: list[str]) -> list[int]:
    c.execute(insert(scratch_t), [{"v": p} for p in payloads])
    return [len(p) for p in payloads]


def _submit_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 (the test inspects it)
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_a_caller_still_queued_after_its_wait_withdraws_and_nothing_is_written(tmp_path: Path):
    db = scratch(str(tmp_path / "g.db"))
    group = db.group_commit(_write, wait_seconds=0.2)
    with db.writer():  # another writer holds the lock longer than the caller may wait
        t, out = _submit_in_thread(lambda: group.submit("late"))
        t.join(5)
    assert isinstance(out.get("error"), CommitTimeout)
    assert group.pending() == 0 and group.submit("next") == 4
    assert [r[0] for r in q(db, "SELECT v FROM t")] == ["next"]  # the withdrawn payload was never written
    db.close()


def test_group_commit_keeps_the_writer_lock_for_other_transactions(tmp_path: Path):
    db = scratch(str(tmp_path / "g.db"))
    group = db.group_commit(_write)
    with ThreadPoolExecutor(8) as pool:
        def both(i: int) -> int:
            with db.transaction() as c:  # ordinary transactions interleave with groups on the same lock
                c.execute(insert(scratch_t).values(v=f"tx-{i}"))
            return group.submit(f"group-{i}")

        assert sorted(pool.map(both, range(100))) == sorted(len(f"group-{i}") for i in range(100))
    assert db_count(db, "t") == 200
    assert group.payloads == 100 and 1 <= group.groups <= 100
    db.close()


@pytest.mark.parametrize("fails_at", ["write", "commit"])
def test_a_failed_group_fails_only_the_payloads_that_fail_alone(tmp_path: Path, fails_at: str):
    """Issue 13 item 5 (changed deliberately: every caller used to get the group's error). A row that fails
    by itself ("write": a trigger) fails only its caller; a failure every payload meets ("commit": a
    deferred foreign key) fails each of them."""
    db = scratch(str(tmp_path / "g.db"))
    if fails_at == "write":
        run(db, "CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.v = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END")
    else:  # a deferred foreign key fails at COMMIT itself
        run(db, "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER"
                   " REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)")
    group = db.group_commit(lambda c, ps: [c.execute(
        "INSERT INTO child (parent) VALUES (999)") and None for _ in ps] if fails_at == "commit" else _write(c, ps))
    payloads = ["a", "b", "bad", "c"]
    with db.writer():
        started = [_submit_in_thread(lambda p=p: group.submit(p)) for p in payloads]
        wait_for(lambda: group.pending() == 4, what="four callers queued")
    for t, _ in started:
        t.join(5)
    if fails_at == "write":
        assert [sorted(out) for _, out in started] == [["result"], ["result"], ["error"], ["result"]]
        assert group.groups == 3 and sorted(db_values(db, "t", "v")) == ["a", "b", "c"]
    else:
        assert all("error" in out for _, out in started), [out for _, out in started]
        assert group.groups == 0 and db_count(db, "t") == 0
    kept = db_count(db, "t")
    with db.transaction() as c:  # the connection left no transaction open behind
        c.execute(insert(scratch_t).values(v="later"))
    assert db_count(db, "t") == kept + 1
    db.close()


def test_a_caller_inside_its_own_transaction_joins_it(tmp_path: Path):
    db = scratch(str(tmp_path / "g.db"))
    group = db.group_commit(_write, wait_seconds=0.5)
    with pytest.raises(RuntimeError), db.transaction():  # joined: rolled back with the outer transaction
        assert group.submit("inner") == 5  # no wait on the lock this thread already holds
        raise RuntimeError("outer fails")
    assert db_count(db, "t") == 0 and group.groups == 0
    with db.transaction():
        group.submit("kept")
    assert [r[0] for r in q(db, "SELECT v FROM t")] == ["kept"]
    db.close()
