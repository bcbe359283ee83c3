"""The admin UI's message log over HTTP: login, filters, paging, masking, live JSON, secrets, re-drive."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from gateway.config import ConfigError, build_config
from gateway.store.logview import mask
from tests.conftest import DEMO, Sandbox, default_raw_config, running_sandbox
from tests.helpers import wait_for
from tests.receiver import Receiver
from tests.storehelp import db_value
from tests.test_ui import login


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    """A sandbox that reports DELIVERED after 50 ms (reports relayed on a fast retry scale)."""
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as sandbox:
        yield sandbox


def send(bridge, to: str, text: str = "Pump 3 failed on site", **extra) -> str:
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": to, "text": text, **extra})
    assert r.status_code == 200, r.text
    return r.json()["messages"][0]["messageId"]


def rows(s: requests.Session, url: str, **params) -> dict:
    r = s.get(url + "/ui/api/log", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_log_needs_login(bridge):
    page = bridge.get("/ui/log?view=dead", allow_redirects=False)
    assert page.status_code == 302 and "/ui/login?next=/ui/log" in page.headers["Location"]
    api = bridge.get("/ui/api/log")
    assert api.status_code == 401  # the polling script gets an error, not a login page
    assert api.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"
    s, token = login(bridge.url)
    redrive = s.post(bridge.url + "/ui/log/redrive/1", data={}, allow_redirects=False, timeout=10)
    assert redrive.status_code == 400 and "CSRF" in redrive.text
    out = requests.post(bridge.url + "/ui/log/redrive/1", data={"csrf_token": token}, allow_redirects=False,
                        timeout=10)
    assert out.status_code == 302 and "/ui/login" in out.headers["Location"]  # another client: not logged in


def test_filters_by_number_bulk_message_id_and_status(bridge):
    a = send(bridge, "41793026727")
    b = send(bridge, "41793026728", bulkId="night-run")
    c = send(bridge, "+41 79 302 6729")
    s, _ = login(bridge.url)
    every = rows(s, bridge.url)
    assert [r["cells"]["messageId"] for r in every["rows"]] == [c, b, a]  # newest first
    assert every["columns"][0] == {"name": "created", "label": "Submitted"} and every["hasNext"] is False
    by_number = rows(s, bridge.url, number="+41 79 302 6729")["rows"]
    assert [r["cells"]["messageId"] for r in by_number] == [c]
    assert [r["cells"]["messageId"] for r in rows(s, bridge.url, bulkId="night-run")["rows"]] == [b]
    assert [r["cells"]["to"] for r in rows(s, bridge.url, messageId=a)["rows"]] == ["41793026727"]
    assert len(rows(s, bridge.url, status="pending")["rows"]) == 3
    assert rows(s, bridge.url, status="DELIVERED")["rows"] == []
    first = every["rows"][-1]["cells"]
    assert first["status"] == "PENDING (PENDING_ACCEPTED)" and "PENDING_ACCEPTED [answer]" in first["history"]
    page = s.get(bridge.url + "/ui/log", params={"number": "41793026728"}, timeout=10)
    assert page.status_code == 200 and b in page.text and a not in page.text and c not in page.text
    assert 'value="41793026728"' in page.text and "/ui/static/log.js" in page.text
    attempts = rows(s, bridge.url, view="attempts", bulkId="night-run")["rows"]
    assert len(attempts) == 1 and attempts[0]["cells"]["http"] == "200" and attempts[0]["cells"]["api"] == "advanced"
    assert len(rows(s, bridge.url, view="attempts", status="200")["rows"]) == 3
    bad = s.get(bridge.url + "/ui/api/log", params={"view": "nope"}, timeout=10)
    assert bad.status_code == 400 and "view" in bad.json()["requestError"]["serviceException"]["validationErrors"]
    assert s.get(bridge.url + "/ui/log", params={"page": "0"}, timeout=10).status_code == 400


def test_paging(make_bridge):
    b = make_bridge(lambda raw: raw["ui"].update(log_page_size=2))
    ids = [send(b, f"4179302670{i}") for i in range(5)]
    s, _ = login(b.url)
    p1, p3 = rows(s, b.url), rows(s, b.url, page=3)
    assert [r["cells"]["messageId"] for r in p1["rows"]] == [ids[4], ids[3]] and p1["hasNext"]
    assert [r["cells"]["messageId"] for r in p3["rows"]] == [ids[0]] and not p3["hasNext"]
    html = s.get(b.url + "/ui/log", params={"page": 2, "status": "PENDING"}, timeout=10).text
    assert ids[2] in html and ids[1] in html and ids[4] not in html
    assert re.search(r'id="page-next"', html) and "page=3" in html and "status=PENDING" in html
    assert re.search(r'href="[^"]*page=1[^"]*" id="page-prev"', html)


def test_texts_are_masked_by_default_and_shown_when_configured(make_bridge):
    masked = make_bridge()
    send(masked, "41793026727", "Your code is 482913, valid 5 min")
    s, _ = login(masked.url)
    cell = rows(s, masked.url)["rows"][0]["cells"]["text"]
    assert cell == "You… (32 chars)" == mask("Your code is 482913, valid 5 min", True)
    page = s.get(masked.url + "/ui/log", timeout=10).text
    assert "482913" not in page and "You… (32 chars)" in page and "ui.mask_text" in page
    assert mask("short", True) == "… (5 chars)"  # too short to show a prefix safely
    plain = make_bridge(lambda raw: raw["ui"].update(mask_text=False))
    send(plain, "41793026727", "Your code is 482913, valid 5 min")
    s2, _ = login(plain.url)
    assert rows(s2, plain.url)["rows"][0]["cells"]["text"] == "Your code is 482913, valid 5 min"


def test_status_reaches_delivered_and_nothing_secret_is_shown(make_bridge, dlr_sandbox):
    dlr_sandbox.reset()
    receiver = Receiver().start()
    try:
        b = make_bridge(upstream_url=dlr_sandbox.url)
        mid = send(b, "41793026727", notifyUrl=receiver.url("/dlr?token=hook-secret-1"))
        s, _ = login(b.url)
        done = wait_for(lambda: [r for r in rows(s, b.url, status="DELIVERED")["rows"]], what="DELIVERED in the log")
        cells = done[0]["cells"]
        assert cells["messageId"] == mid and cells["status"] == "DELIVERED (DELIVERED_TO_HANDSET)"
        assert "PENDING_ACCEPTED [answer]" in cells["history"] and "DELIVERED_TO_HANDSET [report]" in cells["history"]
        assert cells["done"]
        wait_for(lambda: receiver.count() == 1, what="the relayed report")
        jobs = wait_for(lambda: [r for r in rows(s, b.url, view="outbox", messageId=mid)["rows"]
                                 if r["cells"]["state"] == "done"], what="the done outbox job")
        assert "token=***" in jobs[0]["cells"]["target"] and jobs[0]["cells"]["ref"] == mid
        texts = [s.get(b.url + "/ui/log", params={"view": v}, timeout=10).text
                 for v in ("messages", "attempts", "outbox", "dead", "inbound")]
        texts.append(s.get(b.url + "/ui/api/log", params={"view": "outbox"}, timeout=10).text)
        token = db_value(b.app.extensions["smsbridge"].db, "submissions", "dlr_token")
        for t in texts:
            assert "hook-secret-1" not in t and token not in t and "demo:demo" not in t
    finally:
        receiver.close()


def test_redrive_a_real_dead_letter(make_bridge, dlr_sandbox):
    dlr_sandbox.reset()
    receiver = Receiver(fail_first=1, fail_status=404).start()  # refused once: dead at once (no 4xx retry)
    try:
        b = make_bridge(lambda raw: raw["outbox"].update(retry_on_4xx=False), upstream_url=dlr_sandbox.url)
        mid = send(b, "41793026727", notifyUrl=receiver.url("/dlr"))
        s, token = login(b.url)
        dead = wait_for(lambda: rows(s, b.url, view="dead")["rows"], what="a dead letter")
        job = dead[0]["redrive"]
        assert dead[0]["cells"]["ref"] == mid and "HTTP 404" in dead[0]["cells"]["last"]
        page = s.get(b.url + "/ui/log", params={"view": "dead"}, timeout=10).text
        assert f'action="/ui/log/redrive/{job}"' in page and 'name="csrf_token"' in page
        assert s.post(b.url + f"/ui/log/redrive/{job}", data={}, timeout=10).status_code == 400  # no CSRF
        assert b.app.extensions["smsbridge"].outbox.job(job).state == "dead"
        ok = s.post(b.url + f"/ui/log/redrive/{job}", data={"csrf_token": token}, allow_redirects=False,
                    timeout=10)
        assert ok.status_code == 302 and ok.headers["Location"].endswith(f"/ui/log?view=dead&redriven={job}")
        wait_for(lambda: receiver.count() == 2, what="the re-driven report")
        wait_for(lambda: rows(s, b.url, view="outbox", status="done")["rows"], what="the job done")
        assert rows(s, b.url, view="dead")["rows"] == []
        again = s.post(b.url + f"/ui/log/redrive/{job}", data={"csrf_token": token}, timeout=10)
        assert again.status_code == 400 and "not a dead letter" in again.text
        missing = s.post(b.url + "/ui/log/redrive/99999", data={"csrf_token": token}, timeout=10)
        assert missing.status_code == 404
    finally:
        receiver.close()


def test_inbound_messages_in_the_log(make_bridge):
    b = make_bridge()
    push = {"results": [{"messageId": "in-1", "from": "41793026727", "to": "447860099299", "text": "STOP all alarms",
                         "cleanText": "all alarms", "keyword": "STOP", "receivedAt": "2024-05-01T10:00:00.000+0000",
                         "smsCount": 1}], "messageCount": 1, "pendingMessageCount": 0}
    token = b.app.extensions["smsbridge"].config.inbound.token
    assert b.post(f"/hooks/inbound/{token}", json=push).status_code == 200
    s, _ = login(b.url)
    got = rows(s, b.url, view="inbound", number="+41793026727")["rows"]
    assert len(got) == 1 and got[0]["cells"]["messageId"] == "in-1" and got[0]["cells"]["keyword"] == "STOP"
    assert got[0]["cells"]["text"] == "STO… (15 chars)"
    assert rows(s, b.url, view="inbound", number="41700000000")["rows"] == []
    assert rows(s, b.url, view="inbound", bulkId="x")["rows"] == []


def test_log_settings_are_checked():
    raw = default_raw_config()
    raw["ui"].update(mask_keep=-1, log_page_size=0)
    with pytest.raises(ConfigError) as exc:
        build_config(raw, env={})
    assert {"ui.mask_keep", "ui.log_page_size"} <= {path for path, _ in exc.value.problems}
    assert build_config(default_raw_config(), env={}).ui.mask_text is True  # masked unless switched off
