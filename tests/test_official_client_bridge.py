"""The bridge's v3 entrance with Infobip's official Python client v6: every send variant through the
``advanced`` and the ``messages`` upstream, preview, caller API keys, and the typed errors.
(Pulls and scheduled bulks through the bridge: tests/test_official_client_bridge_pulls.py.)
"""

from __future__ import annotations

import dataclasses

import pytest
from infobip_api_client.exceptions import BadRequestException, ForbiddenException, UnauthorizedException
from infobip_api_client.models import ApiError as ApiErrorModel
from infobip_api_client.models import (
    SmsMessageOptions,
    SmsMessageRequestOptions,
    SmsPreviewRequest,
    SmsRequest,
    ValidityPeriod,
    ValidityPeriodTimeUnit,
)

from gateway.auth import hash_api_key
from gateway.config import build_config
from tests.conftest import default_raw_config
from tests.official_client import CASE_IDS, CASES, check_response, check_stored, message, sms_api

KEY = "demo-key"  # the default config's demo caller


def _upstream(api: str):
    def mutate(raw):
        raw["callers"]["demo"]["upstream_api"] = api

    return mutate


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("upstream", ["advanced", "messages"])
def test_send_variants(make_bridge, sandbox, upstream, case):
    bridge = make_bridge(_upstream(upstream))
    with sms_api(bridge.url, KEY) as api:
        resp = api.send_sms_messages(case.request)
    check_response(case, resp)
    if case.request.options and case.request.options.include_sms_count_in_response:
        assert [m.details.message_count for m in resp.messages] == [1] * len(case.destinations)
    records = sandbox.messages()
    if "notifyUrl" in case.stored:  # the upstream gets the bridge's own report URL; the caller's is relayed to
        assert all(r["notifyUrl"].startswith(bridge.url + "/hooks/dlr/") for r in records)
        case = dataclasses.replace(case, stored={k: v for k, v in case.stored.items() if k != "notifyUrl"})
    check_stored(case, records)
    sent = sandbox.sends()
    v3_only = any("campaignReferenceId" in m.get("options", {}) for m in case.request.to_dict()["messages"])
    used = "messages" if v3_only else upstream  # the advanced API has no campaignReferenceId: v3 carries it
    assert [s["path"] for s in sent] == [{"advanced": "/sms/2/text/advanced", "messages": "/sms/3/messages"}[used]]
    assert sent[0]["auth"] == "App" and sent[0]["userAgent"].startswith("smsbridge")  # the bridge's own key
    body = sent[0]["json"]
    if used == "messages":
        wire = case.request.to_dict()
        for mine, theirs in zip(wire["messages"], body["messages"], strict=True):
            # issue 13 item 3: each destination carries the bridge's own messageId (a resend is a duplicate)
            assert [{k: v for k, v in d.items() if k != "messageId"} for d in theirs["destinations"]] == \
                [{k: v for k, v in d.items() if k != "messageId"} for d in mine["destinations"]]
            assert all(d["messageId"] for d in theirs["destinations"])
            assert theirs.get("sender") == mine.get("sender")
            assert theirs["content"]["text"] == mine["content"]["text"]
            if "webhooks" in mine:  # the bridge's own report URL upstream; everything else as sent
                hook = theirs["webhooks"]["delivery"].pop("url")
                assert hook.startswith(bridge.url + "/hooks/dlr/")
                mine["webhooks"]["delivery"].pop("url")
                assert theirs["webhooks"] == mine["webhooks"]
            own = mine.get("options", {})
            if "platform" in own:
                assert theirs["options"]["platform"] == own["platform"]
                assert theirs["options"]["campaignReferenceId"] == own["campaignReferenceId"]
        schedule = wire.get("options", {}).get("schedule", {})
        if "bulkId" in schedule:
            assert body["options"]["schedule"]["bulkId"] == schedule["bulkId"]
    else:
        assert all("content" not in m and "text" in m for m in body["messages"])


def test_language_and_transliteration_reach_the_v3_upstream(make_bridge, sandbox):
    bridge = make_bridge(_upstream("messages"))
    case = next(c for c in CASES if c.name == "language_transliteration")
    with sms_api(bridge.url, KEY) as api:
        api.send_sms_messages(case.request)
    content = sandbox.sends()[0]["json"]["messages"][0]["content"]
    assert content["language"] == {"languageCode": "TR"} and content["transliteration"] == "TURKISH"


