"""``kill -9`` of a real bridge process during a burst of GETs, each retried (issue 13 item 12, for items 1
and 2): sync and queued callers mixed, with and without idempotency keys. Every request answered 200 -
first try or retry - reaches the sandbox exactly once, and a retry of an answered request gets its first
answer (same messageIds), before and after the restart.

Then one request killed at a chosen moment, its retry after the restart once the key's lease (1 + 3 s upstream
timeouts + ``store.lease_margin`` 1 s) has passed: killed while the upstream held it (recorded, maybe sent) the
retry is answered from the record, with the same ids, and nothing is sent again; killed after the reservation
but before the record (the test holds PostgreSQL's lock on ``submissions``) the retry sends, once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gateway.clock import ManualClock
from gateway.config import SandboxSettings
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests import pghelp
from tests.helpers import wait_for
from tests.test_queued_crash import _config, _start

BURST = 240
CREDS = {"username": "demo", "password": "demo"}


def _request(i: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Request ``i``: queued query GETs and sync template GETs, every other one with a key."""
    headers = {"Idempotency-Key": f"burst-key-{i}"} if i % 2 else {}
    if i % 3 == 0:  # the alarm template is sync (query API upstream)
        return "/t/alarm", {**CREDS, "phone": f"4179{i:07d}", "msg": f"burst-{i}"}, headers
    return "/sms/1/text/query", {**CREDS, "to": f"4179{i:07d}", "text": f"burst-{i}"}, headers


def test_kill_9_with_retried_gets_sends_each_accepted_message_once(tmp_path: Path) -> None:
    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=8).start()
    config = _config(tmp_path, sandbox.url)
    raw = yaml.safe_load(config.read_text())
    raw["idempotency"] = {"wait": 1}  # a request of the killed process stays in flight until its lease: 409 sooner
    config.write_text(yaml.safe_dump(raw))
    proc, url = _start(config)
    first: dict[int, list[str]] = {}  # request -> the messageIds of its first 200
    lock = threading.Lock()
    killed = threading.Event()

    def send(base: str, i: int) -> requests.Response | None:
        path, params, headers = _request(i)
        try:
            return requests.get(base + path, params=params, headers=headers, timeout=15)
        except requests.RequestException:
            return None  # the process died under this request

    def ids(r: requests.Response) -> list[str]:
        return [m["messageId"] for m in r.json()["messages"]]

    def burst(i: int) -> None:
        for _ in range(2):  # the legacy client's retry after its first answer (or after a timeout)
            r = send(url, i)
            if r is None or r.status_code != 200:
                continue
            with lock:
                if i in first:
                    assert ids(r) == first[i], f"a retry of request {i} got other messageIds"
                    assert r.headers.get("Idempotent-Replayed") == "true"
                else:
                    first[i] = ids(r)
                if len(first) == BURST // 3 and not killed.is_set():
                    killed.set()
                    os.kill(proc.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(burst, range(BURST)))
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        proc, url = _start(config)  # same database
        before = dict(first)
        for i in range(BURST):  # every request retried once more after the restart
            r = send(url, i)
            assert r is not None and r.status_code in (200, 409), (i, r.status_code if r else None)
            if r.status_code == 200:
                if i in before:
                    assert ids(r) == before[i] and r.headers.get("Idempotent-Replayed") == "true", i
                first.setdefault(i, ids(r))
            else:  # 409: its first try died with the process (in flight until its lease): never a second send
                assert "still being processed" in r.text

        def texts() -> list[str]:
            got = requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()
            return [re.search(r"burst-\d+", m["text"]).group(0) for m in got]  # type: ignore[union-attr]

        wait_for(lambda: {f"burst-{i}" for i in first} <= set(texts()), timeout=30,
                 what="every accepted message upstream")
        seen = texts()
        assert len(seen) == len(set(seen)), "a message reached the upstream twice"
    finally:
        proc.kill()
        proc.wait(10)
        sandbox.stop()


SYNCER = {"username": "syncer", "password": "demo"}  # a sync caller, advanced API upstream (the bridge's ids)


def _short_leases(config: Path, store: dict[str, Any] | None = None) -> None:
    """A sync send's (and its key's) lease of 1 + 3 + 1 s; a retry of a live key is refused at once."""
    raw = yaml.safe_load(config.read_text())
    raw["upstream"].update(connect_timeout=1, read_timeout=3)
    raw["store"] = {**(store or raw["store"]), "lease_margin": 1}
    raw["idempotency"] = {"wait": 0}
    config.write_text(yaml.safe_dump(raw))


