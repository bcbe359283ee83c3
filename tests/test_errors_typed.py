"""Typed errors: each maps, in one place, to the status, messageId and text callers see in both envelopes;
an upstream error carries its attempts, so a failed sync send is recorded with them (read through the admin
UI's upstream-attempts view, over real HTTP)."""

from __future__ import annotations

import inspect
import json
import xml.etree.ElementTree as ET

import pytest
import requests

from gateway import errors as typed
from gateway.entrances.errors import api_error
from gateway.errors import (
    BridgeError,
    Conflict,
    Forbidden,
    NotFound,
    PolicyRefused,
    QueueFull,
    Throttled,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamNonsense,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
    ValidationFailed,
)
from gateway.model import ApiError
from gateway.wire.formats import JSON, XML
from gateway.wire.v3 import render_error_for
from tests.conftest import DEMO
from tests.helpers import free_port
from tests.test_ui import login

OK = {"to": "41793026727", "text": "Pump 3 failed on site"}
TWO = {"to": ["is required"], "text": ["must not be empty", "is too long"]}

# (error, HTTP status, Infobip messageId, text, validationErrors)
CASES = [
    (ValidationFailed(TWO), 400, "BAD_REQUEST", "to: is required (and 1 more: see validationErrors)", TWO),
    (ValidationFailed.one("bulkId", "is required"), 400, "BAD_REQUEST", "bulkId: is required",
     {"bulkId": ["is required"]}),
    (Unauthorized("Invalid login details"), 401, "UNAUTHORIZED", "Invalid login details", {}),
    (Throttled("Too many failed logins: try again in 3 s", 2.5), 429, "TOO_MANY_REQUESTS",
     "Too many failed logins: try again in 3 s", {}),
    (QueueFull("Too many messages waiting for this caller", 4.0), 429, "TOO_MANY_REQUESTS",
     "Too many messages waiting for this caller", {}),
    (PolicyRefused("sender 'Bank' is not among caller demo's senders (InfoSMS)"), 403, "FORBIDDEN",
     "sender 'Bank' is not among caller demo's senders (InfoSMS)", {}),
    (Forbidden("caller 'demo' lacks the 'query' scope"), 403, "FORBIDDEN", "caller 'demo' lacks the 'query' scope",
     {}),
    (NotFound("No message with messageId 'x'"), 404, "NOT_FOUND", "No message with messageId 'x'", {}),
    (Conflict("Message 'x' is not forwarded yet"), 409, "CONFLICT", "Message 'x' is not forwarded yet", {}),
    (Unavailable("The bridge could not store the message"), 503, "SERVICE_UNAVAILABLE",
     "The bridge could not store the message", {}),
    (UpstreamUnreachable("Upstream h is unreachable (connection refused); nothing was sent"), 503,
     "SERVICE_UNAVAILABLE", "Upstream h is unreachable (connection refused); nothing was sent", {}),
    (UpstreamTimeout("Upstream h did not answer within 30 s"), 504, "GATEWAY_TIMEOUT",
     "Upstream h did not answer within 30 s", {}),
    (UpstreamRefused("Upstream rejected the request: bad to", status=400, message_id="BAD_REQUEST",
                     upstream_text="bad to", errors={"messages[0].destinations[0].to": ["is invalid"]}),
     400, "BAD_REQUEST", "Upstream rejected the request: bad to", {"messages[0].destinations[0].to": ["is invalid"]}),
    (UpstreamRefused("Upstream rate limit reached; retry later", status=429), 429, "TOO_MANY_REQUESTS",
     "Upstream rate limit reached; retry later", {}),
    (UpstreamRefused("Upstream h refused the bridge's own credentials (HTTP 401)", status=401,
                     message_id="UNAUTHORIZED"), 502, "BAD_GATEWAY",
     "Upstream h refused the bridge's own credentials (HTTP 401)", {}),
    (UpstreamRefused("Upstream h failed with HTTP 500", status=500, message_id="GENERAL_ERROR"), 502,
     "BAD_GATEWAY", "Upstream h failed with HTTP 500", {}),
    (UpstreamNonsense("Upstream h answered with an unexpected body"), 502, "BAD_GATEWAY",
     "Upstream h answered with an unexpected body", {}),
    (UpstreamError("Upstream request failed (OSError)"), 502, "BAD_GATEWAY", "Upstream request failed (OSError)", {}),
    (BridgeError("something the edge has no status for"), 500, "GENERAL_ERROR", "something the edge has no status for",
     {}),
    (ApiError(413, "BAD_REQUEST", "A report body may be at most 1 bytes"), 413, "BAD_REQUEST",
     "A report body may be at most 1 bytes", {}),
]


def test_every_typed_error_has_a_case():
    kinds = {c for _, c in inspect.getmembers(typed, inspect.isclass) if issubclass(c, BridgeError)}
    assert kinds == {type(err) for err, *_ in CASES if isinstance(err, BridgeError)}


@pytest.mark.parametrize(("err", "status", "message_id", "text", "errors"), CASES,
                         ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES])
