"""Caller policy over real HTTP (issue 16 item 5): the senders and destinations a caller and a template may
use. A forbidden sender is 403 naming the rule in each entrance's envelope, before anything is recorded or sent;
a forbidden destination among allowed ones is REJECTED_DESTINATION at its place, the rest sent; all forbidden:
403. Patterns are shell globs (senders, digits) and ISO country codes; bad ones are refused at load."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from gateway.config import ConfigError, build_config
from tests.conftest import DEMO, default_raw_config
from tests.storehelp import db_count, db_values

CH, CH2, UK, LI, US, CA = "41793026727", "41793026834", "447491163443", "4237811234", "12125551234", "14165551234"


def policy(**demo: Any):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"].update(demo)
    return mutate


def _text_v1(r) -> str:
    return r.json()["requestError"]["serviceException"]["text"]


def _sent_to(sandbox) -> list[str]:
    return sorted(m["to"] for m in sandbox.messages())


def _db(bridge):
    return bridge.app.extensions["smsbridge"].store.db


def test_forbidden_sender_is_403_naming_the_rule_in_every_envelope(make_bridge, sandbox):
    bridge = make_bridge(policy(senders=["InfoSMS", "Alarm*"]))
    q = bridge.get("/sms/1/text/query", params={**DEMO, "from": "Bank", "to": CH, "text": "x"})
    assert q.status_code == 403
    assert q.json()["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"
    assert _text_v1(q) == "sender 'Bank' is not among caller demo's senders (InfoSMS, Alarm*)"
    x = bridge.get("/sms/1/text/query.xml", params={**DEMO, "from": "Bank", "to": CH, "text": "x"})
    assert x.status_code == 403 and "not among caller demo's" in ET.fromstring(x.content).findtext(".//text")
    a = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"),
                    json={"messages": [{"from": "Bank", "destinations": [{"to": CH}], "text": "x"}]})
    assert a.status_code == 403 and "sender 'Bank'" in _text_v1(a)
    v3 = bridge.post("/sms/3/messages", auth=("demo", "demo"),
                     json={"messages": [{"sender": "Bank", "destinations": [{"to": CH}], "content": {"text": "x"}}]})
    assert v3.status_code == 403 and v3.json()["errorCode"] == "E403" and "sender 'Bank'" in v3.json()["description"]
    assert sandbox.sends() == []  # nothing left the bridge
    assert db_count(_db(bridge), "messages") == 0  # nor was anything recorded


def test_allowed_senders_exact_glob_numeric_and_the_default(make_bridge, sandbox):
    bridge = make_bridge(policy(senders=["InfoSMS", "Alarm*", "+41793026834", "+4179302684?"]))
    for sender in ("InfoSMS", "Alarm7", "Alarm-Plant", "41793026834", "0041793026834", "41793026841", "+41793026849"):
        r = bridge.get("/sms/1/text/query", params={**DEMO, "from": sender, "to": CH, "text": sender})
        assert r.status_code == 200, (sender, r.text)
    for refused in ("alarm7", "41793026835", "417930268411"):
        assert bridge.get("/sms/1/text/query", params={**DEMO, "from": refused, "to": CH, "text": "x"}).status_code == 403
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": CH, "text": "no sender given"})
    assert r.status_code == 200
    sent = {m["textPreview"]: m["from"] for m in sandbox.messages()}
    assert sent["no sender given"] == "InfoSMS"  # the first exact sender, not the account's default


def test_only_globs_and_no_sender_is_403(make_bridge, sandbox):
    bridge = make_bridge(policy(senders=["Alarm*"]))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": CH, "text": "x"})
    assert r.status_code == 403 and _text_v1(r) == "a sender is required: caller demo may send only from Alarm*"
    assert sandbox.sends() == []


@pytest.mark.parametrize("fmt", ["", ".xml"])
def test_forbidden_destination_among_allowed_is_rejected_at_its_place(make_bridge, sandbox, fmt):
    bridge = make_bridge(policy(destinations=["+41", "LI"]))
    r = bridge.get(f"/sms/1/text/query{fmt}", params={**DEMO, "to": f"{CH},{UK},{LI},abc", "text": "Alarm"})
    assert r.status_code == 200, r.text
    if fmt:
        root = ET.fromstring(r.content)
        assert [e.text for e in root.iter("name")][1] == "REJECTED_DESTINATION"
    else:
        msgs = r.json()["messages"]
        assert [m["to"] for m in msgs] == [CH, UK, LI, "abc"]
        st = msgs[1]["status"]
        assert (st["groupName"], st["name"], st["id"]) == ("REJECTED", "REJECTED_DESTINATION", 14)
        assert "'447491163443' is not among caller demo's destinations (+41, LI)" in st["description"]
        assert "messageId" not in msgs[1]
        assert msgs[3]["status"]["name"] == "REJECTED_INVALID_DESTINATION"
    assert _sent_to(sandbox) == sorted([CH, LI])
    assert sorted(db_values(_db(bridge), "messages", "state")) == ["rejected", "rejected", "sent", "sent"]


def test_every_destination_forbidden_is_403_on_each_entrance(make_bridge, sandbox):
    bridge = make_bridge(policy(destinations=["CH"]))
    q = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{UK},{US}", "text": "x"})
    assert q.status_code == 403 and _text_v1(q) == "destination '447491163443' is not among caller demo's " \
                                                   "destinations (CH)"
    a = bridge.post("/sms/2/text/advanced", auth=("demo", "demo"),
                    json={"messages": [{"destinations": [{"to": UK}], "text": "x"}]})
    assert a.status_code == 403 and "destinations (CH)" in _text_v1(a)
    v3 = bridge.post("/sms/3/messages", auth=("demo", "demo"),
                     json={"messages": [{"destinations": [{"to": UK}], "content": {"text": "x"}}]})
    assert v3.status_code == 403 and "destinations (CH)" in v3.json()["description"]
    t = bridge.get("/t/alarm", params={**DEMO, "phone": UK, "msg": "x"})
    assert t.status_code == 403 and "destinations (CH)" in _text_v1(t)
    assert sandbox.sends() == []


def test_country_codes_tell_numbers_of_a_shared_calling_code_apart(make_bridge, sandbox):
    bridge = make_bridge(policy(destinations=["CA", "4179*"]))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{US},{CA},{CH},{CH2[:4]}1234567", "text": "x"})
    assert r.status_code == 200
    names = [m["status"]["name"] for m in r.json()["messages"]]
    assert names == ["REJECTED_DESTINATION", "PENDING_ACCEPTED", "PENDING_ACCEPTED", "PENDING_ACCEPTED"]


def test_template_rules_hold_besides_the_callers(make_bridge, sandbox):
    def mutate(raw: dict[str, Any]) -> None:
        raw["callers"]["demo"].update(destinations=["41", "44"])
        raw["templates"]["alarm"].update(destinations=["+41 79"], senders=["InfoSMS"])
        raw["templates"]["otp"]["fields"]["from"] = "{{ code }}"
        raw["templates"]["otp"]["senders"] = ["Code*"]

    bridge = make_bridge(mutate)
    r = bridge.get("/t/alarm", params={**DEMO, "phone": f"{CH},{UK}", "msg": "Door open"})
    assert r.status_code == 200
    st = r.json()["messages"][1]["status"]
    assert st["name"] == "REJECTED_DESTINATION" and "template alarm's destinations (+41 79)" in st["description"]
    assert _sent_to(sandbox) == [CH]
    # the caller's own rule still holds through the template (both must allow)
    bridge2 = make_bridge(lambda raw: (raw["callers"]["demo"].update(senders=["Other"]),))
    r2 = bridge2.get("/t/alarm", params={**DEMO, "phone": CH, "msg": "x"})
    assert r2.status_code == 403 and _text_v1(r2) == "sender 'InfoSMS' is not among caller demo's senders (Other)"
    r3 = bridge.get("/t/otp", params={**DEMO, "to": CH, "code": "1234"})
    assert r3.status_code == 403 and "template otp's senders (Code*)" in _text_v1(r3)


def test_an_explicit_idempotency_key_is_freed_by_a_403(make_bridge, sandbox):
    bridge = make_bridge(policy(senders=["InfoSMS"]))
    params = {**DEMO, "to": CH, "text": "x", "idempotencyKey": "k-403"}
    assert bridge.get("/sms/1/text/query", params={**params, "from": "Bank"}).status_code == 403
    r = bridge.get("/sms/1/text/query", params={**params, "from": "InfoSMS"})  # corrected retry, same key
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert _sent_to(sandbox) == [CH]


def test_bad_patterns_are_refused_at_load_naming_the_key():
    raw = default_raw_config()
    raw["callers"]["demo"].update(senders=["InfoSMS", "Alarm*", "x" * 20, "[ab", ""],
                                  destinations=["+41", "CH", "ZZ", "079", "4179*", "abc", 41, "12x"],
                                  default_country="XX")
    raw["templates"]["alarm"].update(senders=["Bad\nName"], destinations="41", default_country="ch")
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    paths = {p for p, _ in exc.value.problems}
    assert paths == {"callers.demo.senders[2]", "callers.demo.senders[3]", "callers.demo.senders[4]",
                     "callers.demo.destinations[2]", "callers.demo.destinations[3]", "callers.demo.destinations[5]",
                     "callers.demo.destinations[7]", "callers.demo.default_country", "templates.alarm.senders[0]",
                     "templates.alarm.senders"}  # and so its own from, InfoSMS, is refused
    ok = default_raw_config()
    ok["callers"]["demo"].update(senders=["InfoSMS", "Alarm*"], destinations=["+41", 44, "CH", "4179*"],
                                 default_country="ch")
    ok["templates"]["alarm"].update(destinations="41", default_country="LI")
    config = build_config(ok, env={})
    assert config.callers["demo"].default_country == "CH" and config.templates["alarm"].destinations == ("41",)
    assert config.callers["demo"].destinations == ("+41", "44", "CH", "4179*")


def test_a_template_whose_constant_sender_is_refused_is_caught_at_load():
    raw = default_raw_config()
    raw["templates"]["otp"]["senders"] = ["Code*"]  # its from is InfoSMS: it could never send
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    assert exc.value.problems == [("templates.otp.senders", "refuse the template's own from 'InfoSMS'")]
    raw = default_raw_config()
    raw["callers"]["demo"]["senders"] = ["Alarm*"]
    config = build_config(raw, env={})  # the caller may still send its own way: a warning, not a refusal
    assert any(w.startswith("templates.alarm: caller 'demo' may not send from 'InfoSMS'") for w in config.warnings)
