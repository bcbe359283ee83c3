"""Callers cannot reach inside (issue 14 item 6): the shipped allow-list, the process's own servers and
the address actually connected to (no DNS-rebinding window). Real servers on loopback, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from gateway.clock import ManualClock
from gateway.config import build_config
from gateway.delivery.guard import GuardedAdapter
from gateway.delivery.outbox import HttpDeliverer, Outbox
from gateway.delivery.urlpolicy import UrlNotAllowed, UrlPolicy
from gateway.services import url_policies
from gateway.store.engine import Database
from tests.conftest import default_raw_config


def _guarded() -> requests.Session:
    s = requests.Session()
    s.mount("http://", GuardedAdapter())
    return s


AUTH = {"Authorization": "App demo-key"}
ADVANCED = "/sms/2/text/advanced"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/dlr", "http://localhost/dlr", "http://[::1]/dlr", "http://10.0.0.5/dlr",
    "http://192.168.1.1/dlr", "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x",
])
def test_shipped_config_refuses_loopback_private_and_link_local(url):
    policy = url_policies(build_config(default_raw_config(), env={}))("demo")
    with pytest.raises(UrlNotAllowed):
        policy.check(url)


def _send(bridge, notify_url: str):
    msg = {"destinations": [{"to": "41793026727"}], "text": "hello", "notifyUrl": notify_url}
    return bridge.post(ADVANCED, json={"messages": [msg]}, headers=AUTH)


def test_notify_url_to_the_sandbox_control_endpoint_is_refused(bridge, sandbox):
    """The demo caller opts in to loopback in the tests, yet the sandbox's port stays out of reach."""
    assert _send(bridge, "http://127.0.0.1:9/dlr").status_code == 200  # loopback itself is allowed here
    before = len(sandbox.sends())
    r = _send(bridge, sandbox.url + "/sandbox/reset")
    assert r.status_code == 400, r.text
    errors = r.json()["requestError"]["serviceException"]["validationErrors"]
    assert "never reach" in errors["messages[0].notifyUrl"][0]
    assert len(sandbox.sends()) == before > 0  # not reset, and nothing more was sent


def test_notify_url_to_the_bridge_itself_is_refused(bridge):
    port = bridge.url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        r = _send(bridge, f"http://{host}:{port}/ops/ready")
        assert r.status_code == 400, (host, r.text)


def test_connected_address_is_checked_at_connect_time(receiver):
    """``localhost`` resolves to loopback on the connection itself: refused before a byte is sent."""
    http = HttpDeliverer(_guarded())
    with pytest.raises(UrlNotAllowed) as info:
        http.send("POST", f"http://localhost:{receiver.port}/dlr", body=b"x", policy=UrlPolicy(allow_public=True))
    assert "loopback" in info.value.reason
    assert receiver.count() == 0
    assert http.send("POST", f"http://localhost:{receiver.port}/dlr", body=b"x",
                     policy=UrlPolicy(allow_loopback=True)) == 200
    assert receiver.count() == 1


class Rebinding(UrlPolicy):
    """A name that answered a public address when checked, and loopback when connected to."""

    def check(self, url: str) -> None:
        return None


def test_outbox_refuses_a_rebound_name_on_the_connection(tmp_path: Path, receiver):
    db = Database(str(tmp_path / "b.db"))
    try:
        ob = Outbox(db, ManualClock(1_700_000_000.0), policy_for=lambda caller: Rebinding(allow_public=True))
        jid = ob.enqueue("dlr", f"http://localhost:{receiver.port}/dlr", body=b"{}", caller="demo")
        ob.run_due()
        job = ob.job(jid)
        assert job is not None and job.state == "dead", job
        assert "loopback" in (job.last_error or "")
        assert receiver.count() == 0
        ob.stop()
    finally:
        db.close()


def test_inside_ports_refused_even_when_listed(sandbox):
    port = sandbox.url.rsplit(":", 1)[1]
    policy = UrlPolicy(allow_hosts=["127.0.0.1", "localhost"], allow_loopback=True)
    with pytest.raises(UrlNotAllowed):
        policy.check(f"http://localhost:{port}/sandbox/reset")
    with pytest.raises(UrlNotAllowed):
        HttpDeliverer(_guarded()).send("POST", f"http://127.0.0.1:{port}/sandbox/reset", policy=policy)


def test_a_pooled_connection_is_checked_again_for_another_caller(receiver):
    """Caller A may call loopback and leaves a kept-alive connection; caller B may not reuse it."""
    http = HttpDeliverer(_guarded())
    url = f"http://localhost:{receiver.port}/dlr"
    assert http.send("POST", url, body=b"a", policy=UrlPolicy(allow_loopback=True)) == 200
    with pytest.raises(UrlNotAllowed):
        http.send("POST", url, body=b"b", policy=Rebinding(allow_public=True))
    assert [r.body for r in receiver.snapshot()] == [b"a"]
