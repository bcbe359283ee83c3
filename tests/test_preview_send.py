"""The preview endpoints and the engine's counts on every send (bridge and sandbox)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.conftest import DATA, DEMO

AUTH = ("demo", "demo")


def test_seed_preview_example(bridge):
    body = json.loads((DATA / "seed" / "preview-request.json").read_text())
    r = bridge.post("/sms/1/preview", json=body, auth=AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "originalText": body["text"],
        "previews": [{"textPreview": body["text"], "messageCount": 1, "charactersRemaining": 95, "configuration": {}}],
    }


def test_preview_with_configuration_and_get_xml(bridge):
    r = bridge.post("/sms/1/preview", json={"text": "Çok güzel şey", "languageCode": "TR", "transliteration": "TURKISH"},
                    auth=AUTH)
    previews = r.json()["previews"]
    assert previews[0]["configuration"] == {}
    assert previews[1]["configuration"] == {"language": {"languageCode": "TR"}, "transliteration": "TURKISH"}
    x = bridge.get("/sms/1/preview.xml", params={**DEMO, "text": "Привет", "transliteration": "CYRILLIC"})
    root = ET.fromstring(x.content)
    assert [p.findtext("textPreview") for p in root.findall("./previews/previews")] == ["Привет", "Privet"]


def test_preview_needs_credentials_and_valid_values(bridge):
    assert bridge.post("/sms/1/preview", json={"text": "x"}).status_code == 401
    r = bridge.get("/sms/1/preview", params={**DEMO, "text": "x", "transliteration": "KLINGON"})
    assert r.status_code == 400 and "transliteration" in r.json()["requestError"]["serviceException"]["validationErrors"]
    assert bridge.post("/sms/1/preview", json={}, auth=AUTH).status_code == 400


def test_sms_count_from_engine_on_send(bridge, sandbox):
    long_ucs2 = "Привет " * 20  # 140 UCS-2 units -> 3 parts of 67
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": long_ucs2})
    assert r.json()["messages"][0]["smsCount"] == 3
    assert sandbox.messages()[0]["smsCount"] == 3


def test_send_applies_its_transliteration(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "Привет " * 20,
                                                "transliteration": "CYRILLIC"})
    assert r.json()["messages"][0]["smsCount"] == 1  # Latin now: 140 GSM characters
    assert sandbox.messages()[0]["textPreview"].startswith("Privet Privet")


def test_too_many_parts_rejected_naming_the_count(make_bridge, sandbox):
    def three_parts(raw):
        raw["callers"]["demo"]["limits"] = {"max_parts": 3}

    bridge = make_bridge(three_parts)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x" * 500})
    assert r.status_code == 400
    assert "needs 4 SMS parts" in r.json()["requestError"]["serviceException"]["validationErrors"]["text"][0]
    assert sandbox.sends() == []
