"""Kannel's dialect over real HTTP (issue 17): ``/cgi-bin/sendsms`` answered as smsbox answers, ``dlr-url``
called with Kannel's escapes for the events ``dlr-mask`` asks for, and inbound rules speaking ``sms-service``.

URLs and answers are those of Kannel's user guide and ``gw/smsbox.c`` (legacy-gateways.md §1.2-1.6)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, quote

import pytest
import requests

from tests.conftest import Sandbox, running_sandbox
from tests.helpers import free_port, raw_get, wait_for
from tests.storehelp import db_rows

SCALE = 0.001
AUTH = "username=demo&password=demo"


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    """Reports after 50 ms: DELIVERED; 4179000… undeliverable, 4179001… rejected."""
    with running_sandbox(dlr_delay=0.05, time_scale=SCALE, dlr_rules=[
            "4179000 UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER", "4179001 REJECTED_DESTINATION"]) as sandbox:
        yield sandbox


def _get(bridge, query: str, **kw) -> requests.Response:
    return requests.get(f"{bridge.url}/cgi-bin/sendsms?{query}", timeout=10, **kw)


def _ids(r: requests.Response) -> list[str]:
    """The messageIds of ``X-Smsbridge-Messages`` (``<to>=<id>:<STATUS>, …``)."""
    return [part.split("=", 1)[1].split(":", 1)[0] for part in r.headers["X-Smsbridge-Messages"].split(", ")]


def _db(bridge):
    return bridge.app.extensions["smsbridge"].db


def _last(sandbox: Sandbox, n: int = 1) -> list[dict]:
    return sandbox.messages()[-n:]


# -- send ------------------------------------------------------------------------------------------------------
def test_user_guide_example_is_accepted_byte_for_byte(bridge, sandbox):
    r = _get(bridge, "username=demo&password=demo&to=41793026727&text=Hello+world&from=InfoSMS")
    assert (r.status_code, r.content) == (202, b"0: Accepted for delivery")
    assert r.headers["Content-Type"] == "text/html" and r.headers["Pragma"] == "no-cache"
    [m] = _last(sandbox)
    assert (m["to"], m["from"], m["text"]) == ("41793026727", "InfoSMS", "Hello world")
    assert _ids(r) == [m["messageId"]]
    rows = db_rows(_db(bridge), "messages", "entrance", "caller", "state")
    assert [(x.entrance, x.caller, x.state) for x in rows] == [("kannel", "demo", "sent")]  # the UI log's entrance


def test_receivers_split_on_spaces_and_plus_and_aliases_user_pass(bridge, sandbox):
    r = _get(bridge, "user=demo&pass=demo&to=41793026727+41793026728%2041793026729&text=Hi")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert sorted(m["to"] for m in _last(sandbox, 3)) == ["41793026727", "41793026728", "41793026729"]
    r = _get(bridge, f"{AUTH}&to=%2B41793026730&text=Hi")  # "%2B" keeps the "+"
    assert r.status_code == 202 and _last(sandbox)[0]["to"] == "41793026730"


@pytest.mark.parametrize("query", [
    "username=demo&password=wrong&to=41793026727&text=Hi",
    "to=41793026727&text=Hi",
    "username=nobody&password=demo&to=41793026727&text=Hi",
])
def test_bad_credentials_are_kannels_403(bridge, sandbox, query):
    r = _get(bridge, query)
    assert (r.status_code, r.text) == (403, "Authorization failed for sendsms")
    assert sandbox.messages() == []


def test_failed_logins_are_throttled_in_kannels_words(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw.setdefault("auth", {}).update(free_failures=1, first_delay=60))
    for wrong in ("x", "y"):  # the free failure, then the one that locks
        assert _get(bridge, f"username=demo&password={wrong}&to=41793026727&text=Hi").status_code == 403
    r = _get(bridge, "username=demo&password=demo&to=41793026727&text=Hi")
    assert r.status_code == 429 and r.text.startswith("Temporal failure, try again later.") and r.headers["Retry-After"]
    assert "\n" not in r.text and sandbox.messages() == []


def test_requests_are_counted_by_entrance(bridge, sandbox):
    _get(bridge, f"{AUTH}&to=41793026727&text=Hi")
    _get(bridge, f"{AUTH}&text=Hi")
    metrics = bridge.get("/metrics").text
    assert 'smsbridge_requests_total{entrance="kannel",outcome="ok"} 1.0' in metrics
    assert 'smsbridge_requests_total{entrance="kannel",outcome="rejected"} 1.0' in metrics


def test_a_caller_needs_the_kannel_scope(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"]["scopes"].remove("kannel"))
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi")
    assert (r.status_code, r.text) == (403, "Authorization failed for sendsms")
    assert bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026727",
                                                   "text": "Hi"}).status_code == 200


@pytest.mark.parametrize(("query", "status", "text"), [
    (f"{AUTH}&text=Hi", 400, "Missing receiver number, rejected"),
    (f"{AUTH}&to=&text=Hi", 400, "Empty receiver number not allowed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&priority=9", 400, "Priority field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&dlr-mask=abc", 400, "DLR-Mask field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&dlr-mask=1&dlr-url=ftp://x", 400, "DLR-URL field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&mclass=4", 400, "MClass field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&coding=3", 400, "Coding field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&validity=-5", 400, "Validity field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&deferred=x", 400, "Deferred field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&pid=256", 400, "PID field misformed, rejected"),
    (f"{AUTH}&to=41793026727&text=Hi&account=" + "a" * 65, 400, "Account field misformed or too long, rejected"),
])
def test_kannels_own_refusals_byte_for_byte(bridge, sandbox, query, status, text):
    r = _get(bridge, query)
    assert (r.status_code, r.text) == (status, text)
    assert sandbox.messages() == []


@pytest.mark.parametrize(("query", "starts"), [
    (f"{AUTH}&to=41793026727&text=Hi&coding=1", "Coding field misformed, rejected: coding=1 (8-bit binary"),
    (f"{AUTH}&to=41793026727&text=Hi&udh=%06%05%04%0B%84%23%F0", "UDH field misformed, rejected: a user data header"),
    (f"{AUTH}&to=41793026727&text=Hi&mwi=1", "MWI field misformed, rejected: message waiting"),
    (f"{AUTH}&to=41793026727&text=Hi&mclass=2", "MClass field misformed, rejected: message class 2"),
    (f"{AUTH}&to=41793026727&text=Hi&notifyUrl=x", "notifyUrl field misformed, rejected: is not a parameter of"),
    (f"{AUTH}&to=41793026727&text=", "Text field misformed, rejected: must not be empty"),
    (f"{AUTH}&to=41793026727&text=%25message%25", "Text field misformed, rejected: "),
    (f"{AUTH}&to=%25phoneNumber%25&text=Hi", "To field misformed, rejected: "),
    (f"{AUTH}&to=41793026727&text=Hi&validity=999999", "Validity field misformed, rejected: must be between 1"),
    (f"{AUTH}&to=41793026727&text=Gr%FC%DFe", "Charset or body misformed, rejected: text byte 0xFC at position 2"),
    (f"{AUTH}&to=41793026727&text=%E2%82%AC10&coding=2", "Charset or body misformed, rejected: with coding=2"),
    (f"{AUTH}&to=41793026727&text=Hi&charset=klingon", "Charset or body misformed, rejected: unknown charset"),
    (f"{AUTH}&to=41793026727&text=Hi&dlr-mask=31", "DLR-URL field misformed, rejected: dlr-mask=31 asks"),
])
def test_bridge_refusals_name_the_parameter_in_kannels_form(bridge, sandbox, query, starts):
    r = _get(bridge, query)
    assert r.status_code == 400 and r.text.startswith(starts), r.text
    assert "\n" not in r.text and r.headers["Content-Type"] == "text/html"
    assert sandbox.messages() == []


@pytest.mark.parametrize(("query", "text"), [
    ("text=Gr%FC%DFe&charset=ISO-8859-1", "Grüße"),
    ("text=%8010&charset=windows-1252", "€10"),
    ("text=%E2%82%AC10&coding=2&charset=UTF-8", "€10"),
    ("text=%00G%00r%00%FC%00%DF%00e&coding=2", "Grüße"),  # coding=2 without charset: UTF-16BE (Kannel's default)
    ("text=%20%AC%00%31%00%30&coding=2&charset=UCS-2", "€10"),
    ("text=1+2%2B3", "1 2+3"),
])
def test_text_is_decoded_with_its_charset(bridge, sandbox, query, text):
    r = _get(bridge, f"{AUTH}&to=41793026727&{query}")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert _last(sandbox)[0]["text"] == text


def test_a_refused_receiver_in_any_script_never_breaks_the_answer(bridge, sandbox):
    r = _get(bridge, f"{AUTH}&to=41793026727+%D9%A4%D9%A1%E2%9C%93&text=Hi")  # Arabic-Indic digits and a check
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert r.headers["X-Smsbridge-Messages"].endswith("=:REJECTED_INVALID_DESTINATION")


def test_a_parameter_given_twice_is_refused(bridge, sandbox):
    r = _get(bridge, f"{AUTH}&to=41793026727&to=41793026728&text=Hi")
    assert r.status_code == 400 and r.text.startswith("To field misformed, rejected: is given more than once")
    r = _get(bridge, f"{AUTH}&password=other&to=41793026727&text=Hi")
    assert (r.status_code, r.text) == (403, "Authorization failed for sendsms")
    assert sandbox.messages() == []


def test_many_receivers_are_listed_up_to_a_hundred(bridge, sandbox):
    to = "+".join(f"4179302{i:04d}" for i in range(150))
    r = _get(bridge, f"{AUTH}&to={to}&text=Hi")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert r.headers["X-Smsbridge-Messages"].count(":PENDING_ACCEPTED") == 100
    assert r.headers["X-Smsbridge-Messages"].endswith(", ...50 more") and r.headers["X-Smsbridge-Bulk-Id"]
    assert len(sandbox.messages()) == 150


def test_options_map_to_the_upstream_and_the_rest_are_ignored(bridge, sandbox):
    q = (f"{AUTH}&to=41793026727&text=Hi&mclass=0&validity=60&deferred=30&smsc=link1&account=acct&binfo=b"
         "&priority=1&meta-data=%3Fsmpp%3Fk%3Dv&alt-dcs=0&rpi=0&compress=0&pid=0&coding=0")
    r = _get(bridge, q)
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    [m] = _last(sandbox)
    assert m["flash"] is True and m["validityPeriod"] == 60 and m["sendAt"]


def test_post_form_and_post_text_plain_with_x_kannel_headers(bridge, sandbox):
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data={"username": "demo", "password": "demo",
                                                              "to": "41793026727", "text": "Form ✓"}, timeout=10)
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data="Plain body ✓".encode(), timeout=10, headers={
        "Content-Type": "text/plain", "X-Kannel-Username": "demo", "X-Kannel-Password": "demo",
        "X-Kannel-To": "41793026728", "X-Kannel-From": "InfoSMS"})
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert [(m["to"], m["text"]) for m in _last(sandbox, 2)] == [("41793026727", "Form ✓"),
                                                                 ("41793026728", "Plain body ✓")]
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data="Grüße".encode("iso-8859-1"), timeout=10, headers={
        "Content-Type": "text/plain; charset=ISO-8859-1", "X-Kannel-Username": "demo", "X-Kannel-Password": "demo",
        "X-Kannel-To": "41793026729"})
    assert (r.status_code, _last(sandbox)[0]["text"]) == (202, "Grüße")
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms?{AUTH}&to=41793026727", json={"text": "x"}, timeout=10)
    assert r.status_code == 400 and r.text.startswith("Invalid content-type")


def test_queued_caller_is_answered_queued_for_later_delivery(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(mode="queued"))
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Queued")
    assert (r.status_code, r.text) == (202, "3: Queued for later delivery")
    wait_for(lambda: any(m["text"] == "Queued" for m in sandbox.messages()), what="the queued message sent")


def test_upstream_down_hands_over_as_queued_or_is_a_temporal_failure(make_bridge):
    down = f"http://127.0.0.1:{free_port()}"
    bridge = make_bridge(upstream_url=down)
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi")
    assert (r.status_code, r.text) == (202, "3: Queued for later delivery")
    failing = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"), upstream_url=down)
    r = _get(failing, f"{AUTH}&to=41793026727&text=Hi")
    assert (r.status_code, r.text) == (503, "Temporal failure, try again later.")


def test_one_bad_receiver_never_cancels_the_rest_and_all_bad_is_refused(bridge, sandbox):
    r = _get(bridge, f"{AUTH}&to=41793026727+12&text=Hi")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert [m["to"] for m in sandbox.messages()] == ["41793026727"]
    assert "12=:REJECTED_INVALID_DESTINATION" in r.headers["X-Smsbridge-Messages"]
    r = _get(bridge, f"{AUTH}&to=12&text=Hi")
    assert r.status_code == 400 and r.text.startswith("To field misformed, rejected: ")


def test_all_receivers_refused_by_the_upstream_is_not_routable(make_bridge):
    # an upstream stricter than the bridge (at most 10 digits): it refuses the number in its answer
    from gateway.config import SandboxSettings
    from gateway.sandbox.app import create_sandbox_app
    from gateway.servers import ServerThread
    from gateway.validate import Limits

    app = create_sandbox_app(SandboxSettings(dlr_delay=3600), Limits(destination_max_digits=10))
    server = ServerThread(app, "127.0.0.1", 0, threads=4).start()
    try:
        bridge = make_bridge(upstream_url=server.url)
        r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi")
        assert (r.status_code, r.text) == (403, "Not routable. Do not try again.")
        assert r.headers["X-Smsbridge-Messages"].endswith(":REJECTED_INVALID_DESTINATION")
    finally:
        server.stop()
        app.extensions["sandbox"].stop()


def test_a_retry_with_an_idempotency_key_is_replayed_not_resent(bridge, sandbox):
    q = f"{AUTH}&to=41793026727&text=Once"
    first = _get(bridge, q, headers={"Idempotency-Key": "k-1"})
    again = _get(bridge, q, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.content) == (first.status_code, first.content) == (202, b"0: Accepted for delivery")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [m["text"] for m in sandbox.messages()] == ["Once"]


def test_head_sends_nothing(bridge, sandbox):
    r = requests.head(f"{bridge.url}/cgi-bin/sendsms?{AUTH}&to=41793026727&text=Hi", timeout=10)
    assert r.status_code == 405 and sandbox.messages() == []


def test_raw_bytes_in_the_request_line_never_make_a_500(bridge, sandbox):
    status, body = raw_get("127.0.0.1", bridge.server.port, b"/cgi-bin/sendsms?" + AUTH.encode()
                           + b"&to=41793026727&text=\xff\xfe&charset=\xff")
    assert status == 400 and body.startswith(b"Charset or body misformed, rejected: is not valid UTF-8")


# -- DLR -------------------------------------------------------------------------------------------------------
RAPIDSMS_DLR = ("message_id=17&status=%d&status_text=%A&smsc=%i&sms_id=%I&date_sent=%t&identity=%p&from=%P"
                "&q=%q&ts=%T&fid=%F&user=%n&acct=%o&coding=%c&charset=%C&lit=100%%25&meta=%#smpp#k#")


def _dlr_query(receiver, path: str = "/dlr", template: str = RAPIDSMS_DLR) -> str:
    return "dlr-url=" + quote(receiver.url(path) + "?" + template, safe="")


def test_dlr_mask_31_fires_accepted_then_delivered_with_kannels_escapes(make_bridge, dlr_sandbox, receiver):
    dlr_sandbox.reset()
    bridge = make_bridge(upstream_url=dlr_sandbox.url)
    r = _get(bridge, f"{AUTH}&from=InfoSMS&to=41793026727&text=Hi&dlr-mask=31&account=acc+1"
                     f"&meta-data=%3Fsmpp%3Fk%3Dv%26x%3Dy&{_dlr_query(receiver)}")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    [mid] = _ids(r)
    wait_for(lambda: receiver.count() == 3, what="the three DLRs (8 accepted, 4 enroute, 1 delivered)")
    got = {parse_qs(x.query)["status"][0]: x for x in receiver.snapshot()}
    assert set(got) == {"8", "4", "1"}, [x.query for x in receiver.snapshot()]
    ack, done = parse_qs(got["8"].query), parse_qs(got["1"].query)
    assert got["8"].method == "GET" and got["8"].path == "/dlr"
    assert ack["status_text"] == ["ACK/"] and ack["sms_id"] == [mid] and ack["identity"] == ["41793026727"]
    assert ack["from"] == ["InfoSMS"] and ack["q"] == ["+41793026727"] and ack["smsc"] == ["infobip"]
    assert ack["user"] == ["demo"] and ack["acct"] == ["acc 1"] and ack["coding"] == ["0"] and ack["charset"] == ["UTF-8"]
    assert ack["lit"] == ["100%"] and ack["meta"] == ["v"]
    assert done["status_text"][0].startswith("id:") and "stat:DELIVRD err:000" in done["status_text"][0]
    assert done["fid"] == [mid] and done["ts"][0].isdigit()
    raw_t = got["1"].query.split("date_sent=")[1].split("&")[0]  # %t is written raw: YYYY-MM-DD+HH:MM:SS
    assert len(raw_t) == 19 and raw_t[10] == "+"


def test_user_guide_dlr_url_correlates_with_the_applications_own_id(make_bridge, dlr_sandbox, receiver):
    # Kannel's user guide, "SMS Delivery Reports": your own key in the dlr-url, the type from %d
    dlr_sandbox.reset()
    bridge = make_bridge(upstream_url=dlr_sandbox.url)
    url = quote(receiver.url("/dlr.php") + "?myId=123456&type=%d", safe="")
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hello+world&dlr-mask=1&dlr-url={url}")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    wait_for(lambda: receiver.count() == 1, what="the DLR")
    got = receiver.snapshot()[0]
    assert (got.method, got.path, got.query) == ("GET", "/dlr.php", "myId=123456&type=1")


def test_dlr_mask_picks_the_events(make_bridge, dlr_sandbox, receiver):
    dlr_sandbox.reset()
    bridge = make_bridge(upstream_url=dlr_sandbox.url)
    for to, mask in (("41793026727", 1), ("41790000001", 2), ("41790011111", 16), ("41793026728", 4)):
        r = _get(bridge, f"{AUTH}&to={to}&text=Hi&dlr-mask={mask}&"
                         + _dlr_query(receiver, f"/{mask}", "type=%d&to=%p&text=%A"))
        assert r.status_code == 202, r.text
    wait_for(lambda: receiver.count() >= 4, what="one DLR per message")
    got = sorted((x.path, parse_qs(x.query)["type"][0], parse_qs(x.query)["text"][0]) for x in receiver.snapshot())
    assert [(p, t) for p, t, _ in got] == [("/1", "1"), ("/16", "16"), ("/2", "2"), ("/4", "4")]
    texts = {p: t for p, _, t in got}
    assert "stat:UNDELIV" in texts["/2"] and "stat:ENROUTE" in texts["/4"] and texts["/16"].startswith("NACK/")
    # the final reports of the mask-4 message and the 8s fired nothing: one job per event asked for
    wait_for(lambda: len(db_rows(_db(bridge), "reports")) >= 5, what="every report stored")
    assert len(db_rows(_db(bridge), "outbox_jobs", kind="kannel-dlr")) == 4


def test_queued_send_fires_8_from_the_worker(make_bridge, dlr_sandbox, receiver):
    dlr_sandbox.reset()
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(mode="queued"), upstream_url=dlr_sandbox.url)
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi&dlr-mask=9&" + _dlr_query(receiver, "/q", "type=%d&id=%I"))
    assert (r.status_code, r.text) == (202, "3: Queued for later delivery")
    wait_for(lambda: receiver.count() == 2, what="8 then 1")
    assert sorted(parse_qs(x.query)["type"][0] for x in receiver.snapshot()) == ["1", "8"]
    assert {parse_qs(x.query)["id"][0] for x in receiver.snapshot()} == set(_ids(r))


def test_dlr_url_is_retried_on_the_outbox_cycle(make_bridge, dlr_sandbox):
    from tests.receiver import Receiver
    flaky = Receiver(fail_first=2).start()
    try:
        dlr_sandbox.reset()
        bridge = make_bridge(upstream_url=dlr_sandbox.url)
        r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi&dlr-mask=1&" + _dlr_query(flaky, "/r", "type=%d"))
        assert r.status_code == 202
        wait_for(lambda: flaky.count() == 3, what="two failures, then the DLR")
        assert [parse_qs(x.query)["type"] for x in flaky.snapshot()] == [["1"]] * 3
    finally:
        flaky.close()


def test_a_requests_dlr_url_replaces_the_callers_callback(make_bridge, dlr_sandbox, receiver):
    dlr_sandbox.reset()
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(callback={
        "url": receiver.url("/callback") + "?type=%d"}), upstream_url=dlr_sandbox.url)
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi&dlr-mask=1&" + _dlr_query(receiver, "/own", "type=%d"))
    assert r.status_code == 202
    r = _get(bridge, f"{AUTH}&to=41793026728&text=Hi&dlr-mask=1")  # no dlr-url: the caller's callback (its default)
    assert r.status_code == 202
    wait_for(lambda: receiver.count() == 2, what="one report each")
    wait_for(lambda: len(db_rows(_db(bridge), "reports")) == 2, what="both reports stored")
    assert len(db_rows(_db(bridge), "outbox_jobs")) == 2  # a report's jobs commit with it: no third one coming
    assert sorted(x.path for x in receiver.snapshot()) == ["/callback", "/own"]


def test_dlr_url_obeys_the_callers_allow_list(make_bridge, sandbox, receiver):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"]["allow"].update(loopback=False))
    r = _get(bridge, f"{AUTH}&to=41793026727&text=Hi&dlr-mask=1&" + _dlr_query(receiver))
    assert r.status_code == 400 and r.text.startswith("DLR-URL field misformed, rejected: is not allowed")
    assert sandbox.messages() == []


# -- the URL builder and the url command ---------------------------------------------------------------------------
KANNEL_APP_URL = ("http://kannel.example:13013/cgi-bin/sendsms?user=tester&pass=secret&from=12345&to=%PHONE%"
                  "&text=%MESSAGE%&dlr-mask=31&dlr-url=http%3A%2F%2Fapp.example%2Fdlr.php%3FmyId%3D123456%26type%3D%25d")


def test_url_builder_parses_a_kannel_sendsms_url_into_the_bridges():
    from gateway import urlbuilder as ub

    parsed = ub.parse(KANNEL_APP_URL, bridge_base="http://bridge:8080")
    spec = parsed.spec
    assert (spec.base, spec.target, spec.username) == ("http://bridge:8080", "kannel", "tester")
    fields = {f.param: (f.mode, f.value) for f in spec.fields}
    assert fields["to"] == ("placeholder", "PHONE") and fields["text"] == ("placeholder", "MESSAGE")
    assert fields["dlr-url"] == ("value", "http://app.example/dlr.php?myId=123456&type=%d")  # Kannel's escape kept
    assert any("migrating-from-kannel.md" in n for n in parsed.notes) and any("password was removed" in n for n in parsed.notes)
    url = ub.build(spec)
    assert url == ("http://bridge:8080/cgi-bin/sendsms?username=tester&password=YOUR_PASSWORD&from=12345"
                   "&to=%PHONE%&text=%MESSAGE%&dlr-mask=31"
                   "&dlr-url=http%3A%2F%2Fapp.example%2Fdlr.php%3FmyId%3D123456%26type%3D%25d")
    assert ub.parse(url).spec == spec  # and back


def test_a_built_kannel_url_works_once_the_app_fills_it_in(bridge, sandbox, receiver):
    from gateway import urlbuilder as ub

    spec = ub.default_spec(bridge.url, "kannel", {}, ub.STYLES["percent"], "demo")
    url = ub.substitute(ub.build(spec), {"to": "41793026727", "text": "Built ✓"}, ub.STYLES["percent"])
    r = requests.get(url.replace("YOUR_PASSWORD", "demo"), timeout=10)
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert _last(sandbox)[0]["text"] == "Built ✓"


def test_url_command_knows_kannel(tmp_path, capsys):
    import json

    from gateway.cli import cmd_url
    from tests.conftest import ROOT

    class Args:
        config, base, parse, style, prefix, suffix = str(ROOT / "config.yaml"), "http://bridge:8080", None, "percent", "", ""
        target, username, format, preset, name, value, omit, curl = "kannel", "demo", "", None, [], [], ["charset"], False

    assert cmd_url(Args()) == 0
    assert capsys.readouterr().out.strip() == ("http://bridge:8080/cgi-bin/sendsms?username=demo&password=YOUR_PASSWORD"
                                               "&to=%to%&text=%text%")
    Args.parse = KANNEL_APP_URL
    assert cmd_url(Args()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spec"]["target"] == "kannel" and out["spec"]["base"] == "http://bridge:8080"


# -- inbound: Kannel's sms-service (get-url escapes, and the answer as the reply) -------------------------------------
TOKEN = "kannel-inbound-token-42"


class App:
    """A Kannel sms-service application on loopback: records each GET, answers ``answers[path]`` (body, type,
    headers)."""

    def __init__(self) -> None:
        import waitress

        self.got: list[tuple[str, str]] = []
        self.answers: dict[str, tuple[bytes, str, list[tuple[str, str]]]] = {}
        self.server = waitress.create_server(self, host="127.0.0.1", port=0, threads=4)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"  # type: ignore[union-attr]
        import threading

        threading.Thread(target=self.server.run, daemon=True).start()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        self.got.append((path, environ.get("QUERY_STRING", "")))
        body, ctype, headers = self.answers.get(path, (b"", "text/plain", []))
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))), *headers])
        return [body]


@pytest.fixture
def app() -> Iterator[App]:
    a = App()
    yield a
    a.server.close()  # type: ignore[union-attr]


def _with_rules(rules: list[dict]):
    return lambda raw: raw.update(inbound={"token": TOKEN, "rules": rules})


def _mo(bridge, text: str, mid: str, frm: str = "41793026727", to: str = "41793026834") -> None:
    r = bridge.post(f"/hooks/inbound/{TOKEN}", json={"results": [{
        "messageId": mid, "from": frm, "to": to, "text": text, "cleanText": text, "keyword": text.split()[0].upper(),
        "receivedAt": "2026-11-30T06:00:00.000+0000", "smsCount": 1}], "messageCount": 1, "pendingMessageCount": 0})
    assert r.status_code == 200, r.text


def _replies(bridge, mid: str) -> list[dict]:
    from gateway.store import inbound

    stored = inbound.message(_db(bridge), mid)
    return stored.replies if stored else []


def test_sms_service_get_url_and_the_answer_is_the_reply(make_bridge, sandbox, app):
    # the user guide's sms-service: get-url with escapes; the answer's text/plain body is the reply SMS
    app.answers["/svc"] = ("Thanks for: ✓".encode(), "text/plain; charset=utf-8", [])
    bridge = make_bridge(_with_rules([{"name": "svc", "caller": "demo", "match": {"keyword": "INFO"}, "forward": {
        "url": app.url + "/svc?from=%p&to=%P&text=%a&kw=%k&arg=%s&rest=%r&ts=%T&coding=%c&charset=%C&svc=%n",
        "answer": {"max_messages": 1}}}]))
    _mo(bridge, "info  weather   Berlin today", "k-mo-1")
    wait_for(lambda: app.got, what="the application's GET")
    assert parse_qs(app.got[0][1]) == {
        "from": ["41793026727"], "to": ["41793026834"], "text": ["info weather Berlin today"], "kw": ["info"],
        "arg": ["weather"], "rest": ["Berlin today"], "ts": ["1796018400"], "coding": ["0"], "charset": ["UTF-8"],
        "svc": ["svc"]}
    reply = wait_for(lambda: [m for m in sandbox.messages() if m["text"] == "Thanks for: ✓"], what="the reply SMS")
    assert (reply[0]["to"], reply[0]["from"]) == ("41793026727", "41793026834")  # from the number it was sent to
    wait_for(lambda: _replies(bridge, "k-mo-1") and _replies(bridge, "k-mo-1")[0]["state"] == "sent", what="recorded")


class PostApp(App):
    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_X_KANNEL")}
        self.got.append((environ["REQUEST_METHOD"], environ.get("CONTENT_TYPE"), headers, body))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"Pong"]


def test_sms_service_post_url_sends_the_text_and_x_kannel_headers(make_bridge, sandbox):
    app = PostApp()
    try:
        bridge = make_bridge(_with_rules([{"name": "post", "caller": "demo", "match": {"keyword": "PING"},
                                           "forward": {"url": app.url + "/mo?kw=%k", "method": "POST",
                                                       "body": "kannel", "answer": True}}]))
        _mo(bridge, "ping ✓ 100%", "k-mo-post")
        wait_for(lambda: app.got, what="the application's POST")
        method, ctype, headers, body = app.got[0]
        assert (method, ctype, body) == ("POST", 'text/plain; charset="UTF-8"', "ping ✓ 100%".encode())
        assert headers == {"X-Kannel-From": "41793026727", "X-Kannel-To": "41793026834",
                           "X-Kannel-Time": "2026-11-30 06:00:00", "X-Kannel-Smsc": "infobip",
                           "X-Kannel-Coding": "0", "X-Kannel-Service": "post"}
        wait_for(lambda: [m for m in sandbox.messages() if m["text"] == "Pong"], what="the answer as the reply")
    finally:
        app.server.close()  # type: ignore[union-attr]


@pytest.mark.parametrize(("answer", "settings", "expected"), [
    ((b"<html><body><p>Hello &amp; welcome</p></body></html>", "text/html", []), {}, "Hello & welcome"),
    ((b"", "text/plain", []), {}, "<Empty reply from service provider>"),
    ((b"x" * 500, "text/plain", []), {"max_messages": 1}, "x" * 160),
    ((b"y" * 500, "text/plain", []), {"max_messages": 2}, "y" * 306),
    ((b"Gr\xfc\xdfe", "text/plain; charset=ISO-8859-1", []), {}, "Grüße"),
    ((b"From header", "text/plain", [("X-Kannel-From", "Helpdesk")]), {"accept_x_kannel_headers": True},
     "From header"),
])
def test_answer_shapes_the_reply_as_smsbox_does(make_bridge, sandbox, app, answer, settings, expected):
    app.answers["/a"] = answer
    bridge = make_bridge(_with_rules([{"name": "a", "caller": "demo", "match": {"keyword": "ASK"},
                                       "forward": {"url": app.url + "/a?t=%b", "answer": settings}}]))
    _mo(bridge, "ask something", "k-mo-shape")
    got = wait_for(lambda: [m for m in sandbox.messages() if m["to"] == "41793026727"], what="the reply SMS")
    assert got[0]["text"] == expected
    if settings.get("accept_x_kannel_headers"):
        assert got[0]["from"] == "Helpdesk"


def test_accepted_x_kannel_headers_redirect_the_reply_and_ask_for_its_dlr(make_bridge, dlr_sandbox, app, receiver):
    dlr_sandbox.reset()
    dlr = receiver.url("/reply-dlr") + "?type=%d&to=%p"
    app.answers["/x"] = (b"Flash reply", "text/plain", [("X-Kannel-To", "41793026999"), ("X-Kannel-MClass", "0"),
                                                        ("X-Kannel-DLR-Mask", "1"), ("X-Kannel-DLR-URL", dlr)])
    bridge = make_bridge(_with_rules([{"name": "x", "caller": "demo", "match": {"keyword": "ASK"}, "forward": {
        "url": app.url + "/x", "answer": {"accept_x_kannel_headers": True}}}]), upstream_url=dlr_sandbox.url)
    _mo(bridge, "ask here", "k-mo-x")
    got = wait_for(lambda: [m for m in dlr_sandbox.messages() if m["text"] == "Flash reply"], what="the reply")
    assert (got[0]["to"], got[0]["from"], got[0]["flash"]) == ("41793026999", "41793026834", True)
    wait_for(lambda: receiver.count() == 1, what="the reply's DLR")
    assert receiver.snapshot()[0].query == "type=1&to=41793026999"


@pytest.mark.parametrize(("answer", "settings", "error"), [
    ((b"", "text/plain", []), {"omit_empty": True}, None),
    ((b"anything", "text/plain", []), {"max_messages": 0}, None),
    ((b'{"reply": "x"}', "application/json", []), {}, "cannot be represented as an SMS message"),
    ((b"x", "text/plain", [("X-Kannel-Coding", "1")]), {"accept_x_kannel_headers": True}, "Coding field misformed"),
])
def test_no_reply_when_kannel_would_not_send_one(make_bridge, sandbox, app, answer, settings, error):
    app.answers["/n"] = answer
    bridge = make_bridge(_with_rules([{"name": "n", "caller": "demo", "match": {"keyword": "ASK"},
                                       "forward": {"url": app.url + "/n", "answer": settings}}]))
    _mo(bridge, "ask again", "k-mo-none")
    ctx = bridge.app.extensions["smsbridge"]
    wait_for(lambda: ctx.outbox.jobs("done", 10), what="the forward delivered")
    if error:
        wait_for(lambda: [r for r in _replies(bridge, "k-mo-none") if r["state"] == "failed"],
                 what="the reply's failure recorded")
        assert error in _replies(bridge, "k-mo-none")[0]["error"]
    else:
        assert _replies(bridge, "k-mo-none") == []
    assert sandbox.messages() == []


def test_a_rule_replies_one_way_only():
    from gateway.config import ConfigError, build_config
    from tests.conftest import default_raw_config

    raw = default_raw_config()
    raw["inbound"] = {"token": TOKEN, "rules": [{"name": "x", "caller": "demo", "match": {"keyword": "X"},
                                                "reply": "hi", "forward": {"url": "http://a/", "answer": True}}]}
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    assert "inbound.rules[0].reply" in str(exc.value)


def test_admin_ui_builder_parses_a_kannel_url(make_bridge):
    from tests.test_ui import login

    bridge = make_bridge()
    s, token = login(bridge.url)
    r = s.post(bridge.url + "/ui/api/parse", json={"url": KANNEL_APP_URL + "&smsc=link1"}, timeout=10,
               headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["spec"]["target"] == "kannel" and any("migrating-from-kannel.md" in n for n in body["notes"])
    assert not any("Not a parameter" in n for n in body["notes"])  # smsc is accepted (and ignored)


def test_send_command_speaks_kannel_through_a_running_bridge(bridge, sandbox, capsys):
    from app import main
    from tests.conftest import ROOT

    code = main(["--config", str(ROOT / "config.yaml"), "send", "kannel", "to=41793026727", "text=From the CLI",
                 "--url", bridge.url, "--username", "demo", "--password", "demo"])
    out, err = capsys.readouterr()
    assert (code, out.strip()) == (0, "0: Accepted for delivery") and "HTTP 202" in err
    assert _last(sandbox)[0]["text"] == "From the CLI"


def test_post_kannel_xml(bridge, sandbox):
    # the user guide's XML sendsms, <da> repeated for two receivers
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<message><submit>
  <da><number>41793026727</number></da><da><number>41793026728</number></da>
  <oa><number>InfoSMS</number></oa>
  <ud>Grüße via XML</ud>
  <dcs><mclass>0</mclass></dcs>
  <vp><delay>30</delay></vp>
  <from><username>demo</username><password>demo</password></from>
</submit></message>""".encode()
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data=xml, headers={"Content-Type": "text/xml"}, timeout=10)
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    got = sorted((m["to"], m["from"], m["text"], m["flash"], m["validityPeriod"]) for m in _last(sandbox, 2))
    assert got == [("41793026727", "InfoSMS", "Grüße via XML", True, 30), ("41793026728", "InfoSMS", "Grüße via XML",
                                                                           True, 30)]
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data=b"<message><oops/></message>",
                      headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code in (400, 403) and "\n" not in r.text
    r = requests.post(f"{bridge.url}/cgi-bin/sendsms", data=b"<!DOCTYPE x [<!ENTITY a 'b'>]><message/>",
                      headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code in (400, 403)


def test_the_callers_policy_holds_for_kannels_sendsms(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(senders=["InfoSMS"], destinations=["CH"]))
    r = _get(bridge, f"{AUTH}&from=Bank&to=41793026727&text=Hi")
    assert r.status_code == 403 and "sender 'Bank' is not among caller demo's senders" in r.text
    r = _get(bridge, f"{AUTH}&from=InfoSMS&to=4915112345678&text=Hi")
    assert r.status_code == 403
    assert [m for m in sandbox.messages() if m["text"] == "Hi"] == []  # nothing left the bridge


def test_an_answer_as_reply_keeps_to_the_reply_limit_and_the_callers_policy(make_bridge, sandbox, app):
    """The sms-service answer is an auto-reply like any other: the per-sender reply limit (no ping-pong with
    another automaton) and the rule's caller's destinations hold for it."""
    app.answers["/loop"] = (b"Got it", "text/plain", [])

    def mutate(raw):
        _with_rules([{"name": "loop", "caller": "demo", "match": {"keyword": "PING"},
                      "forward": {"url": app.url + "/loop", "answer": True}}])(raw)
        raw["inbound"]["reply_limit"] = {"count": 1, "window": 3600}
        raw["callers"]["demo"]["destinations"] = ["CH"]

    bridge = make_bridge(mutate)
    _mo(bridge, "ping one", "k-loop-1")
    wait_for(lambda: [m for m in sandbox.messages() if m["text"] == "Got it"], what="the first reply")
    _mo(bridge, "ping two", "k-loop-2")
    got = wait_for(lambda: [r for r in _replies(bridge, "k-loop-2") if r["state"] == "suppressed"],
                   what="the second reply held back")
    assert "reply limit reached" in got[0]["error"]
    _mo(bridge, "ping three", "k-loop-3", frm="4915112345678")  # a German number: outside demo's destinations
    failed = wait_for(lambda: [r for r in _replies(bridge, "k-loop-3") if r["state"] == "failed"],
                      what="the reply refused by the policy")
    assert "CH" in failed[0]["error"] or "destination" in failed[0]["error"]
    assert [m["text"] for m in sandbox.messages() if m["text"] == "Got it"] == ["Got it"]
    assert 'smsbridge_inbound_replies_suppressed_total{reason="limit"} 1.0' in bridge.get("/metrics").text
