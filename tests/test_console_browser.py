"""Issue 18 item 10: the console's flows in headless Chromium (Debian's, through Playwright): the front door,
the dashboard refreshing itself, the log's filters and CSV export, the configuration view, and a session
that ends while a filtered log is open. Screenshots at 1280×900 and 390×844 in tests/artifacts/."""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests

from gateway.clock import ManualClock
from tests.conftest import DEMO
from tests.test_browser import ARTIFACTS, browser  # noqa: F401 - the session's browser fixture

SIZES = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def open_page(browser):  # noqa: F811
    made = []

    def make(size: str = "wide"):
        ctx = browser.new_context(viewport=SIZES[size], accept_downloads=True)
        page = ctx.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        made.append((ctx, errors))
        return page

    yield make
    for ctx, errors in made:
        ctx.close()
        assert not errors, f"JavaScript errors: {errors}"


def shot(page, name: str, size: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"console-{size}-{name}.png"), full_page=True)


def login(page, url: str, then: str = "**/ui/dashboard") -> None:
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#login")
    page.wait_for_url(then)


def send(url: str, to: str, text: str = "Pump 3 failed") -> str:
    r = requests.get(url + "/sms/1/text/query", params={**DEMO, "to": to, "text": text}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["messages"][0]["messageId"]


@pytest.mark.parametrize("size", list(SIZES))
def test_front_door_to_dashboard_that_refreshes_itself(open_page, bridge, size):
    page = open_page(size)
    page.goto(bridge.url + "/")
    assert page.inner_text("h1") == "smsbridge is running here"
    shot(page, "front", size)
    page.click("#console")
    assert "/ui/login" in page.url and "admin / admin" in page.inner_text("#demo-hint")
    login(page, bridge.url, "**/ui/")  # back where the link led
    before = int(page.inner_text('[data-key="sent"]'))
    shot(page, "dashboard", size)
    send(bridge.url, "41793026727")
    page.wait_for_function(f"() => Number(document.querySelector('[data-key=\"sent\"]').textContent) > {before}",
                           timeout=20000)  # refreshed in place by the page's script
    # the refresh may have just swapped the chart's source: wait (bounded) for the new one to load
    page.wait_for_function("() => { const i = document.querySelector('#dash-chart');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=20000)
    page.select_option("#d-range", "hour")
    page.click("#d-apply")
    page.wait_for_url("**/ui/dashboard?range=hour*")
    assert "Messages, last hour" in page.inner_text("#h-traffic")


def test_log_filters_details_and_csv_export(open_page, bridge):
    a = send(bridge.url, "41793026727")
    b = send(bridge.url, "41793026728")
    page = open_page()
    page.goto(bridge.url + "/ui/log")
    login(page, bridge.url, "**/ui/log")
    assert page.locator("#log-table tbody tr").count() >= 2
    page.fill("#f-number", "0041 79 302 67 28")  # another notation of b's number
    page.click("#f-apply")
    page.wait_for_url("**/ui/log?*number=*")
    assert page.locator("#log-table tbody tr").count() == 1
    assert page.text_content('[data-cell="messageId"]') == b
    badge = page.locator("#log-table .badge")
    assert badge.evaluate("el => getComputedStyle(el).whiteSpace") == "nowrap"
    page.click("#log-table details summary")  # details on demand
    assert page.is_visible('[data-cell="history"]')
    shot(page, "log-filtered", "wide")
    with page.expect_download() as dl:
        page.click("#csv-export")
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    assert [r["messageId"] for r in rows] == [b] and a not in {r["messageId"] for r in rows}
    page.fill("#f-number", "")
    page.fill("#f-status", "DELIVERD")
    page.click("#f-apply")
    page.wait_for_url("**/ui/log?*status=DELIVERD*")
    assert "is not one the messages view knows" in page.inner_text(".log-notice")
    page.fill("#f-status", "")
    page.fill("#f-since", "2020-01-01T00:00")
    page.click("#f-apply")
    page.wait_for_url("**/ui/log?*since=*")
    assert page.locator("#log-table tbody tr").count() >= 2


def test_configuration_view_in_the_browser(open_page, bridge):
    page = open_page("phone")
    page.goto(bridge.url + "/ui/config")
    login(page, bridge.url, "**/ui/config")
    assert page.is_visible("#callers") and page.is_visible("#url-alarm")
    assert "YOUR_PASSWORD" in page.inner_text("#url-alarm")
    assert "demo" not in re.findall(r"password</dt>\s*<dd>(.*?)</dd>", page.content())
    shot(page, "config", "phone")


def test_an_ended_session_returns_to_the_same_filtered_log_after_login(open_page, make_bridge):
    clock = ManualClock()
    bridge = make_bridge(clock=clock)
    page = open_page()
    page.goto(bridge.url + "/ui/log?status=PENDING&number=41793026727")
    login(page, bridge.url, "**/ui/log?status=PENDING&number=41793026727")
    clock.advance(bridge.app.extensions["smsbridge"].config.ui.session_minutes * 60 + 1)
    # the page's own polling meets the ended session: to the login, saying so, nothing stale left on screen
    page.wait_for_url("**/ui/login?ended=1*", timeout=20000)
    assert "You were logged out" in page.inner_text("#login-notice")
    assert "CSRF" not in page.content()
    shot(page, "session-ended", "wide")
    login(page, bridge.url, "**/ui/log?status=PENDING&number=41793026727")
    assert page.input_value("#f-status") == "PENDING" and page.input_value("#f-number") == "41793026727"


def test_fifteen_log_rows_fit_a_1280_by_900_screen(open_page, bridge):
    for i in range(30):
        send(bridge.url, f"417930267{i:02d}", f"Message {i} with a longer text that could wrap in a narrow column")
    page = open_page("wide")
    page.goto(bridge.url + "/ui/log")
    login(page, bridge.url, "**/ui/log")
    visible = page.evaluate("""() => [...document.querySelectorAll('#log-table tbody tr')]
        .filter(tr => tr.getBoundingClientRect().bottom <= window.innerHeight).length""")
    assert visible >= 15, f"only {visible} rows above the fold"
    heights = page.evaluate("[...document.querySelectorAll('#log-table tbody tr')].map(tr => tr.offsetHeight)")
    assert max(heights) < 40, heights  # one line per row: nothing wraps mid-token
    shot(page, "log-30-rows", "wide")
