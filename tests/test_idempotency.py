"""Issue 13 items 1, 2, 9: idempotency keys, duplicate suppression, safe methods, reused custom messageIds.

Real bridge and sandbox over HTTP; the sandbox's delay fault holds a first request in flight."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from gateway.clock import ManualClock
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count
from tests.test_ui import login

AUTH = ("demo", "demo")
QUERY = "/sms/1/text/query?username=demo&password=demo&to=41793026727&text=Fire%20alarm%20zone%203"


def _advanced(to: list[str], text: str = "Door open", ids: list[str] | None = None) -> dict[str, Any]:
    dests = [{"to": t, **({"messageId": ids[i]} if ids else {})} for i, t in enumerate(to)]
    return {"messages": [{"destinations": dests, "text": text}]}


def _no_dedupe(raw: dict[str, Any]) -> None:
    raw["idempotency"] = {"dedupe_window": 0}


# -- item 1: idempotency keys ------------------------------------------------------------------------------
def test_retried_get_with_key_gets_the_first_answer_and_sends_once(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)  # the key alone must do it
    first = bridge.get(QUERY, headers={"Idempotency-Key": "alarm-1"})
    again = bridge.get(QUERY, headers={"Idempotency-Key": "alarm-1"})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # same bulkId, messageIds, format: the stored bytes
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(sandbox.sends()) == 1
    other = bridge.get(QUERY, headers={"Idempotency-Key": "alarm-2"})  # a new key is a new message
    assert other.status_code == 200 and other.json() != first.json()
    assert len(sandbox.sends()) == 2


def test_key_as_parameter_on_templates_xml_and_json_entrances(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    url = "/t/alarm.xml?username=demo&password=demo&idempotencyKey=k-xml&phone=41793026727&msg=Boiler%20fault"
    first, again = bridge.get(url), bridge.get(url)
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("application/xml")
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    for path, key in (("/sms/2/text/advanced", "k-adv"), ("/sms/3/messages", "k-v3")):
        body = _advanced(["41793026727", "41793026834"], text=path)
        if path == "/sms/3/messages":
            body = {"messages": [{"destinations": [{"to": "41793026727"}], "content": {"text": "v3"}}]}
        a = bridge.post(path, json=body, auth=AUTH, headers={"Idempotency-Key": f'"{key}"'})  # sf-string form
        b = bridge.post(path + f"?idempotencyKey={key}", json=body, auth=AUTH)
        assert a.status_code == b.status_code == 200, a.text
        assert b.json() == a.json() and b.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.sends()) == 3


def test_same_key_different_content_is_422_naming_the_conflict(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    assert bridge.get(QUERY, headers={"Idempotency-Key": "k1"}).status_code == 200
    r = bridge.get(QUERY.replace("zone%203", "zone%204"), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 422
    text = r.json()["requestError"]["serviceException"]["text"]
    assert "Idempotency-Key 'k1'" in text and "different request" in text
    other_caller = make_bridge(_no_dedupe)  # keys are per caller and per bridge database: unrelated
    assert other_caller.get(QUERY, headers={"Idempotency-Key": "k1"}).status_code == 200
    assert len(sandbox.sends()) == 2


def test_answer_that_sent_nothing_does_not_bind_the_key(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    bad = bridge.get(QUERY.replace("to=41793026727", "to="), headers={"Idempotency-Key": "fix-me"})
    assert bad.status_code == 400 and sandbox.sends() == []
    unauth = bridge.get(QUERY.replace("password=demo", "password=wrong"), headers={"Idempotency-Key": "fix-me"})
    assert unauth.status_code == 401
    late = bridge.get(QUERY + "&notifyUrl=http://10.1.2.3/dlr", headers={"Idempotency-Key": "fix-me"})
    assert late.status_code == 400 and "notifyUrl" in late.text  # refused by the send path, after the key's reservation
    good = bridge.get(QUERY, headers={"Idempotency-Key": "fix-me"})  # the corrected retry with the same key
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers
    assert len(sandbox.sends()) == 1


def test_invalid_keys_are_refused_naming_the_parameter(make_bridge, sandbox):
    bridge = make_bridge()
    r = bridge.get(QUERY + "&idempotencyKey=a", headers={"Idempotency-Key": "b"})
    assert r.status_code == 400 and "idempotencyKey" in r.json()["requestError"]["serviceException"]["text"]
    r = bridge.get(QUERY, headers={"Idempotency-Key": "x" * 256})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["requestError"]["serviceException"]["text"]
    assert sandbox.sends() == []


def _in_background(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def test_request_while_first_in_flight_waits_for_its_answer(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    sandbox.faults(delay_ms=1500)
    t, out = _in_background(lambda: bridge.get(QUERY, headers={"Idempotency-Key": "slow"}))
    wait_for(lambda: sandbox.requests(), what="the first request reaching the sandbox")
    second = bridge.get(QUERY, headers={"Idempotency-Key": "slow"})  # waits (idempotency.wait 10 s)
    t.join(10)
    first = out[0]
    assert first.status_code == second.status_code == 200
    assert second.content == first.content and second.headers["Idempotent-Replayed"] == "true"
    sandbox.faults()
    assert len(sandbox.sends()) == 1


def test_request_while_first_in_flight_gets_409_never_a_second_send(make_bridge, sandbox):
    def short_wait(raw: dict[str, Any]) -> None:
        raw["idempotency"] = {"dedupe_window": 0, "wait": 0.1}

    bridge = make_bridge(short_wait)
    sandbox.faults(delay_ms=1500)
    t, out = _in_background(lambda: bridge.get(QUERY, headers={"Idempotency-Key": "slow"}))
    wait_for(lambda: sandbox.requests(), what="the first request reaching the sandbox")
    second = bridge.get(QUERY, headers={"Idempotency-Key": "slow"})
    assert second.status_code == 409
    assert "still being processed" in second.json()["requestError"]["serviceException"]["text"]
    t.join(10)
    sandbox.faults()
    assert out[0].status_code == 200
    third = bridge.get(QUERY, headers={"Idempotency-Key": "slow"})  # once finished: the first answer
    assert third.content == out[0].content and third.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.sends()) == 1
    metrics = bridge.get("/metrics").text
    assert 'smsbridge_idempotency_refused_total{reason="conflict"} 1.0' in metrics
    assert 'smsbridge_idempotent_replays_total{kind="key"} 1.0' in metrics


def test_key_expires_after_ttl(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(lambda raw: raw.update(idempotency={"dedupe_window": 0, "ttl": 3600}), clock=clock)
    assert bridge.get(QUERY, headers={"Idempotency-Key": "k"}).status_code == 200
    clock.advance(3599)
    assert bridge.get(QUERY, headers={"Idempotency-Key": "k"}).headers.get("Idempotent-Replayed") == "true"
    clock.advance(2)
    fresh = bridge.get(QUERY, headers={"Idempotency-Key": "k"})
    assert fresh.status_code == 200 and "Idempotent-Replayed" not in fresh.headers
    assert len(sandbox.sends()) == 2
    ctx = bridge.app.extensions["smsbridge"]
    clock.advance(3601)
    assert ctx.prune()["idempotency"] == 1  # pruned with the store's retention job
    assert db_count(ctx.db, "idempotency") == 0


# -- item 2: duplicate suppression without a key ---------------------------------------------------------
def test_identical_get_within_window_is_answered_as_duplicate(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(clock=clock)  # the default window: 120 s
    first = bridge.get(QUERY)
    again = bridge.get(QUERY.replace("Fire%20alarm", "Fire+alarm").replace("password=demo&", "")
                       + "&password=demo")  # same parameters after decoding, in another order
    assert again.content == first.content
    assert again.headers["X-Duplicate-Of"] == first.json()["messages"][0]["messageId"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.sends()) == 1
    other = bridge.get(QUERY.replace("zone%203", "zone%204"))  # other content: sent
    assert other.status_code == 200 and "X-Duplicate-Of" not in other.headers
    clock.advance(121)  # a deliberate re-notification after the window is sent
    later = bridge.get(QUERY)
    assert "X-Duplicate-Of" not in later.headers and later.json() != first.json()
    assert len(sandbox.sends()) == 3
    assert 'smsbridge_idempotent_replays_total{kind="dedupe"} 1.0' in bridge.get("/metrics").text


def test_duplicate_json_body_and_bulk_reference(make_bridge, sandbox):
    bridge = make_bridge()
    body = _advanced(["41793026727", "41793026834"])
    first = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH)
    again = bridge.post("/sms/2/text/advanced", data='{"messages":[{"text":"Door open","destinations":'
                        '[{"to":"41793026727"},{"to":"41793026834"}]}]}', auth=AUTH,
                        headers={"Content-Type": "application/json"})
    assert again.json() == first.json() and again.headers["X-Duplicate-Of"] == first.json()["bulkId"]
    assert len(sandbox.sends()) == 1


def test_dedupe_window_per_caller_and_template(make_bridge, sandbox):
    def configure(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["dedupe_window"] = 0
        raw["templates"]["alarm"]["dedupe_window"] = 300

    bridge = make_bridge(configure)
    bridge.get(QUERY), bridge.get(QUERY)
    assert len(sandbox.sends()) == 2  # the caller switched it off
    url = "/t/alarm?username=demo&password=demo&phone=41793026727&msg=Boiler%20fault"
    assert bridge.get(url).status_code == 200
    assert bridge.get(url).headers.get("Idempotent-Replayed") == "true"  # the template switched it on
    assert len(sandbox.sends()) == 3


def test_duplicate_shows_in_the_log_ui(make_bridge, sandbox):
    bridge = make_bridge()
    bridge.get(QUERY), bridge.get(QUERY), bridge.get(QUERY)
    s, _ = login(bridge.url)
    rows = s.get(bridge.url + "/ui/api/log", params={"view": "messages"}, timeout=10).json()["rows"]
    assert len(rows) == 1 and rows[0]["cells"]["replays"] == "2 duplicate(s), not sent again"


# -- item 9: safe methods, reused custom messageIds -------------------------------------------------------
def test_head_and_options_never_send(make_bridge, sandbox):
    bridge = make_bridge()
    for path in (QUERY, "/t/alarm?username=demo&password=demo&phone=41793026727&msg=x",
                 "/sms/1/text/query.xml?username=demo&password=demo&to=41793026727&text=y"):
        head = requests.head(bridge.url + path, timeout=10)
        assert head.status_code == 405 and "GET" in head.headers["Allow"] and "HEAD" not in head.headers["Allow"]
        options = requests.options(bridge.url + path, timeout=10)
        assert options.status_code in (200, 204, 405)
    for path in ("/sms/2/text/advanced", "/sms/3/messages"):
        assert requests.head(bridge.url + path, auth=AUTH, timeout=10).status_code == 405
        requests.options(bridge.url + path, auth=AUTH, timeout=10)
    assert sandbox.sends() == []
    assert db_count(bridge.app.extensions["smsbridge"].db, "messages") == 0


def test_reused_custom_message_id_is_refused_per_destination(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    first = bridge.post("/sms/2/text/advanced", json=_advanced(["41793026727"], "one", ["my-id-1"]), auth=AUTH)
    assert first.json()["messages"][0]["status"]["groupName"] == "PENDING"
    r = bridge.post("/sms/2/text/advanced", json=_advanced(["41793026834", "41793026727"], "two",
                                                           ["my-id-1", "my-id-2"]), auth=AUTH)
    assert r.status_code == 200
    m = r.json()["messages"]
    assert m[0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID" and m[0]["status"]["groupName"] == "REJECTED"
    assert m[0]["messageId"] == "my-id-1" and m[0]["to"] == "41793026834"
    assert m[1]["status"]["groupName"] == "PENDING" and m[1]["messageId"] == "my-id-2"
    only_dup = bridge.post("/sms/2/text/advanced", json=_advanced(["41793026834"], "three", ["my-id-2"]), auth=AUTH)
    assert only_dup.json()["messages"][0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID"
    assert len(sandbox.sends()) == 2  # the third request sent nothing
    assert [m["to"] for m in sandbox.messages()] == ["41793026727", "41793026727"]  # my-id-1 went once
    assert 'smsbridge_idempotency_refused_total{reason="duplicate_message_id"} 2.0' in bridge.get("/metrics").text


def test_custom_message_id_with_key_is_a_replay_not_a_duplicate(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    body = _advanced(["41793026727"], "once", ["id-k"])
    a = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH, headers={"Idempotency-Key": "kk"})
    b = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH, headers={"Idempotency-Key": "kk"})
    assert b.json() == a.json() and a.json()["messages"][0]["status"]["groupName"] == "PENDING"
    assert len(sandbox.sends()) == 1


def test_refused_request_frees_its_custom_message_ids(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    sandbox.faults(status=400, count=1)  # the upstream refuses the whole request: nothing was sent
    bad = bridge.post("/sms/2/text/advanced", json=_advanced(["41793026727"], "x", ["id-free"]), auth=AUTH)
    assert bad.status_code == 400
    ok = bridge.post("/sms/2/text/advanced", json=_advanced(["41793026727"], "x", ["id-free"]), auth=AUTH)
    assert ok.json()["messages"][0]["status"]["groupName"] == "PENDING", ok.text


def test_config_refuses_bad_windows():
    import pytest

    from gateway.config import ConfigError, build_config
    from tests.conftest import default_raw_config

    raw = default_raw_config()
    raw["idempotency"] = {"dedupe_window": -1}
    raw["callers"]["demo"]["dedupe_window"] = "soon"
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    paths = [p for p, _ in exc.value.problems]
    assert "idempotency" in paths and "callers.demo.dedupe_window" in paths


def test_config_refuses_keys_kept_longer_than_their_records():
    """A key outliving its submission's record would let a late retry of a request that died in flight send
    again (its record pruned: nothing to answer from)."""
    from gateway.config import ConfigError, build_config
    from tests.conftest import default_raw_config

    raw = default_raw_config()
    raw["store"] = {**raw.get("store", {}), "retention_hours": 12}
    raw["idempotency"] = {"ttl": 86400}
    raw["templates"]["alarm"]["dedupe_window"] = 50000
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    problems = dict(exc.value.problems)
    assert set(problems) == {"idempotency.ttl", "templates.alarm.dedupe_window"}
    assert "longer than store.retention_hours" in problems["idempotency.ttl"]
    raw["idempotency"]["ttl"] = 43200
    raw["templates"]["alarm"]["dedupe_window"] = 120
    assert build_config(raw, env={}).idempotency.ttl == 43200



def test_upstream_failure_frees_the_key_but_a_timeout_binds_it(make_bridge, sandbox):
    def short(raw: dict[str, Any]) -> None:
        raw["upstream"]["read_timeout"] = 0.3
        raw["callers"]["demo"]["on_upstream_failure"] = "fail"  # default (queue) would answer 200 PENDING

    bridge = make_bridge(short)
    sandbox.faults(status=500, count=1)  # the upstream failed: nothing sent, the retry must be heard
    assert bridge.get(QUERY, headers={"Idempotency-Key": "k5"}).status_code == 502
    retry = bridge.get(QUERY, headers={"Idempotency-Key": "k5"})
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers
    assert len(sandbox.messages()) == 1
    sandbox.faults(delay_ms=1000)  # no answer in time: the upstream may hold it, a resend could double it
    url = QUERY.replace("zone%203", "zone%205")
    first = bridge.get(url, headers={"Idempotency-Key": "k6"})
    assert first.status_code == 504
    wait_for(lambda: len(sandbox.messages()) == 2, what="the slow upstream to accept it")
    again = bridge.get(url, headers={"Idempotency-Key": "k6"})
    assert again.status_code == 504 and again.headers["Idempotent-Replayed"] == "true"
    sandbox.faults()
    assert len(sandbox.messages()) == 2  # sent once, not twice


def test_concurrent_requests_with_one_key_send_once(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)
    sandbox.faults(delay_ms=300)  # they overlap in flight
    out: list[requests.Response] = []
    lock = threading.Lock()

    def one() -> None:
        r = requests.get(bridge.url + QUERY, headers={"Idempotency-Key": "together"}, timeout=20)
        with lock:
            out.append(r)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    sandbox.faults()
    assert [r.status_code for r in out] == [200] * 6
    assert len({r.content for r in out}) == 1  # one answer, given six times
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in out) == 5
    assert len(sandbox.sends()) == 1


def test_reused_message_id_in_v3_and_xml_shapes(make_bridge, sandbox):
    bridge = make_bridge(_no_dedupe)

    def v3(text: str) -> requests.Response:
        return bridge.post("/sms/3/messages", auth=AUTH, json={"messages": [{
            "destinations": [{"to": "41793026727", "messageId": "v3-id"}], "content": {"text": text}}]})

    assert v3("first").json()["messages"][0]["status"]["groupName"] == "PENDING"
    again = v3("second")
    assert again.status_code == 200
    assert again.json()["messages"][0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID"
    xml = bridge.post("/sms/2/text/advanced.xml", auth=AUTH, json=_advanced(["41793026834"], "third", ["v3-id"]))
    assert xml.status_code == 200 and "<name>REJECTED_DUPLICATE_MESSAGE_ID</name>" in xml.text
    assert len(sandbox.sends()) == 1


def test_reservation_is_atomic_across_threads_and_database_handles(tmp_path):
    """Two Database objects on one file stand for two processes (separate connections and write locks)."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.store.engine import Database
    from gateway.store.idempotency import RESERVED, Reservations

    path = str(tmp_path / "shared.db")
    handles = [Database(path), Database(path)]
    stores = [Reservations(db) for db in handles]

    def one(i: int) -> str:
        return stores[i % 2].reserve("demo", "key:same", "fp", "token", 1000.0, 60.0, 30.0).outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(32)))
    assert outcomes.count(RESERVED) == 1 and set(outcomes) == {RESERVED, "inflight"}
    assert stores[0].reserve("demo", "key:same", "other", "token", 1000.0, 60.0, 30.0).outcome == "mismatch"
    stores[1].complete("demo", "key:same", "token", 200, "application/json", b"{}", None, None, 1001.0)
    assert stores[0].reserve("demo", "key:same", "fp", "token", 1002.0, 60.0, 30.0).outcome == "done"
    assert stores[0].reserve("demo", "key:same", "fp", "token", 1061.0, 60.0, 30.0).outcome == RESERVED  # expired
    for db in handles:
        db.close()


