"""Outbox behaviour over real HTTP (waitress receiver on 127.0.0.1) and real SQLite files."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock, SystemClock
from gateway.delivery.outbox import MAX_ATTEMPTS, RETRY_DELAYS, Outbox, retry_delay
from gateway.delivery.urlpolicy import UrlNotAllowed, UrlPolicy
from gateway.store.engine import Database
from tests.helpers import free_port, wait_for
from tests.receiver import Receiver
from tests.storehelp import q1

T0 = 1_700_000_000.0
LOOPBACK = UrlPolicy(allow_loopback=True)


def loopback_ok(caller: str | None) -> UrlPolicy:
    return LOOPBACK


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(str(tmp_path / "bridge.db"))
    yield d
    d.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_outbox(db: Database, clock, **kw) -> Outbox:
    kw.setdefault("policy_for", loopback_ok)
    kw.setdefault("read_timeout", 5)
    return Outbox(db, clock, **kw)


def step_to_next(ob: Outbox, clock: ManualClock, job_id: int) -> int:
    """Advance the manual clock to the job's next attempt and run it; return attempts made."""
    job = ob.job(job_id)
    assert job is not None and job.state == "pending"
    clock.set(job.next_at)
    return ob.run_due()


# -- schedule ---------------------------------------------------------------------------------
def test_schedule_matches_infobip_table() -> None:
    minutes = [d // 60 for d in RETRY_DELAYS]
    assert len(RETRY_DELAYS) == 20 and MAX_ATTEMPTS == 21
    assert minutes[:7] == [1, 2, 5, 10, 17, 26, 37]
    assert list(itertools.accumulate(minutes))[:7] == [1, 3, 8, 18, 35, 61, 98]
    assert sum(minutes) == 2490 == 41 * 60 + 30  # last retry 41 h 30 min after the first attempt
    assert retry_delay(1) == 60 and retry_delay(20) == 60 * 362 and retry_delay(21) is None
    assert retry_delay(2, time_scale=0.001) == pytest.approx(0.12)


def test_receiver_down_for_three_attempts_gets_fourth_on_schedule(db, clock, receiver) -> None:
    receiver.fail_first = 3
    ob = make_outbox(db, clock)
    jid = ob.enqueue("dlr", receiver.url("/dlr"), body=b'{"results":[]}', content_type="application/json")
    assert ob.run_due() == 1
    for expected_gap in (60, 120, 300):
        clock.advance(expected_gap - 1)
        assert ob.run_due() == 0, "not due before its time"
        clock.advance(1)
        assert ob.run_due() == 1
    job = ob.job(jid)
    assert job is not None and job.state == "done" and job.attempts == 4 and job.last_status == 200
    ats = [a["at"] - T0 for a in ob.attempts(jid)]
    assert ats == [0, 60, 180, 480]
    assert [a["http_status"] for a in ob.attempts(jid)] == [500, 500, 500, 200]
    got = receiver.snapshot()
    assert len(got) == 4 and got[-1].body == b'{"results":[]}'
    assert got[-1].headers["Content-Type"] == "application/json" and got[-1].method == "POST"


def test_connection_refused_until_receiver_starts(db, clock) -> None:
    port = free_port()
    ob = make_outbox(db, clock)
    jid = ob.enqueue("inbound", f"http://127.0.0.1:{port}/in", method="GET")
    ob.run_due()
    job = ob.job(jid)
    assert job is not None and job.state == "pending" and job.last_status is None
    assert "refused" in (job.last_error or "")
    assert job.next_at == T0 + 60
    r = Receiver().start(port)
    try:
        assert step_to_next(ob, clock, jid) == 1
        assert ob.job(jid).state == "done"  # type: ignore[union-attr]
        assert r.count() == 1 and r.snapshot()[0].method == "GET"
    finally:
        r.close()


def test_dead_after_twenty_one_attempts_then_redrive(db, clock, receiver) -> None:
    receiver.status = 503
    ob = make_outbox(db, clock)
    jid = ob.enqueue("dlr-legacy", receiver.url(), method="GET")
    ob.run_due()
    for _ in range(20):
        step_to_next(ob, clock, jid)
    job = ob.job(jid)
    assert job is not None and job.state == "dead" and job.attempts == 21 and job.last_status == 503
    attempts = ob.attempts(jid)
    assert len(attempts) == 21 == receiver.count()
    assert attempts[-1]["at"] - attempts[0]["at"] == 2490 * 60
    assert [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)] == list(RETRY_DELAYS)
    assert [j.id for j in ob.dead_letters()] == [jid]
    assert ob.depth() == 0 and ob.stats()["dead"] == 1 and ob.stats()["retries"] == 20
    clock.advance(3600)
    assert ob.run_due() == 0, "dead letters are not retried on their own"
    receiver.status = 200
    assert ob.redrive(jid) is True
    assert ob.redrive(jid) is False, "only dead jobs are re-driven"
    assert ob.run_due() == 1
    job = ob.job(jid)
    assert job is not None and job.state == "done" and job.attempts == 1
    assert receiver.count() == 22 and ob.dead_letters() == []


