"""The sandbox's fault injection over real HTTP: statuses (Retry-After on 429), drops before the request is
handled, before the answer and in the middle of it, per endpoint, by count or probability; unknown keys refused."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.helpers import free_port, wait_for

AUTH = {"Authorization": "App sandbox-key"}
BODY = {"messages": [{"destinations": [{"to": "41793026727"}], "text": "fault test"}]}


def _send(sandbox, **kw):
    return requests.post(sandbox.url + "/sms/2/text/advanced", json=BODY, headers=AUTH, timeout=5, **kw)


def _query(sandbox):
    return requests.get(sandbox.url + "/sms/1/text/query", params={"to": "41793026727", "text": "q"},
                        headers=AUTH, timeout=5)


def _set(sandbox, body):
    return requests.post(sandbox.url + "/sandbox/faults", json=body, timeout=5)


def test_unknown_or_bad_fault_keys_are_refused_naming_them(sandbox):
    r = _set(sandbox, {"stauts": 503, "count": 1})
    assert r.status_code == 400
    text = r.text
    assert "stauts" in text and "did you mean 'status'" in text
    r = _set(sandbox, {"drop": "sometimes"})
    assert r.status_code == 400 and "drop" in r.text and "middle" in r.text
    r = _set(sandbox, {"status": 503, "probability": 2})
    assert r.status_code == 400 and "probability" in r.text
    r = _set(sandbox, {"status": 503, "drop": "answer"})
    assert r.status_code == 400
    r = _set(sandbox, {"rules": [{"status": 500}, {"Count": 1}]})
    assert r.status_code == 400 and "rules[1].Count" in r.text
    assert _send(sandbox).status_code == 200  # nothing was installed by the refused bodies


def test_status_429_with_retry_after_by_count_and_per_endpoint(sandbox):
    assert _set(sandbox, {"status": 429, "count": 2, "retry_after": 7, "path": "/sms/2/text/advanced"}).ok
    assert _query(sandbox).status_code == 200  # another endpoint is untouched
    for _ in range(2):
        r = _send(sandbox)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert r.json()["requestError"]["serviceException"]["messageId"] == "TOO_MANY_REQUESTS"
    assert _send(sandbox).status_code == 200  # the count is spent
    assert _set(sandbox, {"status": 429}).ok
    r = _send(sandbox)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"  # 429 always says when to come back


def test_any_status_and_probability(sandbox):
    assert _set(sandbox, {"status": 502, "probability": 1}).ok
    assert [_send(sandbox).status_code for _ in range(3)] == [502, 502, 502]  # unlimited without a count
    assert _set(sandbox, {"status": 502, "probability": 0}).ok
    assert [_send(sandbox).status_code for _ in range(3)] == [200, 200, 200]
    assert _set(sandbox, {"rules": [{"status": 418, "count": 1, "path": "/sms/1/text/query"},
                                    {"status": 503, "count": 1}]}).ok
    assert _query(sandbox).status_code == 418
    assert _query(sandbox).status_code == 503
    assert _query(sandbox).status_code == 200
    assert requests.get(sandbox.url + "/sandbox/faults", timeout=5).json()["rules"][0]["count"] == 0


def test_drop_before_the_request_is_handled_accepts_nothing(sandbox):
    assert _set(sandbox, {"drop": "request", "count": 1}).ok
    with pytest.raises(requests.ConnectionError):
        _send(sandbox)
    assert sandbox.messages() == []
    assert _send(sandbox).status_code == 200 and len(sandbox.messages()) == 1


def test_drop_before_the_answer_after_accepting(sandbox):
    assert _set(sandbox, {"drop": "answer", "count": 1}).ok
    with pytest.raises(requests.ConnectionError):
        _send(sandbox)
    assert len(sandbox.messages()) == 1  # accepted, but the caller never heard it


def test_drop_in_the_middle_of_the_answer(sandbox):
    assert _set(sandbox, {"drop": "middle", "count": 1}).ok
    host, port = sandbox.url.split("//")[1].split(":")
    body = b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"mid"}]}'
    request = (b"POST /sms/2/text/advanced HTTP/1.1\r\nHost: x\r\nAuthorization: App sandbox-key\r\n"
               b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, got = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
    assert 0 < len(got) < length  # the connection closed with half the promised body
    assert len(sandbox.messages()) == 1


def test_delay_beyond_the_read_timeout(sandbox):
    assert _set(sandbox, {"delay_ms": 800, "count": 1}).ok
    with pytest.raises(requests.ReadTimeout):
        requests.post(sandbox.url + "/sms/2/text/advanced", json=BODY, headers=AUTH, timeout=(5, 0.2))
    assert _send(sandbox).status_code == 200  # the delay was for one request only


def test_refused_connections_come_from_a_closed_port(make_bridge):
    """The documented way to get refused connections: point the bridge at a port nothing listens on."""
    bridge = make_bridge(upstream_url=f"http://127.0.0.1:{free_port()}")
    r = bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo",
                                                 "to": "41793026727", "text": "x"})
    # Today's sync path answers 503 naming the refusal; with the queue hand-over (issue 13 item 4) it is a
    # PENDING acceptance instead: either way nothing reached an upstream and the cause is not hidden.
    assert r.status_code in (200, 503), r.text
    if r.status_code == 503:
        assert "connection refused" in r.text


def test_reset_clears_faults(sandbox):
    assert _set(sandbox, {"status": 500, "probability": 1}).ok
    sandbox.reset()
    assert _send(sandbox).status_code == 200


@pytest.mark.parametrize("drop", ["answer", "middle"])
def test_bridge_never_says_nothing_was_sent_when_the_answer_was_dropped(make_bridge, sandbox, drop):
    """The upstream accepted the message and the connection dropped before the whole answer came back: the
    outcome is unknown, never "unreachable; nothing was sent" (503). With ``on_upstream_failure: fail`` the
    caller hears 504 "may have been accepted"; by default the bridge keeps it (200 PENDING_ACCEPTED) and
    reconciles it with a resend under the same messageId: the handset gets it once."""
    fail = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"))
    assert _set(sandbox, {"drop": drop, "count": 1}).ok
    r = fail.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026727",
                                               "text": "x"})
    assert r.status_code == 504, r.text
    assert "may have been accepted" in r.json()["requestError"]["serviceException"]["text"]
    # (by text: a bridge of an earlier test may still be settling its own message into this shared sandbox)
    assert [m["to"] for m in sandbox.messages() if m["text"] == "x"] == ["41793026727"], sandbox.messages()
    default = make_bridge()
    assert _set(sandbox, {"drop": drop, "count": 1}).ok
    r = default.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026728",
                                                  "text": "y"})
    assert r.status_code == 200 and r.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED", r.text
    mid = r.json()["messages"][0]["messageId"]
    wait_for(lambda: default.get("/sms/1/logs", params={"username": "demo", "password": "demo",
                                                         "messageId": mid}).json()["results"],
             timeout=15, what="the unknown outcome reconciled")
    assert [m["messageId"] for m in sandbox.messages() if m["to"] == "41793026728"] == [mid]
