"""National numbers over real HTTP (issue 16 item 5): ``079 302 67 27`` is made international with the caller's
(or template's) ``default_country`` through phonenumbers, or refused naming the parameter; the sandbox, like
Infobip, rejects destinations that are not international numbers; the log searches read ``+41…``, ``0041…``
and ``41…`` as one number."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import DEMO
from tests.test_ui import login
from tests.test_ui_log import rows

CH = "41793026727"
NATIONAL = ("079 302 67 27", "0793026727", "(079) 302-67-27", "079.302.67.27")
SANDBOX_AUTH = {"Authorization": "App sandbox-key"}


def country(code: str, **template: Any):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"]["default_country"] = code
        raw["templates"]["alarm"].update(template)
    return mutate


def _errors(r) -> dict[str, list[str]]:
    return r.json()["requestError"]["serviceException"]["validationErrors"]


# -- the sandbox plays Infobip: international numbers only ---------------------------------------------------
def test_sandbox_rejects_national_and_impossible_numbers_per_destination(sandbox):
    r = requests.get(sandbox.url + "/sms/1/text/query", timeout=5, params={
        "username": "sandbox", "password": "sandbox", "to": f"{CH},0793026727,+999 1234567,4179302", "text": "x"})
    assert r.status_code == 200, r.text
    msgs = r.json()["messages"]
    assert [m["status"]["name"] for m in msgs] == ["PENDING_ACCEPTED"] + ["REJECTED_INVALID_DESTINATION"] * 3
    assert "national number" in msgs[1]["status"]["description"]
    assert "country calling code" in msgs[2]["status"]["description"]
    assert "too short" in msgs[3]["status"]["description"]
    a = requests.post(sandbox.url + "/sms/2/text/advanced", headers=SANDBOX_AUTH, timeout=5,
                      json={"messages": [{"destinations": [{"to": CH}, {"to": "0793026727"}], "text": "x"}]})
    assert [m["status"]["name"] for m in a.json()["messages"]] == ["PENDING_ACCEPTED", "REJECTED_INVALID_DESTINATION"]
    v3 = requests.post(sandbox.url + "/sms/3/messages", headers=SANDBOX_AUTH, timeout=5, json={
        "messages": [{"destinations": [{"to": "0793026727"}, {"to": CH}], "content": {"text": "x"}}]})
    assert [m["status"]["name"] for m in v3.json()["messages"]] == ["REJECTED_INVALID_DESTINATION",
                                                                     "PENDING_ACCEPTED"]
    assert sorted(m["to"] for m in sandbox.messages()) == [CH, CH, CH]  # no national number was "delivered"


# -- the bridge without a default country: refused, naming the parameter -------------------------------------
def test_national_number_without_default_country_is_refused_naming_the_parameter(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "079 302 67 27", "text": "x"})
    assert r.status_code == 400
    (reason,) = _errors(r)["to"]
    assert "'079 302 67 27' is a national number" in reason and "default_country" in reason
    t = bridge.get("/t/alarm", params={**DEMO, "phone": "0793026727", "msg": "x"})
    assert t.status_code == 400 and "national number" in _errors(t)["phone"][0]
    v3 = bridge.post("/sms/3/messages", auth=("demo", "demo"),
                     json={"messages": [{"destinations": [{"to": "0793026727"}], "content": {"text": "x"}}]})
    assert v3.status_code == 400 and v3.json()["violations"][0]["property"] == "messages[0].destinations[0].to"
    mixed = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{CH},0793026834", "text": "x"})
    assert [m["status"]["name"] for m in mixed.json()["messages"]] == ["PENDING_ACCEPTED",
                                                                        "REJECTED_INVALID_DESTINATION"]
    assert [m["to"] for m in sandbox.messages()] == [CH]


# -- with a default country: converted on every entrance -----------------------------------------------------
@pytest.mark.parametrize("written", NATIONAL)
def test_national_formats_become_international_with_the_default_country(make_bridge, sandbox, written):
    bridge = make_bridge(country("CH"))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": written, "text": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["to"] == CH
    assert [m["to"] for m in sandbox.messages()] == [CH]


def test_default_country_on_advanced_v3_and_templates(make_bridge, sandbox):
    bridge = make_bridge(country("CH", default_country="DE"))
    a = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"), json={"messages": [
        {"destinations": [{"to": "079 302 67 27"}, {"to": "+41 (0)79 302 68 34"}], "text": "x"}]})
    assert a.status_code == 200 and [m["to"] for m in a.json()["messages"]] == [CH, "41793026834"]
    v3 = bridge.post("/sms/3/messages", auth=("demo", "demo"),
                     json={"messages": [{"destinations": [{"to": "(079) 302-67-28"}], "content": {"text": "x"}}]})
    assert v3.status_code == 200 and v3.json()["messages"][0]["destination"] == "41793026728"
    t = bridge.get("/t/alarm", params={**DEMO, "phone": "0151 23456789", "msg": "x"})  # the template's: DE
    assert t.status_code == 200, t.text
    assert t.json()["messages"][0]["to"] == "4915123456789"
    otp = bridge.get("/t/otp", params={**DEMO, "to": "079 302 67 29", "code": "1234"})  # the caller's: CH
    assert otp.status_code == 200 and otp.json()["messages"][0]["to"] == "41793026729"
    assert sorted(m["to"] for m in sandbox.messages()) == sorted([CH, "41793026834", "41793026728", "4915123456789",
                                                                  "41793026729"])


def test_invalid_national_number_is_refused_naming_the_country(make_bridge, sandbox):
    bridge = make_bridge(country("CH"))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "079 302", "text": "x"})
    assert r.status_code == 400
    assert _errors(r)["to"] == ["'079 302' is not a valid phone number of CH (the default country)"]
    t = bridge.get("/t/alarm", params={**DEMO, "phone": "012 34", "msg": "x"})
    assert t.status_code == 400 and "not a valid phone number of CH" in _errors(t)["phone"][0]
    assert sandbox.sends() == []


def test_international_numbers_are_checked_like_infobip_does(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "+999 1234567", "text": "x"})
    assert r.status_code == 400 and "country calling code" in _errors(r)["to"][0]
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "4179302", "text": "x"})
    assert r.status_code == 400 and "too short for a number of +41 (CH)" in _errors(r)["to"][0]
    assert sandbox.sends() == []


# -- log searches: one number, however it is written ---------------------------------------------------------
def test_log_searches_read_every_international_notation_as_one_number(bridge, sandbox):
    for text in ("first", "second"):
        assert bridge.get("/sms/1/text/query", params={**DEMO, "to": CH, "text": text}).status_code == 200
    assert bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026834", "text": "other"}).status_code == 200
    for written in ("41793026727", "+41793026727", "0041793026727", "+41 79 302 67 27", "0041 (0)79 302 67 27"):
        v1 = bridge.get("/sms/1/logs", params={**DEMO, "to": written}).json()["results"]
        assert sorted(x["text"] for x in v1) == ["first", "second"], written
        v3 = bridge.get("/sms/3/logs", params={"destination": written}, auth=("demo", "demo")).json()["results"]
        assert len(v3) == 2, written
    s, _ = login(bridge.url)
    for written in ("0041793026727", "+41 79 302 67 27"):
        assert len(rows(s, bridge.url, number=written)["rows"]) == 2, written
