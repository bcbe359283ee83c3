"""Hostile JSON bodies over real HTTP: each is a 400 naming the field, in the caller's envelope, never a 500.

A corpus of what broke the bridge before (issue 14): nesting 100,000 deep, lone surrogates, NaN, bytes
that are not UTF-8; every case also checks that nothing reached the upstream.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests

from tests.storehelp import db_count, db_rows, db_set
from tests.test_inbound import TOKEN, with_inbound

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJ = b'{"messages":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
AUTH = {"Authorization": "App demo-key"}
DEMO_PASSWORD = "demo"

ADVANCED = "/sms/2/text/advanced"
V3 = "/sms/3/messages"
PREVIEW = "/sms/1/preview"

CASES = [
    # (path, body, field named)
    (ADVANCED, DEEP, "body"),
    (ADVANCED, DEEP_OBJ, "body"),
    (V3, DEEP, "body"),
    (PREVIEW, DEEP, "body"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"hi","callbackData":"\\ud800"}]}',
     "messages[0].callbackData"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"a\\udfff b"}]}', "messages[0].text"),
    (V3, b'{"messages":[{"destinations":[{"to":"41793026727"}],"content":{"text":"\\uDBFF"},"sender":"x"}]}',
     "messages[0].content.text"),
    (PREVIEW, b'{"text":"\\ud83d"}', "text"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"hi","validityPeriod":NaN}]}', "body"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"caf\xe9"}]}', "body"),
    (ADVANCED, b"", "body"),
]


def _named(r, field: str) -> bool:
    body = r.json()
    if "violations" in body:  # v3 envelope
        return any(v["property"] == field for v in body["violations"])
    return field in body["requestError"]["serviceException"]["validationErrors"]


@pytest.mark.parametrize("path,body,field", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_hostile_json_is_a_400_naming_the_field(bridge, sandbox, path, body, field):
    before = len(sandbox.sends())
    r = bridge.post(path, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert _named(r, field), r.text[:500]
    assert len(sandbox.sends()) == before  # nothing went upstream


def test_surrogate_free_escapes_still_work(bridge, sandbox):
    """A real emoji written as a surrogate pair escape is good JSON and is sent."""
    body = b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"smile \\ud83d\\ude00"}]}'
    r = bridge.post(ADVANCED, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert sandbox.sends()[-1]


INBOUND_OK = b'<?xml version="1.0" encoding="{enc}"?><MOReportResponse><results><results><messageId>{id}</messageId>' \
    b'<from>41793026727</from><to>447491163443</to><text>caf\xc3\xa9</text></results></results></MOReportResponse>'


def _xml_push(enc: str, mid: str, codec: str | None = None) -> bytes:
    text = INBOUND_OK.decode("utf-8").replace("{enc}", enc).replace("{id}", mid)
    return text.encode(codec or enc)


INBOUND_HOSTILE = [
    # (body, content type, what the reason names)
    (DEEP, "application/json", "body"),
    (b'{"results":[{"messageId":"m1","from":"41793026727","to":"447491163443","text":"\\ud800"}]}',
     "application/json", "results[0].text"),
    (b'{"results":[{"messageId":"\\udc00","from":"41793026727","to":"447491163443","text":"x"}]}',
     "application/json", "results[0].messageId"),
    (b'{"results":[{"messageId":"m\\r\\nX-Evil: 1","from":"41793026727","to":"447491163443","text":"x"}]}',
     "application/json", "results[0].messageId"),
    (b'{"results":[{"messageId":"m2","from":"4179\\u00003026727","to":"447491163443","text":"x"}]}',
     "application/json", "results[0].from"),
    (b'<?xml version="1.0" encoding="UTF-7"?><MOReportResponse><results><results><messageId>+ADw-x</messageId>'
     b'</results></results></MOReportResponse>', "application/xml", "UTF-7"),
    (b'<?xml version="1.0" encoding="bogus-8"?><MOReportResponse/>', "application/xml", "bogus-8"),
    (b"<?xml version='1.0' encoding='utf-32'?><MOReportResponse/>", "text/xml", "utf-32"),
    (b'<MOReportResponse><results><results><messageId>a&#10;b</messageId><from>41793026727</from>'
     b'<to>447491163443</to></results></results></MOReportResponse>', "application/xml", "results[0].messageId"),
    (b"<a>" * 50 + b"</a>" * 50, "application/xml", "nested"),
    (b"\xff\xfe<\x00x\x00", "application/xml", "XML"),
]


@pytest.mark.parametrize("body,ctype,named", INBOUND_HOSTILE, ids=[str(i) for i in range(len(INBOUND_HOSTILE))])
def test_hostile_inbound_push_is_answered_200_and_kept_never_a_500(make_bridge, body, ctype, named):
    """Infobip retries a push answered 4xx/5xx for days: an unparseable one is answered 200, marked not
    processed with the reason, and kept for inspection (issue 14 item 1)."""
    bridge = make_bridge(with_inbound(default={"caller": "demo", "pull": True}))
    r = bridge.post(f"/hooks/inbound/{TOKEN}", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text[:300]
    answer = r.json() if ctype == "application/json" else {
        "processed": ET.fromstring(r.content).findtext("processed") == "true",
        "reason": ET.fromstring(r.content).findtext("reason") or ""}
    assert answer["processed"] is False and named in answer["reason"], r.text[:300]
    db = bridge.app.extensions["smsbridge"].db
    kept = db_rows(db, "rejected_pushes", "kind", "reason", "body")
    assert [(k.kind, k.body) for k in kept] == [("inbound", body[:65536])] and named in kept[0].reason
    assert db_count(db, "inbound_messages") == 0


@pytest.mark.parametrize("enc,codec", [("UTF-8", None), ("UTF-16", None), ("ISO-8859-1", None),
                                       ("US-ASCII", "utf-8")])
def test_inbound_xml_in_the_accepted_encodings_is_stored(make_bridge, enc, codec):
    bridge = make_bridge(with_inbound(default={"caller": "demo", "pull": True}))
    body = _xml_push(enc, "enc-" + enc, codec)
    if enc == "US-ASCII":
        body = body.replace("café".encode(), b"cafe")
    r = bridge.post(f"/hooks/inbound/{TOKEN}", data=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 200 and ET.fromstring(r.content).findtext("stored") == "1", r.text[:300]


def _report_hook(bridge, sandbox) -> str:
    r = bridge.post(ADVANCED, json={"messages": [{"destinations": [{"to": "41793026727"}], "text": "hi",
                                                  "notifyUrl": "http://127.0.0.1:9/dlr"}]}, headers=AUTH)
    assert r.status_code == 200, r.text
    return sandbox.messages()[-1]["notifyUrl"]


REPORT_HOSTILE = [
    (b'{"results":[{"messageId":"\\ud800","status":{"name":"DELIVERED_TO_HANDSET"}}]}', "application/json",
     "results[0].messageId"),
    (b'{"results":[{"messageId":"x","status":{"groupName":"DELIVERED","name":"DELIVERED\\udfff"}}]}',
     "application/json", "results[0].status.name"),
    (b'{"results":[{"messageId":"x","status":{"name":"DELIVERED\\r\\n"}}]}', "application/json",
     "results[0].status.name"),
    (b'{"results":[{"messageId":"x","status":"DELIVERED"}]}', "application/json", "results[0].status"),
    (b'{"results":[{"messageId":"x","error":{"id":"not a number"}}]}', "application/json", "results[0]"),
    (b'{"results":[{"messageId":"x","status":{"id":1e999}}]}', "application/json", "results[0]"),
    (DEEP, "application/json", "body"),
    (b"{not json", "application/json", "body"),
    (b'<?xml version="1.0" encoding="UTF-7"?><reportResponse><results><result><messageId>x</messageId>'
     b'</result></results></reportResponse>', "application/xml", "UTF-7"),
    (b'<?xml version="1.0" encoding="x-no-such"?><reportResponse/>', "application/xml", "x-no-such"),
    (b'<reportResponse><results><result><messageId>x</messageId><groupId>\xc2\xb2</groupId><status><name>a&#0;'
     b'</name></status></result></results></reportResponse>', "application/xml", "XML"),
    (b'<reportResponse><results><result><messageId>x</messageId><status><id>' + b"9" * 5000
     + b'</id><name>a&#13;b</name></status></result></results></reportResponse>', "application/xml",
     "results[0].status.name"),
]


@pytest.mark.parametrize("body,ctype,named", REPORT_HOSTILE, ids=[str(i) for i in range(len(REPORT_HOSTILE))])
def test_hostile_report_push_is_answered_200_and_kept_never_a_500(make_bridge, sandbox, body, ctype, named):
    bridge = make_bridge()
    hook = _report_hook(bridge, sandbox)
    r = requests.post(hook, data=body, headers={"Content-Type": ctype}, timeout=10)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["processed"] is False and named in r.json()["reason"], r.text[:300]
    db = bridge.app.extensions["smsbridge"].db
    kept = db_rows(db, "rejected_pushes", "kind", "reason", "size")
    assert [(k.kind, k.size) for k in kept] == [("report", len(body))] and named in kept[0].reason
    assert db_count(db, "reports") == 0
    assert 'smsbridge_rejected_pushes{kind="report"} 1.0' in bridge.get("/metrics").text


def test_rejected_pushes_are_listed_by_the_cli_and_pruned(make_bridge, sandbox, tmp_path):
    import subprocess
    import sys

    import yaml

    from tests.conftest import ROOT, default_raw_config
    bridge = make_bridge()
    hook = _report_hook(bridge, sandbox)
    requests.post(hook, data=b'{"results":[{"messageId":"a\\u0007b"}]}', timeout=10)
    ctx = bridge.app.extensions["smsbridge"]
    raw = default_raw_config()
    raw["store"] = {"path": ctx.config.store.path}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "c.yaml"), "rejected"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "report" in out.stdout and "results[0].messageId" in out.stdout, out
    assert ctx.prune()["rejected_pushes"] == 0  # younger than store.retention_hours: kept
    db_set(ctx.db, "rejected_pushes", None, created_at=0.0)
    assert ctx.prune()["rejected_pushes"] == 1 and db_count(ctx.db, "rejected_pushes") == 0


SEND_CONTROLS = [
    # (path, how, payload, field named)
    ("/sms/1/text/query", "get", {"to": "41793026727\r\n", "text": "x"}, "to"),
    ("/sms/1/text/query", "get", {"to": "41793026727", "text": "x", "from": "Info\nSMS"}, "from"),
    ("/sms/1/text/query", "get", {"to": "41793026727", "text": "x", "bulkId": "b\r\nX-Injected: 1"}, "bulkId"),
    ("/sms/1/text/query", "get", {"to": "41793026727", "text": "x", "notifyUrl": "http://example.com/\x00"}, "notifyUrl"),
    ("/sms/1/text/query", "get", {"to": "41793026727", "text": "x", "callbackData": "c\x1b[31m"}, "callbackData"),
    ("/t/alarm", "get", {"phone": "41793026727\r\n", "msg": "x"}, "phone"),
    ("/t/alarm", "get", {"phone": "4179302\r\n6727", "msg": "x"}, "phone"),
    (ADVANCED, "post", {"bulkId": "b\r\n", "messages": [{"destinations": [{"to": "41793026727"}], "text": "x"}]},
     "bulkId"),
    (ADVANCED, "post", {"messages": [{"destinations": [{"to": "41793026727", "messageId": "m\n"}], "text": "x"}]},
     "messages[0].destinations[0].messageId"),
    (ADVANCED, "post", {"messages": [{"destinations": [{"to": "4179302\t6727"}], "text": "x"}]},
     "messages[0].destinations[0].to"),
    (ADVANCED, "post", {"messages": [{"destinations": [{"to": "41793026727"}], "text": "x", "from": "A\u2028B"}]},
     "messages[0].from"),
    (V3, "post", {"options": {"schedule": {"bulkId": "b\r\n"}},
                  "messages": [{"destinations": [{"to": "41793026727"}], "sender": "InfoSMS", "content": {"text": "x"}}]},
     "options.schedule.bulkId"),
    (V3, "post", {"messages": [{"destinations": [{"to": "41793026727", "messageId": "m\x7f"}], "sender": "InfoSMS",
                                "content": {"text": "x"}}]}, "messages[0].destinations[0].messageId"),
]


@pytest.mark.parametrize("path,how,payload,field", SEND_CONTROLS, ids=[str(i) for i in range(len(SEND_CONTROLS))])
def test_control_characters_in_ids_senders_numbers_are_refused(bridge, sandbox, path, how, payload, field):
    before = len(sandbox.sends())
    if how == "get":
        r = bridge.get(path, params={"username": "demo", "password": DEMO_PASSWORD, **payload})
    else:
        r = bridge.post(path, json=payload, headers=AUTH)
    assert r.status_code == 400, r.text[:300]
    assert _named(r, field), r.text[:500]
    assert len(sandbox.sends()) == before  # nothing went upstream


def test_a_multi_line_text_is_still_sent(bridge, sandbox):
    r = bridge.post(ADVANCED, json={"messages": [{"destinations": [{"to": "41793026727"}], "text": "a\r\nb"}]},
                    headers=AUTH)
    assert r.status_code == 200, r.text
