"""Issue 16 item 2: upstream failover. Two real sandboxes, one failing by fault injection (refused connections,
5xx, timeouts, dropped answers), then recovering: nothing lost, nothing sent to both (counted at each sandbox
by messageId), the record and /metrics saying which upstream carried each message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import requests
import yaml

from gateway.config import ConfigError, SandboxSettings, build_config
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests.conftest import DEMO, default_raw_config, running_sandbox
from tests.helpers import free_port, wait_for
from tests.storehelp import db_count, db_rows
from tests.test_ops import metric
from tests.test_ui import login


def two(b_url: str, **extra: Any) -> Callable[[dict[str, Any]], None]:
    """``upstreams:`` eu (the "sandbox" entry: the test's first sandbox) then us (``b_url``)."""

    def mutate(raw: dict[str, Any]) -> None:
        common = {"api_key": "sandbox-key", "failures_to_open": 2, "cooldown": 0.3, "connect_timeout": 1,
                  "read_timeout": 0.5, **extra}
        raw.pop("upstream")
        raw["upstreams"] = [{"name": "eu", "base_url": "sandbox", **common},
                            {"name": "us", "base_url": b_url, **common}]
        raw["queue"] = {"time_scale": 0.01, "workers": 2}

    return mutate


def queued(raw: dict[str, Any]) -> None:
    raw["callers"]["demo"]["mode"] = "queued"
    raw["templates"]["alarm"]["mode"] = "sync"  # it uses the query API


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        for change in changes:
            change(raw)

    return mutate


def ids_at(url: str) -> list[str]:
    return [m["messageId"] for m in requests.get(url + "/sandbox/messages", timeout=5).json()]


def send(bridge, n: int, start: int, text: str) -> list[str]:
    """One submission to ``n`` destinations; the messageIds the caller was given."""
    to = ",".join(f"4179{start + i:07d}" for i in range(n))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": to, "text": text})
    assert r.status_code == 200, r.text
    return [m["messageId"] for m in r.json()["messages"]]


def carriers(db) -> dict[str, str | None]:
    return {r.message_id: r.upstream for r in db_rows(db, "messages", "message_id", "upstream")}


def test_queued_fails_over_on_refused_connections_and_returns_once_the_primary_recovers(make_bridge):
    port = free_port()  # eu: nothing listens yet (connections refused)
    with running_sandbox(dlr_delay=3600) as us:
        bridge = make_bridge(both(two(us.url), queued), upstream_url=f"http://127.0.0.1:{port}")
        db = bridge.app.extensions["smsbridge"].db
        first = [mid for i in range(4) for mid in send(bridge, 5, 10 * i, f"first {i}")]
        wait_for(lambda: db_count(db, "messages", state="sent") == 20, what="every message sent through us")
        assert sorted(ids_at(us.url)) == sorted(first)
        assert set(carriers(db).values()) == {"us"}
        assert metric(bridge, "smsbridge_upstream_circuit_state", upstream="eu", state="open") == 1
        assert metric(bridge, "smsbridge_upstream_circuit_transitions_total", upstream="eu", state="open") >= 1
        assert metric(bridge, "smsbridge_upstream_messages_sent_total", upstream="us") == 20
        assert metric(bridge, "smsbridge_upstream_messages_sent_total", upstream="eu") == 0
        s, _ = login(bridge.url)  # the admin UI's message log says which upstream carried each message
        log = s.get(bridge.url + "/ui/api/log", timeout=10).json()
        assert {"name": "upstream", "label": "Upstream"} in log["columns"]
        assert {r["cells"]["messageId"]: r["cells"]["upstream"] for r in log["rows"]} == dict.fromkeys(first, "us")
        conv = bridge.get(f"/ct/1/log/end/{first[0]}", params=DEMO)  # told to the upstream that carried it
        assert conv.status_code == 200, conv.text
        assert [x["path"] for x in us.requests() if x["path"].startswith("/ct/")] == [f"/ct/1/log/end/{first[0]}"]
        eu = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", port).start()
        try:
            # the idle workers probe eu once its cool-down is over: an authenticated GET closes the circuit
            wait_for(lambda: metric(bridge, "smsbridge_upstream_circuit_state", upstream="eu", state="closed") == 1,
                     what="eu's circuit closed after its probe")
            assert metric(bridge, "smsbridge_upstream_circuit_transitions_total", upstream="eu",
                          state="half_open") >= 1
            later = send(bridge, 5, 100, "later")
            wait_for(lambda: db_count(db, "messages", state="sent") == 25, what="the later ones sent")
            assert sorted(ids_at(eu.url)) == sorted(later)  # back on the primary
            assert sorted(ids_at(us.url)) == sorted(first)  # nothing more at us, nothing at both
            got = carriers(db)
            assert {got[m] for m in later} == {"eu"} and {got[m] for m in first} == {"us"}
        finally:
            eu.stop()


def test_sync_sends_fail_over_within_the_request_on_5xx_and_skip_an_open_circuit(make_bridge, sandbox):
    with running_sandbox(dlr_delay=3600) as us:
        bridge = make_bridge(two(us.url))
        db = bridge.app.extensions["smsbridge"].db
        sandbox.faults(status=503, count=100000)  # eu: every API call, its probe included
        sent = []
        for i in range(6):
            r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"4179{i:07d}", "text": f"s{i}"})
            assert r.status_code == 200 and r.json()["messages"][0]["status"]["groupName"] == "PENDING", r.text
            sent.append(r.json()["messages"][0]["messageId"])
        assert sorted(ids_at(us.url)) == sorted(sent) and ids_at(sandbox.url) == []
        eu_sends = [x for x in sandbox.requests() if x["path"] == "/sms/2/text/advanced"]
        assert len(eu_sends) == 2  # failures_to_open: then the open circuit is skipped, not tried per request
        assert set(carriers(db).values()) == {"us"}
        assert metric(bridge, "smsbridge_send_events_total", event="failed_over") == 2  # then eu was skipped
        assert metric(bridge, "smsbridge_upstream_circuit_state", upstream="eu", state="open") == 1
        assert metric(bridge, "smsbridge_upstream_errors_total", api="advanced", reason="http 503",
                      upstream="eu") == 2
        sandbox.faults()  # eu recovers
        wait_for(lambda: metric(bridge, "smsbridge_upstream_circuit_state", upstream="eu", state="closed") == 1,
                 what="eu's circuit closed after its probe")
        r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41790000099", "text": "back"})
        back = r.json()["messages"][0]["messageId"]
        assert ids_at(sandbox.url) == [back] and carriers(db)[back] == "eu"
        assert sorted(ids_at(us.url)) == sorted(sent)