def test_mapping_to_status_and_both_envelopes(err, status, message_id, text, errors):
    mapped = api_error(err)
    assert (mapped.http_status, mapped.message_id, mapped.text, mapped.validation_errors) == (
        status, message_id, text, errors)
    legacy = render_error_for("/sms/1/text/query", mapped, JSON)
    assert legacy.status_code == status
    exc = json.loads(legacy.get_data())["requestError"]["serviceException"]
    assert exc["messageId"] == message_id and exc["text"] == text
    assert exc.get("validationErrors", {}) == errors
    xml = render_error_for("/sms/1/text/query.xml", mapped, XML)
    assert xml.status_code == status and xml.mimetype == "application/xml"
    root = ET.fromstring(xml.get_data())
    assert root.findtext("serviceException/messageId") == message_id
    assert root.findtext("serviceException/text") == text
    pairs = [(v.findtext("property"), v.findtext("message")) for v in root.iter("validationError")]
    assert pairs == [(p, r) for p, reasons in errors.items() for r in reasons]
    v3 = render_error_for("/sms/3/messages", mapped, JSON)
    body = json.loads(v3.get_data())
    assert v3.status_code == status and body["errorCode"] == f"E{status}" and body["description"] == text
    assert body["violations"] == [{"property": p, "violation": r} for p, reasons in errors.items() for r in reasons]
    assert body["action"] and body["resources"]
    for resp in (legacy, xml, v3):
        assert ("WWW-Authenticate" in resp.headers) == (status == 401)


def test_upstream_errors_carry_their_attempts():
    from gateway.errors import Attempt

    tries = [Attempt("query", 200, 3.0), Attempt("query", 500, 4.0, "http 500")]
    err = UpstreamRefused("Upstream h failed with HTTP 500", tries, status=500)
    assert err.attempts is tries and str(err) == "Upstream h failed with HTTP 500"
    assert UpstreamUnreachable("x").attempts == []


def _attempts(s: requests.Session, url: str) -> list[dict[str, str]]:
    r = s.get(url + "/ui/api/log", params={"view": "attempts"}, timeout=10)
    assert r.status_code == 200, r.text
    return [row["cells"] for row in r.json()["rows"]]


def _exc(r: requests.Response) -> dict:
    return r.json()["requestError"]["serviceException"]


def test_failed_sync_send_on_upstream_500_records_its_attempt(make_bridge, sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"))  # the fail policy (default: queue, issue 13 item 4)
    sandbox.faults(status=500, count=1)
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 502 and _exc(r)["messageId"] == "BAD_GATEWAY"
    assert _exc(r)["text"].endswith("failed with HTTP 500")
    s, _ = login(bridge.url)
    [attempt] = _attempts(s, bridge.url)
    assert attempt["api"] == "advanced" and attempt["http"] == "500"  # the default upstream API (issue 13 item 7) and attempt["submission"].startswith("#")
    assert attempt["error"] == "http 500"
    assert float(attempt["ms"]) > 0
    [failed] = s.get(bridge.url + "/ui/api/log", timeout=10).json()["rows"]
    assert failed["cells"]["to"] == OK["to"]
    # the next send succeeds and its attempt is recorded beside the failed one, with no error
    assert bridge.get("/sms/1/text/query", params={**DEMO, **OK}).status_code == 200
    ok, failed_again = _attempts(s, bridge.url)  # newest first
    assert (ok["http"], ok["error"]) == ("200", "") and failed_again == attempt


def test_failed_sync_send_on_refused_connection_records_its_attempt(make_bridge):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"), upstream_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 503 and _exc(r)["messageId"] == "SERVICE_UNAVAILABLE"
    assert "connection refused" in _exc(r)["text"] and "nothing was sent" in _exc(r)["text"]
    s, _ = login(bridge.url)
    [attempt] = _attempts(s, bridge.url)
    assert attempt["api"] == "advanced" and attempt["http"] == "" and attempt["error"] == "connection refused"
    assert float(attempt["ms"]) >= 0 and attempt["submission"].startswith("#")
    errors_only = s.get(bridge.url + "/ui/api/log", params={"view": "attempts", "status": "error"}, timeout=10)
    assert [row["cells"] for row in errors_only.json()["rows"]] == [attempt]


def test_v3_upstream_400_is_passed_on_and_its_attempt_recorded(make_bridge, sandbox):
    def v3_upstream(raw):
        raw["callers"]["demo"]["upstream_api"] = "messages"

    bridge = make_bridge(v3_upstream)
    sandbox.faults(status=400, count=1)
    r = bridge.get("/sms/1/text/query", params={**DEMO, **OK})
    assert r.status_code == 400 and _exc(r)["messageId"] == "BAD_REQUEST"
    assert _exc(r)["text"] == "Upstream rejected the request: Injected fault"  # what the upstream said
    s, _ = login(bridge.url)
    [attempt] = _attempts(s, bridge.url)
    assert attempt["api"] == "messages" and attempt["http"] == "400"
    assert attempt["error"] == "http 400"
