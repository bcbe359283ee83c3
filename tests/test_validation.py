"""Validation before anything is sent: every rejection names the field, nothing reaches upstream."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO

OK = {**DEMO, "to": "41793026727", "text": "hello"}

CASES = [
    ({"to": ""}, "to"),
    ({"to": "12ab34"}, "to"),
    ({"to": "123"}, "to"),
    ({"to": "1234567890123456789"}, "to"),
    ({"to": "notanumber,123"}, "to"),  # one bad among good ones is sent: tests/test_rejected_destinations.py
    ({"notifyurl": "http://example.com/dlr"}, "notifyurl"),  # unknown or miscased: refused, never ignored
    ({"Flash": "true"}, "Flash"),
    ({"txt": "hello"}, "txt"),
    ({"from": "ThisSenderIsTooLong"}, "from"),
    ({"from": "12345678901234567"}, "from"),
    ({"from": "ab"}, "from"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"validityPeriod": "0"}, "validityPeriod"),
    ({"validityPeriod": "2881"}, "validityPeriod"),
    ({"validityPeriod": "ten"}, "validityPeriod"),
    ({"sendAt": "2099-01-01T00:00:00.000+0000"}, "sendAt"),
    ({"sendAt": "tomorrow"}, "sendAt"),
    ({"flash": "yes"}, "flash"),
    ({"intermediateReport": "1"}, "intermediateReport"),
    ({"transliteration": "KLINGON"}, "transliteration"),
    ({"languageCode": "XX"}, "languageCode"),
    ({"notifyContentType": "text/plain"}, "notifyContentType"),
    ({"notifyUrl": "ftp://example.com"}, "notifyUrl"),
    ({"track": "EMAIL"}, "track"),
    ({"callbackData": "x" * 4001}, "callbackData"),
    ({"charset": "klingon"}, "charset"),
]


@pytest.mark.parametrize(("change", "field"), CASES)
def test_rejected_with_field_named(bridge, sandbox, change, field):
    r = bridge.get("/sms/1/text/query", params={**OK, **change})
    assert r.status_code == 400, r.text
    exc = r.json()["requestError"]["serviceException"]
    assert exc["messageId"] == "BAD_REQUEST"
    assert field in exc["validationErrors"], exc
    assert exc["text"].startswith(field)
    assert sandbox.sends() == []


def test_missing_to(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "text": "x"})
    assert r.status_code == 400 and "to" in r.json()["requestError"]["serviceException"]["validationErrors"]


def test_several_errors_reported_together(bridge):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "x", "text": "", "flash": "yes"})
    assert set(r.json()["requestError"]["serviceException"]["validationErrors"]) == {"to", "text", "flash"}


def test_capitalised_booleans_accepted(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**OK, "flash": "True", "intermediateReport": "FALSE"})
    assert r.status_code == 200


def test_valid_edge_values(make_bridge, sandbox):
    from datetime import UTC, datetime, timedelta
    from urllib.parse import parse_qs

    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(upstream_api="query"))  # reads the query sent

    when = (datetime.now(UTC) + timedelta(days=10)).replace(hour=3, minute=4, second=5, microsecond=123456)
    local = when.astimezone(__import__("datetime").timezone(timedelta(hours=5, minutes=30)))
    r = bridge.get("/sms/1/text/query", params={**OK, "from": "+41793026727", "validityPeriod": "2880",
                                                "sendAt": local.isoformat()})
    assert r.status_code == 200, r.text
    q = parse_qs(sandbox.sends()[0]["query"])
    assert q["sendAt"] == [when.strftime("%Y-%m-%dT03:04:05.123+0000")]


def test_max_destinations_per_caller(make_bridge, sandbox):
    def limit(raw):
        raw["callers"]["demo"]["limits"] = {"max_destinations": 2}

    bridge = make_bridge(limit)
    r = bridge.get("/sms/1/text/query", params={**OK, "to": "41793026727,41793026728,41793026729"})
    assert r.status_code == 400
    assert "maximum of 2" in r.json()["requestError"]["serviceException"]["validationErrors"]["to"][0]
    assert sandbox.sends() == []