def test_run_due_works_after_workers_stopped(db, clock, receiver) -> None:
    ob = make_outbox(db, clock, workers=1)
    ob.start()
    assert ob.stop(5)
    jid = ob.enqueue("dlr", receiver.url())
    assert ob.run_due() == 1 and ob.job(jid).state == "done"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_success(db, clock, receiver, status) -> None:
    receiver.status = status
    ob = make_outbox(db, clock)
    jid = ob.enqueue("dlr", receiver.url(), body="x")
    ob.run_due()
    job = ob.job(jid)
    assert job is not None and job.state == "done" and job.last_status == status
    assert ob.stats()["delivered"] == 1


@pytest.mark.parametrize("status", [301, 400, 404, 408, 429, 500, 502])
def test_non_2xx_is_retried_by_default(db, clock, receiver, status) -> None:
    receiver.status = status
    ob = make_outbox(db, clock)
    jid = ob.enqueue("dlr", receiver.url(), body="x")
    ob.run_due()
    job = ob.job(jid)
    assert job is not None and job.state == "pending" and job.attempts == 1 and job.last_status == status
    assert f"HTTP {status}" in (job.last_error or "")


@pytest.mark.parametrize(("status", "state"), [(400, "dead"), (404, "dead"), (408, "pending"), (429, "pending"), (500, "pending")])
def test_4xx_not_retried_when_retry_on_4xx_off(db, clock, receiver, status, state) -> None:
    receiver.status = status
    ob = make_outbox(db, clock, retry_on_4xx=False)
    jid = ob.enqueue("dlr", receiver.url(), body="x")
    ob.run_due()
    job = ob.job(jid)
    assert job is not None and job.state == state and job.attempts == 1


def test_url_policy_at_enqueue_and_at_delivery(db, clock, receiver) -> None:
    policies = {"alice": UrlPolicy(allow_loopback=True)}
    ob = make_outbox(db, clock, policy_for=lambda caller: policies.get(caller, UrlPolicy(allow_public=True)))
    with pytest.raises(UrlNotAllowed, match="loopback"):
        ob.enqueue("dlr", receiver.url(), caller="bob")
    assert ob.jobs() == []
    jid = ob.enqueue("dlr", receiver.url(), caller="alice")
    policies["alice"] = UrlPolicy(allow_public=True)  # the administrator tightened alice's policy
    ob.run_due()
    job = ob.job(jid)
    assert job is not None and job.state == "dead" and job.attempts == 0
    assert "loopback" in (job.last_error or "") and "127.0.0.1" in (job.last_error or "")
    assert receiver.count() == 0, "a refused URL is never called"


def test_default_policy_refuses_loopback(db, clock, receiver) -> None:
    ob = Outbox(db, clock)
    with pytest.raises(UrlNotAllowed):
        ob.enqueue("dlr", receiver.url())


def test_error_texts_never_carry_secrets(db, clock, receiver) -> None:
    receiver.status = 500
    ob = make_outbox(db, clock)
    jid = ob.enqueue("dlr-legacy", receiver.url("/cb") + "?user=u&password=s3cret&apikey=K3Y&msg=hi", method="GET")
    ob.run_due()
    job = ob.job(jid)
    assert job is not None
    text = (job.last_error or "") + str(ob.attempts(jid)) + str(job.public())
    assert "s3cret" not in text and "K3Y" not in text
    assert "password=***" in (job.last_error or "") and "msg=hi" in (job.last_error or "")
    assert receiver.snapshot()[0].query == "user=u&password=s3cret&apikey=K3Y&msg=hi", "the real URL is sent"


def test_read_timeout_is_a_retryable_failure(db, clock) -> None:
    slow = Receiver(delay=0.5).start()
    try:
        ob = make_outbox(db, clock, read_timeout=0.2)
        jid = ob.enqueue("dlr", slow.url())
        ob.run_due()
        job = ob.job(jid)
        assert job is not None and job.state == "pending"
        assert "no answer within 0.2 s" in (job.last_error or "")
    finally:
        slow.close()


def test_enqueue_joins_the_callers_transaction(db, clock, receiver) -> None:
    ob = make_outbox(db, clock)
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            ob.enqueue("dlr", receiver.url(), conn=conn)
            raise RuntimeError("report storage failed")
    assert ob.jobs() == []
    with db.transaction() as conn:
        jid = ob.enqueue("dlr", receiver.url(), conn=conn, ref="msg-1", caller="alice")
    job = ob.job(jid)
    assert job is not None and job.ref == "msg-1" and job.caller == "alice" and job.state == "pending"