@pytest.mark.parametrize("unanswered, taken", [
    # beyond read_timeout, and then (the rules combine) a 503: eu did not take it, but the bridge cannot know
    ({"delay_ms": 1500, "count": 1, "path": "/sms/2/text/advanced"}, False),
    ({"drop": "answer", "count": 1, "path": "/sms/2/text/advanced"}, True),  # eu took it, the answer was lost
])
@pytest.mark.parametrize("mode", ["queued", "sync"])
def test_an_unanswered_attempt_is_reconciled_on_its_upstream_never_sent_to_the_other(make_bridge, sandbox, mode,
                                                                                    unanswered, taken):
    with running_sandbox(dlr_delay=3600) as us:
        change = both(two(us.url), queued) if mode == "queued" else two(us.url)
        bridge = make_bridge(change)
        db = bridge.app.extensions["smsbridge"].db
        # eu takes the first request without answering it, then fails everything (its probe too) for a while
        sandbox.faults(rules=[unanswered, {"status": 503, "count": 100000}])
        unsure = send(bridge, 5, 0, "unsure")  # sync: handed over as unknown (PENDING_ACCEPTED)
        wait_for(lambda: metric(bridge, "smsbridge_upstream_circuit_state", upstream="eu", state="open") == 1,
                 what="eu's circuit open")
        moved = send(bridge, 5, 100, "moved")
        wait_for(lambda: sorted(ids_at(us.url)) == sorted(moved), what="the new ones sent through us")
        wait_for(lambda: db_count(db, "messages", state="sent") == 5, what="their answers recorded")
        assert db_count(db, "messages", state="sent") == 5  # the unsure ones wait for eu, the only one that knows
        assert {carriers(db)[m] for m in unsure} == {"eu"}
        s, _ = login(bridge.url)
        log = {r["cells"]["messageId"]: r["cells"] for r in s.get(bridge.url + "/ui/api/log", timeout=10).json()["rows"]}
        assert log[unsure[0]]["upstream"] == "eu (waits for it: it may hold the message)" and log[moved[0]]["upstream"] == "us"
        assert sorted(ids_at(sandbox.url)) == (sorted(unsure) if taken else [])
        sandbox.faults()  # eu recovers: the resend with the same ids is refused as a duplicate = accepted
        wait_for(lambda: db_count(db, "messages", state="sent") == 10, timeout=15, what="the unsure ones settled")
        at_eu, at_us = ids_at(sandbox.url), ids_at(us.url)
        assert sorted(at_eu) == sorted(unsure) and sorted(at_us) == sorted(moved)
        assert not set(at_eu) & set(at_us) and len(at_eu) == len(set(at_eu)) and len(at_us) == len(set(at_us))
        got = carriers(db)
        assert {got[m] for m in unsure} == {"eu"} and {got[m] for m in moved} == {"us"}
        # taken: the resend is refused as a duplicate (= accepted); not taken: the resend is the first to arrive
        assert metric(bridge, "smsbridge_send_events_total", event="reconciled") == (5 if taken else 0)


