"""SMSEagle's API v1 over real HTTP: send_sms with the URLs and answers of the device's documentation (text, XML),
the JSON-RPC sms.send_sms method (simple and extended), refusals in the device's words, and Apprise's SMSEagle
plugin (``smseagle://token@host``) driven end to end against the bridge."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

import pytest

from tests.storehelp import db_count

TOKEN = {"access_token": "demo-key"}  # the demo caller's api_key


def test_send_sms_with_access_token_as_documented(bridge, sandbox):
    # https://url-of-smseagle/http_api/send_sms?access_token=…&to=1234567&message=mymessage
    r = bridge.get("/http_api/send_sms", params={**TOKEN, "to": "41793026727", "message": "mymessage"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    m = re.fullmatch(r"OK; ID=\[([^\]]+)\]", r.text)
    assert m, r.text
    assert [(x["to"], x["text"]) for x in sandbox.messages()] == [("41793026727", "mymessage")]
    log = bridge.get("/sms/1/logs", params={"username": "demo", "password": "demo", "messageId": m.group(1)})
    assert log.json()["results"][0]["messageId"] == m.group(1)


def test_older_path_login_pass_several_recipients_xml(bridge, sandbox):
    r = bridge.get("/index.php/http_api/send_sms", params={"login": "demo", "pass": "demo",
                                                           "to": "41793026727,41793026728", "message": "two",
                                                           "responsetype": "xml", "highpriority": "1",
                                                           "modem_no": "2", "unicode": "1"})
    assert r.status_code == 200, r.text
    assert re.fullmatch(r"<xml>(<item><message_id>[^<]+</message_id><status>ok</status></item>){2}</xml>", r.text)
    assert sorted(x["to"] for x in sandbox.messages()) == ["41793026727", "41793026728"]


def test_options_flash_validity_date(bridge, sandbox):
    r = bridge.get("/http_api/send_sms", params={**TOKEN, "to": "41793026727", "message": "m", "flash": "1",
                                                 "validity": "2h",
                                                 "date": (datetime.now() + timedelta(days=1)).strftime("%Y%m%d%H%M")})
    assert r.status_code == 200, r.text
    msg = sandbox.messages()[0]
    assert msg["flash"] is True and msg["validityPeriod"] == 120 and msg["sendAt"]


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"access_token": "wrong", "to": "41793026727", "message": "m"}, 401, "Invalid access token"),
    ({"login": "demo", "pass": "bad", "to": "41793026727", "message": "m"}, 401, "Invalid login or password"),
    ({**TOKEN, "message": "m"}, 400, "Wrong or missing >>to<< parameter"),
    ({**TOKEN, "to": "41793026727"}, 400, "Wrong or missing >>message<< parameter"),
    ({**TOKEN, "to": "41793026727", "message": "m", "validity": "3h"}, 400, "Wrong or missing >>validity<< parameter"),
    ({**TOKEN, "to": "41793026727", "message": "m", "date": "2014-01-15"}, 400,
     "Wrong or missing >>date<< parameter"),
    ({**TOKEN, "to": "41793026727", "message": "m", "colour": "red"}, 400, "Wrong or missing >>colour<< parameter"),
    ({**TOKEN, "to": "41793026727", "message": "{ALERT.MESSAGE}"}, 400, "Wrong or missing >>message<< parameter"),
])
def test_refusals_in_the_devices_words(bridge, sandbox, params, status, text):
    r = bridge.get("/http_api/send_sms", params=params)
    assert r.status_code == status and r.text.startswith(text), r.text
    x = bridge.get("/http_api/send_sms", params={**params, "responsetype": "xml"})
    assert x.text.startswith(f"<xml><error_text>{escape(text)}") and x.text.endswith("<status>error</status></xml>")
    assert sandbox.messages() == []


def test_test_mode_sends_nothing(bridge, sandbox):
    r = bridge.get("/http_api/send_sms", params={**TOKEN, "to": "41793026727", "message": "m", "test": "1"})
    assert (r.status_code, r.text) == (200, "OK; ID=[0]")
    assert sandbox.messages() == []


def test_jsonrpc_simple_and_extended(bridge, sandbox):
    body = {"method": "sms.send_sms", "params": {**TOKEN, "to": "41793026727", "message": "My message"}}
    r = bridge.post("/jsonrpc/sms", json=body)
    assert r.status_code == 200 and re.fullmatch(r"OK; ID=\[[^\]]+\]", r.json()["result"])
    body["params"].update(responsetype="extended", to="41793026727,41793026728", message="two")
    r = bridge.post("/index.php/jsonrpc/sms", json=body)
    result = r.json()["result"]
    assert isinstance(result, list) and [x["status"] for x in result] == ["ok", "ok"]
    bad = bridge.post("/jsonrpc/sms", json={"method": "sms.send_sms",
                                            "params": {"login": "demo", "pass": "x", "to": "1", "message": "m",
                                                       "responsetype": "extended"}})
    assert bad.json() == {"result": {"error_text": "Invalid login or password", "status": "error"}}
    assert len(sandbox.messages()) == 3


def test_idempotent_retry(bridge, sandbox):
    params = {**TOKEN, "to": "41793026727", "message": "once", "idempotencyKey": "eagle-1"}
    first, again = bridge.get("/http_api/send_sms", params=params), bridge.get("/http_api/send_sms", params=params)
    assert first.text == again.text and again.headers.get("Idempotent-Replayed") == "true"
    assert len(sandbox.messages()) == 1


def test_apprise_smseagle_plugin_end_to_end(bridge, sandbox):
    apprise = pytest.importorskip("apprise")
    host = bridge.url.removeprefix("http://")
    app = apprise.Apprise()
    assert app.add(f"smseagle://demo-key@{host}/41793026727/41793026728?batch=yes")
    assert bool(app.notify(body="Disk full on db1 ✓", title="")) is True  # 1.x: a bool; 2.x: a result object
    sent = sandbox.messages()
    assert sorted(m["to"] for m in sent) == ["41793026727", "41793026728"]
    assert {m["text"] for m in sent} == {"Disk full on db1 ✓"}
    wrong = apprise.Apprise()
    wrong.add(f"smseagle://not-a-key@{host}/41793026727")
    assert bool(wrong.notify(body="x")) is False  # a refusal the plugin reads as a failure
    assert len(sandbox.messages()) == 2


def test_ui_log_shows_the_entrance(bridge, sandbox):
    from tests.test_ui import login
    assert bridge.get("/http_api/send_sms", params={**TOKEN, "to": "41793026727", "message": "m"}).ok
    assert bridge.get("/send", params={"username": "demo", "password": "demo", "to": "41793026728",
                                       "content": "m"}).ok
    session, _ = login(bridge.url)
    page = session.get(bridge.url + "/ui/log", timeout=10).text
    assert "smseagle (sync)" in page and "jasmin (sync)" in page


def test_url_builder_knows_smseagle_and_parses_its_url():
    from gateway import urlbuilder as ub
    url = ("https://url-of-smseagle/index.php/http_api/send_sms?login=john&pass=doe&to={ALERT.SENDTO}"
           "&message={ALERT.MESSAGE}&highpriority=1")
    parsed = ub.parse(url, bridge_base="http://bridge:8080")
    spec = parsed.spec
    assert (spec.target, spec.username, spec.base) == ("smseagle", "john", "http://bridge:8080")
    assert [f.param for f in spec.fields] == ["to", "message", "highpriority"]
    rebuilt = ub.build(spec)
    assert rebuilt == ("http://bridge:8080/http_api/send_sms?login=john&pass=YOUR_PASSWORD&to={ALERT.SENDTO}"
                       "&message={ALERT.MESSAGE}&highpriority=1")
    assert ub.parse(rebuilt).spec == spec
    token = ub.parse("http://eagle/http_api/send_sms?access_token=0005gOjCOlMH8F2BP8&to=1234567&message=m",
                     bridge_base="http://bridge:8080")
    assert "0005gOjCOlMH8F2BP8" not in ub.build(token.spec) and any("access token" in n for n in token.notes)


@pytest.mark.parametrize("query", [
    "access_token=demo-key&to=41793026727&message=%FF",
    "access_token=demo-key&to=41793026727&message=m&date=000001010000",
    "access_token=demo-key&to=41793026727&message=m&date=999912312359",
    "access_token=demo-key&to=,,,&message=m", "access_token=demo-key&access_token=x&to=1&message=m",
    "login=demo&to=41793026727&message=m", "access_token=demo-key&to=41793026727&message=m&flash=yes",
    "access_token=demo-key&to=41793026727&message=m&responsetype=json",
])
def test_hostile_input_is_refused_in_the_devices_words(bridge, sandbox, query):
    import requests
    tag = f"hostile-{uuid.uuid4().hex[:8]}"  # this test's text: the shared sandbox may hear a late earlier test
    r = requests.get(f"{bridge.url}/http_api/send_sms?{query.replace('message=m', 'message=' + tag)}", timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.text.startswith(("Wrong", "Invalid")), r.text
    assert [m for m in sandbox.messages() if m.get("text") == tag] == []
    assert db_count(bridge.app.extensions["smsbridge"].db, "messages") == 0  # nothing recorded, nothing sent


def test_hostile_jsonrpc_bodies(bridge, sandbox):
    for body in (b"[]", b"{", b'{"method": "sms.send_sms", "params": []}',
                 b'{"method": "sms.nope", "params": {"access_token": "demo-key"}}',
                 b'{"method": "sms.send_sms", "params": {"access_token": "demo-key", "to": ["1"], "message": "m"}}'):
        r = bridge.post("/jsonrpc/sms", data=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 and "result" in r.json(), (body, r.status_code, r.text)
    assert sandbox.messages() == []


def test_inbound_to_an_application_written_for_smseagle(make_bridge, receiver):
    """SMSEagle's callback URL gets sender, timestamp, text, msgid: a form forward with these fields does it."""
    from urllib.parse import parse_qsl

    from tests.helpers import wait_for
    from tests.test_inbound import mo, push, with_inbound
    fields = {"sender": "{{ from }}", "timestamp": "{{ receivedAt }}", "text": "{{ text }}", "msgid": "{{ messageId }}"}
    rules = [{"name": "eagle", "caller": "demo", "match": {"keyword": "ACK"},
              "forward": {"url": receiver.url("/eagle-callback"), "method": "POST", "body": "form",
                          "fields": fields}}]
    bridge = make_bridge(with_inbound(rules))
    assert push(bridge, mo("ACK 42")).status_code == 200
    wait_for(lambda: receiver.count() >= 1, what="the callback")
    got = dict(parse_qsl(receiver.snapshot()[0].body.decode()))
    assert (got["sender"], got["text"]) == ("41793026727", "ACK 42") and got["msgid"] and got["timestamp"]


