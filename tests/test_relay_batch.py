"""Relayed reports share a push: due reports for one notifyUrl (same format, headers, caller, shape) go
out as one POST of up to ``outbox.max_batch`` results; every job keeps its own attempts and schedule.
Real HTTP (bridge, sandbox and receiver on loopback) and real SQLite files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from gateway.clock import ManualClock
from gateway.config import ConfigError, build_config
from gateway.delivery.outbox import Outbox
from gateway.delivery.urlpolicy import UrlPolicy
from gateway.store.engine import Database
from gateway.wire.reports import merge_reports_bodies, parse_reports, reports_body
from tests.conftest import DEMO, default_raw_config
from tests.helpers import wait_for
from tests.receiver import Received, Receiver
from tests.storehelp import q

T0 = 1_700_000_000.0


def _send(bridge, n: int, **params) -> list[str]:
    """Send to ``n`` destinations; the caller's messageIds."""
    to = ",".join(str(41793026700 + i) for i in range(n))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "from": "InfoSMS", "text": "Hi", "to": to, **params})
    assert r.status_code == 200, r.text
    return [m["messageId"] for m in r.json()["messages"]]


def _push_all(bridge, text: str | None = None) -> int:
    """Play the upstream: push one final report per message of each submission (one body per
    submission, as Infobip's buckets); return the reports stored."""
    db = bridge.app.extensions["smsbridge"].db
    stored = 0
    for sub in q(db, "SELECT id, dlr_token FROM submissions ORDER BY id"):
        ids = [r[0] for r in q(db, "SELECT upstream_message_id FROM messages WHERE submission_id = ? ORDER BY id",
                                      (sub["id"],))]
        body = {"results": [{"messageId": u, "doneAt": "2030-01-01T10:00:00.000+0000", "smsCount": 1,
                             "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5,
                                        "name": "DELIVERED_TO_HANDSET", "description": "d"}} for u in ids]}
        r = requests.post(f"{bridge.url}/hooks/dlr/{sub['dlr_token']}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        stored += r.json()["stored"]
    return stored


def _ids(got: Received) -> list[str]:
    return [r["messageId"] for r in parse_reports(got.body, got.headers.get("Content-Type"))]


def test_reports_for_one_notify_url_arrive_in_one_post_each_exactly_once(make_bridge, receiver):
    bridge = make_bridge()
    sent = _send(bridge, 30, notifyUrl=receiver.url("/dlr"), callbackData="cb")
    assert _push_all(bridge) == 30
    ctx = bridge.app.extensions["smsbridge"]
    wait_for(lambda: ctx.outbox.depth() == 0 and receiver.count() >= 1, what="the outbox drained")
    posts = receiver.snapshot()
    assert len(posts) == 1, "30 reports committed together go out as one push"
    assert posts[0].method == "POST" and posts[0].headers["Content-Type"] == "application/json"
    results = json.loads(posts[0].body)["results"]
    assert [r["messageId"] for r in results] == sent  # all, once, in order
    assert {r["callbackData"] for r in results} == {"cb"}
    jobs = ctx.outbox.jobs(limit=100)
    assert len(jobs) == 30 and all(j.state == "done" and j.attempts == 1 for j in jobs)
    assert all(len(ctx.outbox.attempts(j.id)) == 1 for j in jobs)  # per-job bookkeeping kept


def test_many_results_in_one_xml_push(make_bridge, receiver):
    bridge = make_bridge()
    sent = _send(bridge, 12, notifyUrl=receiver.url("/x"), notifyContentType="application/xml", callbackData="a<&>b")
    _push_all(bridge)
    wait_for(lambda: bridge.app.extensions["smsbridge"].outbox.depth() == 0 and receiver.count() >= 1,
             what="the XML push")
    (got,) = receiver.snapshot()
    assert got.headers["Content-Type"] == "application/xml"
    assert got.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><reportResponse><results><result>')
    assert got.body.count(b"<?xml") == 1 and got.body.count(b"<reportResponse>") == 1
    root = ET.fromstring(got.body)
    assert root.tag == "reportResponse" and len(root) == 1 and root[0].tag == "results"
    results = root.findall("results/result")
    assert [r.findtext("messageId") for r in results] == sent
    assert {r.findtext("callbackData") for r in results} == {"a<&>b"}
    assert {r.findtext("status/name") for r in results} == {"DELIVERED_TO_HANDSET"}


def test_formats_urls_and_legacy_callbacks_are_not_merged(make_bridge, receiver):
    def callback(raw):
        raw["callers"]["demo"]["callback"] = {"url": receiver.url("/pbx") + "?id={{ messageId }}", "method": "GET"}

    bridge = make_bridge(callback)
    ctx = bridge.app.extensions["smsbridge"]
    ctx.outbox.stop()  # deliver below, all due jobs in one run
    a = _send(bridge, 3, notifyUrl=receiver.url("/a"))
    b = _send(bridge, 4, notifyUrl=receiver.url("/a"), notifyContentType="application/xml")
    c = _send(bridge, 5, notifyUrl=receiver.url("/c"))
    assert _push_all(bridge) == 12
    assert ctx.outbox.run_due(1000) == 24  # 12 notifyUrl jobs + 12 callback jobs
    posts = [r for r in receiver.snapshot() if r.method == "POST"]
    by_target = {(p.path, p.headers["Content-Type"]): _ids(p) for p in posts}
    assert len(posts) == 3 and by_target == {("/a", "application/json"): a, ("/a", "application/xml"): b,
                                             ("/c", "application/json"): c}
    gets = [r for r in receiver.snapshot() if r.method == "GET"]
    assert sorted(g.query for g in gets) == sorted(f"id={m}" for m in a + b + c)  # one GET per report


def test_failing_receiver_retries_every_job_of_the_push_then_delivers_each_once(make_bridge):
    receiver = Receiver(fail_first=2).start()
    try:
        bridge = make_bridge()
        sent = _send(bridge, 10, notifyUrl=receiver.url("/dlr"))
        _push_all(bridge)
        ctx = bridge.app.extensions["smsbridge"]
        wait_for(lambda: receiver.count() == 3, what="two failed pushes and a third")
        wait_for(lambda: ctx.outbox.depth() == 0, what="the jobs recorded done")
        posts = receiver.snapshot()
        assert [_ids(p) for p in posts] == [sent] * 3  # each attempt carries every report of the batch
        jobs = ctx.outbox.jobs(limit=100)
        assert len(jobs) == 10 and all(j.state == "done" and j.attempts == 3 for j in jobs)
        for job in jobs:
            statuses = [a["http_status"] for a in ctx.outbox.attempts(job.id)]
            assert statuses == [500, 500, 200]
        assert ctx.outbox.stats()["delivered"] == 10 and ctx.outbox.stats()["retries"] == 20
    finally:
        receiver.close()
    assert receiver.count() == 3  # delivered: no further push


def test_max_batch_caps_the_results_per_push(make_bridge, receiver):
    def cap(raw):
        raw["outbox"]["max_batch"] = 4

    bridge = make_bridge(cap)
    sent = _send(bridge, 10, notifyUrl=receiver.url("/dlr"))
    _push_all(bridge)
    wait_for(lambda: bridge.app.extensions["smsbridge"].outbox.depth() == 0 and receiver.count() >= 3,
             what="the pushes")
    posts = receiver.snapshot()
    sizes = [len(_ids(p)) for p in posts]
    assert len(posts) == 3 and max(sizes) <= 4 and sum(sizes) == 10
    assert sorted(m for p in posts for m in _ids(p)) == sorted(sent)


def test_max_batch_must_be_positive() -> None:
    raw = default_raw_config()
    raw["outbox"] = {"max_batch": 0}
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    assert "outbox.max_batch" in str(exc.value)


# -- the outbox on its own, on a manual clock --------------------------------------------------
@pytest.fixture
def outbox(tmp_path: Path):
    db = Database(str(tmp_path / "ob.db"))
    ob = Outbox(db, ManualClock(T0), policy_for=lambda caller: UrlPolicy(allow_loopback=True), read_timeout=5)
    for kind in ("dlr", "dlr-v3"):
        ob.mergeable(kind, merge_reports_bodies)
    yield ob
    db.close()


def _body(mid: str, ctype: str = "application/json") -> bytes:
    return reports_body([{"messageId": mid}], ctype)[0]


def test_batch_follows_the_retry_schedule(outbox, receiver) -> None:
    receiver.fail_first = 2
    clock = outbox.clock
    ids = [outbox.enqueue("dlr", receiver.url("/dlr"), body=_body(f"m{i}"), content_type="application/json")
           for i in range(5)]
    assert outbox.run_due() == 5 and receiver.count() == 1
    for gap in (60, 120):  # retry 0 after 1 min, retry 1 after 2 min: for every job of the push
        clock.advance(gap - 1)
        assert outbox.run_due() == 0, "not due before its time"
        clock.advance(1)
        assert outbox.run_due() == 5
    assert receiver.count() == 3
    assert [_ids(r) for r in receiver.snapshot()] == [[f"m{i}" for i in range(5)]] * 3
    for jid in ids:
        assert [a["at"] - T0 for a in outbox.attempts(jid)] == [0, 60, 180]
        job = outbox.job(jid)
        assert job is not None and job.state == "done" and job.attempts == 3 and job.last_status == 200
    clock.advance(3600)
    assert outbox.run_due() == 0 and receiver.count() == 3  # each report delivered once


def test_only_identical_targets_merge(outbox, receiver) -> None:
    url = receiver.url("/same")
    outbox.enqueue("dlr", url, body=_body("j1"), content_type="application/json")
    outbox.enqueue("dlr", url, body=_body("j2"), content_type="application/json")
    outbox.enqueue("dlr", url, body=_body("x1", "application/xml"), content_type="application/xml")
    outbox.enqueue("dlr", url, body=_body("h1"), content_type="application/json", headers={"X-Key": "1"})
    outbox.enqueue("dlr", url, body=_body("c1"), content_type="application/json", caller="other")
    outbox.enqueue("dlr-v3", url, body=_body("v1"), content_type="application/json")
    outbox.enqueue("dlr", url, body=b"not a report body", content_type="application/json")
    outbox.enqueue("dlr", url, body=_body("j3"), content_type="application/json")
    outbox.enqueue("inbound", url, body=_body("i1"), content_type="application/json")
    outbox.enqueue("inbound", url, body=_body("i2"), content_type="application/json")
    assert outbox.run_due() == 10
    got = receiver.snapshot()
    bodies = sorted(r.body for r in got)
    assert len(got) == 8  # j1+j2+j3 merged; every other job alone
    merged = [r for r in got if r.body.startswith(b'{"results":[') and len(_ids(r)) > 1]
    assert len(merged) == 1 and _ids(merged[0]) == ["j1", "j2", "j3"]
    assert b"not a report body" in bodies
    assert sum(len(_ids(r)) for r in got if r.body != b"not a report body") == 9


def test_merge_splices_json_and_xml_bodies() -> None:
    for ctype in ("application/json", "application/xml"):
        parts = [reports_body([{"messageId": "1"}, {"messageId": "2"}], ctype)[0], reports_body([], ctype)[0],
                 reports_body([{"messageId": "3", "callbackData": "<&>ü"}], ctype)[0]]
        merged = merge_reports_bodies(parts, ctype)
        assert merged is not None
        assert [r["messageId"] for r in parse_reports(merged, ctype)] == ["1", "2", "3"]
        assert parse_reports(merged, ctype)[2]["callbackData"] == "<&>ü"
    assert merge_reports_bodies([_body("1"), b'{"other":1}'], "application/json") is None
    assert merge_reports_bodies([_body("1"), None], "application/json") is None
    assert merge_reports_bodies([_body("1", "application/xml")], "application/json") is None
