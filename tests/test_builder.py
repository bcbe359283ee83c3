"""The URL builder never hands out a broken URL (issue 18 item 5): one table of parameters with the entrances,
pasted URLs and curl lines, checks named by field, and every preset and placeholder style filled with hostile
text and fetched from a real bridge, as a URL and through the real curl binary."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from gateway import urlbuilder as ub
from gateway.entrances import jasmin as jasmin_entrance
from gateway.entrances import query as query_entrance
from gateway.entrances import smseagle as smseagle_entrance
from tests.conftest import DEMO
from tests.test_ui import login

INFOBIP = ("https://xxxxx.api.infobip.com/sms/1/text/query?username=myUsername&password=myPassword"
           "&to=%phoneNumber%&text=%message")
HOSTILE = ["Pump 3 & 100% sure + a+b=c; x?y#z/ok", "Grüße aus Zürich ✓ 🚀 “quotes” 'single' \"double\" \\ back",
           "two\nlines and 50 %25 literal"]
ALL_STYLES = [*ub.STYLES.values(), ub.custom_style("@@", "@@"), ub.custom_style("~", ""), ub.custom_style("!{", "}!")]


def test_the_builder_knows_exactly_the_parameters_each_entrance_accepts(bridge):
    templates = bridge.app.extensions["smsbridge"].config.templates
    entrance = {"query": query_entrance.KNOWN_PARAMS, "jasmin": jasmin_entrance.SEND_PARAMS,
                "smseagle": smseagle_entrance.SEND_PARAMS}
    for target, accepted in entrance.items():
        offered = {p.name for p in ub.target_params(target, templates)} | ub.credentials_of(target)
        assert offered == ub.known_params(target, templates) == accepted, target
    for name, spec in templates.items():
        offered = {p.name for p in ub.target_params(name, templates)} | ub.credentials_of(name)
        assert offered == ub.known_params(name, templates) == set(spec.params) | {"username", "password",
                                                                                   "charset", "idempotencyKey"}


def test_every_offered_query_parameter_is_accepted_over_the_wire(bridge):
    """Not a table compared with itself: the running query entrance never calls an offered name unknown."""
    samples = {"flash": "false", "intermediateReport": "false", "validityPeriod": "60", "languageCode": "TR",
               "transliteration": "TURKISH", "notifyContentType": "application/json", "sendAt": "",
               "track": "SMS", "notifyUrl": "http://127.0.0.1:9/dlr", "charset": "UTF-8"}
    for p in ub.target_params("query", {}):
        if p.name in ("to", "text"):
            continue
        resp = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "hi",
                                                       p.name: samples.get(p.name, "abc123")})
        assert "is not a parameter" not in resp.text, (p.name, resp.text)


def _api(s, bridge, token, path, body):
    return s.post(f"{bridge.url}/ui/api/{path}", json=body, headers={"X-CSRF-Token": token}, timeout=10)


def test_pasting_infobips_url_keeps_the_user_and_names_an_unknown_caller(bridge):
    s, token = login(bridge.url)
    parsed = _api(s, bridge, token, "parse", {"url": INFOBIP})
    assert parsed.status_code == 200
    spec = parsed.json()["spec"]
    assert spec["username"] == "myUsername" and spec["base"] == bridge.url.rstrip("/")
    assert any("password was removed" in n for n in parsed.json()["notes"])
    built = _api(s, bridge, token, "build", {"spec": spec})
    assert built.status_code == 200, built.text
    assert built.json()["url"] == (f"{bridge.url}/sms/1/text/query?username=myUsername&password=YOUR_PASSWORD"
                                   "&to=%phoneNumber%&text=%message")
    assert any("'myUsername' is not configured" in n for n in built.json()["notes"])
    assert "myPassword" not in built.text + parsed.text


def test_the_documentations_track_parameters_build_without_complaint(bridge):
    s, token = login(bridge.url)
    url = f"{bridge.url}/sms/1/text/query?username=demo&password=x&to=41793026727&text=Hi&track=SMS&trackingType=Custom"
    spec = _api(s, bridge, token, "parse", {"url": url}).json()["spec"]
    built = _api(s, bridge, token, "build", {"spec": spec})
    assert built.status_code == 200, built.text
    assert built.json()["url"].endswith("&track=SMS&trackingType=Custom")


@pytest.mark.parametrize("line", [
    "curl -G 'http://10.0.0.5:8080/sms/1/text/query' -u demo:secret --data-urlencode 'to=%phoneNumber%' "
    "--data-urlencode 'text=Disk & CPU 100% on %host%'",
    'curl -sS "http://10.0.0.5:8080/sms/1/text/query?username=demo&password=secret&to=%phoneNumber%'
    '&text=Disk%20%26%20CPU%20100%25%20on%20%host%"',
    "curl -X POST http://10.0.0.5:8080/sms/1/text/query -H 'Authorization: Basic ZGVtbzpzZWNyZXQ=' "
    "-d 'to=%phoneNumber%' --data-urlencode 'text=Disk & CPU 100% on %host%'",
])
def test_a_whole_curl_command_line_is_read(bridge, line):
    s, token = login(bridge.url)
    parsed = _api(s, bridge, token, "parse", {"url": line})
    assert parsed.status_code == 200, parsed.text
    spec = parsed.json()["spec"]
    assert spec["username"] == "demo" and spec["target"] == "query"
    fields = {f["param"]: (f["mode"], f["value"]) for f in spec["fields"]}
    assert fields == {"to": ("placeholder", "phoneNumber"), "text": ("value", "Disk & CPU 100% on %host%")}
    assert any("password was removed" in n for n in parsed.json()["notes"])
    built = _api(s, bridge, token, "build", {"spec": spec}).json()
    assert built["url"] == (f"{bridge.url}/sms/1/text/query?username=demo&password=YOUR_PASSWORD&to=%phoneNumber%"
                            "&text=Disk%20%26%20CPU%20100%25%20on%20%host%")
    assert "secret" not in json.dumps(built)


@pytest.mark.parametrize("line,reason", [("curl 'http://h/sms/1/text/query?to=1", "quotes"),
                                         ("curl -d @body.txt http://h/sms/1/text/query", "reads a file"),
                                         ("curl -s", "no URL")])
def test_unreadable_curl_lines_say_why(bridge, line, reason):
    s, token = login(bridge.url)
    resp = _api(s, bridge, token, "parse", {"url": line})
    assert resp.status_code == 400
    assert reason in resp.json()["requestError"]["serviceException"]["validationErrors"]["url"][0]


def _form(s, bridge, token, target="query", **changes):
    spec = _api(s, bridge, token, "default", {"target": target, "style": "percent"}).json()["spec"]
    for f in spec["fields"]:
        if f["param"] in changes:
            f["mode"], f["value"] = changes[f["param"]]
            f["style"] = "percent" if f["mode"] != "omit" else None
    return spec


@pytest.mark.parametrize("change,field,reason", [
    ({"base": "not a url"}, "base", "is not an http:// or https:// address"),
    ({"base": "ftp://bridge:8080"}, "base", "is not an http:// or https:// address"),
    ({"base": "http://bridge:8080/?x=1"}, "base", "no ?query"),
    ({"to": ("omit", "")}, "to", "is required"),
    ({"to": ("value", "abc")}, "to", "'abc' is not a phone number"),
    ({"to": ("value", "41793026727,12")}, "to", "'12' has 2 digits"),
    ({"flash": ("value", "yes")}, "flash", "must be true or false"),
    ({"validityPeriod": ("value", "99999")}, "validityPeriod", "must be between 1 and 2880"),
    ({"languageCode": ("value", "XX")}, "languageCode", "must be one of"),
    ({"from": ("value", "A sender far too long")}, "from", "must be 3 to 11 characters"),
    ({"to": ("placeholder", "bad name!")}, "to", "a placeholder name is letters"),
    ({"text": ("value", "  ")}, "text", "is empty"),
])
def test_checks_name_the_field_and_the_reason_and_hand_out_nothing(bridge, change, field, reason):
    s, token = login(bridge.url)
    spec = _form(s, bridge, token, **{k: v for k, v in change.items() if k != "base"})
    if "base" in change:
        spec["base"] = change["base"]
    resp = _api(s, bridge, token, "build", {"spec": spec})
    assert resp.status_code == 400, resp.text
    errors = resp.json()["requestError"]["serviceException"]["validationErrors"]
    assert reason in errors[field][0], errors
    assert "url" not in resp.json()


def test_template_fixed_values_are_checked_as_the_template_entrance_does(bridge):
    s, token = login(bridge.url)
    spec = _form(s, bridge, token, "alarm", phone=("value", "abc"), site=("value", "no/slashes"),
                 msg=("placeholder", "message"))
    errors = _api(s, bridge, token, "build", {"spec": spec}).json()["requestError"]["serviceException"][
        "validationErrors"]
    assert "'abc' is not a phone number" in errors["phone"][0] and "does not match the pattern" in errors["site"][0]
    spec = _form(s, bridge, token)
    spec["fields"].append({"param": "notifyurl", "mode": "value", "value": "x", "style": None})
    errors = _api(s, bridge, token, "build", {"spec": spec}).json()["requestError"]["serviceException"][
        "validationErrors"]
    assert errors["notifyurl"][0] == ("is not a parameter of the query API: the bridge would refuse the URL; "
                                      "did you mean 'notifyUrl'?")


@pytest.mark.parametrize("preset", sorted(ub.PRESETS))
def test_presets_carry_the_callers_credentials(bridge, preset):
    s, token = login(bridge.url)
    spec = _api(s, bridge, token, "default", {"target": "query", "preset": preset}).json()["spec"]
    url = _api(s, bridge, token, "build", {"spec": spec}).json()["url"]
    assert "?username=demo&password=YOUR_PASSWORD&to=" in url


def _forms() -> list[tuple[str, ub.Style, dict[str, str]]]:
    """(id, style, role → placeholder name) for every placeholder style and every preset."""
    out = [(f"style-{st.name}{st.prefix}{st.suffix}", st, {"to": "phoneNumber", "text": "message"})
           for st in ALL_STYLES]
    out += [(f"preset-{n}", ub.STYLES[p["style"]], {"to": p["to"], "text": p["text"]}) for n, p in ub.PRESETS.items()]
    return out


def _spec(base: str, target: str, style: ub.Style, names: dict[str, str]) -> ub.Spec:
    roles = {"query": {"to": "to", "text": "text"}, "alarm": {"to": "phone", "text": "msg"}}[target]
    return ub.Spec(base, target, "", "demo", [ub.Field(roles[r], "placeholder", names[r], style) for r in ("to", "text")])


def _fill(text: str, style: ub.Style, names: dict[str, str], values: dict[str, str], encode: bool) -> str:
    for role in sorted(names, key=lambda r: -len(names[r])):  # the longer token first (%to inside %tok…)
        value = values[role]
        text = text.replace(style.token(names[role]), ub._enc(value) if encode else value)
    return text.replace(ub.PASSWORD_TOKEN, DEMO["password"])


EXPECT = {"query": "{}", "alarm": "[ALARM] HQ: {}"}


@pytest.mark.parametrize("target", ["query", "alarm"])
@pytest.mark.parametrize("form_id,style,names", _forms(), ids=[f[0] for f in _forms()])
def test_every_preset_and_style_filled_with_hostile_text_arrives_intact(bridge, sandbox, target, form_id, style,
                                                                        names):
    spec = _spec(bridge.url, target, style, names)
    assert ub.check(spec, bridge.app.extensions["smsbridge"].config.templates).errors == {}
    url = ub.build(spec)
    for text in HOSTILE:  # the legacy app replaces each token with its value, URL-encoded
        resp = bridge.get(_fill(url, style, names, {"to": "41793026727", "text": text}, True)[len(bridge.url):])
        assert resp.status_code == 200, (url, resp.text)
        assert sandbox.messages()[-1]["text"] == EXPECT[target].format(text)


CURL = shutil.which("curl")


@pytest.mark.skipif(CURL is None, reason="no curl binary")
@pytest.mark.parametrize("target", ["query", "alarm"])
@pytest.mark.parametrize("form_id,style,names", _forms(), ids=[f[0] for f in _forms()])
def test_the_curl_form_filled_as_a_shell_would_runs_with_the_real_curl(bridge, sandbox, target, form_id, style,
                                                                      names):
    """The command's words with each token replaced by the raw text (as the shell substitutes a variable or a
    macro inside quotes); curl encodes it: no `curl: (3) URL using bad/illegal format`."""
    args = ub.curl_args(_spec(bridge.url, target, style, names))
    for text in HOSTILE:
        filled = [_fill(a, style, names, {"to": "41793026727", "text": text}, False) for a in args]
        done = subprocess.run([CURL, *filled[1:], "-w", "\n%{http_code}"], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        body, _, status = done.stdout.rpartition("\n")
        assert status == "200", body
        assert sandbox.messages()[-1]["text"] == EXPECT[target].format(text)


def test_dialect_targets_are_checked_too(bridge):
    templates = bridge.app.extensions["smsbridge"].config.templates
    pct = ub.STYLES["percent"]
    spec = ub.Spec(bridge.url, "jasmin", "", "demo", [ub.Field("to", "value", "abc", None),
                                                      ub.Field("content", "omit")])
    errors = ub.check(spec, templates).errors
    assert "'abc' is not a phone number" in errors["to"]
    assert errors["content"] == "is required: give it a placeholder or a fixed value (or give hex-content)"
    spec.fields = [ub.Field("to", "placeholder", "to", pct), ub.Field("hex-content", "placeholder", "hex", pct)]
    assert ub.check(spec, templates).errors == {}
    eagle = ub.Spec(bridge.url, "smseagle", "", "demo", [ub.Field("to", "placeholder", "to", pct),
                                                         ub.Field("message", "placeholder", "m", pct),
                                                         ub.Field("access_token", "value", "x", None)])
    assert ub.check(eagle, templates).errors == {"access_token": "carries a credential: choose the caller instead"}


@pytest.mark.parametrize("path,body", [
    ("build", {"spec": []}), ("build", {"spec": {"fields": ["x"]}}), ("build", {"spec": {"fields": [{"param": 1}]}}),
    ("build", {"spec": {"fields": [{"mode": "value"}]}}), ("build", {"spec": {"username": 5, "base": 7}}),
    ("build", {"spec": {"base": "http://[::1", "fields": "to"}}), ("build", {"spec": {"target": ["x"]}}),
    ("build", {"spec": {"fields": [{"param": "to", "mode": "placeholder", "style": "custom", "prefix": "&"}]}}),
    ("parse", {"url": ["x"]}), ("parse", {"url": "curl"}), ("parse", {"url": "curl -u"}), ("parse", {"url": 'curl "'}),
    ("parse", {"url": "curl -H 'Authorization: Basic !!!' http://h/sms/1/text/query"}),
    ("parse", {"url": "curl http://[::1/sms/1/text/query"}), ("parse", {"url": "http://h:99999/t/x?a=%ZZ"}),
    ("parse", {"url": "curl --data-urlencode @f http://h/sms/1/text/query"}), ("default", {"target": "nope"}),
    ("default", {"target": "query", "preset": "nope"}), ("default", {"username": ["x"]}),
])
def test_hostile_bodies_are_refused_by_name_never_a_500(bridge, path, body):
    s, token = login(bridge.url)
    resp = _api(s, bridge, token, path, body)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        exc = resp.json()["requestError"]["serviceException"]
        assert exc["text"] and "Traceback" not in resp.text
