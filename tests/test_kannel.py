"""Kannel's dialect over real HTTP (issue 17): ``/cgi-bin/sendsms`` answered as smsbox answers, ``dlr-url``
called with Kannel's escapes for the events ``dlr-mask`` asks for, and inbound rules speaking ``sms-service``.

URLs and answers are those of Kannel's user guide and ``gw/smsbox.c`` (legacy-gateways.md §1.2-1.6)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import requests

from tests.conftest import Sandbox, running_sandbox
from tests.helpers import raw_get, wait_for
from tests.storehelp import db_rows

SCALE = 0.001
AUTH = "username=demo&password=demo"


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    """Reports after 50 ms: DELIVERED; 4179000… undeliverable, 4179001… rejected."""
    with running_sandbox(dlr_delay=0.05, time_scale=SCALE, dlr_rules=[
            "4179000 UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER", "4179001 REJECTED_DESTINATION"]) as sandbox:
        yield sandbox


def _get(bridge, query: str) -> requests.Response:
    return requests.get(f"{bridge.url}/cgi-bin/sendsms?{query}", timeout=10)


def test_user_guide_example_is_accepted(bridge, sandbox):
    r = _get(bridge, "username=demo&password=demo&to=41793026727&text=Hello+world&from=InfoSMS")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert r.headers["Content-Type"] == "text/html"
    sent = sandbox.messages()
    assert [(m["to"], m["text"]) for m in sent][-1] == ("41793026727", "Hello world")