def _in_background(fn: Any) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _after_the_lease(url: str, params: dict[str, str], headers: dict[str, str], path: str = "/sms/1/text/query",
                     status: int = 200) -> requests.Response:
    """Retry the way a legacy client does until it gets an answer other than 409 (the dead request's lease)."""
    def answered() -> list[requests.Response]:  # a list: a Response of 4xx/5xx is falsy
        r = requests.get(url + path, params=params, headers=headers, timeout=15)
        assert r.status_code in (status, 409), r.text
        return [r] if r.status_code == status else []
    return wait_for(answered, timeout=30, interval=0.2, what="an answer once the dead request's lease passed")[0]


@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "duplicate-fingerprint"])
def test_retry_of_a_request_killed_while_upstream_is_answered_from_the_record(tmp_path: Path, keyed: bool) -> None:
    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=4).start()
    config = _config(tmp_path, sandbox.url)
    _short_leases(config)
    text = f"alarm {uuid.uuid4().hex}"
    params = {**SYNCER, "to": "41793026727,41793026728", "text": text}
    headers = {"Idempotency-Key": f"alarm-{uuid.uuid4()}"} if keyed else {}
    proc, url = _start(config)
    try:
        # the upstream holds the first request 2 s (then accepts it, whoever still waits): the kill comes meanwhile
        requests.post(sandbox.url + "/sandbox/faults", json={"delay_ms": 2000, "count": 1}, timeout=5).raise_for_status()
        _in_background(lambda: send_ignoring_the_kill(url, params, headers))
        wait_for(lambda: requests.get(sandbox.url + "/sandbox/requests", timeout=5).json(), what="the send upstream")
        _kill(proc)

        def upstream() -> list[dict[str, Any]]:
            got = requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()
            return [m for m in got if m["text"] == text]

        sent = wait_for(lambda: len(upstream()) == 2 and upstream(), what="the upstream accepting the held send")
        proc, url = _start(config)  # same database
        r = _after_the_lease(url, params, headers)
        body = r.json()
        assert r.headers.get("Idempotent-Replayed") == "true"
        assert sorted(m["messageId"] for m in body["messages"]) == sorted(m["messageId"] for m in sent)
        assert body["bulkId"] == sent[0]["bulkId"]
        assert all(m["status"]["groupName"] == "PENDING" for m in body["messages"]), body
        if not keyed:
            assert r.headers["X-Duplicate-Of"] == body["bulkId"]
        again = requests.get(url + "/sms/1/text/query", params=params, headers=headers, timeout=15)
        assert again.status_code == 200 and again.content == r.content  # the reconciled answer is the key's now
        # the restarted bridge reconciles the recorded send (same ids: refused upstream as a duplicate)
        wait_for(lambda: len(requests.get(sandbox.url + "/sandbox/requests", timeout=5).json()) >= 2,
                 what="the reconciliation's resend")
        assert sorted(m["messageId"] for m in upstream()) == sorted(m["messageId"] for m in sent)  # each once
    finally:
        proc.kill()
        proc.wait(10)
        sandbox.stop()


def send_ignoring_the_kill(url: str, params: dict[str, str], headers: dict[str, str],
                           path: str = "/sms/1/text/query") -> None:
    try:
        requests.get(url + path, params=params, headers=headers, timeout=30)
    except requests.RequestException:
        pass  # the process died under it


