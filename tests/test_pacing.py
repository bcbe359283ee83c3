"""Queue and pace (issue 16): sends above a rate are accepted and leave at the rate, never refused; a cap on a
caller's waiting messages answers 429 with Retry-After; an upstream 429 pauses every worker of every process;
the buckets live in the store, so two bridges on one database keep one pace. Time runs on a manual clock."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
import yaml

from gateway.clock import ManualClock
from gateway.config import ConfigError, build_config
from tests.conftest import DEMO, default_raw_config, running_sandbox
from tests.helpers import wait_for
from tests.storehelp import db_count, db_value
from tests.test_ui import login
from tests.workers import QUEUED, WorkersBridge, workers_config


def _numbers(n: int, start: int = 0) -> list[str]:
    return [f"4179{start + i:07d}" for i in range(n)]


def paced(rate: Any, mode: str = "queued", **more: Any):
    def mutate(raw: dict[str, Any]) -> None:
        demo = raw["callers"]["demo"]
        demo.update(mode=mode, upstream_api="advanced")
        demo.setdefault("limits", {})["rate"] = rate
        demo["limits"].update(more.pop("limits", {}))
        raw["templates"]["alarm"]["mode"] = "sync"
        raw["queue"] = {"time_scale": 0.01}
        for k, v in more.items():
            raw[k] = v
    return mutate


def _ctx(bridge):
    return bridge.app.extensions["smsbridge"]


def _tick(clock: ManualClock, seconds: float, *bridges) -> None:
    clock.advance(seconds)
    for b in bridges:
        _ctx(b).dispatch.wake.set()


def _settled(bridge, sent: int, queued: int) -> bool:
    db = _ctx(bridge).db
    return (db_count(db, "messages", state="sent") == sent and db_count(db, "messages", state="queued") == queued
            and db_count(db, "messages", state="sending") == 0)


@pytest.mark.parametrize("value, problem", [
    (0, "must be messages per second"),
    ("fast", "must be messages per second"),
    ({"per_second": 5, "burst": 0}, "burst must be a number, 1 or more"),
    ({"per_second": 5, "every": 2}, "unknown key 'every'"),
])
def test_a_bad_rate_is_refused_naming_the_key(value, problem):
    raw = copy.deepcopy(default_raw_config())
    raw["callers"]["demo"].setdefault("limits", {})["rate"] = value
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={})
    assert any(p == "callers.demo.limits.rate" and problem in m for p, m in err.value.problems), err.value.problems


def test_config_reads_rates_windows_and_ages():
    raw = copy.deepcopy(default_raw_config())
    raw["limits"] = {"rate": 3, "max_waiting": 100}
    raw["upstream"]["rate"] = {"per_second": 50, "burst": 100}
    raw["templates"]["alarm"].update(limits={"rate": {"per_second": 1, "burst": 5}}, urgent=True, max_age=120)
    raw["queue"] = {"max_age": 3600}
    config = build_config(raw, env={})
    demo, alarm = config.callers["demo"], config.templates["alarm"]
    assert (demo.rate.per_second, demo.rate.burst, demo.max_waiting) == (3, 3, 100)  # the top-level default
    assert (config.upstream.rate.per_second, config.upstream.rate.burst) == (50, 100)
    assert (alarm.rate.per_second, alarm.rate.burst, alarm.urgent, alarm.max_age) == (1, 5, True, 120)
    assert alarm.limits is None  # a rate alone leaves the validation limits inherited from the caller
    assert config.queue.max_age == 3600
    raw["callers"]["demo"]["rate"] = 5  # the rate belongs under limits
    raw["templates"]["alarm"]["limits"]["max_waiting"] = 3  # counted per caller
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={})
    paths = [p for p, _ in err.value.problems]
    assert "callers.demo.rate" in paths and "templates.alarm.limits.max_waiting" in paths


def test_a_queued_burst_leaves_at_the_callers_rate(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(paced({"per_second": 2, "burst": 2}), clock=clock)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(10)), "text": "paced"})
    assert r.status_code == 200 and {m["status"]["name"] for m in r.json()["messages"]} == {"PENDING_ACCEPTED"}
    wait_for(lambda: _settled(bridge, 2, 8), what="the burst of 2 sent, 8 waiting")
    assert len(sandbox.messages()) == 2
    _tick(clock, 1.0, bridge)
    wait_for(lambda: _settled(bridge, 4, 6), what="2 more after one second")
    _tick(clock, 1.5, bridge)  # 3 tokens' worth of time, but the bucket holds 2 at most
    wait_for(lambda: _settled(bridge, 6, 4), what="2 more after 1.5 seconds")
    _tick(clock, 10, bridge)  # a long quiet spell: the burst goes at once, no more
    wait_for(lambda: _settled(bridge, 8, 2), what="a burst after a quiet spell")
    _tick(clock, 1, bridge)
    wait_for(lambda: _settled(bridge, 10, 0), what="the rest")
    assert len(sandbox.messages()) == 10
    metrics = bridge.get("/metrics").text
    assert 'smsbridge_pace_rate{bucket="caller:demo"} 2.0' in metrics
    assert 'smsbridge_paced_total{bucket="caller:demo"} 10.0' in metrics
    assert '# TYPE smsbridge_queue_depth gauge' in metrics  # each caller's waiting messages


def test_a_sync_send_over_its_rate_is_queued_not_refused(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(paced(1, mode="sync"), clock=clock)
    first = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "one"}).json()
    assert first["messages"][0]["status"]["groupName"] == "PENDING"
    db = _ctx(bridge).db
    assert db_value(db, "messages", "state", message_id=first["messages"][0]["messageId"]) == "sent"  # in the request
    second = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026728", "text": "two"})
    assert second.status_code == 200, second.text
    answer = second.json()["messages"][0]
    assert answer["status"]["name"] == "PENDING_ACCEPTED" and answer["messageId"]
    wait_for(lambda: db_value(db, "messages", "state", message_id=answer["messageId"]) == "queued",
             what="waiting its turn (a worker may be looking at it)")
    assert len(sandbox.messages()) == 1
    _tick(clock, 1.0, bridge)
    wait_for(lambda: db_value(db, "messages", "state", message_id=answer["messageId"]) == "sent", what="forwarded")
    assert [m["messageId"] for m in sandbox.messages()][-1] == answer["messageId"]  # the bridge's own id


def test_a_templates_rate_paces_its_sends_only(make_bridge, sandbox):
    clock = ManualClock()

    def mutate(raw: dict[str, Any]) -> None:
        raw["templates"]["otp"]["limits"] = {"rate": {"per_second": 1, "burst": 1}}
        raw["queue"] = {"time_scale": 0.01}

    bridge = make_bridge(mutate, clock=clock)  # a sync caller without a rate of its own
    otp = {**DEMO, "to": "41793026727", "code": "1234"}
    first = bridge.get("/t/otp", params=otp).json()["messages"][0]
    second = bridge.get("/t/otp", params={**otp, "code": "5678"}).json()["messages"][0]
    db = _ctx(bridge).db
    assert db_value(db, "messages", "state", message_id=first["messageId"]) == "sent"  # in the request
    wait_for(lambda: db_value(db, "messages", "state", message_id=second["messageId"]) == "queued", what="paced")
    for i in range(3):  # the caller's own sends are not the template's: unpaced, sent in the request
        r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"4179302680{i}", "text": "direct"})
        assert db_value(db, "messages", "state", message_id=r.json()["messages"][0]["messageId"]) == "sent"
    _tick(clock, 1, bridge)
    wait_for(lambda: db_value(db, "messages", "state", message_id=second["messageId"]) == "sent", what="its turn")
    assert 'smsbridge_paced_total{bucket="template:otp"} 2.0' in bridge.get("/metrics").text


def test_the_accounts_rate_paces_every_caller_together(make_bridge, sandbox):
    clock = ManualClock()

    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"].update(mode="queued", upstream_api="advanced")
        raw["templates"]["alarm"]["mode"] = "sync"
        raw["upstream"]["rate"] = {"per_second": 2, "burst": 2}
        raw["queue"] = {"time_scale": 0.01}

    bridge = make_bridge(mutate, clock=clock)
    bridge.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(3)), "text": "a"}).raise_for_status()
    r = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"), json={"messages": [
        {"destinations": [{"to": n} for n in _numbers(3, 50)], "text": "b"}]})
    assert r.status_code == 200
    wait_for(lambda: _settled(bridge, 2, 4), what="the account's burst")
    _tick(clock, 1, bridge)
    wait_for(lambda: _settled(bridge, 4, 2), what="the account's rate")


def test_max_waiting_answers_429_with_retry_after_in_each_dialect(make_bridge, sandbox):
    clock = ManualClock()
    bridge = make_bridge(paced({"per_second": 1, "burst": 1}, limits={"max_waiting": 3}), clock=clock)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(3)), "text": "fits"})
    assert r.status_code == 200
    wait_for(lambda: _settled(bridge, 1, 2), what="one sent, two waiting")
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(2, 10)), "text": "too many"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    exc = r.json()["requestError"]["serviceException"]
    assert exc["messageId"] == "TOO_MANY_REQUESTS" and "max_waiting" in exc["text"]
    r = bridge.get("/sms/1/text/query.xml", params={**DEMO, "to": ",".join(_numbers(2, 10)), "text": "too many"})
    assert r.status_code == 429 and b"<messageId>TOO_MANY_REQUESTS</messageId>" in r.content
    r = bridge.post("/sms/3/messages", headers={"Authorization": "App demo-key"},
                    json={"messages": [{"sender": "Info", "destinations": [{"to": "41790000020"}, {"to": "41790000021"}],
                                        "content": {"text": "too many"}}]})
    assert r.status_code == 429 and r.headers["Retry-After"] and r.json()["errorCode"]
    assert db_count(_ctx(bridge).db, "messages") == 3  # nothing of the refused sends was recorded
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41790000030", "text": "one more fits"})
    assert r.status_code == 200


def test_an_upstream_429_pauses_every_worker_of_both_bridges_for_its_retry_after(make_bridge, sandbox, bridge_store):
    clock = ManualClock()
    shared = bridge_store(0)  # both bridges on one database (SQLite here, PostgreSQL in test_pacing_postgres)

    def mutate(raw: dict[str, Any]) -> None:
        paced(100)(raw)
        raw["store"] = dict(shared)

    a, b = make_bridge(mutate, clock=clock), make_bridge(mutate, clock=clock)
    sandbox.faults(status=429, retry_after=30, count=1, path="/sms/2/text/advanced")
    r = a.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "first"})
    assert r.status_code == 200
    wait_for(lambda: len(sandbox.sends()) == 1, what="the refused attempt")
    db = _ctx(a).db
    wait_for(lambda: db_count(db, "messages", state="queued") == 1, what="back in the queue")
    assert db_value(db, "pace", "paused_until", key="upstream") == pytest.approx(clock.now() + 30)
    assert 'smsbridge_upstream_paused_seconds 30.0' in b.get("/metrics").text
    for bridge, to in ((a, "41793026728"), (b, "41793026729")):
        assert bridge.get("/sms/1/text/query", params={**DEMO, "to": to, "text": "later"}).status_code == 200
    wait_for(lambda: db_count(db, "messages", state="queued") == 3 and db_count(db, "messages", state="sending") == 0,
             what="all three held")
    _tick(clock, 29, a, b)
    wait_for(lambda: db_count(db, "messages", state="queued") == 3 and db_count(db, "messages", state="sending") == 0,
             what="still held one second before the pause ends")
    assert len(sandbox.sends()) == 1 and sandbox.messages() == []
    _tick(clock, 1, a, b)
    wait_for(lambda: db_count(db, "messages", state="sent") == 3, what="all sent once the pause is over")
    assert len(sandbox.messages()) == 3


def test_two_bridges_on_one_database_keep_one_pace(make_bridge, sandbox, bridge_store):
    clock = ManualClock()
    shared = bridge_store(0)

    def mutate(raw: dict[str, Any]) -> None:
        paced({"per_second": 3, "burst": 3})(raw)
        raw["store"] = dict(shared)

    a, b = make_bridge(mutate, clock=clock), make_bridge(mutate, clock=clock)
    a.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(6)), "text": "a"}).raise_for_status()
    b.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(6, 100)), "text": "b"}).raise_for_status()
    wait_for(lambda: _settled(a, 3, 9), what="one burst between both bridges")
    for elapsed in range(1, 4):
        _tick(clock, 1, a, b)
        wait_for(lambda n=elapsed: _settled(a, 3 + 3 * n, 9 - 3 * n), what=f"3 more after {elapsed} s")
    assert len(sandbox.messages()) == 12


def test_the_admin_ui_shows_waiting_messages_and_rates(make_bridge, sandbox):
    clock = ManualClock()

    def mutate(raw: dict[str, Any]) -> None:
        paced({"per_second": 1, "burst": 1})(raw)
        raw["upstream"]["rate"] = 20
        raw["ui"] = {"enabled": True, "admin_password": "admin-pw"}

    bridge = make_bridge(mutate, clock=clock)
    bridge.get("/sms/1/text/query", params={**DEMO, "to": ",".join(_numbers(4)), "text": "ui"}).raise_for_status()
    wait_for(lambda: _settled(bridge, 1, 3), what="one sent, three waiting")
    s, _ = login(bridge.url, password="admin-pw")
    page = s.get(bridge.url + "/ui/log", timeout=10)
    assert page.status_code == 200 and 'id="traffic-table"' in page.text
    row = page.text.split('data-caller="demo"')[1].split("</tr>")[0]
    assert '<td data-cell="waiting">3</td>' in row and "1/s (burst 1)" in row
    assert 'data-bucket="upstream"' in page.text and "20/s (burst 20)" in page.text


def test_two_processes_of_one_bridge_keep_one_pace_in_real_time(tmp_path):
    """``app.py --workers 2`` on one SQLite file: the caller's 10/s (burst 5) holds for both processes together
    (a per-process bucket would let twice as many through)."""
    with running_sandbox(dlr_delay=3600) as sandbox:
        path = workers_config(tmp_path, sandbox.url)
        raw = yaml.safe_load(path.read_text())
        raw["callers"]["qdemo"].setdefault("limits", {})["rate"] = {"per_second": 10, "burst": 5}
        path.write_text(yaml.safe_dump(raw))
        bridge = WorkersBridge(path, workers=2)
        try:
            r = requests.get(bridge.url + "/sms/1/text/query", timeout=30,
                             params={**QUEUED, "to": ",".join(_numbers(25)), "text": "paced"})
            assert r.status_code == 200, r.text
            wait_for(lambda: len(sandbox.messages()) == 25, timeout=30, what="all 25 forwarded")
            sends = sorted((s["at"], len(s["json"]["messages"][0]["destinations"])) for s in sandbox.sends())
            first, total = sends[0][0], 0
            for at, n in sends:
                total += n
                assert total <= 5 + 10 * (at - first) + 1, (total, at - first)
            assert sends[-1][0] - first >= 1.9  # 20 after the burst at 10/s: two seconds at least
            assert sorted(m["messageId"] for m in sandbox.messages()) == sorted(
                m["messageId"] for m in r.json()["messages"])  # each once
        finally:
            assert bridge.stop() == 0, bridge.text()
