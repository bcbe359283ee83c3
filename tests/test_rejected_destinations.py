"""One bad destination never cancels the rest (issue 13 item 8): valid destinations are sent; each invalid one
comes back in its place as REJECTED_INVALID_DESTINATION (group REJECTED, with the reason) in JSON, XML and
v3, on every entrance; 400 only when no destination is valid; the store and the UI log show the rejected."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import DEMO
from tests.storehelp import db_values
from tests.test_ui import login
from tests.test_ui_log import rows

GOOD, GOOD2 = "41793026727", "41793026728"


def _delivered_to(sandbox) -> list[str]:
    return sorted(m["to"] for m in sandbox.messages())


def _check_rejected(item: dict, to: str) -> None:
    st = item["status"]
    assert item["to"] == to and "messageId" not in item
    assert (st["groupName"], st["name"], st["groupId"], st["id"]) == ("REJECTED", "REJECTED_INVALID_DESTINATION", 5, 52)
    assert st["description"].startswith("Invalid destination address: ") and repr(to) in st["description"]


@pytest.mark.parametrize("api", ["advanced", "query"])
def test_query_entrance_sends_the_valid_and_rejects_the_invalid(make_bridge, sandbox, api):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(upstream_api=api))
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{GOOD},123,abc,{GOOD2}", "text": "Alarm"})
    assert r.status_code == 200, r.text
    msgs = r.json()["messages"]
    assert [m["to"] for m in msgs] == [GOOD, "123", "abc", GOOD2]  # the request's order
    assert msgs[0]["status"]["groupName"] == "PENDING" and msgs[0]["messageId"]
    assert msgs[3]["status"]["groupName"] == "PENDING" and msgs[3]["messageId"]
    _check_rejected(msgs[1], "123")
    _check_rejected(msgs[2], "abc")
    assert "digits" in msgs[1]["status"]["description"]
    assert _delivered_to(sandbox) == [GOOD, GOOD2]  # only the valid ones went upstream
    db = bridge.app.extensions["smsbridge"].store.db
    assert sorted(db_values(db, "messages", "state")) == ["rejected", "rejected", "sent", "sent"]


def test_xml_answer_carries_the_rejected(bridge, sandbox):
    r = bridge.get("/sms/1/text/query.xml", params={**DEMO, "to": f"{GOOD},abc", "text": "Alarm"})
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    names = [e.text for e in root.iter("name")]
    groups = [e.text for e in root.iter("groupName")]
    assert "REJECTED_INVALID_DESTINATION" in names and "REJECTED" in groups and "PENDING" in groups
    assert _delivered_to(sandbox) == [GOOD]


def test_no_valid_destination_is_400_naming_each(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "123,abc", "text": "Alarm"})
    assert r.status_code == 400
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]["to"]
    assert any("123" in e for e in errors) and any("abc" in e for e in errors)
    assert sandbox.messages() == []


def test_request_level_error_is_still_400(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{GOOD},abc", "text": ""})
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]
    assert r.status_code == 400 and "text" in errors
    assert any("destination 2" in e and "abc" in e for e in errors["to"])  # refused anyway: named too
    assert sandbox.messages() == []


def test_advanced_entrance(bridge, sandbox):
    body = {"messages": [{"destinations": [{"to": "x1"}, {"to": GOOD}], "text": "one"},
                         {"destinations": [{"to": "00"}], "text": "two"},
                         {"destinations": [{"to": GOOD2}], "text": "three"}]}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=(DEMO["username"], DEMO["password"]))
    assert r.status_code == 200, r.text
    msgs = r.json()["messages"]
    assert [m["to"] for m in msgs] == ["x1", GOOD, "00", GOOD2]
    _check_rejected(msgs[0], "x1")
    _check_rejected(msgs[2], "00")
    assert {m["status"]["groupName"] for m in (msgs[1], msgs[3])} == {"PENDING"}
    assert _delivered_to(sandbox) == [GOOD, GOOD2]


def test_v3_entrance(bridge, sandbox):
    body = {"messages": [{"destinations": [{"to": GOOD}, {"to": "not-a-number"}], "content": {"text": "v3"}}]}
    r = bridge.post("/sms/3/messages", json=body, headers={"Authorization": "App demo-key"})
    assert r.status_code == 200, r.text
    msgs = r.json()["messages"]
    assert [m["destination"] for m in msgs] == [GOOD, "not-a-number"]
    st = msgs[1]["status"]
    assert st["groupName"] == "REJECTED" and st["name"] == "REJECTED_INVALID_DESTINATION"
    assert "not a phone number" in st["description"]
    assert _delivered_to(sandbox) == [GOOD]


def test_template_entrance(bridge, sandbox):
    r = bridge.get("/t/alarm", params={**DEMO, "phone": f"{GOOD},abc", "msg": "Door open"})
    assert r.status_code == 200, r.text
    msgs = r.json()["messages"]
    assert msgs[0]["status"]["groupName"] == "PENDING"
    _check_rejected(msgs[1], "abc")
    assert _delivered_to(sandbox) == [GOOD]
    r = bridge.get("/t/alarm", params={**DEMO, "phone": "abc", "msg": "Door open"})
    assert r.status_code == 400 and "phone" in r.text


def test_ui_log_shows_the_rejected(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{GOOD},12", "text": "Alarm"})
    assert r.status_code == 200
    s, _ = login(bridge.url)
    every = rows(s, bridge.url)["rows"]
    cells = [row["cells"] for row in every]
    assert len(cells) == 2
    assert any("REJECTED" in str(c) and "12" in str(c) for c in cells), cells
