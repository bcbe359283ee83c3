"""GET|POST /t/<name>: config templates rendered in a sandboxed Jinja environment."""

from __future__ import annotations

import pytest

from gateway import compile_templates
from gateway.config import ConfigError, build_config
from tests.conftest import DEMO, default_raw_config


def test_alarm_template_renders_and_sends(bridge, sandbox):
    r = bridge.get("/t/alarm", params={**DEMO, "phone": "41793026727", "msg": "Pump 3 down"})
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
    msg = sandbox.messages()[0]
    assert msg["text"] == "[ALARM] HQ: Pump 3 down" and msg["from"] == "InfoSMS" and msg["to"] == "41793026727"


def test_template_xml_and_post_form(bridge, sandbox):
    import xml.etree.ElementTree as ET

    r = bridge.get("/t/alarm.xml", params={**DEMO, "phone": "41793026727", "msg": "x", "site": "Plant 2"})
    assert ET.fromstring(r.content).tag == "SMSResponse"
    p = bridge.post("/t/alarm", data={**DEMO, "phone": "41793026727", "msg": "posted & +"})
    assert p.status_code == 200, p.text
    assert sandbox.messages()[-1]["text"] == "[ALARM] HQ: posted & +"


def test_advanced_template_uses_advanced_api(bridge, sandbox):
    r = bridge.get("/t/otp", params={**DEMO, "to": "41793026727", "code": "123456"})
    assert r.status_code == 200, r.text
    sent = sandbox.sends()[0]
    assert sent["path"] == "/sms/2/text/advanced"
    assert sent["json"]["messages"][0]["validityPeriod"] == 5


def test_ssti_value_is_sent_literally(bridge, sandbox):
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }} {% for x in range(3) %}x{% endfor %}"
    r = bridge.get("/t/alarm", params={**DEMO, "phone": "41793026727", "msg": evil})
    assert r.status_code == 200, r.text
    assert sandbox.messages()[0]["text"] == f"[ALARM] HQ: {evil}"


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"phone": "41793026727"}, "msg", "is required"),
        ({"phone": "%phoneNumber%", "msg": "x"}, "phone", "placeholder"),
        ({"phone": "41793026727", "msg": "{ALERT.MESSAGE}"}, "msg", "placeholder"),
        ({"phone": "123", "msg": "x"}, "phone", "digits"),
        ({"phone": "41793026727", "msg": "x", "site": "bad;site"}, "site", "does not match"),
        ({"phone": "41793026727", "msg": "x", "colour": "red"}, "colour", "is not a parameter"),
    ],
)
def test_parameter_errors_name_the_parameter(bridge, sandbox, params, field, words):
    r = bridge.get("/t/alarm", params={**DEMO, **params})
    assert r.status_code == 400, r.text
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]
    assert field in errors and words in errors[field][0]
    assert sandbox.sends() == []


def test_unknown_template_404_and_forbidden_403(make_bridge, sandbox):
    def two_callers(raw):
        raw["callers"]["other"] = {"password": "pw", "scopes": ["templates"]}
        raw["templates"]["alarm"]["callers"] = ["demo"]

    bridge = make_bridge(two_callers)
    assert bridge.get("/t/nope", params=DEMO).status_code == 404
    r = bridge.get("/t/alarm", params={"username": "other", "password": "pw", "phone": "41793026727", "msg": "x"})
    assert r.status_code == 403


def _config_with(fields, params=None):
    raw = default_raw_config()
    raw["templates"] = {"evil": {"params": params or {"msg": {"required": True}}, "fields": fields}}
    return build_config(raw, env={})


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ msg.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'] }}",
    ],
)
def test_malicious_template_fails_at_startup(text):
    config = _config_with({"to": "41793026727", "text": text})
    with pytest.raises(ConfigError) as exc:
        compile_templates(config)
    assert "templates.evil" in str(exc.value) and "unsafe" in str(exc.value)


def test_broken_and_undeclared_templates_reported_at_startup():
    with pytest.raises(ConfigError, match=r"templates\.evil\.fields\.text: does not compile"):
        compile_templates(_config_with({"to": "1", "text": "{{ msg "}))
    with pytest.raises(ConfigError, match=r"templates\.evil\.fields\.text: uses undeclared parameter\(s\) nope"):
        compile_templates(_config_with({"to": "1", "text": "{{ nope }}"}))
