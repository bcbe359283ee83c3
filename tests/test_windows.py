"""Delivery windows (issue 16): carried upstream as Infobip's ``deliveryTimeWindow`` (UTC) when it can be
written that way, else held in the queue until the window opens; an urgent template ignores its caller's
window. Time runs on a manual clock: 1_700_000_000 is Tuesday 2023-11-14 22:13:20 UTC (23:13 in Zurich)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.send.windows import parse_window
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.storehelp import db_count, db_value

T0 = 1_700_000_000.0
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
OFFICE = {"days": ["MON", "TUE", "WED", "THU", "FRI"], "from": "08:00", "to": "20:00", "timezone": "Europe/Zurich"}
NIGHT = {"from": "00:30", "to": "08:00", "timezone": "Europe/Zurich"}  # crosses midnight in UTC: held


def _window(d: dict[str, Any]):
    window, problems = parse_window(d)
    assert problems == [] and window is not None
    return window


def test_a_window_in_utc_follows_the_offset_of_the_day():
    office = _window(OFFICE)
    assert office.upstream(T0) == {"days": WEEKDAYS, "from": {"hour": 7, "minute": 0}, "to": {"hour": 19, "minute": 0}}
    summer = datetime(2024, 7, 2, 12, tzinfo=UTC).timestamp()
    assert office.upstream(summer)["from"] == {"hour": 6, "minute": 0}
    tokyo = _window({"days": ["MONDAY"], "from": "06:00", "to": "08:30", "timezone": "Asia/Tokyo"})
    assert tokyo.upstream(T0) == {"days": ["SUNDAY"], "from": {"hour": 21, "minute": 0}, "to": {"hour": 23, "minute": 30}}
    assert _window(NIGHT).upstream(T0) is None  # 23:30-07:00 UTC: not one UTC day
    assert _window({"from": "09:00", "to": "09:30"}).upstream(T0) is None  # under Infobip's hour


def test_open_and_next_open_in_the_callers_time_zone():
    office = _window(OFFICE)
    assert not office.is_open(T0)  # Tuesday 23:13 in Zurich
    wednesday_8 = datetime(2023, 11, 15, 7, 0, tzinfo=UTC).timestamp()
    assert office.next_open(T0) == wednesday_8 and office.is_open(wednesday_8)
    friday_night = datetime(2023, 11, 17, 19, 30, tzinfo=UTC).timestamp()  # 20:30 in Zurich
    assert office.next_open(friday_night) == datetime(2023, 11, 20, 7, 0, tzinfo=UTC).timestamp()  # Monday


@pytest.mark.parametrize("raw, key, reason", [
    ({"from": "8", "to": "20:00"}, "from", "must be a time HH:MM"),
    ({"from": "20:00", "to": "08:00"}, "to", "must be later than from"),
    ({"days": ["Funday"], "from": "08:00", "to": "20:00"}, "days[0]", "is not a week day"),
    ({"from": "08:00", "to": "20:00", "timezone": "Europe/Nowhere"}, "timezone", "not a known time zone"),
    ({"from": "08:00", "to": "20:00", "tz": "UTC"}, "tz", "unknown key"),
])
def test_a_bad_window_is_refused_naming_the_key(raw, key, reason):
    window, problems = parse_window(raw)
    assert window is None and any(k == key and reason in m for k, m in problems), problems


def _ctx(bridge):
    return bridge.app.extensions["smsbridge"]


def _upstream_messages(sandbox) -> list[dict[str, Any]]:
    return [m for s in sandbox.sends() for m in s["json"]["messages"]]


def test_a_callers_window_goes_upstream_as_delivery_time_window(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["delivery_window"] = OFFICE
        raw["templates"]["otp"]["urgent"] = True

    bridge = make_bridge(mutate, clock=ManualClock(T0))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "newsletter"})
    assert r.status_code == 200, r.text
    sent = _upstream_messages(sandbox)
    assert sandbox.sends()[0]["path"] == "/sms/2/text/advanced"
    assert sent[0]["deliveryTimeWindow"] == {"days": WEEKDAYS, "from": {"hour": 7, "minute": 0},
                                             "to": {"hour": 19, "minute": 0}}
    own = {"days": ["SATURDAY"], "from": {"hour": 10, "minute": 0}, "to": {"hour": 12, "minute": 0}}
    r = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"), json={"messages": [
        {"destinations": [{"to": "41793026728"}], "text": "mine", "deliveryTimeWindow": own}]})
    assert r.status_code == 200 and _upstream_messages(sandbox)[-1]["deliveryTimeWindow"] == own  # the caller's own
    r = bridge.get("/t/otp", params={**DEMO, "to": "41793026729", "code": "1234"})
    assert r.status_code == 200, r.text
    assert "deliveryTimeWindow" not in _upstream_messages(sandbox)[-1]  # urgent: no window at all


def test_a_templates_window_replaces_its_callers(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["delivery_window"] = OFFICE
        raw["templates"]["otp"]["delivery_window"] = {"days": ["SAT", "SUN"], "from": "10:00", "to": "12:00"}

    bridge = make_bridge(mutate, clock=ManualClock(T0))
    assert bridge.get("/t/otp", params={**DEMO, "to": "41793026729", "code": "1234"}).status_code == 200
    assert _upstream_messages(sandbox)[-1]["deliveryTimeWindow"] == {
        "days": ["SATURDAY", "SUNDAY"], "from": {"hour": 10, "minute": 0}, "to": {"hour": 12, "minute": 0}}


@pytest.mark.parametrize("mode", ["queued", "sync"])
def test_a_window_the_upstream_cannot_carry_is_held_in_the_queue(make_bridge, sandbox, mode):
    clock = ManualClock(T0)

    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"].update(mode=mode, upstream_api="advanced", delivery_window=NIGHT)
        raw["templates"]["alarm"]["mode"] = "sync"

    bridge = make_bridge(mutate, clock=clock)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727,41793026728", "text": "night batch"})
    assert r.status_code == 200, r.text
    assert {m["status"]["name"] for m in r.json()["messages"]} == {"PENDING_ACCEPTED"}
    db = _ctx(bridge).db
    opens = datetime(2023, 11, 14, 23, 30, tzinfo=UTC).timestamp()  # Wednesday 00:30 in Zurich
    assert db_value(db, "messages", "next_at") == opens and db_count(db, "messages", state="queued") == 2
    clock.set(opens - 1)
    _ctx(bridge).dispatch.wake.set()
    wait_for(lambda: db_count(db, "messages", state="queued") == 2 and db_count(db, "messages", state="sending") == 0,
             what="still held a second before the window opens")
    assert sandbox.sends() == []
    clock.set(opens)
    _ctx(bridge).dispatch.wake.set()
    wait_for(lambda: db_count(db, "messages", state="sent") == 2, what="sent when the window opens")
    assert all("deliveryTimeWindow" not in m for m in _upstream_messages(sandbox))


def test_a_held_message_that_comes_due_outside_its_window_waits_again(make_bridge, sandbox):
    """A message due again (a retry) while its window is closed goes back to wait for the next opening."""
    clock = ManualClock(T0)

    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"].update(mode="queued", upstream_api="advanced")
        raw["templates"]["alarm"]["mode"] = "sync"

    bridge = make_bridge(mutate, clock=clock)
    sandbox.faults(status=503, count=1, path="/sms/2/text/advanced")
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "retry me"})
    assert r.status_code == 200
    db = _ctx(bridge).db
    wait_for(lambda: db_value(db, "messages", "tries") == 1 and db_value(db, "messages", "state") == "queued",
             what="the first attempt refused")
    _ctx(bridge).config.callers["demo"].delivery_window = _window(NIGHT)  # a window set while it waited
    clock.advance(120)
    _ctx(bridge).dispatch.wake.set()
    opens = datetime(2023, 11, 14, 23, 30, tzinfo=UTC).timestamp()
    wait_for(lambda: db_value(db, "messages", "next_at") == opens and db_value(db, "messages", "state") == "queued",
             what="held until the window opens")
    assert len(sandbox.sends()) == 1 and sandbox.messages() == []  # only the refused attempt
    clock.set(opens)
    _ctx(bridge).dispatch.wake.set()
    wait_for(lambda: db_value(db, "messages", "state") == "sent", what="sent when the window opens")