def test_post_form_to_send_sms(bridge, sandbox):
    r = bridge.post("/http_api/send_sms", data={"login": "demo", "pass": "demo", "to": "41793026727",
                                                "message": "posted ✓"})
    assert r.status_code == 200 and r.text.startswith("OK; ID=[")
    assert [m["text"] for m in sandbox.messages()] == ["posted ✓"]


def test_one_bad_number_never_cancels_the_others(bridge, sandbox):
    r = bridge.get("/http_api/send_sms", params={**TOKEN, "to": "41793026727,12ab,41793026728", "message": "m"})
    lines = r.text.split("\n")
    assert r.status_code == 200 and len(lines) == 3, r.text
    assert lines[0].startswith("OK; ID=[") and lines[2].startswith("OK; ID=[")
    assert lines[1].startswith("Wrong or missing >>to<< parameter (12ab:")
    assert sorted(m["to"] for m in sandbox.messages()) == ["41793026727", "41793026728"]


def test_a_locked_out_token_is_refused_in_the_devices_words_with_retry_after(make_bridge, sandbox):
    def locks_at_once(raw):
        raw["auth"] = {"free_failures": 0, "first_delay": 60, "max_delay": 60}

    bridge = make_bridge(locks_at_once)
    q = {"to": "41793026727", "message": "x"}
    assert bridge.get("/http_api/send_sms", params={"access_token": "wrong", **q}).status_code == 401
    r = bridge.get("/http_api/send_sms", params={**TOKEN, **q})  # the address is locked: not even a right key
    assert r.status_code == 429 and r.text.startswith("Too many failed logins") and int(r.headers["Retry-After"]) >= 59
    r = bridge.post("/jsonrpc/sms", json={"method": "sms.send_sms", "params": {**TOKEN, **q}})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 59
    assert sandbox.messages() == []
