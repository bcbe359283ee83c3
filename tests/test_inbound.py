"""Inbound SMS over real HTTP: Infobip's push to the bridge's webhook, routing to a legacy receiver
(waitress on loopback), auto-replies through the sandbox, and the pull inbox."""

from __future__ import annotations

import itertools
import json
import logging
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import pytest

from gateway import create_app
from gateway.config import ConfigError, build_config
from tests.conftest import DEMO, default_raw_config
from tests.helpers import wait_for
from tests.storehelp import db_count, db_rows

TOKEN = "test-inbound-token-5f2c9a"
HOOK = f"/hooks/inbound/{TOKEN}"
NASTY = "alarm Pump 3 ✓ 😀 a&b c+d 100% x=1 /?#"  # emoji, &, +, %, =, and URL syntax
_ids = itertools.count(817790313235066447)


def mo(text: str, frm: str = "41793026727", to: str = "41793026834", **kw: Any) -> dict[str, Any]:
    return {"messageId": str(next(_ids)), "from": frm, "to": to, "text": text, "cleanText": text, "keyword": "",
            "receivedAt": "2021-08-25T16:10:00.000+0500", "smsCount": 1,
            "price": {"pricePerMessage": 0, "currency": "EUR"}, **kw}


def with_inbound(rules: list[dict[str, Any]] | None = None, default: dict[str, Any] | None = None, **extra: Any):
    def mutate(raw: dict[str, Any]) -> None:
        raw["inbound"] = {"token": TOKEN, "rules": rules or [], **({"default": default} if default else {}), **extra}
    return mutate


def push(bridge: Any, *msgs: dict[str, Any], token: str = TOKEN):
    return bridge.post(f"/hooks/inbound/{token}",
                       json={"results": list(msgs), "messageCount": len(msgs), "pendingMessageCount": 0})


def pull(bridge: Any, fmt: str = "", **params: Any):
    return bridge.get(f"/sms/1/inbox/reports{fmt}", params={**DEMO, **params})


def _values(query: str) -> dict[str, bytes]:
    """The raw query's values percent-decoded to bytes (no charset guess, no '+' magic)."""
    return {k: unquote_to_bytes(v) for k, v in (p.split("=", 1) for p in query.split("&"))}


def test_keyword_routed_message_reaches_legacy_get_url_byte_exact(make_bridge, receiver):
    rules = [
        {"name": "other", "caller": "demo", "match": {"keyword": "OTHER"},
         "forward": receiver.url("/other") + "?t=%b"},
        {"name": "alarm", "caller": "demo", "match": {"keyword": ["ALARM", "ALERT"], "to": "+41 79 302 68 34"},
         "forward": {"url": receiver.url("/mo") + "?from=%p&to=%P&text=%b&kw=%k&id=%I&clean={{ cleanText }}"
                            "&svc=%n&lit=100%%25&plus=%q", "method": "GET"}},
    ]
    receiver.fail_first = 1  # the first attempt fails: the outbox retries on the (scaled) Infobip cycle
    bridge = make_bridge(with_inbound(rules))
    m = mo(NASTY)
    r = push(bridge, m)
    assert r.status_code == 200 and r.json()["stored"] == 1
    wait_for(lambda: receiver.count() >= 2, what="the forward, retried once")
    got = receiver.snapshot()[-1]
    assert got.method == "GET" and got.path == "/mo"
    v = _values(got.query)
    assert v["text"] == NASTY.encode("utf-8") and v["clean"] == NASTY.encode("utf-8")  # byte-exact round trip
    assert v["from"] == b"41793026727" and v["to"] == b"41793026834" and v["id"] == m["messageId"].encode()
    assert v["kw"] == b"alarm" and v["svc"] == b"alarm" and v["lit"] == b"100%" and v["plus"] == b"+41793026727"
    for encoded in ("%26", "%2B", "%25", "%F0%9F%98%80", "%E2%9C%93", "%3D", "%2F%3F%23"):
        assert encoded in got.query  # a value can never add a parameter or change the URL
    assert all(x.path != "/other" for x in receiver.snapshot())


