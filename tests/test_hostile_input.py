"""Hostile JSON bodies over real HTTP: each is a 400 naming the field, in the caller's envelope, never a 500.

A corpus of what broke the bridge before (issue 14): nesting 100,000 deep, lone surrogates, NaN, bytes
that are not UTF-8; every case also checks that nothing reached the upstream.
"""

from __future__ import annotations

import pytest

from tests.test_inbound import TOKEN, with_inbound

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJ = b'{"messages":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
AUTH = {"Authorization": "App demo-key"}

ADVANCED = "/sms/2/text/advanced"
V3 = "/sms/3/messages"
PREVIEW = "/sms/1/preview"

CASES = [
    # (path, body, field named)
    (ADVANCED, DEEP, "body"),
    (ADVANCED, DEEP_OBJ, "body"),
    (V3, DEEP, "body"),
    (PREVIEW, DEEP, "body"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"hi","callbackData":"\\ud800"}]}',
     "messages[0].callbackData"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"a\\udfff b"}]}', "messages[0].text"),
    (V3, b'{"messages":[{"destinations":[{"to":"41793026727"}],"content":{"text":"\\uDBFF"},"sender":"x"}]}',
     "messages[0].content.text"),
    (PREVIEW, b'{"text":"\\ud83d"}', "text"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"hi","validityPeriod":NaN}]}', "body"),
    (ADVANCED, b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"caf\xe9"}]}', "body"),
    (ADVANCED, b"", "body"),
]


def _named(r, field: str) -> bool:
    body = r.json()
    if "violations" in body:  # v3 envelope
        return any(v["property"] == field for v in body["violations"])
    return field in body["requestError"]["serviceException"]["validationErrors"]


@pytest.mark.parametrize("path,body,field", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_hostile_json_is_a_400_naming_the_field(bridge, sandbox, path, body, field):
    before = len(sandbox.sends())
    r = bridge.post(path, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert _named(r, field), r.text[:500]
    assert len(sandbox.sends()) == before  # nothing went upstream


def test_surrogate_free_escapes_still_work(bridge, sandbox):
    """A real emoji written as a surrogate pair escape is good JSON and is sent."""
    body = b'{"messages":[{"destinations":[{"to":"41793026727"}],"text":"smile \\ud83d\\ude00"}]}'
    r = bridge.post(ADVANCED, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert sandbox.sends()[-1]


@pytest.mark.parametrize("body,field", [
    (DEEP, "body"),
    (b'{"results":[{"messageId":"m1","from":"41793026727","to":"447491163443","text":"\\ud800"}]}',
     "results[0].text"),
    (b'{"results":[{"messageId":"\\udc00","from":"41793026727","to":"447491163443","text":"x"}]}',
     "results[0].messageId"),
])
def test_hostile_inbound_push_is_a_400_never_a_500(make_bridge, body, field):
    bridge = make_bridge(with_inbound())
    r = bridge.post(f"/hooks/inbound/{TOKEN}", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert field in r.json()["requestError"]["serviceException"]["validationErrors"], r.text[:300]