def test_retry_of_a_query_api_send_killed_upstream_gets_its_unknown_outcome_not_a_resend(tmp_path: Path) -> None:
    """The query API carries no ids, so nothing can reconcile a send the upstream may hold: the retry gets the
    answer a timeout would have given (504, outcome unknown), bound to the key; nothing is sent again."""
    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=4).start()
    config = _config(tmp_path, sandbox.url)
    _short_leases(config)
    raw = yaml.safe_load(config.read_text())
    raw["templates"]["alarm"]["api"] = "query"
    config.write_text(yaml.safe_dump(raw))
    params = {**CREDS, "phone": "41793026727", "msg": f"zone {uuid.uuid4().hex}"}
    headers = {"Idempotency-Key": f"alarm-{uuid.uuid4()}"}
    proc, url = _start(config)
    try:
        requests.post(sandbox.url + "/sandbox/faults", json={"delay_ms": 2000, "count": 1}, timeout=5).raise_for_status()
        _in_background(lambda: send_ignoring_the_kill(url, params, headers, "/t/alarm"))  # sync, query API upstream
        wait_for(lambda: requests.get(sandbox.url + "/sandbox/requests", timeout=5).json(), what="the send upstream")
        _kill(proc)
        wait_for(lambda: requests.get(sandbox.url + "/sandbox/messages", timeout=5).json(), what="the upstream's accept")
        proc, url = _start(config)
        r = _after_the_lease(url, params, headers, "/t/alarm", 504)
        assert "outcome is unknown" in r.text
        again = requests.get(url + "/t/alarm", params=params, headers=headers, timeout=15)
        assert again.status_code == 504 and again.content == r.content and again.headers["Idempotent-Replayed"] == "true"
        assert len(requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()) == 1
        assert len(requests.get(sandbox.url + "/sandbox/requests", timeout=5).json()) == 1  # never resent
    finally:
        proc.kill()
        proc.wait(10)
        sandbox.stop()


def test_retry_of_a_request_killed_before_its_record_sends_once(tmp_path: Path) -> None:
    for make in pghelp.databases():  # skips (or fails under SMSBRIDGE_REQUIRE_POSTGRES=1) without a server
        _killed_before_the_record(tmp_path, make())


@contextmanager
def _retried_after_a_kill_before_its_record(tmp_path: Path, db_url: str, params: dict[str, str],
                                            headers: dict[str, str], row_key: str, left: str | None = None,
                                            ) -> Iterator[tuple[str, str, requests.Response]]:
    """A bridge on PostgreSQL whose request (``params``, ``headers``) is killed once its idempotency row
    ``row_key`` is written but before its record (PostgreSQL's lock on ``submissions`` holds the record):
    nothing recorded, nothing sent (``left``: the row's state then). Restarted, the same request is retried
    after the lease: sent by the retry (not a replay), and replayed byte for byte to the next. Yields the
    sandbox's URL, the bridge's and the retry's answer."""
    import psycopg

    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=4).start()
    config = _config(tmp_path, sandbox.url)
    _short_leases(config, {"url": db_url})
    proc, url = _start(config)
    plain = db_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain, autocommit=True) as look, psycopg.connect(plain) as lock:
            lock.execute("LOCK TABLE submissions IN EXCLUSIVE MODE")  # the record waits; the reservations do not

            def row() -> list[Any]:
                return look.execute("SELECT state FROM idempotency WHERE key = %s", (row_key,)).fetchall()

            _in_background(lambda: send_ignoring_the_kill(url, params, headers))
            wait_for(row, what=f"{row_key} reserved")
            _kill(proc)
            lock.rollback()
            if left is not None:
                assert row() == [(left,)]  # as the dead process left it
            assert look.execute("SELECT count(*) FROM submissions").fetchone() == (0,)  # nothing recorded
        assert requests.get(sandbox.url + "/sandbox/requests", timeout=5).json() == []
        proc, url = _start(config)
        r = _after_the_lease(url, params, headers)
        assert "Idempotent-Replayed" not in r.headers  # sent by this request
        again = requests.get(url + "/sms/1/text/query", params=params, headers=headers, timeout=15)
        assert again.content == r.content and again.headers["Idempotent-Replayed"] == "true"
        yield sandbox.url, url, r
    finally:
        proc.kill()
        proc.wait(10)
        sandbox.stop()


def _killed_before_the_record(tmp_path: Path, db_url: str) -> None:
    text = f"alarm {uuid.uuid4().hex}"
    params = {**SYNCER, "to": "41793026727", "text": text}
    headers = {"Idempotency-Key": f"alarm-{uuid.uuid4()}"}
    with _retried_after_a_kill_before_its_record(tmp_path, db_url, params, headers,
                                                 "key:" + headers["Idempotency-Key"], left="inflight") as (sbx, _, r):
        messages = requests.get(sbx + "/sandbox/messages", timeout=5).json()
        assert [m["messageId"] for m in messages if m["text"] == text] == [r.json()["messages"][0]["messageId"]]
        assert len(messages) == 1