def test_a_dead_requests_key_is_reconciled_from_its_record_or_taken_over(tmp_path):
    """A key in flight past its lease (its request's process died): ``recorded`` when that request recorded a
    submission under the key's token (answered from the record, never sent again), else taken over by the
    retry; a live lease stays ``inflight`` (409). Times are given: no waiting for a lease."""
    from gateway.store.engine import Database

    db = Database(str(tmp_path / "keys.db"))
    try:
        dead_requests_keys(db)
    finally:
        db.close()


def dead_requests_keys(db: Any) -> None:
    """The steps of the test above on ``db`` (test_postgres.py runs them on PostgreSQL)."""
    from gateway.store.idempotency import INFLIGHT, RECORDED, RESERVED, Reservations, recorded
    from gateway.store.records import MessageRow, Store, SubmissionRecord

    keys, store = Reservations(db), Store(db, ManualClock(1000.0))

    def row(to: str, mid: str) -> MessageRow:
        return MessageRow(mid, mid, to, None, "alarm", "{}", None, None, None, False, None, None, "sending")

    # lease 30 s: reserved at 1000, the process dies; its retries come at 1010 (live) and 1031 (dead)
    assert keys.reserve("demo", "key:sent", "fp", "tok-sent", 1000.0, 3600.0, 30.0).outcome == RESERVED
    store.accept(SubmissionRecord("demo", "query", "sync", "advanced", "bulk-1", "tok-sent", None),
                 [row("41791", "m-1"), row("41792", "m-2")])
    assert keys.reserve("demo", "key:sent", "fp", "tok-retry", 1010.0, 3600.0, 30.0).outcome == INFLIGHT
    slot = keys.reserve("demo", "key:sent", "fp", "tok-retry", 1031.0, 3600.0, 30.0)
    assert (slot.outcome, slot.ref) == (RECORDED, "tok-sent")
    # the reconciling retry holds the key for a lease of its own: a concurrent one waits for its answer
    assert keys.reserve("demo", "key:sent", "fp", "tok-other", 1032.0, 3600.0, 30.0).outcome == INFLIGHT
    rec = recorded(db, "tok-sent")
    assert rec.bulk_id == "bulk-1" and [(m.to, m.message_id, m.state) for m in rec.messages] == [
        ("41791", "m-1", "sending"), ("41792", "m-2", "sending")]
    assert keys.reserve("demo", "key:sent", "other", "tok-x", 1100.0, 3600.0, 30.0).outcome == "mismatch"

    # reserved, then the process died before its record: nothing was sent, the retry sends (under its token)
    assert keys.reserve("demo", "key:lost", "fp", "tok-lost", 1000.0, 3600.0, 30.0).outcome == RESERVED
    assert keys.reserve("demo", "key:lost", "fp", "tok-new", 1031.0, 3600.0, 30.0).outcome == RESERVED
    assert keys.reserve("demo", "key:lost", "fp", "tok-3", 1040.0, 3600.0, 30.0).outcome == INFLIGHT  # its lease

    # recorded, but every message failed (nothing was accepted): taken over as well
    assert keys.reserve("demo", "dedupe:f", "fp", "tok-failed", 1000.0, 120.0, 30.0).outcome == RESERVED
    failed = row("41793", "m-3")
    failed.state = "failed"
    store.accept(SubmissionRecord("demo", "query", "sync", "advanced", None, "tok-failed", None), [failed])
    assert keys.reserve("demo", "dedupe:f", "fp", "tok-again", 1031.0, 120.0, 30.0).outcome == RESERVED