def test_reports_and_inbound_from_the_second_upstream_are_matched(make_bridge, receiver):
    port = free_port()  # us, started once the bridge's address (its inbound hook) is known
    notify = receiver.url("/dlr")

    def allow(raw):
        raw["callers"]["demo"]["allow"]["loopback"] = True

    bridge = make_bridge(both(two(f"http://127.0.0.1:{port}"), allow), upstream_url=f"http://127.0.0.1:{free_port()}")
    db = bridge.app.extensions["smsbridge"].db
    app = create_sandbox_app(SandboxSettings(dlr_delay=0.05, time_scale=0.001, push_time_scale=0.001),
                             inbound_url=bridge.url + "/hooks/inbound/sandbox-inbound-token")
    us = ServerThread(app, "127.0.0.1", port).start()
    try:
        r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "hi", "notifyUrl": notify})
        assert r.status_code == 200, r.text
        mid = r.json()["messages"][0]["messageId"]
        report = wait_for(lambda: [x for x in receiver.snapshot() if mid.encode() in x.body], what="the report")
        assert b"DELIVERED" in report[0].body
        assert carriers(db)[mid] == "us"
        injected = requests.post(us.url + "/sandbox/inbound", timeout=5,
                                 json={"from": "41793026727", "to": "41793026834", "text": "INFO hours"})
        assert injected.status_code in (200, 201), injected.text
        wait_for(lambda: db_count(db, "inbound_messages") == 1, what="the inbound message stored")
        # the rule's auto-reply is a send like any other: through us too
        wait_for(lambda: any(m["text"].startswith("Thanks") for m in requests.get(
            us.url + "/sandbox/messages", timeout=5).json()), what="the auto-reply at us")
    finally:
        us.stop()
        app.extensions["sandbox"].stop()


