"""Several bridges on one PostgreSQL database (issue 15 items 2 and 4): real bridges over real HTTP sharing one
fresh database and one sandbox; any instance takes any request. Without a server these tests skip with the
reason (fail under ``SMSBRIDGE_REQUIRE_POSTGRES=1``), like tests/test_postgres.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.store import periodic
from gateway.store.engine import Database
from tests import pghelp
from tests.conftest import DEMO, running_sandbox
from tests.helpers import wait_for

POLL = 60.0  # idle workers' poll interval in these tests: anything sooner came from NOTIFY


@pytest.fixture
def pg_url() -> Iterator[str]:
    """One fresh PostgreSQL database (URL) for the whole cluster of the test; skips without a server."""
    gen = pghelp.databases()
    make = next(gen)
    yield make()
    next(gen, None)


@pytest.fixture
def cluster(make_bridge, pg_url) -> Callable[..., Any]:
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