def test_rules_match_number_keyword_regex_first_wins_and_default(make_bridge, receiver):
    rules = [
        {"name": "wrong-number", "caller": "demo", "match": {"keyword": "PIN", "to": "41000000000"},
         "forward": receiver.url("/wrong") + "?x=%k"},
        {"name": "pin", "caller": "demo", "match": {"keyword": "pin", "regex": r"^\S+\s+\d{4}$"},
         "forward": receiver.url("/pin") + "?code=%s&rest=%r&all=%a&t=%t&T=%T"},
        {"name": "later", "caller": "demo", "match": {"keyword": "PIN"}, "forward": receiver.url("/later") + "?x=%k"},
    ]
    default = {"caller": "demo", "forward": {"url": receiver.url("/default"), "method": "POST", "body": "json"}}
    bridge = make_bridge(with_inbound(rules, default))
    assert push(bridge, mo("Pin   1234"), mo("pin 12 34 56"), mo("hello there")).status_code == 200
    wait_for(lambda: receiver.count() >= 3, what="three forwards")
    by_path = {x.path: x for x in receiver.snapshot()}
    assert set(by_path) == {"/pin", "/later", "/default"}  # first match wins; "wrong-number" never
    v = dict(parse_qsl(by_path["/pin"].query, keep_blank_values=True))
    assert v == {"code": "1234", "rest": "", "all": "Pin 1234", "t": "2021-08-25 11:10:00", "T": "1629889800"}
    later = dict(parse_qsl(by_path["/later"].query))
    assert later == {"x": "pin"}  # %k as typed
    body = by_path["/default"]
    assert body.method == "POST" and body.headers["Content-Type"].startswith("application/json")
    assert json.loads(body.body)["text"] == "hello there"


def test_post_form_and_infobip_bodies(make_bridge, receiver):
    rules = [
        {"name": "form", "caller": "demo", "match": {"keyword": "FORM"},
         "forward": {"url": receiver.url("/form"), "method": "POST", "body": "form",
                     "fields": {"msisdn": "%p", "message": "{{ cleanText }}", "count": "{{ smsCount }}"}}},
        {"name": "ib", "caller": "demo", "match": {"keyword": "IB"},
         "forward": {"url": receiver.url("/ib"), "method": "POST", "body": "infobip"}},
    ]
    bridge = make_bridge(with_inbound(rules))
    push(bridge, mo("FORM a&b+c 😀", cleanText="a&b+c 😀"), mo("IB x"))
    wait_for(lambda: receiver.count() >= 2, what="two forwards")
    got = {x.path: x for x in receiver.snapshot()}
    assert got["/form"].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(got["/form"].body.decode("ascii"))) == {
        "msisdn": "41793026727", "message": "a&b+c 😀", "count": "1"}
    ib = json.loads(got["/ib"].body)
    assert ib["messageCount"] == 1 and ib["results"][0]["text"] == "IB x"


def test_auto_reply_reaches_sandbox_as_send_to_original_sender(make_bridge, sandbox):
    rules = [{"name": "info", "caller": "demo", "match": {"keyword": "INFO"},
              "reply": {"from": "InfoSMS", "text": "Hi %p, you said: {{ cleanText }} (%s)"}}]
    bridge = make_bridge(with_inbound(rules))
    m = mo("info opening hours", frm="385916242493", to="385921004026", cleanText="opening hours")
    assert push(bridge, m).status_code == 200
    sent = wait_for(lambda: [s for s in sandbox.messages() if s["to"] == "385916242493"], what="the reply")
    assert len(sent) == 1
    assert sent[0]["from"] == "InfoSMS" and sent[0]["text"] == "Hi 385916242493, you said: opening hours (opening)"
    assert push(bridge, m).json()["duplicates"] == 1  # a re-push replies no second time
    push(bridge, mo("hello", frm="385916242494"))  # no rule matches: no reply
    db = bridge.app.extensions["smsbridge"].db
    rows = wait_for(lambda: [r for r in db_rows(db, "inbound_replies") if r["state"] != "pending"])
    assert len(rows) == 1 and rows[0]["state"] == "sent" and rows[0]["to_number"] == "385916242493"
    assert rows[0]["message_id"] == sent[0]["messageId"] and rows[0]["status"] == "PENDING_ACCEPTED"
    assert len([s for s in sandbox.messages() if s["to"] in ("385916242493", "385916242494")]) == 1


def test_failed_auto_reply_does_not_fail_the_push(make_bridge, sandbox):
    rules = [{"name": "info", "caller": "demo", "match": {"keyword": "INFO"}, "reply": "Thanks", "pull": True}]
    def mutate(raw):
        with_inbound(rules)(raw)
        raw["callers"]["demo"]["on_upstream_failure"] = "fail"  # the reply's sender: no hand-over (issue 13)

    bridge = make_bridge(mutate)
    sandbox.faults(status=500, count=5)
    assert push(bridge, mo("INFO x")).status_code == 200
    assert pull(bridge).json()["messageCount"] == 1  # stored and kept although the reply failed
    db = bridge.app.extensions["smsbridge"].db
    failed = wait_for(lambda: db_rows(db, "inbound_replies", state="failed"), what="the failure")
    assert failed[0]["error"] and "sandbox-key" not in failed[0]["error"]