def test_validity_units_become_minutes_upstream(make_bridge, sandbox):
    bridge = make_bridge(_upstream("messages"))
    with sms_api(bridge.url, KEY) as api:
        for unit, amount in (("SECONDS", 90), ("HOURS", 2)):
            opts = SmsMessageOptions(validity_period=ValidityPeriod(amount=amount,
                                                                    time_unit=ValidityPeriodTimeUnit(unit)))
            api.send_sms_messages(SmsRequest(messages=[message(options=opts)]))
    sent = [s["json"]["messages"][0]["options"]["validityPeriod"] for s in sandbox.sends()]
    assert sent == [{"amount": 2, "timeUnit": "MINUTES"}, {"amount": 120, "timeUnit": "MINUTES"}]  # 90 s rounds up


def test_preview_through_bridge(bridge):
    with sms_api(bridge.url, KEY) as api:
        pv = api.preview_sms_message(SmsPreviewRequest(text="Ünïcødé ☃", transliteration="NON_UNICODE"))
    assert pv.original_text == "Ünïcødé ☃" and pv.previews[0].message_count == 1


def test_bad_key_is_typed_401_in_v3_envelope(bridge, sandbox):
    with sms_api(bridge.url, "not-a-key") as api:
        with pytest.raises(UnauthorizedException) as exc:
            api.send_sms_messages(SmsRequest(messages=[message()]))
    data = exc.value.data
    assert isinstance(data, ApiErrorModel) and data.error_code == "E401" and data.violations == []
    assert "not-a-key" not in exc.value.body
    assert sandbox.sends() == []


def test_empty_destinations_is_typed_400(bridge, sandbox):
    with sms_api(bridge.url, KEY) as api, pytest.raises(BadRequestException) as exc:
        api.send_sms_messages(SmsRequest(messages=[message([])]))
    data = exc.value.data
    assert data.error_code == "E400" and data.resources
    assert [v.var_property for v in data.violations] == ["messages[0].destinations"]
    assert sandbox.sends() == []


def test_same_rules_named_by_v3_paths(bridge, sandbox):
    opts = SmsMessageOptions(validity_period=ValidityPeriod(amount=3, time_unit=ValidityPeriodTimeUnit.HOURS))
    bad = message(["%phoneNumber%", "41793026727"], text="", sender="$SENDER$", options=opts)
    bad.options.validity_period.amount = 49  # 49 h > the 48 h maximum
    with sms_api(bridge.url, KEY) as api, pytest.raises(BadRequestException) as exc:
        api.send_sms_messages(SmsRequest(messages=[bad]))
    props = {v.var_property for v in exc.value.data.violations}
    assert props == {"messages[0].destinations[0].to", "messages[0].sender", "messages[0].content.text",
                     "messages[0].options.validityPeriod"}
    assert sandbox.sends() == []


def test_scope_is_checked(make_bridge):
    def mutate(raw):
        raw["callers"]["demo"]["scopes"] = ["advanced"]

    bridge = make_bridge(mutate)
    with sms_api(bridge.url, KEY) as api, pytest.raises(ForbiddenException) as exc:
        api.send_sms_messages(SmsRequest(messages=[message()]))
    assert exc.value.data.error_code == "E403" and "messages" in exc.value.data.description


def test_hashed_api_key_and_basic_auth(make_bridge, sandbox):
    def mutate(raw):
        demo = raw["callers"]["demo"]
        del demo["api_key"]
        demo["api_key_hash"] = hash_api_key("k-7f3a9c")
        demo["upstream_api"] = "messages"

    bridge = make_bridge(mutate)
    with sms_api(bridge.url, "k-7f3a9c") as api:
        assert api.send_sms_messages(SmsRequest(messages=[message()])).messages[0].status.name == "PENDING_ACCEPTED"
    with sms_api(bridge.url, KEY) as api, pytest.raises(UnauthorizedException):
        api.send_sms_messages(SmsRequest(messages=[message()]))  # the plain key is gone
    r = bridge.post("/sms/3/messages", auth=("demo", "demo"),
                    json={"messages": [{"destinations": [{"to": "41793026727"}], "content": {"text": "basic"}}]})
    assert r.status_code == 200 and r.json()["messages"][0]["destination"] == "41793026727"
    assert len(sandbox.sends()) == 2


