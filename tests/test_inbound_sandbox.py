"""The sandbox's inbound side over real HTTP: injection (endpoint and CLI), push with Infobip's retry
cycle, its own inbox pull, the conversion end tag; and the whole chain sandbox -> bridge -> legacy app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import unquote_to_bytes

import requests
import yaml

from gateway.delivery.outbox import RETRY_DELAYS
from tests.conftest import PUSH_SCALE, ROOT, default_raw_config
from tests.helpers import wait_for
from tests.test_inbound import HOOK, NASTY, with_inbound
from tests.test_secrets_cli import _start

SANDBOX_AUTH = {"Authorization": "App sandbox-key"}


def test_sandbox_push_follows_infobip_retry_cycle(pushing_sandbox, receiver):
    receiver.fail_first = 2
    url = pushing_sandbox(receiver.url("/mo-push"))
    injected = requests.post(url + "/sandbox/inbound", json={"from": "+385916242493", "to": "385921004026",
                                                             "text": "QUIZ Paris", "keyword": "quiz"}, timeout=5)
    assert injected.status_code == 200 and injected.json()["delivery"] == "pending"
    wait_for(lambda: receiver.count() >= 3, what="two failures and a delivery")
    at = [r.at for r in receiver.snapshot()]
    assert at[1] - at[0] >= RETRY_DELAYS[0] * PUSH_SCALE and at[2] - at[1] >= RETRY_DELAYS[1] * PUSH_SCALE  # 1 min, 2 min
    body = receiver.snapshot()[-1]
    pushed = json.loads(body.body)
    assert pushed["messageCount"] == 1 and pushed["pendingMessageCount"] == 0
    msg = pushed["results"][0]
    assert (msg["from"], msg["to"], msg["keyword"], msg["cleanText"]) == ("385916242493", "385921004026", "QUIZ",
                                                                          "Paris")
    state = wait_for(lambda: [e for e in requests.get(url + "/sandbox/inbound", timeout=5).json()
                              if e["state"] == "delivered"])
    assert state[0]["attempts"] == 3


def test_end_to_end_cli_injection_sandbox_push_bridge_legacy(make_bridge, pushing_sandbox, receiver):
    rules = [{"name": "alarm", "caller": "demo", "match": {"keyword": "ALARM"},
              "forward": receiver.url("/legacy") + "?from=%p&to=%P&text=%b"}]
    bridge = make_bridge(with_inbound(rules))
    url = pushing_sandbox(bridge.url + HOOK)
    out = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "inject-inbound", "--sandbox-url", url, "--from", "41793026727",
         "--to", "41793026834", "--text", NASTY], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: receiver.count() >= 1, what="the legacy app to get the message")
    got = receiver.snapshot()[0]
    values = {k: unquote_to_bytes(v) for k, v in (p.split("=", 1) for p in got.query.split("&"))}
    assert values == {"from": b"41793026727", "to": b"41793026834", "text": NASTY.encode("utf-8")}


def test_sandbox_inbox_pull_returns_each_once(sandbox):
    def inject(text: str) -> str:
        r = requests.post(sandbox.url + "/sandbox/inbound", json={"from": "41793026727", "to": "41793026834",
                                                                  "text": text}, timeout=5)
        assert r.json()["delivery"] == "pull"  # no push URL configured
        return r.json()["messageId"]

    ids = [inject("one"), inject("two 😀")]
    assert requests.get(sandbox.url + "/sms/1/inbox/reports", timeout=5).status_code == 401
    first = requests.get(sandbox.url + "/sms/1/inbox/reports?limit=1", headers=SANDBOX_AUTH, timeout=5).json()
    assert [r["messageId"] for r in first["results"]] == ids[:1] and first["pendingMessageCount"] == 1
    xml = requests.get(sandbox.url + "/sms/1/inbox/reports.xml", headers=SANDBOX_AUTH, timeout=5)
    root = ET.fromstring(xml.content)
    assert root.tag == "MOReportResponse" and root.find("results/results/text").text == "two 😀"
    again = requests.get(sandbox.url + "/sms/1/inbox/reports", headers=SANDBOX_AUTH, timeout=5).json()
    assert again == {"results": [], "messageCount": 0, "pendingMessageCount": 0}


def test_sandbox_accepts_conversion_end_tag(sandbox):
    sent = requests.get(sandbox.url + "/sms/1/text/query", params={"to": "41793026727", "text": "Your PIN 1234"},
                        headers=SANDBOX_AUTH, timeout=5).json()
    mid = sent["messages"][0]["messageId"]
    r = requests.post(f"{sandbox.url}/ct/1/log/end/{mid}", headers=SANDBOX_AUTH, timeout=5)
    assert r.status_code == 200 and r.json()["processKey"]
    assert [m for m in sandbox.messages() if m["messageId"] == mid][0]["conversions"]
    unknown = requests.post(f"{sandbox.url}/ct/1/log/end/nope", headers=SANDBOX_AUTH, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["requestError"]["serviceException"]["messageId"] == "NOT_FOUND"
    assert requests.post(f"{sandbox.url}/ct/1/log/end/{mid}", timeout=5).status_code == 401


def test_serve_wires_the_embedded_sandbox_to_the_inbound_webhook(tmp_path):
    """`python app.py` on the default config: an injected "INFO ..." is pushed by the embedded sandbox to
    the bridge, auto-replied (a send the sandbox records) and kept for the demo caller's pull; the
    token from the environment never reaches the log."""
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    token = "serve-secret-inbound-token-31337"
    proc, url, output = _start(tmp_path / "config.yaml", {**os.environ, "SMSBRIDGE_INBOUND_TOKEN": token})
    try:
        sandbox_url = output.search(r"sandbox on (http://\S+)").group(1)
        r = requests.post(sandbox_url + "/sandbox/inbound", timeout=5,
                          json={"from": "41793026727", "to": "41793026834", "text": "info opening  hours?"})
        assert r.json()["delivery"] == "pending"
        pulled = wait_for(lambda: requests.get(url + "/sms/1/inbox/reports", timeout=5, params={
            "username": "demo", "password": "demo"}).json()["results"], what="the pushed message in the inbox")
        assert pulled[0]["messageId"] == r.json()["messageId"] and pulled[0]["text"] == "info opening  hours?"
        def replies() -> list[dict]:  # the auto-reply is sent after the webhook has answered
            return [m for m in requests.get(sandbox_url + "/sandbox/messages", timeout=5).json()
                    if m["to"] == "41793026727"]

        wait_for(replies, what="the auto-reply at the sandbox")
        assert [m["text"] for m in replies()] == ["Thanks, we got your message: opening hours?"]
    finally:
        proc.terminate()
    assert token not in output.text(timeout=10)
