"""Jasmin's HTTP API over real HTTP: /send with the URLs and answers Jasmin's documentation shows, its refusals
(statuses and texts of jasmin.protocols.http), /balance, /rate, /ping, DLRs to dlr-url at each level and method
through the outbox, and an inbound rule forwarding in Jasmin's HTTP-connector shape."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
import requests

from gateway.wire.jasmin import parse_sdt
from tests.conftest import running_sandbox
from tests.helpers import wait_for
from tests.test_inbound import mo, push, with_inbound

CREDS = {"username": "demo", "password": "demo"}
SUCCESS = re.compile(r'^Success "([^"]+)"$')


def _mid(resp: requests.Response) -> str:
    m = SUCCESS.match(resp.text)
    assert m, resp.text
    return m.group(1)


def test_send_as_documented_get(bridge, sandbox):
    # misc/doc/sources/apis/http/example_send_gsm0338.py: GET /send?username&password&to&content
    r = bridge.get("/send", params={**CREDS, "to": "+41793026727", "content": "Hello world !"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    mid = _mid(r)
    sent = sandbox.messages()
    assert [(m["to"], m["text"]) for m in sent] == [("41793026727", "Hello world !")]
    log = bridge.get("/sms/1/logs", params={**CREDS, "messageId": mid}).json()["results"]
    assert log and log[0]["messageId"] == mid  # recorded like every other entrance's message


def test_send_post_form_and_json(bridge, sandbox):
    r = bridge.post("/send", data={**CREDS, "to": "41793026727", "from": "Jasmin", "content": "form body"})
    assert r.status_code == 200, r.text
    _mid(r)
    r = bridge.post("/send", json={**CREDS, "to": "41793026728", "content": "json body", "priority": 2})
    assert r.status_code == 200, r.text
    texts = {m["text"]: m for m in sandbox.messages()}
    assert texts["form body"]["from"] == "Jasmin" and "json body" in texts


def test_documented_example_with_originating_address(bridge, sandbox):
    # example_send_gsm0338.py: minimal parameters, then baseParams['from'] = 'Jasmin GW'
    base = {**CREDS, "to": "+33612345678", "content": "Hello"}
    assert bridge.get("/send", params=base).status_code == 200
    r = bridge.get("/send", params={**base, "from": "Jasmin GW"})
    assert r.status_code == 200, r.text
    assert [m.get("from") for m in sandbox.messages()] == [None, "Jasmin GW"]


def test_documented_examples_long_and_ucs2(bridge, sandbox):
    # example_send_misc.py: long content, and UCS-2 Arabic as raw UTF-16BE bytes with coding=8
    base = {**CREDS, "to": "+33612345678"}
    long = "Very long message " + "." * 180
    assert bridge.get("/send", params={**base, "content": long}).status_code == 200
    target = b"/send?username=demo&password=demo&to=%2B33612345678&coding=8&content=%06%23%061%06F%06%28"
    r = requests.get(bridge.url + target.decode(), timeout=10)
    assert r.status_code == 200, r.text
    texts = [m["text"] for m in sandbox.messages()]
    assert texts == [long, "\u0623\u0631\u0646\u0628"]
    latin = "/send?username=demo&password=demo&to=33612345678&coding=8&content=%00%E9%00t%00%E9"  # not UTF-8
    r = requests.get(bridge.url + latin, timeout=10)
    assert r.status_code == 200, r.text
    assert sandbox.messages()[-1]["text"] == "\u00e9t\u00e9"
    odd = requests.get(bridge.url + "/send?username=demo&password=demo&to=33612345678&coding=8&content=%06", timeout=10)
    assert odd.status_code == 400 and odd.text.startswith('Error "Argument [content] is not UCS-2')


def test_options_reach_upstream(bridge, sandbox):
    r = bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "later", "validity-period": "1440",
                                    "sdt": "000000000100000R", "coding": "0", "tags": "1,702"})
    assert r.status_code == 200, r.text
    msg = sandbox.messages()[-1]
    assert msg["validityPeriod"] == 1440 and msg["sendAt"]


@pytest.mark.parametrize(("params", "status", "text"), [
    ({}, 400, 'Error "Mandatory arguments not found, please refer to the HTTPAPI specifications."'),
    ({**CREDS, "content": "x"}, 400, 'Error "Mandatory argument [to] is not found."'),
    ({**CREDS, "to": "41793026727", "content": "x", "foo": "1"}, 400, 'Error "Argument [foo] is unknown."'),
    ({**CREDS, "to": "41793026727", "content": "x", "priority": "7"}, 400,
     'Error "Argument [priority] has an invalid value: [7]."'),
    ({**CREDS, "to": "41793026727", "content": "x", "dlr-level": "4", "dlr-url": "http://h/x"}, 400,
     'Error "Argument [dlr-level] has an invalid value: [4]."'),
    ({**CREDS, "to": "41793026727"}, 400, 'Error "content or hex-content not present."'),
    ({"username": "demo", "password": "nope", "to": "41793026727", "content": "x"}, 403,
     'Error "Authentication failure for username:demo"'),
])
def test_refusals_in_jasmins_words(bridge, sandbox, params, status, text):
    r = bridge.get("/send", params=params)
    assert (r.status_code, r.text) == (status, text)
    assert sandbox.messages() == []


def test_refusals_name_the_argument(bridge, sandbox):
    cases = {
        "hex-content": {"hex-content": "0623063106460628"},
        "to": {"to": "4179a"},
        "coding": {"coding": "4"},
        "sdt": {"sdt": "tomorrow"},
        "dlr-url": {"dlr": "yes"},
    }
    for name, extra in cases.items():
        params = {**CREDS, "to": "41793026727", "content": "x", **extra}
        r = bridge.get("/send", params=params)
        assert r.status_code == 400 and r.text.startswith(f'Error "Argument [{name}]'), (name, r.text)
    r = bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "Pump %message% down"})
    assert r.status_code == 400 and "Argument [content]" in r.text and "placeholder" in r.text.lower()
    assert sandbox.messages() == []


def test_dlr_url_must_pass_the_allow_list(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"]["allow"].update(loopback=False))
    r = bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "x",
                                    "dlr-url": "http://127.0.0.1:9/dlr", "dlr-level": "2"})
    assert r.status_code == 400 and r.text.startswith('Error "Argument [dlr-url] is not allowed for this caller')
    assert sandbox.messages() == []


def test_idempotent_retry(bridge, sandbox):
    params = {**CREDS, "to": "41793026727", "content": "once", "idempotencyKey": "k-1"}
    first, second = bridge.get("/send", params=params), bridge.get("/send", params=params)
    assert first.text == second.text and second.headers.get("Idempotent-Replayed") == "true"
    assert len(sandbox.messages()) == 1


def test_balance_rate_ping(bridge):
    assert bridge.get("/ping").text == "Jasmin/PONG"
    r = bridge.get("/balance", params=CREDS)
    assert (r.status_code, r.text) == (200, '{"balance": "ND", "sms_count": "ND"}')
    r = bridge.get("/rate", params={**CREDS, "to": "41793026727", "content": "x" * 161})
    assert (r.status_code, r.json()) == (200, {"submit_sm_count": 2, "unit_rate": 0.0})
    r = bridge.get("/rate", params={**CREDS, "to": "41793026727", "content": "Ж" * 71})
    assert r.json()["submit_sm_count"] == 2  # UCS-2: 70 per single part
    r = bridge.get("/balance", params={"username": "demo", "password": "x"})
    assert (r.status_code, r.text) == (403, '"Authentication failure for username:demo"')


def test_sdt_absolute_and_relative():
    from datetime import UTC, datetime
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_sdt("000000000100000R", now) == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert parse_sdt("260102103000004+", now) == datetime(2026, 1, 2, 9, 30, tzinfo=UTC)  # +01:00


@pytest.mark.parametrize(("level", "method"), [("1", "GET"), ("2", "POST"), ("3", "GET")])
def test_dlr_at_requested_level_and_method(make_bridge, receiver, level, method):
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        bridge = make_bridge(upstream_url=fast.url)
        r = bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "Hello delivery report",
                                        "dlr-url": receiver.url("/dlr.php"), "dlr-level": level,
                                        "dlr-method": method})
        mid = _mid(r)
        want = {"1": ["1"], "2": ["2"], "3": ["1", "2"]}[level]
        wait_for(lambda: receiver.count() >= len(want), what="the DLRs")
        got = receiver.snapshot()
    fields = [dict(parse_qsl(g.query if method == "GET" else g.body.decode())) for g in got]
    assert [g.method for g in got] == [method] * len(want)
    assert sorted(f["level"] for f in fields) == want
    for f in fields:
        assert f["id"] == mid and f["connector"] == "infobip"
        if f["level"] == "1":
            assert set(f) == {"id", "message_status", "level", "connector"} and f["message_status"] == "ESME_ROK"
        else:
            assert f["message_status"] == "DELIVRD" and f["dlvrd"] == "001" and f["sub"] == "001"
            assert f["text"] == "Hello delivery repor" and f["err"] == "000"
            assert re.fullmatch(r"\d{10}", f["donedate"]) and f["id_smsc"]


def test_dlr_get_to_a_url_with_its_own_query(make_bridge, receiver):
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        bridge = make_bridge(upstream_url=fast.url)
        mid = _mid(bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "q",
                                               "dlr-url": receiver.url("/dlr.php") + "?ref=a%26b",
                                               "dlr-level": "2", "dlr-method": "get"}))
        wait_for(lambda: receiver.count() >= 1, what="the DLR")
    got = dict(parse_qsl(receiver.snapshot()[0].query))
    assert got["ref"] == "a&b" and got["id"] == mid and got["level"] == "2"


def test_dlr_retried_until_2xx(make_bridge, receiver):
    receiver.fail_first = 2
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        bridge = make_bridge(upstream_url=fast.url)
        _mid(bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "retry me",
                                         "dlr-url": receiver.url("/dlr"), "dlr-level": "2"}))
        wait_for(lambda: receiver.count() >= 3, what="two failures then a delivery")
    assert {r.body for r in receiver.snapshot()} and len({r.body for r in receiver.snapshot()}) == 1


def test_inbound_forward_in_jasmins_connector_shape(make_bridge, receiver):
    rules = [{"name": "mo", "caller": "demo", "match": {"keyword": "ALARM"},
              "forward": {"url": receiver.url("/mo"), "method": "POST", "body": "jasmin"}}]
    bridge = make_bridge(with_inbound(rules))
    assert push(bridge, mo("ALARM pump ✓")).status_code == 200
    wait_for(lambda: receiver.count() >= 1, what="the MO forward")
    got = receiver.snapshot()[0]
    fields = dict(parse_qsl(got.body.decode()))
    assert set(fields) == {"id", "from", "to", "origin-connector", "priority", "coding", "content", "binary"}
    assert (fields["from"], fields["to"], fields["content"]) == ("41793026727", "41793026834", "ALARM pump ✓")
    assert bytes.fromhex(fields["binary"]).decode() == "ALARM pump ✓" and fields["coding"] == "8"


def test_url_builder_knows_jasmin_and_parses_its_url():
    from gateway import urlbuilder as ub
    url = "http://127.0.0.1:1401/send?username=foo&password=bar&to=%SMSNUMBER&content=%SMSTEXT&dlr-level=2"
    parsed = ub.parse(url, bridge_base="http://bridge:8080")
    spec = parsed.spec
    assert (spec.base, spec.target, spec.username) == ("http://bridge:8080", "jasmin", "foo")
    assert any("Jasmin" in n for n in parsed.notes) and any("password was removed" in n for n in parsed.notes)
    assert ub.build(spec) == ("http://bridge:8080/send?username=foo&password=YOUR_PASSWORD&to=%SMSNUMBER"
                              "&content=%SMSTEXT&dlr-level=2")
    assert ub.parse(ub.build(spec)).spec == spec  # the round trip
    built = ub.build(ub.default_spec("http://bridge:8080", "jasmin", {}, ub.STYLES["brace"], "demo",
                                     preset="zabbix"))
    assert built == ("http://bridge:8080/send?username=demo&password=YOUR_PASSWORD&to={ALERT.SENDTO}"
                     "&content={ALERT.MESSAGE}")


def test_url_command_for_jasmin(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "url", "jasmin", "--preset", "prtg", "--username",
                          "demo", "--base", "http://bridge:8080"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("http://bridge:8080/send?username=demo&password=YOUR_PASSWORD&to=%SMSNUMBER"
                                  "&content=%SMSTEXT")


HOSTILE = [
    b"/send?username=demo&password=demo&to=41793026727&content=%FF%FE",
    b"/send?username=demo&password=demo&to=41793026727&content=x&sdt=991399999999999R",
    b"/send?username=demo&password=demo&to=41793026727&content=x&sdt=261399120000000%2B",
    b"/send?username=demo&password=demo&to=41793026727&content=x&validity-period=99999999999999999999999",
    b"/send?username=demo&password=demo&to=41793026727&content=x&coding=8",
    b"/send?username=demo&password=demo&to=41793026727&content=%D8%00&coding=8",
    b"/send?username=demo&password=demo&username=x&to=41793026727&content=x",
    b"/send?username=%FF&password=demo&to=41793026727&content=x",
    b"/rate?username=demo&password=demo&to=1&content=%FF",
    b"/balance?username=demo",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_input_is_refused_in_jasmins_words(bridge, sandbox, target):
    r = requests.get(bridge.url + target.decode("latin-1"), timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.text.startswith('Error "') or r.text.startswith('"'), r.text
    assert sandbox.messages() == []


def test_hostile_json_bodies(bridge, sandbox):
    for body in (b"[1,2]", b"{", b'{"username": "demo", "password": "demo", "to": {"a": 1}, "content": "x"}',
                 b'{"username": "demo", "password": "demo", "to": "1", "content": "\\ud800"}'):
        r = bridge.post("/send", data=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500 and r.text.startswith('Error "'), (body, r.status_code, r.text)
    assert sandbox.messages() == []


def test_queued_caller_gets_success_at_once_and_its_dlr(make_bridge, receiver):
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(mode="queued"), upstream_url=fast.url)
        mid = _mid(bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "queued one",
                                               "dlr-url": receiver.url("/dlr"), "dlr-level": "3",
                                               "dlr-method": "POST"}))
        wait_for(lambda: receiver.count() >= 2, what="level 1 and level 2 DLRs")
        sent = fast.messages()
    assert [m["messageId"] for m in sent] == [mid]  # forwarded with the id the application was given
    levels = sorted(dict(parse_qsl(r.body.decode()))["level"] for r in receiver.snapshot())
    assert levels == ["1", "2"]


def test_metrics_count_the_entrances(bridge, sandbox):
    assert bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "m"}).ok
    assert bridge.get("/send", params={**CREDS, "to": "41793026727"}).status_code == 400
    assert bridge.get("/http_api/send_sms", params={"access_token": "demo-key", "to": "41793026727",
                                                    "message": "m"}).ok
    text = bridge.get("/metrics").text
    assert re.search(r'smsbridge_requests_total\{entrance="jasmin",outcome="[^"]*"\} 1\.0', text), text[:2000]
    assert 'entrance="smseagle"' in text


def test_curl_post_as_jasmins_users_write_it(make_bridge, receiver):
    """The curl line Jasmin users share: a raw form body with an unencoded space, dlr=yes, dlr-level=3."""
    import shutil
    import subprocess
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as fast:
        bridge = make_bridge(upstream_url=fast.url)
        body = (f"username=demo&password=demo&dlr=yes&dlr-level=3&to=41793026727&from=InfoMessage"
                f"&dlr-url={receiver.url('/dlr.php')}&content=hello !")
        out = subprocess.run([curl, "-sS", "-d", body, bridge.url + "/send"], capture_output=True, text=True,
                             timeout=30)
        mid = re.fullmatch(r'Success "([^"]+)"', out.stdout)
        assert mid, (out.stdout, out.stderr)
        wait_for(lambda: receiver.count() >= 2, what="level 1 and 2")
        assert [(m["from"], m["text"]) for m in fast.messages()] == [("InfoMessage", "hello !")]
    assert {dict(parse_qsl(r.body.decode()))["id"] for r in receiver.snapshot()} == {mid.group(1)}


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_level_1_is_the_upstreams_acceptance_even_without_any_report(make_bridge, receiver, mode):
    """Jasmin's level 1 is the SMSC's submit_sm_resp: here the upstream's acceptance of the send, whether or not
    Infobip ever sends an intermediate report (this sandbox sends no report at all within the test)."""
    with running_sandbox(dlr_delay=3600) as quiet:
        bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(mode=mode), upstream_url=quiet.url)
        mid = _mid(bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "acked",
                                               "dlr-url": receiver.url("/dlr"), "dlr-level": "3"}))
        wait_for(lambda: receiver.count() >= 1, what="the level-1 receipt")
        first = receiver.snapshot()[0]
        got = dict(parse_qsl(first.query if first.method == "GET" else first.body.decode()))
    assert got == {"id": mid, "message_status": "ESME_ROK", "level": "1", "connector": "infobip"}
    assert receiver.count() == 1  # once, and no level 2 before the handset's report


def _locks_at_once(raw):
    raw["auth"] = {"free_failures": 0, "first_delay": 60, "max_delay": 60}


def test_a_locked_out_login_is_refused_in_jasmins_words_with_retry_after(make_bridge, sandbox):
    bridge = make_bridge(_locks_at_once)
    wrong = {"username": "demo", "password": "nope", "to": "41793026727", "content": "x"}
    assert bridge.get("/send", params=wrong).status_code == 403  # the first failure locks the name
    r = bridge.get("/send", params={**CREDS, "to": "41793026727", "content": "x"})
    assert r.status_code == 403 and r.text.startswith('Error "Authentication failure for username:demo (')
    assert int(r.headers["Retry-After"]) >= 59
    r = bridge.get("/balance", params=CREDS)  # a JSON answer, the same refusal
    assert r.status_code == 403 and r.json().startswith("Authentication failure for username:demo (")
    assert int(r.headers["Retry-After"]) >= 59
    assert sandbox.messages() == []