def _problems(change: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    raw = copy.deepcopy(default_raw_config())
    change(raw)
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    return dict(exc.value.problems)


def test_upstreams_config_is_validated_by_key_path():
    def listed(*entries: dict[str, Any], keep_single: bool = False):
        def change(raw):
            if not keep_single:
                raw.pop("upstream")
            raw["upstreams"] = list(entries)
        return change

    ok = {"base_url": "sandbox", "api_key": "k"}
    assert "upstreams" in _problems(listed({**ok, "name": "a"}, keep_single=True))
    assert "upstreams[0].name" in _problems(listed(ok))
    assert "'a' is used twice" in _problems(listed({**ok, "name": "a"}, {**ok, "name": "a"}))["upstreams[1].name"]
    got = _problems(listed({**ok, "name": "a", "fallback_base_url": "x"}))
    assert got["upstreams[0].fallback_base_url"].startswith("unknown key")
    got = _problems(listed({**ok, "name": "a", "rate": {"per_second": 0, "speed": 1}}, {**ok, "name": "b", "cooldown": 0}))
    assert "unknown key 'speed'" in got["upstreams[0].rate"]  # read as traffic control reads every rate
    assert "upstreams[1].cooldown" in got
    assert "upstreams[0].api_key" in _problems(listed({"base_url": "sandbox", "name": "a"}))
    assert "upstreams" in _problems(listed())
    raw = copy.deepcopy(default_raw_config())
    two("https://api-us.example.com", rate=20)(raw)
    config = build_config(raw, env={})
    assert [u.name for u in config.upstreams] == ["eu", "us"] and config.upstream is config.upstreams[0]
    single = build_config(copy.deepcopy(default_raw_config()), env={})
    assert [u.name for u in single.upstreams] == ["primary"]  # upstream: alone is a list of one


def test_a_batch_in_flight_when_the_bridge_is_killed_is_reconciled_on_its_upstream_after_restart(tmp_path):
    """kill -9 while eu holds a batch unanswered; eu then fails: after the restart the batch waits for eu (which
    has it) and new sends go to us; when eu recovers the resend is a duplicate. Nothing at both."""
    from tests.test_queued_crash import _config, _start

    with running_sandbox(dlr_delay=3600) as eu, running_sandbox(dlr_delay=3600) as us:
        path = _config(tmp_path, eu.url)
        raw = yaml.safe_load(path.read_text())
        common = {"api_key": "sandbox-key", "failures_to_open": 1, "cooldown": 0.3, "read_timeout": 20}
        raw["upstreams"] = [{"name": "eu", "base_url": raw.pop("upstream")["base_url"], **common},
                            {"name": "us", "base_url": us.url, **common}]
        path.write_text(yaml.safe_dump(raw))
        auth = {"username": "demo", "password": "demo"}

        def submit(url: str, n: int, start: int) -> list[str]:
            to = ",".join(f"4179{start + i:07d}" for i in range(n))
            r = requests.get(url + "/sms/1/text/query", params={**auth, "to": to, "text": "t"}, timeout=10)
            assert r.status_code == 200, r.text
            return [m["messageId"] for m in r.json()["messages"]]

        eu.faults(delay_ms=4000, count=1, path="/sms/2/text/advanced")  # taken after 4 s: answered too late
        proc, url = _start(path)
        try:
            held = submit(url, 20, 0)
            wait_for(lambda: [x for x in eu.requests() if x["path"] == "/sms/2/text/advanced"],
                     what="the batch in flight at eu")
            proc.kill()  # kill -9 mid-request
            proc.wait(10)
            eu.faults(status=503, count=100000)  # eu now fails everything (its probe too)
            proc, url = _start(path)
            wait_for(lambda: sorted(ids_at(eu.url)) == sorted(held), what="eu finished taking the batch")
            later = submit(url, 5, 100)
            wait_for(lambda: sorted(ids_at(us.url)) == sorted(later), what="new sends through us")
            assert not set(ids_at(us.url)) & set(held)  # the batch eu may hold never went to us
            eu.faults()
            wait_for(lambda: metric_text(url, 'smsbridge_send_events_total{event="reconciled"} 20.0'),
                     timeout=20, what="the batch reconciled at eu")
            assert sorted(ids_at(eu.url)) == sorted(held) and sorted(ids_at(us.url)) == sorted(later)
        finally:
            proc.kill()
            proc.wait(10)


def metric_text(url: str, line: str) -> bool:
    return line in requests.get(url + "/metrics", timeout=10).text.splitlines()


def test_the_breaker_opens_after_n_failures_lets_one_prober_through_and_reopens_on_a_failed_probe():
    from gateway.send.upstreams import CLOSED, HALF_OPEN, OPEN, Breaker

    b = Breaker(failures_to_open=3, cooldown=30)
    for t in (1, 2):
        b.failure(t)
    assert b.state == CLOSED
    b.success(3)  # consecutive failures only
    for t in (4, 5, 6):
        b.failure(t)
    assert b.state == OPEN and b.retry_at() == 36
    assert not b.probe_due(35)  # cooling down
    assert b.probe_due(36) and b.state == HALF_OPEN
    assert not b.probe_due(36.5)  # one prober at a time
    b.probed(False, 37)
    assert b.state == OPEN and b.retry_at() == 67
    assert b.probe_due(67)
    b.probed(True, 68)
    assert b.state == CLOSED and b.failures == 0
    assert b.transitions == {CLOSED: 1, HALF_OPEN: 2, OPEN: 2}


def test_each_upstream_keeps_its_own_rate_even_for_what_fails_over_to_it(make_bridge):
    """upstreams[].rate: the second upstream's own account pace (2/s, burst 2) holds for the messages that fail
    over to it, on a manual clock; the primary has no rate. Nothing is refused, nothing lost."""
    from gateway.clock import ManualClock
    from tests.test_pacing import _settled, _tick

    port = free_port()  # eu: nothing listens (connections refused)
    clock = ManualClock()
    with running_sandbox(dlr_delay=3600) as us:
        def mutate(raw: dict[str, Any]) -> None:
            two(us.url)(raw)
            raw["upstreams"][1]["rate"] = {"per_second": 2, "burst": 2}
            queued(raw)

        bridge = make_bridge(mutate, upstream_url=f"http://127.0.0.1:{port}", clock=clock)
        send(bridge, 6, 0, "paced at us")
        wait_for(lambda: _settled(bridge, 2, 4), what="the burst of 2 at us, 4 waiting")
        _tick(clock, 1.0, bridge)
        wait_for(lambda: _settled(bridge, 4, 2), what="2 more a second later")
        _tick(clock, 1.0, bridge)
        wait_for(lambda: _settled(bridge, 6, 0), what="the rest")
        assert len(ids_at(us.url)) == 6
        metrics = bridge.get("/metrics").text
        assert 'smsbridge_pace_rate{bucket="upstream:us"} 2.0' in metrics
        assert 'smsbridge_paced_total{bucket="upstream:us"} 6.0' in metrics
        assert 'bucket="upstream"' not in metrics  # the primary (eu) has no rate of its own
