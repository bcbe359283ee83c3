"""Unsubstituted placeholders are rejected, naming the parameter and the placeholder; nothing is sent."""

from __future__ import annotations

import pytest

from gateway.placeholders import Detector, Hygiene
from tests.conftest import DEMO

ADDRESS_STYLES = ["%phoneNumber%", "%SMSNUMBER", "$phone", "$CONTACTPAGER$", "${phone}", "{number}",
                  "{ALERT.SENDTO}", "{{phone}}", "{{ phone }}", "[phone]", "<phone>", "%PHONENUMBER%", "{alert.sendto}"]
TEXT_REJECTED = ["%message%", "Alarm: %SMSTEXT", "{{ message }}", "${message}", "$SERVICEOUTPUT$", "{ALERT.MESSAGE}",
                 "$MESSAGE", "%Message%"]
TEXT_ALLOWED = ["[ALARM] Pump 3 <critical>", "Disk {sda1} at 95%", "Price $5 for 100% cotton", "a {b} c [d] <e>",
                "Cost: $NAME and more", "{{ ''.__class__ }}", "{{7*7}}"]


@pytest.mark.parametrize("value", ADDRESS_STYLES)
def test_every_style_rejected_in_destination(bridge, sandbox, value):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": value, "text": "hi"})
    assert r.status_code == 400
    exc = r.json()["requestError"]["serviceException"]
    assert list(exc["validationErrors"]) == ["to"]
    assert "placeholder" in exc["text"] and value.strip() in exc["text"]
    assert sandbox.sends() == []


@pytest.mark.parametrize("value", ["%SENDER%", "$SENDER$", "{ALERT.FROM}", "<sender>"])
def test_every_style_rejected_in_sender(bridge, sandbox, value):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "from": value, "text": "hi"})
    assert r.status_code == 400 and "from" in r.json()["requestError"]["serviceException"]["validationErrors"]


@pytest.mark.parametrize("value", TEXT_REJECTED)
def test_unambiguous_styles_rejected_in_text(bridge, sandbox, value):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": value})
    assert r.status_code == 400, value
    assert "text" in r.json()["requestError"]["serviceException"]["validationErrors"]
    assert sandbox.sends() == []


@pytest.mark.parametrize("value", TEXT_ALLOWED)
def test_real_alert_texts_go_through(bridge, sandbox, value):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": value})
    assert r.status_code == 200, r.text
    assert sandbox.messages()[0]["text"] == value  # sent literally, never rendered


def test_xml_error_for_placeholder(bridge):
    import xml.etree.ElementTree as ET

    r = bridge.get("/sms/1/text/query.xml", params={**DEMO, "to": "%phoneNumber%", "text": "hi"})
    root = ET.fromstring(r.content)
    assert r.status_code == 400 and root.tag == "requestError"
    assert root.findtext("serviceException/messageId") == "BAD_REQUEST"
    assert root.findtext("serviceException/validationErrors/validationError/property") == "to"


def test_patterns_configurable_per_caller(make_bridge, sandbox):
    def allow_percent_in_text(raw):
        raw["callers"]["demo"]["placeholders"] = {"text": ["double_brace"]}

    bridge = make_bridge(allow_percent_in_text)
    assert bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "%x%"}).status_code == 200
    assert bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "{{x}}"}).status_code == 400


def test_detection_switched_off_per_parameter(make_bridge, sandbox):
    def off_for_callback(raw):
        raw["callers"]["demo"]["placeholders"] = {"off": ["callbackData"]}

    bridge = make_bridge(off_for_callback)
    ok = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x", "callbackData": "%id%"})
    assert ok.status_code == 200
    still = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "%message%"})
    assert still.status_code == 400


def test_detection_switched_off_per_template_parameter(make_bridge, sandbox):
    def raw_msg(raw):
        raw["templates"]["alarm"]["params"]["msg"] = {"required": True, "placeholders": False}

    bridge = make_bridge(raw_msg)
    r = bridge.get("/t/alarm", params={**DEMO, "phone": "41793026727", "msg": "load at 5%CPU%"})
    assert r.status_code == 200 and sandbox.messages()[0]["text"] == "[ALARM] HQ: load at 5%CPU%"


def test_detector_unit():
    h = Hygiene.from_config(None)
    assert h.check("to", "%SMSNUMBER", address=True)
    assert h.check("text", "[ALARM] <x>", address=False) is None
    assert Detector.of([]).find("%x%") is None
    with pytest.raises(ValueError, match="unknown placeholder style"):
        Detector.of(["nope"])
