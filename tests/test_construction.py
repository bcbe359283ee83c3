"""Construction without surprises (issue 12, item 6): the bridge's services complete from the start, the
sandbox's push URL given explicitly, one scheduler for the sandbox's pushes, one Authorization parser."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from gateway.auth import MALFORMED, UNSUPPORTED, AuthorizationError, parse_authorization
from gateway.config import SandboxSettings
from gateway.inbound.routing import Router
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests.conftest import DEMO
from tests.helpers import wait_for
from tests.receiver import Receiver

OK = {"to": "41793026727", "text": "hi"}
SANDBOX_KEY = {"Authorization": "App sandbox-key"}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# ---- the bridge's services ------------------------------------------------------------------------

def test_bridge_services_are_complete_after_construction(bridge, sandbox):
    ctx = bridge.app.extensions["smsbridge"]
    missing = [f.name for f in dataclasses.fields(ctx) if getattr(ctx, f.name) is None]
    assert missing == []
    assert not [f.name for f in dataclasses.fields(ctx) if "None" in str(f.type)]  # nothing Optional to fill later
    assert isinstance(ctx.router, Router)
    assert "smsbridge.inbound" not in bridge.app.extensions  # the router lives in the services, nowhere else
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 200
    sent = sandbox.messages()[-1]
    assert sent["notifyUrl"].startswith(bridge.url + "/hooks/dlr/")  # bind() gave the ephemeral port


def test_configured_public_url_wins_over_bind(make_bridge, sandbox):
    def public(raw: dict[str, Any]) -> None:
        raw.setdefault("server", {})["public_url"] = "https://bridge.example.net/base"

    b = make_bridge(public)  # make_bridge binds the server's real address: the configured one stays
    assert b.get("/sms/1/text/query", params={**DEMO, **OK}).status_code == 200
    assert sandbox.messages()[-1]["notifyUrl"].startswith("https://bridge.example.net/base/hooks/dlr/")


# ---- the sandbox: explicit push URL, one scheduler ---------------------------------------------------

@contextmanager
def own_sandbox(settings: SandboxSettings, inbound_url: str | None = None) -> Iterator[tuple[str, Any]]:
    app = create_sandbox_app(settings, inbound_url=inbound_url)
    server = ServerThread(app, "127.0.0.1", 0, threads=4).start()
    try:
        yield server.url, app.extensions["sandbox"]
    finally:
        server.stop()
        app.extensions["sandbox"].stop()


def _inject(url: str) -> dict[str, Any]:
    r = requests.post(url + "/sandbox/inbound", json={"from": "41793026727", "to": "41793026834", "text": "hello"},
                      timeout=5)
    assert r.status_code == 200
    return r.json()


def test_report_and_inbound_pushes_share_one_scheduler_with_the_retry_cycle(receiver):
    mo = Receiver(fail_first=1).start()  # inbound pushes: the first fails, the retry is delivered
    receiver.fail_first = 1  # reports: likewise
    settings = SandboxSettings(dlr_delay=0.02, time_scale=0.001, push_time_scale=0.001)
    try:
        with own_sandbox(settings, inbound_url=mo.url("/mo")) as (url, services):
            body = {"messages": [{"destinations": [{"to": "41793026727"}], "text": "hi",
                                  "notifyUrl": receiver.url("/dlr"), "notifyContentType": "application/json"}]}
            sent = requests.post(url + "/sms/2/text/advanced", json=body, headers=SANDBOX_KEY, timeout=5)
            assert sent.status_code == 200
            mid = sent.json()["messages"][0]["messageId"]
            assert _inject(url)["delivery"] == "pending"
            wait_for(lambda: receiver.count() >= 2 and mo.count() >= 2, what="both pushes, each after a retry")
            report = json.loads(receiver.snapshot()[-1].body)["results"][0]
            assert report["messageId"] == mid and report["status"]["groupName"] == "DELIVERED"
            assert json.loads(mo.snapshot()[-1].body)["results"][0]["text"] == "hello"
            ran = requests.get(url + "/sandbox/scheduler", timeout=5).json()["ran"]
            assert ran["report.status"] >= 1 and ran["report.push"] >= 1 and ran["inbound.push"] >= 2
            pushers = [t for t in threading.enumerate() if t.name in ("sandbox-dlr", "sandbox-inbound-pusher")]
            assert pushers == [] and services.scheduler._thread.is_alive()  # one thread: the scheduler's
            state = wait_for(lambda: [e for e in requests.get(url + "/sandbox/inbound", timeout=5).json()
                                      if e["state"] == "delivered"])
            assert state[0]["attempts"] == 2
    finally:
        mo.close()


def test_reset_drops_every_planned_push(receiver):
    settings = SandboxSettings(dlr_delay=3600, push_time_scale=1000)  # nothing comes due within the test
    mo = Receiver(status=500).start()  # the inbound push fails: its retry is planned far ahead
    try:
        with own_sandbox(settings, inbound_url=mo.url("/mo")) as (url, _):
            body = {"messages": [{"destinations": [{"to": "41793026727"}], "text": "hi",
                                  "notifyUrl": receiver.url("/dlr")}]}
            assert requests.post(url + "/sms/2/text/advanced", json=body, headers=SANDBOX_KEY, timeout=5).ok
            _inject(url)
            wait_for(lambda: mo.count() >= 1, what="the first inbound attempt")
            wait_for(lambda: requests.get(url + "/sandbox/scheduler", timeout=5).json()["pending"] == 2,
                     what="a report and an inbound retry planned")
            assert requests.post(url + "/sandbox/reset", timeout=5).ok
            assert requests.get(url + "/sandbox/scheduler", timeout=5).json()["pending"] == 0
            assert requests.get(url + "/sandbox/inbound", timeout=5).json() == []
    finally:
        mo.close()


def test_sandbox_push_url_is_an_explicit_argument(receiver):
    settings = SandboxSettings(inbound_url="http://127.0.0.1:9/never", push_time_scale=0.001)
    with own_sandbox(settings, inbound_url=receiver.url("/explicit")) as (url, _):
        assert _inject(url)["delivery"] == "pending"
        wait_for(lambda: receiver.count() >= 1, what="the push to the explicit URL")
        assert receiver.snapshot()[0].path == "/explicit"
    assert settings.inbound_url == "http://127.0.0.1:9/never"  # the settings object is left as given
    with own_sandbox(SandboxSettings(inbound_url=receiver.url("/x")), inbound_url="") as (url, _):
        assert _inject(url)["delivery"] == "pull"  # "" given explicitly: pull only


# ---- one Authorization parser ---------------------------------------------------------------------

def test_parse_authorization_cases():
    assert parse_authorization("App  demo-key ") == parse_authorization("app demo-key")
    assert parse_authorization("App demo-key").key == "demo-key"
    basic = parse_authorization("Basic " + _b64(b"demo:pa:ss"))
    assert (basic.scheme, basic.username, basic.password) == ("basic", "demo", "pa:ss")
    no_colon = parse_authorization("basic " + _b64(b"demo"))
    assert (no_colon.username, no_colon.password) == ("demo", "")
    for header, reason in [("Basic !!!", MALFORMED), ("Basic " + _b64(b"\xff\xfe:x"), MALFORMED),
                           ("Bearer x", UNSUPPORTED), ("Basic", UNSUPPORTED), ("App ", UNSUPPORTED),
                           ("   ", UNSUPPORTED)]:
        with pytest.raises(AuthorizationError) as err:
            parse_authorization(header)
        assert str(err.value) == reason, header


CASES = [  # header for the bridge (caller demo), header for the sandbox, the bridge's 401 text (None: 200)
    ("Basic " + _b64(b"demo:demo"), "Basic " + _b64(b"sandbox:sandbox"), None),
    ("App demo-key", "App sandbox-key", None),
    ("Basic !!!not-base64", "Basic !!!not-base64", "Malformed Basic credentials"),
    ("Basic " + _b64(b"demo"), "Basic " + _b64(b"sandbox"), "Invalid login details"),  # missing colon
    ("Bearer x", "Bearer x", "Unsupported Authorization scheme: use Basic or App"),
]


@pytest.mark.parametrize(("bridge_header", "sandbox_header", "refusal"), CASES)
def test_authorization_headers_over_http(bridge, sandbox, bridge_header, sandbox_header, refusal):
    r = bridge.get("/sms/1/text/query", params=OK, headers={"Authorization": bridge_header})
    s = requests.get(sandbox.url + "/sms/1/text/query", params=OK, headers={"Authorization": sandbox_header},
                     timeout=5)
    if refusal is None:
        assert (r.status_code, s.status_code) == (200, 200)
        return
    assert r.status_code == 401 and r.json()["requestError"]["serviceException"]["text"] == refusal
    assert s.status_code == 401 and s.json()["requestError"]["serviceException"]["text"] == "Invalid login details"


def test_a_header_wins_over_query_credentials(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    s = requests.get(sandbox.url + "/sms/1/text/query", headers={"Authorization": "Bearer x"},
                     params={"username": "sandbox", "password": "sandbox", **OK}, timeout=5)
    assert s.status_code == 401
    ok = requests.get(sandbox.url + "/sms/1/text/query", params={"username": "sandbox", "password": "sandbox", **OK},
                      timeout=5)
    assert ok.status_code == 200
