"""GET /sms/1/text/query through the bridge to the sandbox, over real HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs

import pytest

from tests.conftest import DATA, DEMO
from tests.helpers import raw_get
from tests.storehelp import db_row

BROWSER = "/sms/1/text/query?username=demo&password=demo&from=InfoSMS&to=41793026727,41793026834&text=Hello%20world"


@pytest.fixture
def bridge(make_bridge):
    """This module checks what the query upstream API receives: the demo caller on ``upstream_api: query``
    (the default is advanced; tests/test_upstream_api.py covers the choice)."""
    return make_bridge(lambda raw: raw["callers"]["demo"].update(upstream_api="query"))


def _sent_query(sandbox) -> dict[str, list[str]]:
    sends = sandbox.sends()
    assert len(sends) == 1, sends
    return parse_qs(sends[0]["query"], keep_blank_values=True)


def test_browser_example_json(bridge, sandbox):
    r = bridge.get(BROWSER)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["bulkId"]
    assert [m["to"] for m in body["messages"]] == ["41793026727", "41793026834"]
    for m in body["messages"]:
        assert m["status"] == {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                               "description": "Message sent to next instance"}
        assert m["smsCount"] == 1 and m["messageId"]
    sent = sandbox.sends()[0]
    assert sent["path"] == "/sms/1/text/query" and sent["auth"] == "App"
    q = parse_qs(sent["query"])
    assert q["to"] == ["41793026727,41793026834"] and q["text"] == ["Hello world"] and q["from"] == ["InfoSMS"]
    assert "password" not in q and "username" not in q  # the caller's credentials never travel upstream


def test_xml_extension_parses_with_real_parser(bridge, sandbox):
    r = bridge.get(BROWSER.replace("/query?", "/query.xml?"))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "SMSResponse"
    items = root.findall("./messages/messages")
    assert [i.findtext("to") for i in items] == ["41793026727", "41793026834"]
    assert items[0].findtext("status/name") == "PENDING_ACCEPTED"
    assert items[0].findtext("status/groupId") == "1"
    assert root.findtext("bulkId")


def test_json_extension_and_accept_header(bridge):
    assert bridge.get(BROWSER.replace("/query?", "/query.json?")).headers["Content-Type"].startswith("application/json")
    xml = bridge.get(BROWSER, headers={"Accept": "application/xml"})
    assert ET.fromstring(xml.content).tag == "SMSResponse"
    anything = bridge.get(BROWSER, headers={"Accept": "*/*"})
    assert anything.json()["messages"]


def _seed_target() -> bytes:
    """The seed document's GET example, byte for byte, with its {placeholders} filled in."""
    url = (DATA / "seed" / "query-url.txt").read_text(encoding="utf-8").strip()
    url = url.replace("{username}", "demo").replace("{password}", "demo")
    return url.split("{baseUrl}", 1)[1].encode("utf-8")


def test_seed_query_example_verbatim(bridge, sandbox):
    # Copied from an HTML page, "&notifyUrl" arrives as "¬ifyUrl" (the &not; entity); it must still work.
    status, body = raw_get("127.0.0.1", bridge.server.port, _seed_target(),
                           {"Authorization": "Basic ZGVtbzpkZW1v", "Accept": "application/json"})
    assert status == 200, body
    q = _sent_query(sandbox)
    assert q["flash"] == ["true"] and q["transliteration"] == ["TURKISH"] and q["languageCode"] == ["TR"]
    assert q["intermediateReport"] == ["true"] and q["validityPeriod"] == ["720"]
    # The upstream reports to the bridge's own address; the caller's notifyUrl is kept for relaying.
    assert q["notifyUrl"][0].startswith(bridge.url + "/hooks/dlr/") and q["notifyContentType"] == ["application/json"]
    row = db_row(bridge.app.extensions["smsbridge"].db, "messages")
    assert (row["notify_url"], row["notify_content_type"]) == ("https://www.example.com", "application/json")
    assert q["callbackData"] == ["callbackData"] and q["track"] == ["URL"]
    assert q["trackingType"] == ["Custom tracking type"] and q["text"] == ["Message text"]


def test_seed_query_example_with_advanced_upstream(make_bridge, sandbox):
    def advanced(raw):
        raw["callers"]["demo"]["upstream_api"] = "advanced"

    bridge = make_bridge(advanced)
    status, body = raw_get("127.0.0.1", bridge.server.port, _seed_target())
    assert status == 200, body
    sent = sandbox.sends()
    assert [s["path"] for s in sent] == ["/sms/2/text/advanced"]
    msg = sent[0]["json"]["messages"][0]
    assert msg["flash"] is True and msg["transliteration"] == "TURKISH"
    assert msg["language"] == {"languageCode": "TR"} and msg["validityPeriod"] == 720
    assert msg["notifyUrl"].startswith(bridge.url + "/hooks/dlr/") and msg["intermediateReport"] is True
    assert [d["to"] for d in msg["destinations"]] == ["41793026727", "41793026834"]
    assert sent[0]["json"]["tracking"] == {"track": "URL", "type": "Custom tracking type"}


def test_latin1_bytes_rejected_without_charset(bridge, sandbox):
    r = bridge.get("/sms/1/text/query?username=demo&password=demo&to=41793026727&text=Gr%FC%DFe")
    assert r.status_code == 400
    err = r.json()["requestError"]["serviceException"]
    assert "text" in err["validationErrors"] and "0xFC" in err["validationErrors"]["text"][0]
    assert sandbox.sends() == []


def test_charset_windows_1252_and_latin1(bridge, sandbox):
    for cs, to in (("windows-1252", "41793026727"), ("ISO-8859-1", "41793026834")):  # two numbers: the same
        sandbox.reset()  # decoded request twice would be a duplicate (idempotency.dedupe_window)
        r = bridge.get(f"/sms/1/text/query?username=demo&password=demo&to={to}&text=Gr%FC%DFe&charset={cs}")
        assert r.status_code == 200, r.text
        assert _sent_query(sandbox)["text"] == ["Grüße"]
    sandbox.reset()
    r = bridge.get("/sms/1/text/query?username=demo&password=demo&to=41793026727&text=%80uro&charset=windows-1252")
    assert _sent_query(sandbox)["text"] == ["€uro"]


def test_plus_is_space_but_restores_unencoded_plus_in_numbers(bridge, sandbox):
    r = bridge.get("/sms/1/text/query?username=demo&password=demo&to=+41793026727,+41793026834&text=1+2%2B3")
    assert r.status_code == 200, r.text
    q = _sent_query(sandbox)
    assert q["to"] == ["41793026727,41793026834"] and q["text"] == ["1 2+3"]


def test_values_are_decoded_exactly_once(bridge, sandbox):
    bridge.get("/sms/1/text/query?username=demo&password=demo&to=41793026727&text=100%2525%20sure%2520")
    assert _sent_query(sandbox)["text"] == ["100%25 sure%20"]


def test_repeated_to_keys_merge_with_comma_lists(bridge, sandbox):
    r = bridge.get("/sms/1/text/query?username=demo&password=demo&to=41793026727&to=41793026834,0041793026835&text=x")
    assert [m["to"] for m in r.json()["messages"]] == ["41793026727", "41793026834", "41793026835"]


def test_destination_normalisation(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "+41 79-302 67 27", "text": "x"})
    assert r.status_code == 200 and r.json()["messages"][0]["to"] == "41793026727"
