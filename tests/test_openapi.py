"""The OpenAPI description: in sync with the app's routes both ways, and a bounded schemathesis run
against the running bridge finds no 5xx and no response that breaks the description."""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.entrances.openapi import openapi_path

EXAMPLES_PER_OPERATION = 12  # 31 operations: ~240 cases


def routes(app) -> set[tuple[str, str]]:
    return {(openapi_path(r.rule), m.lower()) for r in app.url_map.iter_rules()
            for m in r.methods - {"HEAD", "OPTIONS"}}


def described(spec: dict) -> set[tuple[str, str]]:
    return {(p, m) for p, ops in spec["paths"].items() for m in ops}


def test_every_route_is_described_and_every_description_is_a_route(bridge):
    spec = bridge.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert routes(bridge.app) == described(spec)
    assert ("/ui/builder", "get") in described(spec) and ("/sms/1/text/query.{ext}", "get") in described(spec)


def test_without_the_ui_the_description_has_no_ui_paths(make_bridge):
    b = make_bridge(lambda raw: raw.pop("ui"))
    spec = b.get("/openapi.json").json()
    assert routes(b.app) == described(spec)
    assert not any(p.startswith("/ui/") for p in spec["paths"])


def test_schemathesis_finds_no_server_error_and_no_schema_violation(bridge, sandbox):
    schema = schemathesis.openapi.from_dict(bridge.get("/openapi.json").json())
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    auth = {"Authorization": "Basic " + base64.b64encode(b"demo:demo").decode()}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == len(described(bridge.get("/openapi.json").json()))
    calls = []

    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            headers = {**auth, **(case.headers or {})}
            resp = case.call(base_url=bridge.url, headers=headers, allow_redirects=False, timeout=10)
            calls.append(resp.status_code)
            case.validate_response(resp, checks=checks)

        run()
    print(f"schemathesis: {len(calls)} cases, statuses {sorted(set(calls))}")
    assert len(calls) >= 200, len(calls)
    assert 200 in calls and 400 in calls  # it reached real sends and real validation
