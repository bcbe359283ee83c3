"""Nothing sent too late (issue 16): a queued message still waiting when its validity (``validityPeriod``, or
``max_age``) runs out becomes EXPIRED, reported to its caller (notifyUrl, legacy callback, pulls), and is never
sent. The sandbox is down by fault injection; time runs on a manual clock."""

from __future__ import annotations

import json
from typing import Any

from gateway.clock import ManualClock
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count, db_value


def queued(max_age: float | None = None, template_age: float | None = None):
    def mutate(raw: dict[str, Any]) -> None:
        demo = raw["callers"]["demo"]
        demo.update(mode="queued", upstream_api="advanced")
        if max_age is not None:
            demo["max_age"] = max_age
        raw["templates"]["alarm"].update(mode="queued", api="advanced")
        if template_age is not None:
            raw["templates"]["alarm"]["max_age"] = template_age
        raw["queue"] = {"time_scale": 1.0, "retry_base": 5, "retry_max": 600}
    return mutate


def _ctx(bridge):
    return bridge.app.extensions["smsbridge"]


def _tick(clock: ManualClock, seconds: float, bridge) -> None:
    clock.advance(seconds)
    _ctx(bridge).dispatch.wake.set()


def _down(sandbox) -> None:
    sandbox.faults(status=503, count=10_000, path="/sms/2/text/advanced")


def _reports(receiver) -> list[dict[str, Any]]:
    out = []
    for r in receiver.requests:
        if r.body.startswith(b"{"):
            out += json.loads(r.body)["results"]
    return out


def test_a_message_past_max_age_expires_with_a_report_and_is_never_sent(make_bridge, sandbox, receiver):
    clock = ManualClock()
    bridge = make_bridge(queued(max_age=600), clock=clock)
    _down(sandbox)
    notify = f"http://127.0.0.1:{receiver.port}/dlr"
    r = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"), json={"messages": [
        {"from": "Alarm", "destinations": [{"to": "41793026727"}], "text": "boiler pressure", "notifyUrl": notify,
         "callbackData": "alarm-7"}]})
    assert r.status_code == 200, r.text
    mid = r.json()["messages"][0]["messageId"]
    db = _ctx(bridge).db
    wait_for(lambda: len(sandbox.sends()) >= 1 and db_value(db, "messages", "state", message_id=mid) == "queued",
             what="a first attempt refused by the upstream")
    for _ in range(4):  # retries while the upstream stays down: still queued, still within its age
        _tick(clock, 100, bridge)
    wait_for(lambda: db_value(db, "messages", "tries", message_id=mid) >= 2, what="retried")
    assert db_value(db, "messages", "state", message_id=mid) in ("queued", "sending")
    assert _reports(receiver) == []
    _tick(clock, 201, bridge)  # 601 s after acceptance
    wait_for(lambda: db_value(db, "messages", "state", message_id=mid) == "expired", what="expired")
    assert db_value(db, "messages", "status_name", message_id=mid) == "EXPIRED_EXPIRED"
    got = wait_for(lambda: _reports(receiver), what="the EXPIRED report at the notifyUrl")
    assert len(got) == 1 and got[0]["messageId"] == mid and got[0]["callbackData"] == "alarm-7"
    assert got[0]["status"]["groupName"] == "EXPIRED" and got[0]["status"]["name"] == "EXPIRED_EXPIRED"
    pulled = bridge.get("/sms/1/reports", params=DEMO).json()["results"]
    assert [p["messageId"] for p in pulled] == [mid] and pulled[0]["status"]["groupName"] == "EXPIRED"
    sandbox.reset()  # the upstream is back: nothing is sent any more
    _tick(clock, 3600, bridge)
    wait_for(lambda: db_count(db, "messages", state="sending") == 0, what="the worker idle")
    assert sandbox.messages() == []
    assert 'smsbridge_send_events_total{event="expired"} 1.0' in bridge.get("/metrics").text


