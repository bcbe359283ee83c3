"""The message log people can read (issue 18 item 3), over HTTP: filters by time range, caller, template,
entrance, every notation of a number, text (only where texts are not masked), unknown values said so,
totals, and the CSV export of exactly the current filter."""

from __future__ import annotations

import copy
import csv
import io
import re
from datetime import UTC, datetime

import requests

from gateway.clock import ManualClock
from tests.conftest import DEMO
from tests.test_ui import login

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()


def _send(bridge, path: str, params: dict) -> str:
    r = bridge.get(path, params={**DEMO, **params})
    assert r.status_code == 200, r.text
    return r.json()["messages"][0]["messageId"]


def _ids(s: requests.Session, url: str, **params) -> list[str]:
    r = s.get(url + "/ui/api/log", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return [row["cells"]["messageId"] for row in r.json()["rows"]]


def _record(make_bridge, mask: bool = True):
    """Four messages: two through the query API an hour apart, one through the alarm template, one from the
    second caller (panel), each with its own text."""
    clock = ManualClock(T0)

    def mutate(raw):
        raw["ui"]["mask_text"] = mask
        raw["callers"]["panel"] = {**copy.deepcopy(raw["callers"]["demo"]), "password": "panel-pw",
                                   "api_key": "panel-key-0123456789"}

    bridge = make_bridge(mutate, clock=clock)
    a = _send(bridge, "/sms/1/text/query", {"to": "41793026727", "text": "Pump 3 failed"})
    clock.advance(3600)
    b = _send(bridge, "/sms/1/text/query", {"to": "+41 79 302 67 28", "text": "=HYPERLINK(\"x\") boiler"})
    c = _send(bridge, "/t/alarm", {"phone": "41793026729", "msg": "Door open"})
    r = bridge.get("/sms/1/text/query", params={"username": "panel", "password": "panel-pw", "to": "41793026727",
                                                "text": "Fire panel"})
    assert r.status_code == 200, r.text
    d = r.json()["messages"][0]["messageId"]
    s, _ = login(bridge.url)
    return bridge, s, (a, b, c, d)


def test_filters_by_time_caller_template_entrance_and_every_notation_of_a_number(make_bridge):
    bridge, s, (a, b, c, d) = _record(make_bridge)
    url = bridge.url
    assert _ids(s, url) == [d, c, b, a]
    assert _ids(s, url, since="2026-11-30T08:30") == [d, c, b]
    assert _ids(s, url, until="2026-11-30T08:30") == [a]
    assert _ids(s, url, since="2026-11-30", until="2026-11-30") == [d, c, b, a]  # a date alone: the whole day
    assert _ids(s, url, caller="panel") == [d]
    assert _ids(s, url, template="alarm") == [c]
    assert _ids(s, url, entrance="query") == [d, b, a]
    assert _ids(s, url, entrance="template") == [c]
    for notation in ("41793026727", "+41793026727", "0041793026727", "+41 (79) 302-67-27", "079 302 67 27"):
        assert _ids(s, url, number=notation) == [d, a], notation
    assert _ids(s, url, number="0041 79 302 67 28") == [b]

    bad = s.get(url + "/ui/log", params={"since": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and 'id="e-since"' in bad.text and "must be a date" in bad.text
    assert s.get(url + "/ui/api/log", params={"since": "2026-11-30", "until": "2026-11-29"},
                 timeout=10).status_code == 400


def test_unknown_status_is_said_and_totals_count_the_filter(make_bridge):
    bridge, s, (a, b, c, d) = _record(make_bridge)
    page = s.get(bridge.url + "/ui/log", params={"status": "DELIVERD"}, timeout=10)
    assert page.status_code == 200 and "status &#39;DELIVERD&#39; is not one the messages view knows" in page.text
    page = s.get(bridge.url + "/ui/log", params={"status": "PENDING"}, timeout=10)
    assert "is not one" not in page.text
    totals = re.search(r'<p id="log-totals"[^>]*>(.*?)</p>', page.text, re.S).group(1)
    assert "<strong>4</strong> messages match" in totals and "PENDING</span> 4" in totals
    assert s.get(bridge.url + "/ui/api/log", params={"caller": "panel"}, timeout=10).json()["total"] == 1


def test_text_search_only_where_texts_are_not_masked(make_bridge):
    bridge, s, (a, b, c, d) = _record(make_bridge, mask=False)
    assert _ids(s, bridge.url, text="boiler") == [b]
    assert _ids(s, bridge.url, text="%") == []  # a LIKE wildcard is a character here
    masked, s2, _ = _record(make_bridge, mask=True)
    page = s2.get(masked.url + "/ui/log", params={"text": "boiler"}, timeout=10)
    assert "the text search is off" in page.text and len(_ids(s2, masked.url, text="boiler")) == 4


def test_csv_export_is_exactly_the_current_filter_streamed_and_safe_in_a_spreadsheet(make_bridge):
    bridge, s, (a, b, c, d) = _record(make_bridge, mask=False)
    page = s.get(bridge.url + "/ui/log", params={"number": "+41 79 302 67 27"}, timeout=10)
    href = re.search(r'<a href="([^"]+)" id="csv-export"', page.text).group(1).replace("&amp;", "&")
    assert "number=" in href
    resp = s.get(bridge.url + href, timeout=10, stream=True)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "Content-Length" not in resp.headers  # streamed
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="smsbridge-messages-')
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["messageId"] for r in table] == [d, a]
    assert {r["Caller"] for r in table} == {"demo", "panel"} and table[1]["Text"] == "Pump 3 failed"
    every = list(csv.DictReader(io.StringIO(s.get(bridge.url + "/ui/log.csv", timeout=10).text)))
    formula = next(r for r in every if r["messageId"] == b)
    assert formula["Text"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    assert requests.get(bridge.url + "/ui/log.csv", allow_redirects=False, timeout=10).status_code == 302  # login
