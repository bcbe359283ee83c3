"""Nothing secret or personal in a log line: a session like a user's (query, template, JSON, inbound,
percent-encoded parameter names, Authorization headers) leaves no secret and no unmasked text in the
bridge's whole output, and duplicate credentials are refused."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit

import requests
import yaml

from gateway.redact import Masking, mask, redact
from tests.conftest import default_raw_config
from tests.helpers import raw_get, wait_for
from tests.test_secrets_cli import _start

PASSWORD = "pw-Quokka-7781"
TEXTS = ["Boiler pressure critical Zyxwhall", "Ihr Kennwort Quaxelbert", "inbound Mumblefrost Trepidax"]
CODE = "918273"
TOKEN = "inbound-token-q9w8e7"


def test_a_session_leaves_no_secret_and_no_unmasked_text_in_the_log(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    raw["callers"]["demo"]["password"] = PASSWORD
    raw["inbound"] = {"token": TOKEN, "rules": []}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    host, port = urlsplit(url).hostname, urlsplit(url).port
    try:
        with requests.Session() as s:
            target = (f"/sms/1/text/query?username=demo&pass%77ord={PASSWORD}&to=41793026727&text="
                      + TEXTS[0].replace(" ", "+")).encode()
            status, _ = raw_get(host, port, target)  # raw: requests would normalise %77 to w
            assert status == 200  # the encoded name authenticates: its value is a password
            r = s.get(url + "/t/otp", params={"username": "demo", "password": PASSWORD, "to": "41793026727",
                                              "code": CODE}, timeout=10)
            assert r.status_code == 200, r.text
            basic = base64.b64encode(f"demo:{PASSWORD}".encode()).decode()
            r = s.post(url + "/sms/2/text/advanced", headers={"Authorization": f"Basic {basic}"}, timeout=10,
                       json={"messages": [{"destinations": [{"to": "41793026727"}], "text": TEXTS[1]}]})
            assert r.status_code == 200, r.text
            r = s.get(url + "/sms/1/text/query", params={"username": "demo", "password": PASSWORD + "x",
                                                         "to": "41793026727", "text": TEXTS[0]}, timeout=10)
            assert r.status_code == 401
            r = s.post(f"{url}/hooks/inbound/{TOKEN}", timeout=10, json={"results": [
                {"messageId": "mo-1", "from": "41793026727", "to": "447491163443", "text": TEXTS[2]}]})
            assert r.status_code == 200, r.text
            wait_for(lambda: s.get(url + "/sms/1/logs", params={"username": "demo", "password": PASSWORD},
                                   timeout=10).json()["results"], what="the sends on record")
    finally:
        proc.terminate()
    out = output.text(timeout=20)
    assert "smsbridge.access" in out  # the access log did run
    for secret in (PASSWORD, TOKEN, basic):
        assert secret not in out, f"{secret!r} leaked into the log"
    for text in TEXTS:
        for word in text.split()[1:]:  # the first characters may show, the rest must not
            assert word not in out, f"{word!r} of a message text is in the log"
    assert CODE not in out, "the one-time code is in the log"
    assert "pass%77ord=***" in out
    assert f"text=Boi…({len(TEXTS[0])})" in out  # texts stay recognisable by their start and length


def test_duplicate_credentials_are_refused(bridge, sandbox):
    r = bridge.get("/sms/1/text/query?username=nobody&username=demo&password=demo&to=41793026727&text=x")
    assert r.status_code == 400
    assert "username" in r.json()["requestError"]["serviceException"]["validationErrors"]
    r = bridge.get("/sms/1/text/query?username=demo&password=bad&password=demo&to=41793026727&text=x")
    assert r.status_code == 400
    assert not sandbox.sends()


def test_redact_masks_texts_and_encoded_secret_names():
    m = Masking()
    line = "GET /sms/1/text/query?username=demo&pa%73s=hunter2&text=Hello+world+again&to=41 200"
    out = redact(line, m)
    assert "hunter2" not in out and "pa%73s=***" in out
    assert "world" not in out and "text=Hel…(17)" in out
    assert "to=41" in out and "username=demo" in out
    assert redact("/t/alarm?phone=41793026727&msg=fire&site=HQ", m, mask_all=True).count("…(") == 3
    assert redact(line, Masking(enabled=False)).count("Hello+world+again") == 1
    assert mask("Pumpkin pie!!", True, 3) == "Pum… (13 chars)"