def test_validity_period_expires_a_queued_message_and_the_legacy_callback_hears_it(make_bridge, sandbox, receiver):
    clock = ManualClock()

    def mutate(raw: dict[str, Any]) -> None:
        queued()(raw)
        raw["callers"]["demo"]["callback"] = {
            "url": f"http://127.0.0.1:{receiver.port}/cb?id={{{{ messageId }}}}&status={{{{ status }}}}"}

    bridge = make_bridge(mutate, clock=clock)
    _down(sandbox)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727,41793026728", "text": "valid 2 min",
                                                 "validityPeriod": "2"})
    assert r.status_code == 200
    ids = {m["messageId"] for m in r.json()["messages"]}
    db = _ctx(bridge).db
    wait_for(lambda: len(sandbox.sends()) >= 1, what="a first attempt")
    _tick(clock, 119, bridge)
    wait_for(lambda: db_count(db, "messages", state="sending") == 0, what="the retry done")
    assert db_count(db, "messages", state="expired") == 0
    _tick(clock, 2, bridge)
    wait_for(lambda: db_count(db, "messages", state="expired") == 2, what="both expired")
    calls = wait_for(lambda: len(receiver.requests) == 2 and receiver.requests, what="two callbacks")
    assert {c.path for c in calls} == {"/cb"}
    assert {dict(p.split("=", 1) for p in c.query.split("&"))["id"] for c in calls} == ids
    assert all("EXPIRED" in c.query for c in calls)
    assert sandbox.messages() == []


def test_a_templates_max_age_wins_over_its_callers(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(queued(max_age=3600, template_age=30), clock=clock)
    _down(sandbox)
    r = bridge.get("/t/alarm", params={**DEMO, "phone": "41793026727", "msg": "db1 DOWN"})
    assert r.status_code == 200, r.text
    db = _ctx(bridge).db
    wait_for(lambda: len(sandbox.sends()) >= 1, what="a first attempt")
    _tick(clock, 31, bridge)
    wait_for(lambda: db_count(db, "messages", state="expired") == 1, what="expired after the template's 30 s")


def test_an_unanswered_attempt_is_reconciled_not_expired(make_bridge, sandbox):
    """A timeout leaves the outcome unknown (the upstream may hold the message): it is resent with the same id
    to learn its fate, never reported EXPIRED on a guess."""
    clock = ManualClock()

    def mutate(raw: dict[str, Any]) -> None:
        queued(max_age=60)(raw)
        raw["upstream"]["read_timeout"] = 0.3

    bridge = make_bridge(mutate, clock=clock)
    sandbox.faults(delay_ms=1500, count=1, path="/sms/2/text/advanced")
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "slow"})
    mid = r.json()["messages"][0]["messageId"]
    db = _ctx(bridge).db
    wait_for(lambda: db_value(db, "messages", "tries", message_id=mid) == 1
             and db_value(db, "messages", "state", message_id=mid) == "queued", what="the timed-out attempt")
    assert db_value(db, "messages", "expires_at", message_id=mid) is None
    _tick(clock, 120, bridge)
    wait_for(lambda: db_value(db, "messages", "state", message_id=mid) == "sent", what="resent, not expired")
    assert [m["messageId"] for m in sandbox.messages()] == [mid]


def test_what_is_left_of_the_validity_goes_upstream(make_bridge, sandbox):
    """A message forwarded after waiting carries only the rest of its validity: the upstream does not deliver
    it later than its caller allowed either (an alarm with max_age 600 s sent after 300 s: 5 minutes)."""
    clock = ManualClock()
    bridge = make_bridge(queued(max_age=600), clock=clock)
    sandbox.faults(status=503, count=1, path="/sms/2/text/advanced")
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727,41793026728", "text": "late alarm"})
    assert r.status_code == 200
    db = _ctx(bridge).db
    wait_for(lambda: db_count(db, "messages", state="queued") == 2 and db_value(db, "messages", "tries") == 1,
             what="the first attempt refused")
    _tick(clock, 300, bridge)
    wait_for(lambda: db_count(db, "messages", state="sent") == 2, what="sent after 300 s")
    assert [m["validityPeriod"] for m in sandbox.sends()[-1]["json"]["messages"]] == [5]
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026729", "text": "own", "validityPeriod": "3"})
    wait_for(lambda: db_count(db, "messages", state="sent") == 3, what="sent at once")
    assert sandbox.sends()[-1]["json"]["messages"][0]["validityPeriod"] == 3  # its own, shorter, is kept