def test_pull_returns_each_message_once(make_bridge):
    def mutate(raw):
        with_inbound([{"name": "kept", "caller": "demo", "match": {"to": "41793026834"}, "pull": True}])(raw)
        raw["callers"]["other"] = {"password": "other", "scopes": ["inbox"]}
        raw["callers"]["noinbox"] = {"password": "noinbox", "scopes": ["query"]}

    bridge = make_bridge(mutate)
    msgs = [mo(f"msg {i} 😀") for i in range(3)]
    push(bridge, *msgs, mo("elsewhere", to="41000000001"))
    first = pull(bridge, limit=2).json()
    assert (first["messageCount"], first["pendingMessageCount"]) == (2, 1)
    assert [r["messageId"] for r in first["results"]] == [m["messageId"] for m in msgs[:2]]
    r0 = first["results"][0]
    assert r0["text"] == "msg 0 😀" and r0["from"] == "41793026727" and r0["price"] == {"pricePerMessage": 0,
                                                                                        "currency": "EUR"}
    second = pull(bridge, ".xml")
    root = ET.fromstring(second.content)
    assert root.tag == "MOReportResponse" and root.findtext("messageCount") == "1"
    assert [e.findtext("messageId") for e in root.find("results")] == [msgs[2]["messageId"]]
    assert pull(bridge).json() == {"results": [], "messageCount": 0, "pendingMessageCount": 0}
    other = bridge.get("/sms/1/inbox/reports", params={"username": "other", "password": "other"}).json()
    assert other["messageCount"] == 0  # another caller reads nothing of demo's
    denied = bridge.get("/sms/1/inbox/reports", params={"username": "noinbox", "password": "noinbox"})
    assert denied.status_code == 403 and denied.json()["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"
    bad = pull(bridge, limit=5000)
    assert bad.status_code == 400 and "limit" in bad.json()["requestError"]["serviceException"]["validationErrors"]


def test_forged_push_is_refused_and_token_never_logged(make_bridge, receiver, caplog):
    rules = [{"name": "all", "caller": "demo", "forward": receiver.url("/mo") + "?t=%b", "pull": True}]
    bridge = make_bridge(with_inbound(rules))
    caplog.set_level(logging.INFO)
    forged = push(bridge, mo("forged"), token="test-inbound-token-5f2c9b")
    assert forged.status_code == 401
    assert forged.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"
    xml = bridge.post("/hooks/inbound/nope", data=b"<MOReportResponse/>", headers={"Content-Type": "application/xml"})
    assert xml.status_code == 401 and ET.fromstring(xml.content).tag == "requestError"
    assert pull(bridge).json()["messageCount"] == 0 and receiver.count() == 0
    assert push(bridge, mo("real")).status_code == 200
    wait_for(lambda: receiver.count() == 1, what="the genuine push's forward")
    assert TOKEN not in caplog.text and "/hooks/inbound/***" in caplog.text


def test_webhook_off_without_token(make_bridge):
    bridge = make_bridge(with_inbound(token=""))
    r = bridge.post("/hooks/inbound/anything", json={"results": []})
    assert r.status_code == 404


XML_PUSH = """<?xml version="1.0" encoding="UTF-8"?>
<MOReportResponse><results><results>
  <messageId>{id}</messageId><from>385916242493</from><to>385921004026</to>
  <text>QUIZ Paris &amp; Lyon 😀</text><cleanText>Paris &amp; Lyon 😀</cleanText><keyword>QUIZ</keyword>
  <receivedAt>2021-08-25T16:10:00.000+0500</receivedAt><smsCount>1</smsCount>
  <price><pricePerMessage>0.0100</pricePerMessage><currency>EUR</currency></price>
  <callbackData>cb</callbackData>
</results></results><messageCount>1</messageCount><pendingMessageCount>0</pendingMessageCount></MOReportResponse>"""


def test_xml_push_is_parsed(make_bridge):
    bridge = make_bridge(with_inbound(default={"caller": "demo", "pull": True}))
    mid = str(next(_ids))
    r = bridge.post(HOOK, data=XML_PUSH.format(id=mid).encode(), headers={"Content-Type": "application/xml"})
    assert r.status_code == 200
    dlr_style = XML_PUSH.format(id=mid + "1").replace("<results><results>", "<results><result>").replace(
        "</results></results>", "</result></results>")
    assert bridge.post(HOOK, data=dlr_style.encode(), headers={"Content-Type": "text/xml"}).status_code == 200
    got = pull(bridge).json()["results"]
    assert [g["messageId"] for g in got] == [mid, mid + "1"]
    assert got[0] == {"messageId": mid, "from": "385916242493", "to": "385921004026", "text": "QUIZ Paris & Lyon 😀",
                      "cleanText": "Paris & Lyon 😀", "keyword": "QUIZ", "receivedAt": "2021-08-25T16:10:00.000+0500",
                      "smsCount": 1, "price": {"pricePerMessage": 0.01, "currency": "EUR"}, "callbackData": "cb"}


def test_bad_push_bodies_are_answered_200_not_processed_and_kept(make_bridge):
    """Issue 14: a 4xx would make Infobip retry the push for days; it is answered 200, kept, not processed."""
    bridge = make_bridge(with_inbound(default={"caller": "demo", "pull": True}))
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><MOReportResponse>&a;</MOReportResponse>'
    r = bridge.post(HOOK, data=bomb, headers={"Content-Type": "application/xml"})
    assert r.status_code == 200 and ET.fromstring(r.content).findtext("processed") == "false"
    missing = push(bridge, {"from": "41793026727", "text": "no id"})
    assert missing.status_code == 200 and missing.json()["processed"] is False
    assert "results[0].messageId" in missing.json()["reason"]
    notjson = bridge.post(HOOK, data=b"not json", headers={"Content-Type": "application/json"})
    assert notjson.status_code == 200 and notjson.json()["processed"] is False
    assert pull(bridge).json()["messageCount"] == 0
    assert db_count(bridge.app.extensions["smsbridge"].db, "rejected_pushes", kind="inbound") == 3


def test_duplicate_push_is_stored_once(make_bridge, receiver):
    bridge = make_bridge(with_inbound(default={"caller": "demo", "pull": True,
                                               "forward": receiver.url("/mo") + "?id=%I"}))
    m = mo("once")
    assert push(bridge, m, m).json() == {"messageCount": 2, "stored": 1, "duplicates": 1}
    assert push(bridge, m).json()["duplicates"] == 1
    wait_for(lambda: receiver.count() >= 1, what="the forward")
    assert pull(bridge).json()["messageCount"] == 1
    bridge.app.extensions["smsbridge"].outbox.run_due()  # nothing else is queued
    assert receiver.count() == 1
    assert db_count(bridge.app.extensions["smsbridge"].db, "inbound_messages") == 1


def _config(rules: list[dict[str, Any]], **upstream: Any):
    raw = default_raw_config()
    raw["inbound"] = {"token": TOKEN, "rules": rules}
    raw["upstream"].update(upstream)
    return build_config(raw, env={})


def test_configuration_problems_name_their_key_path(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _config([{"caller": "nobody", "match": {"regex": "("}, "forward": {"url": "http://x/{{ oops", "method": "PUT"},
                  "reply": {"text": "{{ secret }}"}}, {"caller": "demo", "forward": "ftp://x"}])
    paths = {p for p, _ in exc.value.problems}
    assert {"inbound.rules[0].caller", "inbound.rules[0].match.regex", "inbound.rules[0].forward.url",
            "inbound.rules[0].forward.method", "inbound.rules[0].reply.text", "inbound.rules[1].forward.url"} <= paths
    with pytest.raises(ConfigError) as exc:  # the public demo token with the real Infobip
        raw = default_raw_config()
        raw["upstream"]["base_url"] = "https://example.api.infobip.com"
        raw["callers"]["demo"] = {"password_hash": "x", "scopes": ["inbox"]}
        build_config(raw, env={})
    assert ("inbound.token" in {p for p, _ in exc.value.problems})
    # a forward the caller's allow-list refuses is a start-up error, not twenty retries
    config = _config([{"caller": "demo", "forward": "http://10.1.2.3/mo?t=%b"}])
    config.store.path = str(tmp_path / "b.db")
    with pytest.raises(ConfigError) as exc:
        create_app(config, "http://127.0.0.1:9")
    assert exc.value.problems[0][0] == "inbound.rules[0].forward.url"
    with pytest.raises(ConfigError) as exc:  # SSTI in a rule template is refused at start-up
        _config([{"caller": "demo", "reply": "{{ ''.__class__.__mro__ }}"}])
    assert exc.value.problems[0][0] == "inbound.rules[0].reply"