def test_restart_continues_pending_jobs(tmp_path, receiver) -> None:
    path = str(tmp_path / "bridge.db")
    db1 = Database(path)
    first = make_outbox(db1, SystemClock())
    jid = first.enqueue("dlr", receiver.url(), body=b"survives")
    first.close()
    db1.close()  # the process "dies" before any delivery

    db2 = Database(path)
    second = make_outbox(db2, SystemClock(), workers=1)
    second.start()
    try:
        wait_for(lambda: second.job(jid).state == "done", what="delivery after restart")  # type: ignore[union-attr]
        assert [r.body for r in receiver.snapshot()] == [b"survives"]
    finally:
        assert second.stop(5)
        db2.close()


def test_expired_lease_makes_job_due_again(db, clock, receiver) -> None:
    ob = make_outbox(db, clock, lease_seconds=60)
    jid = ob.enqueue("dlr", receiver.url())
    claimed = ob._claim()  # a worker claims the job and then "crashes"
    assert claimed is not None and ob.job(jid).state == "leased"  # type: ignore[union-attr]
    assert ob.run_due() == 0, "a live lease is respected"
    clock.advance(61)
    assert ob.run_due() == 1
    assert ob.job(jid).state == "done" and receiver.count() == 1  # type: ignore[union-attr]
    ob._deliver(*claimed)  # the stale worker wakes up: its result must not overwrite the job
    assert ob.job(jid).state == "done"  # type: ignore[union-attr]


def test_workers_follow_scaled_schedule_in_real_time(db, receiver) -> None:
    receiver.fail_first = 2
    ob = make_outbox(db, SystemClock(), time_scale=0.001, workers=2)  # 1 min = 60 ms
    ob.start()
    try:
        jid = ob.enqueue("dlr", receiver.url())
        wait_for(lambda: ob.job(jid).state == "done", what="delivery")  # type: ignore[union-attr]
    finally:
        assert ob.stop(5)
    ats = [a["at"] for a in ob.attempts(jid)]
    assert len(ats) == 3
    assert ats[1] - ats[0] >= 0.060 and ats[2] - ats[1] >= 0.120
    # The schedule is defined on attempt start times (above); arrival times at the receiver also carry
    # the machine's scheduling jitter, so only their count is asserted.
    assert receiver.count() == 3


def test_two_outboxes_on_one_file_deliver_each_job_exactly_once(tmp_path, receiver) -> None:
    path = str(tmp_path / "shared.db")
    dbs = [Database(path), Database(path)]
    boxes = [make_outbox(d, SystemClock(), workers=2) for d in dbs]
    for b in boxes:
        b.start()
    try:
        ids = [boxes[i % 2].enqueue("dlr", receiver.url(f"/job/{i}"), body=str(i)) for i in range(200)]
        wait_for(lambda: boxes[0].depth() == 0, timeout=60, what="all 200 jobs delivered")
    finally:
        for b in boxes:
            assert b.stop(10)
    paths = sorted(r.path for r in receiver.snapshot())
    assert paths == sorted(f"/job/{i}" for i in range(200))
    assert all(boxes[0].job(j).state == "done" for j in ids)  # type: ignore[union-attr]
    row = q1(dbs[0], "SELECT COUNT(*) AS n, COUNT(DISTINCT job_id) AS d FROM outbox_attempts")
    assert row is not None and row["n"] == row["d"] == 200
    assert sum(b.stats()["delivered"] for b in boxes) == 200
    for d in dbs:
        d.close()


def test_inspection_helpers(db, clock, receiver) -> None:
    ob = make_outbox(db, clock)
    assert ob.depth() == 0 and ob.oldest_age() is None
    a = ob.enqueue("dlr", receiver.url(), headers={"Authorization": "App secret"})
    clock.advance(30)
    b = ob.enqueue("inbound", receiver.url())
    assert ob.depth() == 2 and ob.oldest_age() == 30
    assert [j.id for j in ob.jobs()] == [b, a]
    assert [j.id for j in ob.jobs("pending", limit=1, offset=1)] == [a]
    assert ob.job(a).public()["headers"] == {"Authorization": "***"}  # type: ignore[union-attr]
    ob.run_due()
    assert ob.depth() == 0 and ob.stats() == {
        "attempts": 2, "delivered": 2, "retries": 0, "dead": 0, "depth": 0, "dead_letters": 0,
    }
    assert receiver.snapshot()[0].headers["Authorization"] == "App secret"
    with pytest.raises(ValueError):
        ob.jobs("bogus")
    with pytest.raises(ValueError):
        ob.enqueue("dlr", receiver.url(), method="DELETE")