def test_a_slow_first_request_loses_its_key_to_a_retry_and_sends_nothing(make_bridge, sandbox, pg_database) -> None:
    """A first request alive but slower than its key's lease between its reservation and its record (here
    PostgreSQL's lock on ``submissions`` holds its record; in production a DNS lookup, a pool wait, a group
    commit) loses the key to a retry on another bridge, which sends: the first's record is fenced, so it
    records and sends nothing and answers 409 "taken over"; later retries get the retry's answer. The
    bridges' clock is a manual one: the lease passes when the test says."""
    import psycopg

    url = pg_database()
    clock = ManualClock()
    a, b = (make_bridge(lambda raw: raw.update(store={"url": url}, idempotency={"wait": 0}), clock=clock)
            for _ in range(2))
    lease = a.app.extensions["smsbridge"].config.sync_lease
    key = f"alarm-{uuid.uuid4()}"
    params = {**CREDS, "to": "41793026727", "text": f"alarm {uuid.uuid4().hex}"}
    out: dict[str, requests.Response] = {}

    def send(name: str, bridge: Any) -> threading.Thread:
        return _in_background(lambda: out.__setitem__(name, bridge.get("/sms/1/text/query", params=params,
                                                                       headers={"Idempotency-Key": key})))

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as look, psycopg.connect(plain) as lock:
        def ref() -> list[Any]:
            return look.execute("SELECT ref FROM idempotency WHERE key = %s", ("key:" + key,)).fetchall()

        lock.execute("LOCK TABLE submissions IN EXCLUSIVE MODE")  # records wait; reservations do not
        first = send("first", a)
        held = wait_for(ref, what="the first request's key reserved")[0][0]
        clock.advance(lease + 1)  # the first request is still alive, waiting for its record
        retry = send("retry", b)
        wait_for(lambda: ref()[0][0] != held, what="the retry taking the key over")
        lock.rollback()  # both records go ahead: the first's is fenced
        first.join(15)
        retry.join(15)
    assert out["first"].status_code == 409 and "taken over by a retry" in out["first"].text, out["first"].text
    assert key in out["first"].text
    assert out["retry"].status_code == 200, out["retry"].text
    sent = [m for m in sandbox.messages() if m["text"] == params["text"]]
    assert [m["messageId"] for m in sent] == [out["retry"].json()["messages"][0]["messageId"]]  # sent once
    for bridge in (a, b):  # the retry's answer is the key's
        again = bridge.get("/sms/1/text/query", params=params, headers={"Idempotency-Key": key})
        assert again.content == out["retry"].content and again.headers["Idempotent-Replayed"] == "true"
    assert len([m for m in sandbox.messages() if m["text"] == params["text"]]) == 1


@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "duplicate-fingerprint"])
def test_retry_of_a_request_killed_after_reserving_its_message_id_sends_it_once(tmp_path: Path, keyed: bool) -> None:
    """The first request reserved its custom messageId, then died before its record (held by PostgreSQL's lock
    on ``submissions``): its retry, taking the key over, sends that messageId once (the dead request's
    reservation, same content, is its own), where it was refused as REJECTED_DUPLICATE_MESSAGE_ID and the
    message never sent. A request with other content still finds the messageId taken."""
    for make in pghelp.databases():
        _killed_after_the_message_id(tmp_path, make(), keyed)


def _killed_after_the_message_id(tmp_path: Path, db_url: str, keyed: bool) -> None:
    mid = f"my-{uuid.uuid4().hex}"
    text = f"alarm {uuid.uuid4().hex}"
    params = {**SYNCER, "to": "41793026727", "text": text, "messageId": mid}
    headers = {"Idempotency-Key": f"alarm-{uuid.uuid4()}"} if keyed else {}
    with _retried_after_a_kill_before_its_record(tmp_path, db_url, params, headers, "mid:" + mid) as (sbx, url, r):
        [m] = r.json()["messages"]
        assert m["messageId"] == mid and m["status"]["groupName"] == "PENDING", m  # not REJECTED_DUPLICATE_…
        got = [m for m in requests.get(sbx + "/sandbox/messages", timeout=5).json() if m["text"] == text]
        assert [m["messageId"] for m in got] == [mid]  # sent once
        # the control: other content reusing the messageId (its own key, if any) is refused, nothing sent
        other = {**params, "text": f"other {uuid.uuid4().hex}"}
        dup = requests.get(url + "/sms/1/text/query", params=other,
                           headers={"Idempotency-Key": f"other-{uuid.uuid4()}"} if keyed else {}, timeout=15)
        assert dup.status_code == 200, dup.text
        assert dup.json()["messages"][0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID"
        assert [m["messageId"] for m in requests.get(sbx + "/sandbox/messages", timeout=5).json()] == [mid]
