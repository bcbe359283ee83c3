"""Several bridges on one PostgreSQL database (issue 15 items 2 and 4): real bridges over real HTTP sharing one
fresh database and one sandbox; any instance takes any request. Without a server these tests skip with the
reason (fail under ``SMSBRIDGE_REQUIRE_POSTGRES=1``), like tests/test_postgres.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from gateway.store import periodic
from gateway.store.engine import Database
from tests import pghelp
from tests.conftest import DEMO, running_sandbox
from tests.helpers import wait_for
from tests.storehelp import db_count, db_value
from tests.test_inbound import mo, pull, push, with_inbound
from tests.test_reports import _report
from tests.test_ui import login

POLL = 60.0  # idle workers' poll interval in these tests: anything sooner came from NOTIFY


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    """One fresh PostgreSQL database (URL) for the whole cluster of the test; skips without a server."""
    return pg_database()


@pytest.fixture
def cluster(pg_url, make_bridge) -> Callable[..., Any]:
    """``cluster(mutate=None, **kw)``: another bridge on the test's one database, idle workers polling every
    ``POLL`` s (so only NOTIFY wakes them promptly)."""

    def make(mutate: Callable[[dict[str, Any]], None] | None = None, **kw: Any) -> Any:
        def both(raw: dict[str, Any]) -> None:
            raw["store"] = {"url": pg_url, "poll_interval": POLL}
            if mutate:
                mutate(raw)
        return make_bridge(both, **kw)

    return make


def services(bridge: Any) -> Any:
    return bridge.app.extensions["smsbridge"]


def listening(*bridges: Any) -> None:
    for b in bridges:
        wait_for(lambda b=b: services(b).db.listener is not None and services(b).db.listener.connected.is_set(),
                 what="the bridge's LISTEN connection")


def queued(raw: dict[str, Any]) -> None:
    raw["callers"]["demo"].update(mode="queued", upstream_api="advanced")


# -- item 2: idle workers wake on NOTIFY -------------------------------------------------------------------
def test_a_queued_send_accepted_by_an_instance_without_queue_workers_is_sent_by_another_at_once(cluster, sandbox):
    a, b = cluster(queued), cluster(queued)
    services(a).queue.stop()  # A runs no queue workers: only B's can send, and they sleep for POLL seconds
    listening(a, b)
    time.sleep(0.2)  # let B's workers find the queue empty and go idle (they would poll again after 60 s)
    started = time.monotonic()
    r = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "wake up"})
    assert r.status_code == 200 and r.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED", r.text
    mid = r.json()["messages"][0]["messageId"]
    wait_for(lambda: [m["messageId"] for m in sandbox.messages()] == [mid], timeout=5, what="B sends A's message")
    assert time.monotonic() - started < 5 < POLL
    assert services(b).db.listener.heard >= 1


def test_an_outbox_job_enqueued_by_an_instance_without_outbox_workers_is_delivered_by_another(cluster, receiver):
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        b = cluster(upstream_url=fast.url)
        a = cluster(upstream_url=fast.url)
        services(a).outbox.stop()  # A's report relays can only be delivered by B's outbox workers
        listening(a, b)
        time.sleep(0.2)
        r = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "relay me",
                                               "notifyUrl": receiver.url("/dlr")})
        assert r.status_code == 200, r.text
        wait_for(lambda: receiver.count() == 1, timeout=5, what="B's outbox delivers the report A stored")
        assert r.json()["messages"][0]["messageId"] in receiver.snapshot()[0].body.decode()


def test_the_listener_reconnects_and_wakes_its_workers_after_losing_its_connection(cluster, sandbox, pg_url):
    a = cluster(queued)
    listening(a)
    listener = services(a).db.listener
    import psycopg

    with psycopg.connect(pghelp.server_url(), autocommit=True) as admin:  # kill the LISTEN backend
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
                      "AND datname = %s", (pg_url.rsplit("/", 1)[1],))
    wait_for(lambda: not listener.connected.is_set(), timeout=5, what="the listener notices")
    listening(a)
    b = cluster(queued)
    services(b).queue.stop()
    r = b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "after reconnect"})
    assert r.status_code == 200, r.text
    wait_for(lambda: len(sandbox.messages()) == 1, timeout=5, what="A's workers woken by NOTIFY again")


def test_sqlite_store_needs_no_listener(make_bridge):
    bridge = make_bridge()
    assert services(bridge).db.listener is None and services(bridge).config.store.poll_interval == 1.0


# -- item 3: periodic work once per interval across the cluster ---------------------------------------------
def test_pruning_runs_once_per_interval_across_two_instances(cluster):
    interval = 0.4

    def fast_prune(raw: dict[str, Any]) -> None:
        raw["store"]["prune_interval"] = interval

    started = time.time()
    a, b = cluster(fast_prune), cluster(fast_prune)
    db = services(a).db
    wait_for(lambda: periodic.runs(db, "prune") >= 6, timeout=10, what="six prune periods")
    elapsed = time.time() - started
    n = periodic.runs(db, "prune")
    # each instance looks 4 times per interval: without the claim that would be up to 8 runs per interval
    assert 6 <= n <= elapsed / interval + 1, (n, elapsed)
    assert services(b).db is not db  # two instances, each with its own handles on the one database
    listening(b)
    text = b.get("/metrics").text  # either instance shows the cluster's count, and its own listener and pool
    runs = float(next(line.split()[1] for line in text.splitlines() if line.startswith("smsbridge_prune_runs ")))
    assert runs >= n and "smsbridge_store_listener_connected 1.0" in text
    in_use = next(line for line in text.splitlines() if line.startswith('smsbridge_store_pool_connections{state="in_'))
    assert float(in_use.split()[1]) >= 1  # at least the /metrics request's own


def test_a_long_run_holds_the_advisory_lock_so_no_other_instance_runs_it_meanwhile(pg_url):
    one, two = Database(pg_url), Database(pg_url)
    try:
        with periodic.once(one, "job", 1000.0, 10.0) as mine:
            assert mine
            with periodic.once(two, "job", 5000.0, 10.0) as theirs:  # interval elapsed, but one is still at it
                assert not theirs
        with periodic.once(two, "job", 1005.0, 10.0) as early:
            assert not early  # the interval has not elapsed since 1000
        with periodic.once(two, "job", 1010.0, 10.0) as due:
            assert due
        assert periodic.runs(one, "job") == 2
    finally:
        one.close()
        two.close()


def test_on_sqlite_two_handles_on_one_file_claim_each_interval_once(tmp_path):
    path = str(tmp_path / "one.db")
    one, two = Database(path), Database(path)
    try:
        claims = []
        for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.1):
            for db in (one, two):
                with periodic.once(db, "prune", 100 + t, 1.0) as mine:
                    claims.append(mine)
        assert claims.count(True) == 3 == periodic.runs(two, "prune")  # at 100, 101 and 102
    finally:
        one.close()
        two.close()


# -- item 4: any instance takes any request ----------------------------------------------------------------
def _send(bridge: Any, **params: Any) -> dict[str, Any]:
    r = bridge.get("/sms/1/text/query", params={**DEMO, "from": "InfoSMS", "text": "Hi", **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_report_pushed_to_b_for_a_message_sent_through_a_is_matched_and_relayed_once(cluster, receiver):
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        b = cluster(upstream_url=fast.url)
        # A tells the upstream to report to B (as behind a load balancer: any instance gets the push)
        a = cluster(lambda raw: raw["server"].update(public_url=b.url), upstream_url=fast.url)
        mid = _send(a, to="41793026727", notifyUrl=receiver.url("/dlr"), callbackData="x-17")["messages"][0][
            "messageId"]
        wait_for(lambda: receiver.count() == 1, timeout=10, what="the relayed report")
        wait_for(lambda: services(a).outbox.depth() == 0, what="the outbox drained")
        body = receiver.snapshot()[0].body.decode()
        assert mid in body and "x-17" in body and "DELIVERED_TO_HANDSET" in body
        assert db_count(services(a).db, "reports") == 1 and receiver.count() == 1


def test_a_report_pushed_to_both_instances_is_stored_and_relayed_once(cluster, sandbox, receiver):
    a, b = cluster(), cluster()  # the shared sandbox sends no reports: this test plays the upstream
    _send(a, to="41793026727", notifyUrl=receiver.url("/dlr"))
    db = services(a).db
    token, upstream_id = db_value(db, "submissions", "dlr_token"), db_value(db, "messages", "upstream_message_id")
    first = b.post(f"/hooks/dlr/{token}", json=_report(upstream_id))
    again = a.post(f"/hooks/dlr/{token}", json=_report(upstream_id))  # the upstream's retry reached A
    assert (first.json()["stored"], again.json()) == (1, {"stored": 0, "duplicates": 1, "unknown": 0})
    wait_for(lambda: receiver.count() == 1, what="the relayed report")
    wait_for(lambda: services(a).outbox.depth() == 0 and services(b).outbox.depth() == 0, what="drained")
    assert receiver.count() == 1 and db_count(db, "reports") == 1


def test_inbound_pushed_to_b_is_stored_once_forwarded_once_and_pulled_from_a(cluster, receiver):
    rules = [{"name": "all", "caller": "demo", "forward": receiver.url("/mo") + "?t=%b", "pull": True}]
    a, b = cluster(with_inbound(rules)), cluster(with_inbound(rules))
    msg = mo("cluster hello")
    assert push(b, msg).status_code == 200
    assert push(a, msg).status_code == 200  # the upstream retries to another instance: a duplicate
    wait_for(lambda: receiver.count() == 1, what="the forward")
    wait_for(lambda: services(a).outbox.depth() == 0, what="the outbox drained")
    assert receiver.count() == 1 and db_count(services(a).db, "inbound_messages") == 1
    got = pull(a).json()
    assert [r["messageId"] for r in got["results"]] == [msg["messageId"]]
    assert pull(b).json()["messageCount"] == 0


def _pull_all(bridges: list[Any], take: Callable[[Any], list[str]], threads: int = 6) -> list[str]:
    """Pull concurrently from every bridge in turn until each of ``threads`` pullers gets an empty page."""
    got: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        barrier.wait()
        i = k
        try:
            while items := take(bridges[i % len(bridges)]):
                with lock:
                    got.extend(items)
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    return got


def test_report_pulls_v1_and_v3_hand_each_report_out_once_across_instances(cluster):
    with running_sandbox(dlr_delay=0.02, time_scale=0.001) as fast:
        a, b = cluster(upstream_url=fast.url), cluster(upstream_url=fast.url)
        sent: set[str] = set()
        for i in range(12):
            r = _send((a, b)[i % 2], to=",".join(f"4179{i:03d}{k:04d}" for k in range(3)))
            sent |= {m["messageId"] for m in r["messages"]}
        db = services(a).db
        wait_for(lambda: db_count(db, "reports") == 36, timeout=20, what="36 reports stored")

        def take(bridge: Any) -> list[str]:
            if threading.get_ident() % 2:
                r = bridge.get("/sms/1/reports", params={**DEMO, "limit": "4"})
            else:
                r = bridge.get("/sms/3/reports", params={"limit": "4"}, headers={"Authorization": "App demo-key"})
            assert r.status_code == 200, r.text
            return [x["messageId"] for x in r.json()["results"]]

        got = _pull_all([a, b], take)
        assert sorted(got) == sorted(sent)  # every report once, none twice, across v1 and v3 and both instances


def test_inbox_pulls_hand_each_message_out_once_across_instances(cluster):
    rules = [{"name": "kept", "caller": "demo", "pull": True}]
    a, b = cluster(with_inbound(rules)), cluster(with_inbound(rules))
    msgs = [mo(f"in {i}") for i in range(30)]
    for i in range(0, 30, 5):
        assert push((a, b)[i % 2], *msgs[i:i + 5]).status_code == 200

    def take(bridge: Any) -> list[str]:
        r = pull(bridge, limit=3)
        assert r.status_code == 200, r.text
        return [x["messageId"] for x in r.json()["results"]]

    got = _pull_all([a, b], take)
    assert sorted(got) == sorted(m["messageId"] for m in msgs)


def test_logs_and_the_admin_ui_log_of_either_instance_show_the_whole_cluster(cluster, sandbox):
    def ui(raw: dict[str, Any]) -> None:
        raw.setdefault("ui", {})["secret_key"] = "cluster-wide-ui-secret-0123456789abcdef"

    a, b = cluster(ui), cluster(ui)
    ids = [_send(x, to=f"417930267{n:02d}", text=f"log {n}")["messages"][0]["messageId"]
           for n, x in enumerate((a, b, a, b))]
    for x in (a, b):
        logs = x.get("/sms/1/logs", params=DEMO).json()["results"]
        assert {e["messageId"] for e in logs} == set(ids)
        v3 = x.get("/sms/3/logs", headers={"Authorization": "App demo-key"}).json()["results"]
        assert {e["messageId"] for e in v3} == set(ids)
    s, _ = login(a.url)
    for x in (a, b):  # one login (the session is in the store, the cookie key shared) holds on both
        page = s.get(x.url + "/ui/api/log", timeout=10)
        assert page.status_code == 200, page.text
        assert [r["cells"]["messageId"] for r in page.json()["rows"]] == ids[::-1]
    assert s.post(b.url + "/ui/logout", data={"csrf_token": _csrf_of(s, b.url)}, timeout=10).status_code in (200, 302)
    assert s.get(a.url + "/ui/api/log", timeout=10).status_code == 401  # logged out on B: out on A too


def _csrf_of(s: Any, url: str) -> str:
    import re

    page = s.get(url + "/ui/builder", timeout=10)
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_idempotency_keys_and_duplicate_suppression_hold_across_instances(cluster, sandbox):
    a, b = cluster(), cluster()
    params = {**DEMO, "to": "41793026727", "text": "pay once"}
    first = a.get("/sms/1/text/query", params=params, headers={"Idempotency-Key": "k-cluster-1"})
    again = b.get("/sms/1/text/query", params=params, headers={"Idempotency-Key": "k-cluster-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    dup1 = b.get("/sms/1/text/query", params={**DEMO, "to": "41793026728", "text": "alarm once"})
    dup2 = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026728", "text": "alarm once"})
    assert dup1.status_code == dup2.status_code == 200
    assert dup2.json()["messages"][0]["messageId"] == dup1.json()["messages"][0]["messageId"]
    assert len(sandbox.messages()) == 2  # one per distinct request, whichever instance answered


def test_conversion_tracking_and_scheduled_bulks_work_through_either_instance(cluster, sandbox):
    a, b = cluster(), cluster()
    mid = _send(a, to="41793026727")["messages"][0]["messageId"]
    r = b.get(f"/ct/1/log/end/{mid}", params=DEMO)
    assert r.status_code == 200, r.text
    calls = len([x for x in sandbox.requests() if x["path"].startswith("/ct/")])
    assert a.get(f"/ct/1/log/end/{mid}", params=DEMO).status_code == 200
    assert len([x for x in sandbox.requests() if x["path"].startswith("/ct/")]) == calls  # recorded: not again
    send_at = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(time.time() + 86400))
    r = a.post("/sms/2/text/advanced", auth=("demo", "demo"), json={
        "bulkId": "cluster-bulk", "messages": [{"destinations": [{"to": "41793026727"}, {"to": "41793026728"}],
                                                "text": "later", "sendAt": send_at}]})
    assert r.status_code == 200, r.text
    got = b.get("/sms/1/bulks", params={"bulkId": "cluster-bulk"}, auth=("demo", "demo"))
    assert got.status_code == 200 and got.json()["bulkId"] == "cluster-bulk", got.text
    paused = requests.put(b.url + "/sms/1/bulks/status", timeout=10, params={"bulkId": "cluster-bulk"}, auth=("demo", "demo"),
                   json={"status": "PAUSED"})
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text
    status = a.get("/sms/1/bulks/status", params={"bulkId": "cluster-bulk"}, auth=("demo", "demo"))
    assert status.json()["status"] == "PAUSED"


# -- the connection pool ------------------------------------------------------------------------------------
def _backends(pg_url: str) -> int:
    import psycopg

    with psycopg.connect(pghelp.server_url(), autocommit=True) as admin:
        return int(admin.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s",
                                 (pg_url.rsplit("/", 1)[1],)).fetchone()[0])


def test_each_process_holds_at_most_its_pool_plus_the_listener(cluster, sandbox, pg_url):
    a = cluster(lambda raw: raw["store"].update(pool_size=3))
    listening(a)
    assert services(a).db.pooled and services(a).db.pool_size == 3
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _backends(pg_url))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    answers: list[int] = []

    def send(i: int) -> None:
        for k in range(4):
            r = a.get("/sms/1/text/query", params={**DEMO, "to": f"41793{i:02d}{k:04d}", "text": f"p {i} {k}"})
            answers.append(r.status_code)

    senders = [threading.Thread(target=send, args=(i,)) for i in range(8)]  # 8 HTTP threads, 3 connections
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    watcher.join()
    assert answers == [200] * 32 and len(sandbox.messages()) == 32
    assert 2 <= peak[0] <= 3 + 1  # the pool and the LISTEN connection, whatever the threads


def test_a_request_that_gets_no_connection_in_time_is_answered_503_and_nothing_is_sent(cluster, sandbox):
    a = cluster(lambda raw: raw["store"].update(pool_size=1))
    db = services(a).db
    db.pool_timeout = 0.5  # the busy timeout's 10 s, shortened for the test
    db.connection()  # this test thread takes the pool's only connection and keeps it
    try:
        r = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "no connection"})
        assert r.status_code == 503, r.text
        assert r.json()["requestError"]["serviceException"]["messageId"] == "SERVICE_UNAVAILABLE"
        assert sandbox.messages() == []
    finally:
        db.release()
    ok = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "connection back"})
    assert ok.status_code == 200, ok.text


def test_a_starting_instance_leaves_other_instances_sync_sends_and_leases_alone(pg_url):
    from gateway.clock import ManualClock
    from gateway.store.records import MessageRow, Store, SubmissionRecord

    clock = ManualClock(1000.0)
    db = Database(pg_url)
    store = Store(db, clock)

    def sync(token: str, upstream_id: str | None, lease: float | None) -> None:
        row = MessageRow(upstream_id or token, upstream_id, "41793026727", None, "hi", "{}" if upstream_id else "",
                         None, None, None, False, None, None, "sending", lease_until=lease)
        store.accept(SubmissionRecord("demo", "query", "sync", "advanced" if upstream_id else "query", None, token,
                                      None), [row])

    try:
        sync("old-query", None, None)  # a query-API sync send whose instance died long ago
        clock.advance(100)
        sync("live-query", None, None)  # another instance is waiting for the upstream right now
        sync("live-ids", "u-1", clock.now() + 40)  # another instance's sync send with its lease running
        assert store.requeue_inflight(stale_after=60) == 0
        states = dict(db.connection().execute(sa.text("SELECT message_id, state FROM messages")).all())
        assert states == {"old-query": "unknown", "live-query": "sending", "u-1": "sending"}
    finally:
        db.close()


def test_a_postgresql_store_without_a_shared_ui_secret_key_is_warned_about():
    from gateway.config import build_config
    from tests.conftest import default_raw_config

    raw = default_raw_config()
    raw["store"] = {"url": "postgresql://smsbridge@db.example:5432/smsbridge"}
    warned = [w for w in build_config(raw, env={}).warnings if w.startswith("ui.secret_key")]
    assert raw["ui"].get("enabled") and len(warned) == 1 and "every bridge" in warned[0]
    raw["ui"]["secret_key"] = "shared-0123456789abcdef0123456789"
    assert not [w for w in build_config(raw, env={}).warnings if w.startswith("ui.secret_key")]
