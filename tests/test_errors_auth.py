"""Auth, error envelopes in both formats, and upstream failures mapped to statuses a caller can act on."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET

from gateway.config import SandboxSettings
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests.conftest import DEMO
from tests.helpers import free_port, wait_for

OK = {"to": "41793026727", "text": "hello"}


def _exc(r):
    return r.json()["requestError"]["serviceException"]


def test_wrong_password_401_json_and_xml(bridge, sandbox):
    r = bridge.get("/sms/1/text/query", params={"username": "demo", "password": "nope", **OK})
    assert r.status_code == 401 and _exc(r)["messageId"] == "UNAUTHORIZED"
    x = bridge.get("/sms/1/text/query.xml", params={"username": "demo", "password": "nope", **OK})
    assert x.status_code == 401 and ET.fromstring(x.content).findtext("serviceException/messageId") == "UNAUTHORIZED"
    assert sandbox.sends() == []


def test_unknown_user_and_missing_credentials(bridge):
    assert bridge.get("/sms/1/text/query", params={"username": "eve", "password": "demo", **OK}).status_code == 401
    r = bridge.get("/sms/1/text/query", params=OK)
    assert r.status_code == 401 and "Missing credentials" in _exc(r)["text"]


def test_basic_header_auth(bridge, sandbox):
    token = base64.b64encode(b"demo:demo").decode()
    r = bridge.get("/sms/1/text/query", params=OK, headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 200
    bad = bridge.get("/sms/1/text/query", params=OK, headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401


def test_scope_missing_is_403(make_bridge, sandbox):
    def no_query(raw):
        raw["callers"]["demo"]["scopes"] = ["advanced"]

    r = make_bridge(no_query).get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 403 and _exc(r)["messageId"] == "FORBIDDEN"


def test_404_and_405_in_envelope(bridge):
    r = bridge.get("/sms/9/nothing")
    assert r.status_code == 404 and _exc(r)["messageId"] == "NOT_FOUND"
    x = bridge.get("/sms/9/nothing.xml")
    assert x.status_code == 404 and ET.fromstring(x.content).tag == "requestError"
    m = bridge.post("/sms/1/text/query", params={**DEMO, **OK})
    assert m.status_code == 405 and _exc(m)["messageId"] == "METHOD_NOT_ALLOWED" and "GET" in m.headers["Allow"]


def test_upstream_down_gives_503_quickly(make_bridge):
    own = ServerThread(create_sandbox_app(SandboxSettings()), "127.0.0.1", 0).start()
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"), upstream_url=own.url)  # the fail policy (default: queue, issue 13 item 4)
    assert bridge.get("/sms/1/text/query", params={**DEMO, **OK}).status_code == 200
    own.stop()  # the sandbox goes away
    started = time.monotonic()
    # another text: the same GET again within idempotency.dedupe_window would be answered as a duplicate
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK, "text": "second alarm"})
    elapsed = time.monotonic() - started
    assert r.status_code == 503 and _exc(r)["messageId"] == "SERVICE_UNAVAILABLE"
    assert "nothing was sent" in _exc(r)["text"]
    assert elapsed < 3  # refused at once: no wait for the connect timeout (3 s in config.yaml)
    assert "Traceback" not in r.text


def test_upstream_never_listening_503(make_bridge):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"), upstream_url=f"http://127.0.0.1:{free_port()}")  # the fail policy (default: queue, issue 13 item 4)
    r = bridge.get("/sms/1/text/query.xml", params={**DEMO, **OK})
    assert r.status_code == 503 and ET.fromstring(r.content).findtext("serviceException/messageId") == "SERVICE_UNAVAILABLE"


def test_upstream_timeout_504(make_bridge, sandbox):
    def short(raw):
        raw["upstream"]["read_timeout"] = 0.3
        raw["callers"]["demo"]["on_upstream_failure"] = "fail"  # default (queue): recorded unknown, 200 PENDING

    bridge = make_bridge(short)
    sandbox.faults(delay_ms=1500, count=0)
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 504 and "check the logs before sending again" in _exc(r)["text"]
    # The slow upstream did accept it in the end, which is why the 504 text warns against a blind resend.
    wait_for(lambda: len(sandbox.messages()) == 1, what="the slow upstream to finish")


def test_upstream_5xx_is_502(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"))  # the fail policy (default: queue, issue 13 item 4)
    sandbox.faults(status=500, count=1)
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 502 and _exc(r)["messageId"] == "BAD_GATEWAY"


def test_bridge_upstream_key_wrong_is_502_naming_config(make_bridge, sandbox):
    def wrong_key(raw):
        raw["upstream"]["api_key"] = "not-the-key"

    r = make_bridge(wrong_key).get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 502 and "upstream.api_key" in _exc(r)["text"]
    assert "not-the-key" not in r.text
