"""Issue 13 items 3-6, 10: nothing lost, nothing doubled on the send path.

Sync sends are recorded before they are forwarded, with the bridge's own ids; an upstream hiccup hands the
send over to the queue; a timeout is "unknown" and reconciled by a resend with the same ids; one request's
unwritable row fails only that request; a store failure never turns a sent message into an error."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from gateway.errors import ValidationFailed
from gateway.model import Destination, Message, Submission
from tests.conftest import DEMO, running_sandbox
from tests.helpers import free_port, wait_for
from tests.storehelp import db_count, db_row, db_rows, db_set, db_values, run
from tests.test_ui import login

TO = "41793026727"
APP = {"Authorization": "App demo-key"}


def sync_advanced(raw: dict[str, Any], failure: str | None = None) -> None:
    """The demo caller in sync mode on the advanced API; queue retries fast."""
    demo = raw["callers"]["demo"]
    demo.update(mode="sync", upstream_api="advanced")
    if failure:
        demo["on_upstream_failure"] = failure
    raw["queue"] = {"time_scale": 0.01, "retry_base": 1.0}  # first retry after 10 ms


def _send(bridge: Any, text: str, to: str = TO) -> requests.Response:
    return bridge.get("/sms/1/text/query", params={**DEMO, "to": to, "text": text})


def _metric(bridge: Any, event: str) -> float:
    for line in bridge.get("/metrics").text.splitlines():
        if line.startswith(f'smsbridge_send_events_total{{event="{event}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no send event {event} in /metrics")


# -- item 3: the bridge's own ids on every path ------------------------------------------------
def test_sync_advanced_and_v3_forward_the_bridges_own_message_and_bulk_ids(make_bridge, sandbox):
    bridge = make_bridge(sync_advanced)
    r = _send(bridge, "ids", to=f"{TO},41793026834")
    assert r.status_code == 200, r.text
    answer = r.json()
    sent = sandbox.sends()[-1]["json"]
    assert sent["bulkId"] == answer["bulkId"]
    assert [d["messageId"] for d in sent["messages"][0]["destinations"]] == [m["messageId"] for m in answer["messages"]]
    ctx = bridge.app.extensions["smsbridge"]
    rows = db_rows(ctx.db, "messages", "message_id", "upstream_message_id", "state")
    assert {(m.message_id, m.state) for m in rows} == {(m["messageId"], "sent") for m in answer["messages"]}
    assert all(m.upstream_message_id == m.message_id for m in rows)

    r3 = bridge.post("/sms/3/messages", headers=APP, json={"messages": [
        {"sender": "Bridge", "destinations": [{"to": TO}], "content": {"text": "v3 ids"}}]})
    assert r3.status_code == 200, r3.text
    mid = r3.json()["messages"][0]["messageId"]
    v3 = [s for s in sandbox.sends() if s["path"] == "/sms/3/messages"]
    if v3:  # the caller's v3 entrance forwards through the caller's upstream API (advanced here)
        assert v3[-1]["json"]["messages"][0]["destinations"][0]["messageId"] == mid
    else:
        assert sandbox.sends()[-1]["json"]["messages"][0]["destinations"][0]["messageId"] == mid


def test_the_sandbox_refuses_a_repeated_message_id_on_v2_and_v3(sandbox):
    body = {"messages": [{"destinations": [{"to": TO, "messageId": "rep-1"}], "text": "once"}]}
    headers = {"Authorization": "App sandbox-key"}
    first = requests.post(sandbox.url + "/sms/2/text/advanced", json=body, headers=headers, timeout=10).json()
    again = requests.post(sandbox.url + "/sms/2/text/advanced", json=body, headers=headers, timeout=10).json()
    assert first["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
    assert again["messages"][0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID"
    v3 = {"messages": [{"sender": "Bridge", "destinations": [{"to": TO, "messageId": "rep-1"}],
                        "content": {"text": "once"}}]}
    r = requests.post(sandbox.url + "/sms/3/messages", json=v3, headers=headers, timeout=10).json()
    assert r["messages"][0]["status"]["name"] == "REJECTED_DUPLICATE_MESSAGE_ID"
    assert len(sandbox.messages()) == 1


# -- item 4: a hiccup hands the send over to the queue -------------------------------------------
def test_upstream_500_in_sync_mode_hands_over_to_the_queue_and_delivers_once(make_bridge, sandbox):
    bridge = make_bridge(sync_advanced)
    sandbox.faults(status=500, count=1)
    r = _send(bridge, "hiccup")
    assert r.status_code == 200, r.text
    m = r.json()["messages"][0]
    assert m["status"]["name"] == "PENDING_ACCEPTED" and m["messageId"]
    got = wait_for(lambda: sandbox.messages(), what="the handed-over message upstream")
    ctx = bridge.app.extensions["smsbridge"]
    wait_for(lambda: db_value_state(ctx, m["messageId"]) == "sent", what="recorded sent")
    assert [(x["messageId"], x["text"]) for x in sandbox.messages()] == [(m["messageId"], "hiccup")]
    assert len(got) == 1
    # both attempts on the record: the failed sync one (its submission) and the queue's batch
    attempts = db_rows(ctx.db, "upstream_attempts", "submission_id", "http_status", "api")
    assert sorted((a.http_status, a.submission_id is None) for a in attempts) == [(200, True), (500, False)]
    assert _metric(bridge, "handed_over") == 1
    assert 'smsbridge_upstream_request_seconds_count{api="advanced",upstream="primary"} 2.0' in bridge.get("/metrics").text


def db_value_state(ctx: Any, message_id: str) -> str | None:
    rows = db_values(ctx.db, "messages", "state", message_id=message_id)
    return rows[0] if rows else None


def test_refused_connection_hands_over_and_the_message_waits_in_the_queue(make_bridge):
    bridge = make_bridge(sync_advanced, upstream_url=f"http://127.0.0.1:{free_port()}")
    r = _send(bridge, "nobody home")
    assert r.status_code == 200 and r.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
    ctx = bridge.app.extensions["smsbridge"]
    row = db_row(ctx.db, "messages", message_id=r.json()["messages"][0]["messageId"])
    assert row.state in ("queued", "sending") and row.spec  # kept, with what the worker needs to send it


def test_on_upstream_failure_fail_answers_the_error_and_a_template_can_choose(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        sync_advanced(raw, "fail")
        raw["templates"]["alarm"].update(api="advanced", on_upstream_failure="queue")

    bridge = make_bridge(mutate)
    sandbox.faults(status=503, count=1)
    r = _send(bridge, "fail me")
    assert r.status_code == 502, r.text
    ctx = bridge.app.extensions["smsbridge"]
    assert db_values(ctx.db, "messages", "state") == ["failed"]
    sandbox.faults(status=429, count=2)  # the template's send, then the queue's first try
    t = bridge.get("/t/alarm", params={**DEMO, "phone": TO, "msg": "queued by the template"})
    assert t.status_code == 200 and t.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED", t.text
    text = "[ALARM] HQ: queued by the template"  # by text: an earlier test's bridge may settle into this sandbox
    wait_for(lambda: [m["text"] for m in sandbox.messages() if m["text"] == text], what="sent")
    assert [m["text"] for m in sandbox.messages() if m["text"] == text] == [text]  # once
    # handed over once; retried at least once (the queue's first try met the second 429; on a loaded machine a
    # lease may also run out once more before the answer is recorded: still one message, the assertion above)
    assert _metric(bridge, "handed_over") == 1 and _metric(bridge, "retried") >= 1


# -- item 6: a timeout is unknown, then reconciled --------------------------------------------
def test_a_timeout_is_unknown_then_reconciled_by_a_resend_read_as_duplicate(make_bridge):
    def mutate(raw: dict[str, Any]) -> None:
        sync_advanced(raw, "fail")
        raw["upstream"]["read_timeout"] = 0.3

    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as sandbox:
        _timeout_reconciled(make_bridge(mutate, upstream_url=sandbox.url), sandbox)


def _timeout_reconciled(bridge: Any, sandbox: Any) -> None:
    ctx = bridge.app.extensions["smsbridge"]
    sandbox.faults(delay_ms=900)  # the upstream takes the message, and answers after the bridge gave up
    r = _send(bridge, "late answer")
    assert r.status_code == 504, r.text
    row = db_rows(ctx.db, "messages", "message_id", "upstream_message_id", "state")[0]
    assert row.state in ("unknown", "sending", "queued")  # unknown; maybe already being resent
    assert db_values(ctx.db, "messages", "state") != ["failed"]
    wait_for(lambda: sandbox.messages(), what="the upstream took it after all")
    sandbox.faults()  # answers are prompt again
    wait_for(lambda: db_values(ctx.db, "messages", "state") == ["sent"], timeout=15, what="reconciled")
    got = sandbox.messages()
    assert [(m["messageId"], m["text"]) for m in got] == [(row.upstream_message_id, "late answer")]
    assert _metric(bridge, "unknown") == 1 and _metric(bridge, "reconciled") >= 1
    logs = bridge.get("/sms/1/logs", params={**DEMO, "messageId": row.message_id}).json()["results"]
    assert [x["messageId"] for x in logs] == [row.message_id]
    # its delivery report is matched to it
    wait_for(lambda: db_values(ctx.db, "messages", "status_group_name") == ["DELIVERED"], timeout=20,
             what="the delivery report matched")
    pulled = bridge.get("/sms/1/reports", params=DEMO).json()["results"]
    assert [(x["messageId"], x["status"]["groupName"]) for x in pulled] == [(row.message_id, "DELIVERED")]
    timeouts = db_rows(ctx.db, "upstream_attempts", "error")
    assert any(a.error == "read timeout" for a in timeouts)


# -- item 5: a store failure never turns a sent message into an error ---------------------------
def test_a_sync_send_is_not_forwarded_when_its_record_cannot_be_written(make_bridge, sandbox):
    bridge = make_bridge(sync_advanced)
    ctx = bridge.app.extensions["smsbridge"]
    run(ctx.db, "CREATE TRIGGER disk BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _send(bridge, f"alarm {i}", to=f"4179{i:07d}"), range(20)))
    assert [a.status_code for a in answers] == [503] * 20
    assert all("nothing was sent" in a.json()["requestError"]["serviceException"]["text"] for a in answers)
    assert sandbox.sends() == []  # none sent without being recorded
    run(ctx.db, "DROP TRIGGER disk")
    assert _send(bridge, "recovered").status_code == 200


def test_an_answer_that_cannot_be_recorded_still_reaches_the_caller_and_is_reconciled(make_bridge, sandbox):
    bridge = make_bridge(sync_advanced)
    ctx = bridge.app.extensions["smsbridge"]
    run(ctx.db, "CREATE TRIGGER disk BEFORE UPDATE ON messages BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    r = _send(bridge, "sent anyway")
    assert r.status_code == 200, r.text
    m = r.json()["messages"][0]
    assert m["status"]["name"] == "PENDING_ACCEPTED"  # the upstream's answer
    row = db_row(ctx.db, "messages", message_id=m["messageId"])
    assert row.state == "sending" and row.lease_until  # recorded before it was sent; completion failed
    assert _metric(bridge, "settle_failed") == 1
    run(ctx.db, "DROP TRIGGER disk")
    db_set(ctx.db, "messages", row.id, lease_until=0)  # the lease runs out (it lasts the request's own limit)
    ctx.dispatch.wake.set()
    wait_for(lambda: db_row(ctx.db, "messages", id=row.id).state == "sent", what="reconciled")
    assert [x["messageId"] for x in sandbox.messages()] == [m["messageId"]]  # once
    assert _metric(bridge, "reconciled") == 1


def test_one_callers_unwritable_row_fails_only_its_own_request(make_bridge, sandbox):
    def held(raw: dict[str, Any]) -> None:  # no dedupe: its reservation would stop the sends at the held lock
        sync_advanced(raw)
        raw["idempotency"] = {"dedupe_window": 0}

    bridge = make_bridge(held)
    ctx = bridge.app.extensions["smsbridge"]
    # a row the store refuses (a trigger in the SQLite file), in the same group commit as seven good ones
    run(ctx.db, "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END")
    out: dict[str, requests.Response] = {}

    def send(text: str, i: int) -> None:
        out[text] = _send(bridge, text, to=f"4179{i:07d}")

    texts = [f"good-{i}" for i in range(7)] + ["poison"]
    with ctx.db.writer():  # all of them land in one group commit
        threads = [threading.Thread(target=send, args=(t, i)) for i, t in enumerate(texts)]
        for t in threads:
            t.start()
        wait_for(lambda: ctx.store.accept_pending() == 8, what="8 records waiting for one commit")
    for t in threads:
        t.join(30)
    assert out["poison"].status_code == 503 and "nothing was sent" in out["poison"].text
    assert [out[f"good-{i}"].status_code for i in range(7)] == [200] * 7
    assert sorted(m["text"] for m in sandbox.messages()) == sorted(f"good-{i}" for i in range(7))
    assert sorted(db_values(ctx.db, "messages", "state")) == ["sent"] * 7


def test_a_lone_surrogate_is_a_400_naming_the_field_and_nothing_is_sent(make_bridge, sandbox):
    bridge = make_bridge(sync_advanced)
    bad = '{"messages":[{"destinations":[{"to":"41793026727"}],"text":"bad","callbackData":"\\ud800"}]}'
    r = requests.post(bridge.url + "/sms/2/text/advanced", data=bad.encode(), timeout=30,
                      headers={**APP, "Content-Type": "application/json"})
    assert r.status_code == 400 and "messages[0].callbackData" in r.json()["requestError"]["serviceException"][
        "validationErrors"]
    # the same reaching the store (an entrance that let it through): refused by the store, named, not sent
    ctx = bridge.app.extensions["smsbridge"]
    sub = Submission(messages=[Message(destinations=[Destination(TO)], text="x", callback_data="\ud800")],
                     caller="demo", entrance="advanced")
    with pytest.raises(ValidationFailed) as exc:
        ctx.dispatch.send(sub, "advanced", ctx.config.callers["demo"])
    assert list(exc.value.errors) == ["messages[0].callbackData"]
    assert sandbox.sends() == [] and db_count(ctx.db, "messages") == 0


# -- item 5: a queued batch refused as a whole is split ---------------------------------------
def test_a_queued_batch_refused_as_a_whole_is_split_and_only_the_offender_rejected(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        sync_advanced(raw)
        raw["callers"]["demo"]["mode"] = "queued"
        raw["templates"]["alarm"]["mode"] = "sync"

    bridge = make_bridge(mutate)
    ctx = bridge.app.extensions["smsbridge"]
    ctx.queue.stop()
    ids = [_send(bridge, f"batch-{i}", to=f"4179{i:07d}").json()["messages"][0]["messageId"] for i in range(5)]
    offender = db_row(ctx.db, "messages", message_id=ids[2])
    spec = json.loads(offender.spec)
    spec["validityPeriod"] = -5  # something the upstream refuses with 400 for the whole request
    db_set(ctx.db, "messages", offender.id, spec=json.dumps(spec))
    ctx.queue.start()
    wait_for(lambda: db_count(ctx.db, "messages", state=("queued", "sending")) == 0, what="the queue drained")
    states = {m.message_id: m.state for m in db_rows(ctx.db, "messages", "message_id", "state")}
    assert states == {i: ("rejected" if i == ids[2] else "sent") for i in ids}
    assert sorted(m["messageId"] for m in sandbox.messages()) == sorted(i for i in ids if i != ids[2])


def test_a_query_api_timeout_stays_unknown_is_never_resent_and_shows_in_the_ui(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["upstream_api"] = "query"  # no custom ids: a resend could double the SMS
        raw["upstream"]["read_timeout"] = 0.3
        raw["queue"] = {"time_scale": 0.01}

    bridge = make_bridge(mutate)
    ctx = bridge.app.extensions["smsbridge"]
    sandbox.faults(delay_ms=700)
    r = _send(bridge, "query late")
    assert r.status_code == 504, r.text  # the default policy queues, but only what surely never arrived
    wait_for(lambda: sandbox.messages(), what="the upstream took it after all")
    sandbox.faults()
    row = db_row(ctx.db, "messages")
    assert row.state == "unknown" and row.lease_until is None and "did not answer" in row.last_error
    assert _send(bridge, "a later send").status_code == 200  # the worker had every chance to resend
    assert [m["text"] for m in sandbox.messages()] == ["query late", "a later send"]  # never resent
    s, _ = login(bridge.url)
    cells = [x["cells"] for x in s.get(bridge.url + "/ui/api/log", timeout=10).json()["rows"]]
    unknown = cells[-1]  # the oldest row (texts are masked in the console)
    assert unknown["state"].startswith("unknown") and "did not answer" in unknown["error"]
    attempts = [x["cells"] for x in s.get(bridge.url + "/ui/api/log", params={"view": "attempts"},
                                          timeout=10).json()["rows"]]
    assert any(a["api"] == "query" and "timeout" in a["error"] for a in attempts), attempts


def test_a_query_api_send_refused_at_the_door_is_handed_over_with_the_bridges_ids(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["upstream_api"] = "query"
        raw["queue"] = {"time_scale": 0.01}

    bridge = make_bridge(mutate)
    sandbox.faults(status=503, count=1)  # answered before anything was accepted: safe to hand over
    r = _send(bridge, "two of them", to=f"{TO},41793026834")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["bulkId"] and {m["status"]["name"] for m in answer["messages"]} == {"PENDING_ACCEPTED"}
    wait_for(lambda: len(sandbox.messages()) == 2, what="both sent by the queue")
    got = sandbox.messages()
    assert sorted(m["messageId"] for m in got) == sorted(m["messageId"] for m in answer["messages"])
    assert {m["bulkId"] for m in got} == {answer["bulkId"]}
    assert [s["path"] for s in sandbox.sends()] == ["/sms/1/text/query", "/sms/2/text/advanced"]


def test_a_v3_send_through_the_v3_upstream_is_handed_over_on_a_hiccup(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        sync_advanced(raw)
        raw["callers"]["demo"]["upstream_api"] = "messages"

    bridge = make_bridge(mutate)
    sandbox.faults(status=502, count=1)
    r = bridge.post("/sms/3/messages", headers=APP, json={"messages": [
        {"sender": "Bridge", "destinations": [{"to": TO}], "content": {"text": "v3 hiccup"}}]})
    assert r.status_code == 200, r.text
    m = r.json()["messages"][0]
    assert m["status"]["name"] == "PENDING_ACCEPTED" and m["messageId"]
    wait_for(lambda: sandbox.messages(), what="sent by the queue")
    assert [(x["messageId"], x["text"]) for x in sandbox.messages()] == [(m["messageId"], "v3 hiccup")]
    assert [s["path"] for s in sandbox.sends()] == ["/sms/3/messages", "/sms/2/text/advanced"]
