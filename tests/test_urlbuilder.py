"""The URL builder (gateway/urlbuilder.py): Apprise-style round trips URL → form → URL for every
placeholder style, pasted Infobip URLs, and built URLs that really work once a legacy app fills them in."""

from __future__ import annotations

import pytest

from gateway import urlbuilder as ub
from tests.conftest import DEMO

BASE = "http://127.0.0.1:8080"
ALL_STYLES = [*ub.STYLES.values(), ub.custom_style("@@", "@@"), ub.custom_style("~", ""), ub.custom_style("!{", "}!")]


def _spec(style: ub.Style, fmt: str = "xml") -> ub.Spec:
    return ub.Spec(BASE, "alarm", fmt, "demo", [
        ub.Field("phone", "placeholder", "phoneNumber", style),
        ub.Field("msg", "placeholder", "ALERT.MESSAGE" if style.suffix else "message", style),
        ub.Field("site", "value", "Pump 3 & 100% <ok>", None),
    ])


@pytest.mark.parametrize("style", ALL_STYLES, ids=lambda s: f"{s.name}:{s.token('x')}")
def test_round_trip_url_form_url_every_style(style):
    spec = _spec(style)
    url = ub.build(spec)
    assert style.token("phoneNumber") in url  # the token is raw in the URL, for the legacy app to replace
    parsed = ub.parse(url)
    assert parsed.spec == spec  # URL -> form
    assert ub.build(parsed.spec) == url  # form -> URL
    assert ub.Spec.from_dict(parsed.spec.to_dict()) == spec  # and through the page's JSON


@pytest.mark.parametrize("style", ALL_STYLES, ids=lambda s: s.name)
def test_round_trip_of_text_with_embedded_tokens(style):
    text = f"{style.token('HOSTNAME')} is {style.token('STATE')}: 100% ü & co"
    spec = ub.Spec(BASE, "query", "", None, [ub.Field("to", "placeholder", "CONTACT", style),
                                             ub.Field("text", "value", text, style)])
    url = ub.build(spec)
    assert style.token("HOSTNAME") in url and "%25" in url and "%C3%BC" in url
    assert ub.parse(url).spec == spec
    assert ub.build(ub.parse(url).spec) == url


@pytest.mark.parametrize("preset", sorted(ub.PRESETS))
def test_presets_round_trip(preset):
    spec = ub.default_spec(BASE, "query", {}, ub.STYLES["percent"], "demo", preset=preset)
    p = ub.PRESETS[preset]
    url = ub.build(spec)
    st = ub.STYLES[p["style"]]
    assert f"to={st.token(p['to'])}" in url and f"text={st.token(p['text'])}" in url
    parsed = ub.parse(url).spec
    assert parsed.fields == [f for f in spec.fields if f.mode != "omit"]  # left-out fields are not in a URL
    assert ub.build(parsed) == url


def test_known_caller_tokens_are_read_back():
    url = (BASE + "/sms/1/text/query?to=%SMSNUMBER&text=%SMSTEXT&from=$recipient&callbackData={ALERT.SENDTO}"
           "&notifyUrl=$CONTACTPAGER$")
    got = {f.param: (f.mode, f.value, f.style.name if f.style else None) for f in ub.parse(url).spec.fields}
    assert got == {"to": ("placeholder", "SMSNUMBER", "percent_prefix"),
                   "text": ("placeholder", "SMSTEXT", "percent_prefix"),
                   "from": ("placeholder", "recipient", "dollar"),
                   "callbackData": ("placeholder", "ALERT.SENDTO", "brace"),
                   "notifyUrl": ("placeholder", "CONTACTPAGER", "nagios")}


def test_percent_escapes_are_values_not_placeholders():
    fields = ub.parse(BASE + "/sms/1/text/query?to=%2B41793026727&text=%E9t%C3%A9+ok").spec.fields
    assert [(f.mode, f.value) for f in fields] == [("value", "+41793026727"), ("value", "\ufffdté ok")]


def test_browser_encoded_placeholder_is_recognised():
    f = ub.parse(BASE + "/t/alarm?phone=%7BALERT.SENDTO%7D").spec.fields[0]
    assert (f.mode, f.value, f.style) == ("placeholder", "ALERT.SENDTO", ub.STYLES["brace"])


def test_infobip_url_pasted_points_at_the_bridge_and_drops_the_password():
    url = ("https://xyz.api.infobip.com/sms/1/text/query.xml?username=acme&password=Sup3rSecret&from=InfoSMS"
           "&to=41793026727&text=Hello%20world¬ifyUrl=https://example.com/dlr")
    parsed = ub.parse(url, bridge_base=BASE)
    assert parsed.spec.base == BASE and parsed.spec.target == "query" and parsed.spec.fmt == "xml"
    assert parsed.spec.username == "acme"
    assert [f.param for f in parsed.spec.fields] == ["from", "to", "text", "notifyUrl"]
    assert any("Infobip" in n for n in parsed.notes) and any("password was removed" in n for n in parsed.notes)
    rebuilt = ub.build(parsed.spec)
    assert "Sup3rSecret" not in rebuilt and f"password={ub.PASSWORD_TOKEN}" in rebuilt
    assert rebuilt.startswith(BASE + "/sms/1/text/query.xml?")


@pytest.mark.parametrize("bad", ["ftp://x/sms/1/text/query", "http://h/other/path?to=1", "not a url"])
def test_unreadable_urls_are_refused(bad):
    with pytest.raises(ValueError):
        ub.parse(bad)


@pytest.mark.parametrize("prefix,suffix", [("&", ""), ("#", "#"), ("a", "a"), ("", "%"), ("12345", "")])
def test_custom_styles_that_would_break_a_url_are_refused(prefix, suffix):
    with pytest.raises(ValueError):
        ub.custom_style(prefix, suffix)


def test_template_parameters_and_roles(bridge):
    params = ub.target_params("alarm", bridge.app.extensions["smsbridge"].config.templates)
    assert [(p.name, p.required, p.role) for p in params] == [("phone", True, "to"), ("msg", True, "text"),
                                                              ("site", False, ""), ("charset", False, ""),
                                                              ("idempotencyKey", False, "")]


@pytest.mark.parametrize("style", ALL_STYLES, ids=lambda s: s.name)
def test_built_url_works_once_the_legacy_app_fills_it_in(bridge, sandbox, style):
    spec = ub.Spec(bridge.url, "alarm", "", "demo", [ub.Field("phone", "placeholder", "phoneNumber", style),
                                                     ub.Field("msg", "placeholder", "message", style)])
    url = ub.build(spec).replace(ub.PASSWORD_TOKEN, DEMO["password"])
    unfilled = bridge.get(url[len(bridge.url):])
    assert unfilled.status_code == 400, unfilled.text  # an unsubstituted placeholder is never an SMS
    filled = ub.substitute(url, {"phoneNumber": "41793026727", "message": "Pump 3 failed & 100% sure"}, style)
    resp = bridge.get(filled[len(bridge.url):])
    assert resp.status_code == 200, resp.text
    assert resp.json()["messages"][0]["status"]["groupName"] == "PENDING"
    assert sandbox.messages()[-1]["text"] == "[ALARM] HQ: Pump 3 failed & 100% sure"
