"""Which upstream API a send goes through (issue 13 item 7): advanced by default (it carries the bridge's ids);
with ``query`` chosen, a send the query API cannot carry in full goes through advanced instead of losing
options; check-config says which guarantee does not hold with query; unknown or miscased parameters on the
raw query entrance are refused naming the nearest known one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO, ROOT, default_raw_config

AUTH = (DEMO["username"], DEMO["password"])
TO = "41793026727"


def _query_upstream(raw) -> None:
    raw["callers"]["demo"]["upstream_api"] = "query"


def _paths(sandbox) -> list[str]:
    return [s["path"] for s in sandbox.sends()]


def test_default_upstream_api_is_advanced(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": TO, "text": "hello"})
    assert r.status_code == 200, r.text
    assert _paths(sandbox) == ["/sms/2/text/advanced"]
    r = bridge.get("/t/alarm", params={**DEMO, "phone": TO, "msg": "Door"})
    assert r.status_code == 200, r.text
    assert _paths(sandbox)[-1] == "/sms/2/text/advanced"  # templates too, unless they name their api


def test_query_stays_selectable(make_bridge, sandbox):
    bridge = make_bridge(_query_upstream)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": TO, "text": "hello"})
    assert r.status_code == 200, r.text
    assert _paths(sandbox) == ["/sms/1/text/query"]


@pytest.mark.parametrize(("extra", "where", "key"), [
    ({"sendingSpeedLimit": {"amount": 10, "timeUnit": "MINUTE"}}, "top", "sendingSpeedLimit"),
    ({"urlOptions": {"shortenUrl": True, "trackClicks": True}}, "top", "urlOptions"),
    ({"deliveryTimeWindow": {"days": ["MONDAY"], "from": {"hour": 8, "minute": 0}, "to": {"hour": 18, "minute": 0}}},
     "message", "deliveryTimeWindow"),
    ({"entityId": "ent-1", "applicationId": "app-1"}, "message", "entityId"),
    ({"regional": {"turkeyIys": {"brandCode": 7, "recipientType": "BIREYSEL"}}}, "message", "regional"),
])
def test_options_the_query_api_cannot_carry_go_through_advanced(make_bridge, sandbox, extra, where, key):
    bridge = make_bridge(_query_upstream)
    msg = {"destinations": [{"to": TO}], "text": "hello", **(extra if where == "message" else {})}
    body = {"messages": [msg], **(extra if where == "top" else {})}
    r = bridge.post("/sms/2/text/advanced", json=body, auth=AUTH)
    assert r.status_code == 200, r.text
    sent = sandbox.sends()
    assert [s["path"] for s in sent] == ["/sms/2/text/advanced"]
    up = sent[0]["json"]
    assert (up if where == "top" else up["messages"][0])[key] == extra[key]  # honoured, not dropped


def test_v3_url_options_with_the_query_upstream_reach_the_upstream(make_bridge, sandbox):
    bridge = make_bridge(_query_upstream)
    body = {"messages": [{"destinations": [{"to": TO}], "content": {"text": "see https://example.com"}}],
            "options": {"tracking": {"shortenUrl": True, "trackClicks": True}}}
    r = bridge.post("/sms/3/messages", json=body, headers={"Authorization": "App demo-key"})
    assert r.status_code == 200, r.text
    sent = sandbox.sends()
    assert [s["path"] for s in sent] == ["/sms/2/text/advanced"]
    assert sent[0]["json"]["urlOptions"] == {"shortenUrl": True, "trackClicks": True}


def test_query_entrance_message_id(make_bridge, sandbox):
    bridge = make_bridge(_query_upstream)
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": TO, "text": "hello", "messageId": "order-77"})
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["messageId"] == "order-77"
    sent = sandbox.sends()
    assert [s["path"] for s in sent] == ["/sms/2/text/advanced"]  # the query API has no messageId
    assert sent[0]["json"]["messages"][0]["destinations"] == [{"to": TO, "messageId": "order-77"}]
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": f"{TO},41793026728", "text": "x", "messageId": "m"})
    assert r.status_code == 400 and "messageId" in r.json()["requestError"]["serviceException"]["validationErrors"]
    assert len(sandbox.sends()) == 1


@pytest.mark.parametrize(("name", "nearest"), [("notifyurl", "notifyUrl"), ("Flash", "flash"), ("txt", "text"),
                                               ("TO", "to"), ("bulkid", "bulkId")])
def test_unknown_or_miscased_query_parameters_are_refused(bridge, sandbox, name, nearest):
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": TO, "text": "hello", name: "x"})
    assert r.status_code == 400, r.text
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]
    assert name in errors and f"did you mean {nearest!r}" in errors[name][0]
    assert sandbox.sends() == []


def test_unknown_parameter_refused_in_xml_too(bridge, sandbox):
    r = bridge.get("/sms/1/text/query.xml", params={**DEMO, "to": TO, "text": "hello", "notifyurl": "x"})
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/xml")
    assert b"notifyurl" in r.content and b"notifyUrl" in r.content


def _check_config(tmp_path: Path, raw) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_check_config_says_which_guarantee_query_breaks(tmp_path):
    raw = default_raw_config()
    out = _check_config(tmp_path, raw)
    assert out.returncode == 0, out.stderr
    assert "query API" not in out.stderr  # the default holds exactly-once
    raw["callers"]["demo"]["upstream_api"] = "query"
    raw["templates"]["alarm"]["api"] = "query"
    out = _check_config(tmp_path, raw)
    assert out.returncode == 0, out.stderr
    for key in ("callers.demo.upstream_api", "templates.alarm.api"):
        line = next(x for x in out.stderr.splitlines() if key in x)
        assert "cannot carry the bridge's own messageId and bulkId" in line and "twice" in line
    raw = default_raw_config()
    raw["upstream"]["api"] = "query"
    raw["callers"]["demo"].pop("upstream_api")
    out = _check_config(tmp_path, raw)
    assert "warning: upstream.api uses the query API" in out.stderr
