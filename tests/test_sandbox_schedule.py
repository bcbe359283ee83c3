"""Scheduled messages (sendAt) stay PENDING in every sandbox view and pushed report until their time;
rescheduling, cancelling and the trailing-slash bulk URLs (Infobip's Node SDK) on the sandbox and the bridge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.conftest import DEMO, Sandbox, running_sandbox
from tests.helpers import wait_for

AUTH = {"Authorization": "App sandbox-key"}


@pytest.fixture
def fast() -> Iterator[Sandbox]:
    with running_sandbox(dlr_delay=0.02, time_scale=0.001) as sandbox:
        yield sandbox


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _send(sb: Sandbox, to: str, url: str, **extra) -> dict:
    body = {"messages": [{"destinations": [{"to": to}], "text": "t", "notifyUrl": url, **extra}], **extra.pop("top", {})}
    r = requests.post(sb.url + "/sms/2/text/advanced", json=body, headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def _pushed(receiver) -> dict[str, dict]:
    out = {}
    for req in receiver.snapshot():
        for rep in json.loads(req.body)["results"]:
            out[rep["messageId"]] = rep
    return out


def _v1_log(sb: Sandbox, mid: str) -> dict:
    r = requests.get(sb.url + "/sms/1/logs", params={"messageId": mid}, headers=AUTH, timeout=5)
    return r.json()["results"][0]


def _v3_log(sb: Sandbox, mid: str) -> dict:
    r = requests.get(sb.url + "/sms/3/logs", params={"messageId": mid}, headers=AUTH, timeout=5)
    return r.json()["results"][0]


def test_scheduled_message_stays_pending_until_its_time_then_reschedule(fast, receiver):
    later = _send(fast, "41793026727", receiver.url(), sendAt=_at(timedelta(days=200 - 30)), top={"bulkId": "b-later"})
    mid = later["messages"][0]["messageId"]
    now = _send(fast, "41793026728", receiver.url())["messages"][0]["messageId"]
    # The unscheduled message, sent after the scheduled one, has its report: the scheduled one would have by now.
    wait_for(lambda: now in _pushed(receiver), what="the unscheduled message's report")
    assert mid not in _pushed(receiver)
    assert _v1_log(fast, mid)["status"]["groupName"] == "PENDING"
    assert _v3_log(fast, mid)["status"]["groupName"] == "PENDING"
    r = requests.get(fast.url + "/sms/1/reports", headers=AUTH, timeout=5).json()["results"]
    assert mid not in {x["messageId"] for x in r}
    # Rescheduled to a second from now (through the Node SDK's trailing-slash URL): delivered then, once.
    r = requests.put(fast.url + "/sms/1/bulks/", params={"bulkId": "b-later"}, json={"sendAt": _at(timedelta(seconds=1))},
                     headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    wait_for(lambda: mid in _pushed(receiver), what="the rescheduled message's report")
    assert _pushed(receiver)[mid]["status"]["groupName"] == "DELIVERED"
    assert _v1_log(fast, mid)["status"]["groupName"] == "DELIVERED"
    assert sum(1 for req in receiver.snapshot() for x in json.loads(req.body)["results"] if x["messageId"] == mid) == 1


def test_canceled_bulk_reports_canceled_not_delivered(fast, receiver):
    mid = _send(fast, "41793026727", receiver.url(), sendAt=_at(timedelta(days=1)), top={"bulkId": "b-cancel"}
                )["messages"][0]["messageId"]
    r = requests.get(fast.url + "/sms/1/bulks/status/", params={"bulkId": "b-cancel"}, headers=AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "PENDING"
    r = requests.put(fast.url + "/sms/1/bulks/status/", params={"bulkId": "b-cancel"}, json={"status": "CANCELED"},
                     headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    wait_for(lambda: mid in _pushed(receiver), what="the cancel report")
    rep = _pushed(receiver)[mid]
    assert rep["status"]["groupName"] == "UNDELIVERABLE" and rep["error"]["name"] == "EC_MESSAGE_CANCELED"
    assert _v1_log(fast, mid)["status"]["groupName"] == "UNDELIVERABLE"


def test_bulk_urls_with_trailing_slash_on_the_bridge(make_bridge, sandbox):
    def setup(raw):
        raw["callers"]["demo"]["upstream_api"] = "advanced"

    bridge = make_bridge(setup)
    body = {"bulkId": "slash-1", "messages": [{"destinations": [{"to": "41793026727"}], "text": "s",
                                               "sendAt": _at(timedelta(days=1))}]}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=(DEMO["username"], DEMO["password"]))
    assert r.status_code == 200, r.text
    for path in ("/sms/1/bulks", "/sms/1/bulks/"):
        r = bridge.get(path, params={"bulkId": "slash-1"}, auth=(DEMO["username"], DEMO["password"]))
        assert r.status_code == 200 and r.json()["bulkId"] == "slash-1", (path, r.text)
    for path in ("/sms/1/bulks/status", "/sms/1/bulks/status/"):
        r = bridge.get(path, params={"bulkId": "slash-1"}, auth=(DEMO["username"], DEMO["password"]))
        assert r.status_code == 200 and r.json()["status"] == "PENDING", (path, r.text)
    r = requests.put(bridge.url + "/sms/1/bulks/status/", params={"bulkId": "slash-1"}, json={"status": "PAUSED"},
                     auth=(DEMO["username"], DEMO["password"]), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "PAUSED", r.text
