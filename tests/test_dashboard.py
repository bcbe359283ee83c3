"""The console's dashboard (issue 18 item 2) over real HTTP: sent, delivered, failed and pending over a
period, per caller and template; delivery rate; time to the delivery report; top error reasons; queue,
dead letters and upstream health; the chart as server-rendered SVG."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
import requests

from gateway.clock import ManualClock
from tests.conftest import DEMO, Sandbox, running_sandbox
from tests.helpers import wait_for
from tests.test_ui import login


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    """Reports after one real second, so the bridge's manual clock can move before they arrive; numbers of
    config.yaml's rules fail (4179000…: UNDELIVERABLE, 4179001…: REJECTED)."""
    rules = ["4179000 UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER", "4179001 REJECTED_DESTINATION"]
    with running_sandbox(dlr_delay=1.0, time_scale=1.0, push_time_scale=0.001, dlr_rules=rules) as sandbox:
        yield sandbox


def _send(bridge, to: str, who: dict = DEMO, path: str = "/sms/1/text/query", **params) -> str:
    r = bridge.get(path, params={**who, "to": to, "text": "x", **params} if path.endswith("query") else
                   {**who, **params})
    assert r.status_code == 200, r.text
    return r.json()["messages"][0]["messageId"]


def _dash(s: requests.Session, url: str, **params) -> dict:
    r = s.get(url + "/ui/api/dashboard", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_dashboard_counts_rates_delays_errors_and_filters(make_bridge, dlr_sandbox):
    clock = ManualClock(time.time() - 7200)  # the reports' doneAt is the sandbox's real time

    def mutate(raw):
        raw["callers"]["panel"] = {**copy.deepcopy(raw["callers"]["demo"]), "password": "panel-pw",
                                   "api_key": "panel-key-0123456789"}

    bridge = make_bridge(mutate, upstream_url=dlr_sandbox.url, clock=clock)
    _send(bridge, "41793026727")  # two hours old by the time the dashboard looks
    clock.advance(7200)
    _send(bridge, "41793026728")
    _send(bridge, "41793026729")
    _send(bridge, "41790000001")  # UNDELIVERABLE
    _send(bridge, "41790010001", who={"username": "panel", "password": "panel-pw"})  # REJECTED
    _send(bridge, "41793026730", path="/t/alarm", phone="41793026730", msg="door")
    s, _ = login(bridge.url)
    def settled() -> dict | None:
        x = _dash(s, bridge.url, range="day")
        return x if x["pending"] == 0 else None

    d = wait_for(settled, timeout=20)
    assert (d["sent"], d["delivered"], d["failed"], d["pending"]) == (6, 4, 2, 0)
    assert d["deliveryRate"] == pytest.approx(66.7)
    # about a second (the sandbox's dlr_delay) for three, two hours for the old message: its report came now
    assert d["reportDelaySample"] == 4 and 0.5 <= d["reportDelayP50"] <= 30
    assert d["reportDelayP95"] > 3600
    assert {e["reason"]: e["count"] for e in d["topErrors"]} == {"UNDELIVERABLE_NOT_DELIVERED": 1,
                                                                 "REJECTED_DESTINATION": 1}
    assert d["queueDepth"] == 0 and d["deadLetters"] == 0
    assert d["upstream"]["ok"] is True and d["upstream"]["attempts5m"] >= 5 and d["upstream"]["errors5m"] == 0
    assert sum(b["delivered"] for b in d["series"]) == 4 and len(d["series"]) == 24

    hour = _dash(s, bridge.url, range="hour")
    assert hour["sent"] == 5 and len(hour["series"]) == 12  # the older message is outside the last hour
    assert _dash(s, bridge.url, range="day", caller="panel")["failed"] == 1
    assert _dash(s, bridge.url, range="day", caller="panel")["sent"] == 1
    tpl = _dash(s, bridge.url, range="day", template="alarm")
    assert (tpl["sent"], tpl["delivered"]) == (1, 1)

    svg = s.get(bridge.url + "/ui/dashboard/chart.svg", params={"range": "hour"}, timeout=10)
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(svg.text)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert titles[0].startswith("Messages per 5 minutes, last hour")
    assert "Delivered: 3" in titles and "Failed: 2" in titles

    page = s.get(bridge.url + "/ui/", timeout=10)  # the console opens on the dashboard
    assert page.status_code == 200 and '<h1>Dashboard</h1>' in page.text and 'id="dash-chart"' in page.text
    assert 'data-key="delivered">4<' in page.text
    bad = s.get(bridge.url + "/ui/api/dashboard", params={"range": "year"}, timeout=10)
    assert bad.status_code == 400 and "range" in bad.json()["requestError"]["serviceException"]["validationErrors"]
    assert requests.get(bridge.url + "/ui/api/dashboard", timeout=10).status_code == 401


def test_dashboard_sees_a_failing_upstream_and_dead_letters(make_bridge, dlr_sandbox):
    bridge = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"),
                         upstream_url="http://127.0.0.1:9")  # nothing listens on the discard port
    r = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x"})
    assert r.status_code in (502, 503, 504)
    s, _ = login(bridge.url)
    d = _dash(s, bridge.url, range="hour")
    assert d["upstream"]["ok"] is False and d["upstream"]["errors5m"] >= 1
    assert d["failed"] + d["pending"] == 1
    page = s.get(bridge.url + "/ui/dashboard", timeout=10).text
    assert 'id="dash-upstream"' in page and "failing" in page


def test_slow_period_figures_are_kept_a_while_fast_ones_never():
    """A week of a million messages takes ~1.5 s to count (bench/console.py): kept for 20× that (at most a
    minute), so open dashboards refreshing every 5 s do not count it again each time; fast figures never are."""
    from gateway.entrances.ui import DashCache
    from gateway.store.dashboard import Stats

    calls: list[int] = []

    def compute() -> Stats:
        calls.append(1)
        return Stats(0.0, 1.0, 1.0, sent=len(calls))

    slow = DashCache(slow=0.0)  # every computation counts as slow here
    assert slow.get(("week", "", ""), compute).sent == 1
    assert slow.get(("week", "", ""), compute).sent == 1 and len(calls) == 1  # reused
    assert slow.get(("week", "demo", ""), compute).sent == 2  # another filter: its own entry
    fast = DashCache(slow=3600.0)  # nothing is slow enough to keep
    assert [fast.get(("day", "", ""), compute).sent for _ in range(2)] == [3, 4]