def test_a_slow_requests_record_is_fenced_once_a_retry_took_its_key(tmp_path):
    """A live but slow first request (slower than its key's lease) whose key a retry took over records nothing
    (so sends nothing); its neighbours in the record's group are unaffected; it neither frees nor overwrites the
    retry's key; whichever of the fence and the take-over commits first wins, never both."""
    from gateway.store.engine import Database

    db = Database(str(tmp_path / "fence.db"))
    try:
        fenced_keys(db)
    finally:
        db.close()


def fenced_keys(db: Any) -> None:
    """The steps of the test above on ``db`` (test_postgres.py runs them on PostgreSQL)."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.store.idempotency import DONE, INFLIGHT, RESERVED, Reservations, _reserve_on, release
    from gateway.store.records import Fence, Fenced, MessageRow, Store, SubmissionRecord

    clock = ManualClock(1000.0)
    keys, store = Reservations(db), Store(db, clock)

    def record(token: str, key: str | None) -> SubmissionRecord:
        return SubmissionRecord("demo", "query", "sync", "advanced", None, token, None,
                                Fence("demo", key, 30.0) if key else None)

    def rows(mid: str) -> list[MessageRow]:
        return [MessageRow(mid, mid, "41791", None, "alarm", "{}", None, None, None, False, None, None, "sending")]

    def recorded(token: str) -> int:
        return db_count(db, "submissions", dlr_token=token)

    # reserved at 1000 (lease 30 s); the request is slow: a retry at 1031 finds nothing recorded and takes over
    assert keys.reserve("demo", "key:slow", "fp", "tok-slow", 1000.0, 3600.0, 30.0).outcome == RESERVED
    assert keys.reserve("demo", "key:slow", "fp", "tok-retry", 1031.0, 3600.0, 30.0).outcome == RESERVED
    clock.advance(35.0)
    # the slow request's record comes in a group with others: it alone fails, its neighbours are recorded
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(store.accept, record(f"tok-n{i}", None), rows(f"n-{i}")) for i in range(6)]
        slow = pool.submit(store.accept, record("tok-slow", "key:slow"), rows("m-slow"))
        assert all(f.result() > 0 for f in futures)
    with pytest.raises(Fenced):
        slow.result()
    assert recorded("tok-slow") == 0 and recorded("tok-n0") == 1
    # the slow request answers 409 (nothing sent): it frees nothing, completes nothing
    release(db, "demo", ["key:slow"], "tok-slow")
    keys.complete("demo", "key:slow", "tok-slow", 409, "application/json", b"lost", None, None, 1036.0)
    # the retry records (its lease renewed from the record: 1035 + 30) and completes its answer
    store.accept(record("tok-retry", "key:slow"), rows("m-retry"))
    assert keys.reserve("demo", "key:slow", "fp", "tok-3", 1064.0, 3600.0, 30.0).outcome == INFLIGHT
    keys.complete("demo", "key:slow", "tok-retry", 200, "application/json", b"sent", None, None, 1064.0)
    slot = keys.reserve("demo", "key:slow", "fp", "tok-4", 1065.0, 3600.0, 30.0)
    assert (slot.outcome, slot.body) == (DONE, b"sent")

    # a slow request that records after its lease, before any retry, keeps its key (the lease is renewed)
    assert keys.reserve("demo", "key:late", "fp", "tok-late", 1000.0, 3600.0, 30.0).outcome == RESERVED
    store.accept(record("tok-late", "key:late"), rows("m-late"))  # at 1035
    assert keys.reserve("demo", "key:late", "fp", "tok-x", 1040.0, 3600.0, 30.0).outcome == INFLIGHT

    # the race itself, each order held open: the later transaction waits for the earlier (SQLite's write lock,
    # PostgreSQL's row lock) and then sees what it committed
    assert keys.reserve("demo", "key:race1", "fp", "tok-a", 1000.0, 3600.0, 30.0).outcome == RESERVED
    with ThreadPoolExecutor(1) as pool:
        with db.transaction() as c:  # the take-over first, not yet committed
            assert _reserve_on(c, "demo", "key:race1", "fp", "tok-b", 1031.0, 3600.0, 30.0).outcome == RESERVED
            late = pool.submit(store.accept, record("tok-a", "key:race1"), rows("m-race1"))
        with pytest.raises(Fenced):
            late.result()
    assert recorded("tok-a") == 0
    assert keys.reserve("demo", "key:race2", "fp", "tok-c", 1000.0, 3600.0, 30.0).outcome == RESERVED
    with ThreadPoolExecutor(1) as pool:
        with db.transaction():  # the fence first (the record joins this transaction), not yet committed
            store.accept(record("tok-c", "key:race2"), rows("m-race2"))
            retry = pool.submit(keys.reserve, "demo", "key:race2", "fp", "tok-d", 1036.0, 3600.0, 30.0)
        assert retry.result().outcome == INFLIGHT  # the lease was renewed (1035 + 30): not taken over
    assert recorded("tok-c") == 1


def test_a_store_error_while_answering_from_the_record_keeps_the_key(make_bridge, sandbox, monkeypatch):
    """A retry answered from its first request's record (that request outlived its key's lease: here the
    sandbox holds its send) that cannot read the record (a store error: injected once) answers 503 and leaves
    the key in flight, its link to the record: the next retry is 409 until the lease passes, then answered from
    the record; nothing is sent twice. The bridge's clock is a manual one: the lease passes when the test says."""
    import sqlalchemy as sa

    from gateway.store import idempotency as repo

    real, failures = repo.recorded, [1]

    def recorded(db: Any, token: str) -> Any:
        if failures:
            failures.pop()
            raise sa.exc.OperationalError("SELECT …", {}, Exception("server closed the connection unexpectedly"))
        return real(db, token)

    monkeypatch.setattr(repo, "recorded", recorded)
    clock = ManualClock()
    bridge = make_bridge(lambda raw: raw.update(idempotency={"wait": 0}), clock=clock)
    lease = bridge.app.extensions["smsbridge"].config.sync_lease
    headers = {"Idempotency-Key": "held"}
    sandbox.faults(delay_ms=3000)
    t, out = _in_background(lambda: bridge.get(QUERY, headers=headers))
    wait_for(lambda: sandbox.requests(), what="the first request reaching the sandbox")
    clock.advance(lease + 1)  # the first request outlived its key's lease (alive, recorded, still sending)
    broken = bridge.get(QUERY, headers=headers)
    assert broken.status_code == 503 and not failures
    assert bridge.get(QUERY, headers=headers).status_code == 409  # in flight: the key still links to the record
    clock.advance(lease + 1)
    again = bridge.get(QUERY, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    sandbox.faults()
    t.join(15)
    assert out[0].status_code == 200
    assert again.json()["messages"][0]["messageId"] == out[0].json()["messages"][0]["messageId"]
    assert [m["text"] for m in sandbox.messages()] == ["Fire alarm zone 3"]  # sent once


def test_a_window_that_ends_while_its_first_request_is_still_sending_does_not_free_it(tmp_path):
    """A duplicate window (or a key's TTL) shorter than the request's lease: the row's window ends while its
    first request is still in flight. An identical request then is in flight too (409), never a new send beside
    it; once the lease has passed too, it goes the way of a dead request's row (its record, or a take-over)."""
    from gateway.store.engine import Database
    from gateway.store.idempotency import INFLIGHT, RESERVED, Reservations

    db = Database(str(tmp_path / "keys.db"))
    try:
        keys = Reservations(db)
        assert keys.reserve("demo", "dedupe:fp", "fp", "tok-a", 1000.0, 30.0, 66.0).outcome == RESERVED
        assert keys.reserve("demo", "dedupe:fp", "fp", "tok-b", 1031.0, 30.0, 66.0).outcome == INFLIGHT
        # its lease passed too and nothing was recorded under tok-a: nothing was sent, the request takes it over
        slot = keys.reserve("demo", "dedupe:fp", "fp", "tok-c", 1067.0, 30.0, 66.0)
        assert (slot.outcome, slot.ref) == (RESERVED, "tok-a")
    finally:
        db.close()


def test_a_retry_answered_from_the_record_of_a_late_first_request_hands_its_rows_to_the_queue(make_bridge, sandbox):
    """The first request outlives its lease after its record (the upstream holds it, then refuses it: 503, the
    caller's policy is fail). Its retry is answered from the record (PENDING_ACCEPTED) and, in the same
    transaction, hands the rows to the queue; the late refusal then settles nothing: the first request answers
    PENDING_ACCEPTED too, and the queue sends the message once. Before, the late refusal recorded it failed and
    answered 502 while the retry had heard 200: sent never, or (the queue first) sent with the record saying
    failed and the key freed for a second send."""
    clock = ManualClock()

    def cfg(raw: dict[str, Any]) -> None:
        raw["idempotency"] = {"wait": 0}
        raw["callers"]["demo"]["on_upstream_failure"] = "fail"

    bridge = make_bridge(cfg, clock=clock)
    ctx = bridge.app.extensions["smsbridge"]
    query = {**DEMO, "to": "41793026727", "text": "Fire alarm zone 3"}
    headers = {"Idempotency-Key": "slow-then-refused"}
    sandbox.faults(status=503, delay_ms=3000, count=1)
    first: list[requests.Response] = []
    t = threading.Thread(target=lambda: first.append(bridge.get("/sms/1/text/query", params=query, headers=headers)))
    t.start()
    wait_for(lambda: sandbox.requests(), what="the first request at the upstream")
    clock.advance(ctx.config.sync_lease + 1)
    retry = bridge.get("/sms/1/text/query", params=query, headers=headers)
    assert retry.status_code == 200 and retry.headers.get("Idempotent-Replayed") == "true", retry.text
    assert retry.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
    t.join(20)
    assert first[0].status_code == 200, first[0].text  # not 502: its rows were the queue's by then
    assert first[0].json()["messages"][0]["messageId"] == retry.json()["messages"][0]["messageId"]
    wait_for(lambda: len(sandbox.messages()) == 1, timeout=20, what="the queue's send")
    wait_for(lambda: db_count(ctx.db, "messages", state="sent") == 1, what="the record says sent")
    later = bridge.get("/sms/1/text/query", params=query, headers=headers)
    assert later.status_code == 200 and later.headers.get("Idempotent-Replayed") == "true"
    assert [m["text"] for m in sandbox.messages()] == ["Fire alarm zone 3"]  # once