def test_v3_envelope_only_on_v3_paths(bridge):
    r = bridge.get("/sms/3/messages", headers={"Authorization": "App demo-key"})
    assert r.status_code == 405 and r.json()["errorCode"] == "E405"
    assert set(r.json()) == {"errorCode", "description", "action", "violations", "resources"}
    r = bridge.post("/sms/3/messages", data="nope", headers={"Authorization": "App demo-key"})
    assert r.status_code == 400 and r.json()["violations"][0]["property"] == "body"
    legacy = bridge.post("/sms/2/text/advanced", json={"messages": []}, headers={"Authorization": "App demo-key"})
    assert legacy.status_code == 400 and "serviceException" in legacy.json()["requestError"]
    assert "requestError" in bridge.get("/sms/1/text/query?username=demo&password=x&to=1&text=x").json()


def test_messages_upstream_for_query_entrance_and_template(make_bridge, sandbox):
    def mutate(raw):
        raw["callers"]["demo"]["upstream_api"] = "messages"
        raw["templates"]["alarm"]["api"] = "messages"

    bridge = make_bridge(mutate)
    r = bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026727",
                                                 "text": "via v3", "from": "InfoSMS", "validityPeriod": "30"})
    assert r.status_code == 200 and r.json()["messages"][0]["to"] == "41793026727"  # v1 shape to a v1 caller
    r = bridge.get("/t/alarm", params={"username": "demo", "password": "demo", "phone": "41793026727", "msg": "x"})
    assert r.status_code == 200 and r.json()["messages"][0]["smsCount"] == 1
    sent = sandbox.sends()
    assert [s["path"] for s in sent] == ["/sms/3/messages", "/sms/3/messages"]
    assert sent[0]["json"]["messages"][0]["options"]["validityPeriod"] == {"amount": 30, "timeUnit": "MINUTES"}
    assert sent[1]["json"]["messages"][0]["content"]["text"] == "[ALARM] HQ: x"


def test_messages_upstream_refuses_mixed_send_times(make_bridge, sandbox):
    bridge = make_bridge(_upstream("messages"))
    body = {"messages": [
        {"destinations": [{"to": "41793026727"}], "text": "a", "sendAt": "2030-01-01T00:00:00.000+0000"},
        {"destinations": [{"to": "41793026727"}], "text": "b", "sendAt": "2030-01-02T00:00:00.000+0000"}]}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=("demo", "demo"))
    assert r.status_code == 400 and "sendAt" in r.json()["requestError"]["serviceException"]["text"]
    assert sandbox.sends() == []


def test_upstream_v3_violations_are_passed_on(make_bridge, sandbox):
    # the sandbox allows fewer parts than the bridge's caller limit: its v3 violation reaches the caller
    def mutate(raw):
        raw["callers"]["demo"]["upstream_api"] = "messages"
        raw["callers"]["demo"]["limits"] = {"max_parts": 100, "text_max_chars": 20000}

    bridge = make_bridge(mutate)
    with sms_api(bridge.url, KEY) as api, pytest.raises(BadRequestException) as exc:
        api.send_sms_messages(SmsRequest(messages=[message(text="x" * 5000)]))
    assert [v.var_property for v in exc.value.data.violations] == ["messages[0].content.text"]
    assert [s["path"] for s in sandbox.sends()] == ["/sms/3/messages"]


def test_demo_api_key_warned_and_refused_with_real_upstream():
    config = build_config(default_raw_config(), env={})
    assert any("callers.demo.api_key" in w and "plain" in w for w in config.warnings)
    assert config.callers["demo"].api_key == "demo-key"
    with pytest.raises(Exception) as exc:
        build_config(default_raw_config(), env={"INFOBIP_BASE_URL": "https://x.api.infobip.com",
                                                "INFOBIP_API_KEY": "k"})
    assert any(p == "callers.demo.api_key" for p, _ in exc.value.problems)


def test_include_count_flag_respected(bridge):
    with sms_api(bridge.url, KEY) as api:
        plain = api.send_sms_messages(SmsRequest(messages=[message(text="y" * 170)]))
        counted = api.send_sms_messages(SmsRequest(
            messages=[message(text="y" * 170)], options=SmsMessageRequestOptions(include_sms_count_in_response=True)))
    assert plain.messages[0].details is None and counted.messages[0].details.message_count == 2
