"""POST /sms/2/text/advanced: the seed's JSON examples verbatim, through both upstream APIs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs

import pytest

from tests.conftest import DATA

AUTH = ("demo", "demo")
EXAMPLES = ["basic", "notify-url", "multi-destination", "multi-message"]


def _example(name: str) -> dict:
    return json.loads((DATA / "seed" / f"advanced-{name}.json").read_text())


def _upstream(api: str):
    def mutate(raw):
        raw["callers"]["demo"]["upstream_api"] = api

    return mutate


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("api", ["query", "advanced"])
def test_seed_examples(make_bridge, sandbox, name, api):
    bridge = make_bridge(_upstream(api))
    body = _example(name)
    r = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH)
    assert r.status_code == 200, r.text
    answer = r.json()
    expected = [(d["to"], d.get("messageId")) for m in body["messages"] for d in m["destinations"]]
    assert [m["to"] for m in answer["messages"]] == [to for to, _ in expected]
    for (_, own_id), m in zip(expected, answer["messages"], strict=True):
        assert m["status"]["name"] == "PENDING_ACCEPTED" and m["messageId"]
        if own_id:
            assert m["messageId"] == own_id  # the caller's id, whatever the upstream API
    if body.get("bulkId"):
        assert answer["bulkId"] == body["bulkId"]
    if len(expected) > 1:
        assert answer["bulkId"]
    sent = sandbox.sends()
    seen_texts = [m["text"] for m in sandbox.messages()]
    assert sorted(seen_texts) == sorted(m["text"] for m in body["messages"] for _ in m["destinations"])
    if api == "advanced" or any(own for _, own in expected):  # the query API cannot carry custom ids (issue 13
        assert [s["path"] for s in sent] == ["/sms/2/text/advanced"]  # item 7): such a send goes advanced
        up = sent[0]["json"]
        # issue 13 item 3: the upstream gets the bridge's own ids (the caller's where given), so a resend is
        # refused as a duplicate: the answer's messageIds and bulkId are the ones forwarded
        assert up.get("bulkId") == (body.get("bulkId") or (answer["bulkId"] if len(expected) > 1 else None))
        forwarded = [d for theirs in up["messages"] for d in theirs["destinations"]]
        assert forwarded == [{"to": m["to"], "messageId": m["messageId"]} for m in answer["messages"]]
        for mine, theirs in zip(body["messages"], up["messages"], strict=True):
            assert [d["to"] for d in theirs["destinations"]] == [d["to"] for d in mine["destinations"]]
            assert theirs["from"] == mine["from"]
            assert theirs.get("callbackData") == mine.get("callbackData")
            # the upstream reports to the bridge's own address; the caller's notifyUrl is kept for relaying
            assert theirs["notifyUrl"].startswith(bridge.url + "/hooks/dlr/")
            assert theirs["notifyContentType"] == "application/json"
    else:
        assert [s["path"] for s in sent] == ["/sms/1/text/query"] * len(body["messages"])
        queries = [parse_qs(s["query"]) for s in sent]
        if len(body["messages"]) > 1:  # one GET per text, all in one bulk
            assert len({q["bulkId"][0] for q in queries}) == 1
        if body.get("bulkId"):
            assert queries[0]["bulkId"] == [body["bulkId"]]
        if "callbackData" in body["messages"][0]:
            assert queries[0]["callbackData"] == [body["messages"][0]["callbackData"]]


def test_xml_extension(bridge):
    r = bridge.post("/sms/2/text/advanced.xml", json=_example("basic"), auth=AUTH)
    assert ET.fromstring(r.content).findtext("messages/messages/status/name") == "PENDING_ACCEPTED"


def test_needs_header_auth_and_json(bridge, sandbox):
    assert bridge.post("/sms/2/text/advanced", json=_example("basic")).status_code == 401
    r = bridge.post("/sms/2/text/advanced", data="not json", auth=AUTH, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "body" in r.json()["requestError"]["serviceException"]["validationErrors"]
    assert sandbox.sends() == []


def test_same_rules_as_get_with_json_paths(bridge, sandbox):
    body = {"messages": [{"from": "%SENDER%", "destinations": [{"to": "41793026727"}, {"to": "abc"}], "text": "",
                          "flash": "yes", "validityPeriod": 9999}]}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH)
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]
    assert r.status_code == 400
    assert {"messages[0].from", "messages[0].destinations[1].to", "messages[0].text", "messages[0].flash",
            "messages[0].validityPeriod"} <= set(errors)
    assert sandbox.sends() == []


def test_sdk_style_language_string_accepted(bridge, sandbox):
    body = {"messages": [{"destinations": [{"to": "41793026727"}], "text": "x", "language": "TR"}],
            "includeSmsCountInResponse": True}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH)
    assert r.status_code == 200 and r.json()["messages"][0]["smsCount"] == 1
