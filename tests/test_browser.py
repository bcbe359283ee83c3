"""The admin UI in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

The browser is installed by this module's own set-up when missing (root + apt-get); where it cannot
be, the tests are skipped with the reason. Screenshots of each page go to tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from gateway import urlbuilder as ub
from gateway.sms import analyse
from tests.conftest import Sandbox, running_sandbox

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def ensure_chromium() -> str | None:
    """The reason no browser can be had, or None once /usr/bin/chromium exists."""
    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"installing chromium failed: {' '.join(cmd)}: {done.stderr.strip()[-300:]}"
    return None if os.path.exists(CHROMIUM) else "apt-get installed chromium but /usr/bin/chromium is missing"


# One Playwright and one Chromium for the whole run: other modules import ``browser`` (pytest then holds one
# fixture per module), and a second sync Playwright in the same thread fails ("Sync API inside the asyncio
# loop"), so the instances share this and the last one to finish closes it.
_SHARED: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -r requirements-test.txt)")
    reason = ensure_chromium()
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    if not _SHARED["users"]:
        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                                                   headless=True)
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if not _SHARED["users"]:
            _SHARED.pop("browser").close()
            _SHARED.pop("playwright").stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(10000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page, url: str) -> None:
    page.goto(url + "/ui/builder")
    assert "/ui/login" in page.url
    shot(page, "01-login")
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#login")
    page.wait_for_url("**/ui/builder")


def url_value(page) -> str:
    return page.input_value("#url")


def test_build_a_url_paste_it_as_a_legacy_app_and_see_infobips_answer(page, bridge, sandbox):
    login(page, bridge.url)
    page.select_option("#target", "alarm")
    page.wait_for_selector("#value-phone")
    page.fill("#value-phone", "phoneNumber")
    page.fill("#value-msg", "message")
    page.wait_for_function("() => document.getElementById('url').value.includes('msg=%message%')")
    built = url_value(page)
    assert built == f"{bridge.url}/t/alarm?username=demo&password=YOUR_PASSWORD&phone=%phoneNumber%&msg=%message%"
    assert page.input_value("#curl") == (f"curl -sS -G {bridge.url}/t/alarm --data-urlencode 'username=demo' "
                                         "--data-urlencode 'password=YOUR_PASSWORD' --data-urlencode "
                                         "'phone=%phoneNumber%' --data-urlencode 'msg=%message%'")
    shot(page, "02-builder")
    page.click("#copy-url")
    page.wait_for_function("() => document.getElementById('copy-url').textContent === 'Copied'")

    # What the legacy application does: fill in its placeholders (URL-encoded), then call the URL.
    filled = ub.substitute(built.replace(ub.PASSWORD_TOKEN, "demo"),
                           {"phoneNumber": "41793026727", "message": "Pump 3 failed"}, ub.STYLES["percent"])
    resp = page.goto(filled)
    assert resp.status == 200 and "PENDING" in page.content()  # shown in the browser
    answer = json.loads(resp.text())
    assert answer["messages"][0]["status"]["groupName"] == "PENDING" and answer["messages"][0]["messageId"]
    assert sandbox.messages()[-1]["text"] == "[ALARM] HQ: Pump 3 failed"
    shot(page, "03-infobip-answer")


def test_pasting_an_infobip_url_fills_the_form(page, bridge):
    login(page, bridge.url)
    page.wait_for_function("() => document.getElementById('url').value !== ''")
    page.fill("#paste", "https://xyz.api.infobip.com/sms/1/text/query.xml?username=demo&password=secret"
                        "&to={ALERT.SENDTO}&text={ALERT.MESSAGE}")
    page.click("#parse")
    page.wait_for_function("() => document.getElementById('url').value.includes('ALERT.SENDTO')")
    assert url_value(page) == (f"{bridge.url}/sms/1/text/query.xml?username=demo&password=YOUR_PASSWORD"
                               "&to={ALERT.SENDTO}&text={ALERT.MESSAGE}")
    assert page.input_value("#style") == "brace" and page.input_value("#fmt") == "xml"
    assert page.input_value("#value-to") == "ALERT.SENDTO"
    notes = page.inner_text("#notes")
    assert "Infobip" in notes and "password was removed" in notes and "secret" not in page.content()
    page.select_option("#style", "nagios")  # restyle every placeholder at once
    page.wait_for_function("() => document.getElementById('url').value.includes('$ALERT.SENDTO$')")
    page.select_option("#preset", "prtg")
    page.wait_for_function("() => document.getElementById('url').value.endsWith('to=%SMSNUMBER&text=%SMSTEXT')")
    shot(page, "04-builder-pasted")


def test_try_it_previews_while_typing_and_sends(page, bridge, sandbox):
    login(page, bridge.url)
    page.goto(bridge.url + "/ui/try")
    assert "No real SMS is sent" in page.inner_text("#upstream")
    page.wait_for_selector("#try-to")
    page.fill("#try-to", "41793026727")
    page.fill("#try-text", "Ωμέγα ok")
    page.wait_for_function("() => document.getElementById('pv-encoding').textContent.startsWith('UCS2')")
    assert page.inner_text("#pv-parts") == "1" and page.inner_text("#pv-remaining") == str(70 - 8)
    page.click("#try-more")  # the optional parameters are folded away until asked for
    page.fill("#try-transliteration", "GREEK")
    page.wait_for_function("() => document.getElementById('pv-encoding').textContent.startsWith('GSM7')")
    assert page.inner_text("#pv-text") == analyse("Ωμέγα ok", None, "GREEK").text == "ΩMEΓA ok"
    assert page.inner_text("#pv-remaining") == str(160 - 8)
    page.fill("#try-password", "demo")
    page.click("#send")
    page.wait_for_function("() => document.getElementById('try-status').textContent.startsWith('200')")
    body = json.loads(page.inner_text("#try-response"))
    assert body["messages"][0]["status"]["groupName"] == "PENDING"
    assert "demo" not in page.inner_text("#try-url")  # the password went in a header, not the URL
    assert sandbox.messages()[-1]["text"] == "Ωμέγα ok"
    shot(page, "05-try-it")
    page.fill("#try-password", "wrong")
    page.click("#send")
    page.wait_for_function("() => document.getElementById('try-status').textContent.startsWith('401')")
    # the refusal in words; the raw answer folded away under it
    assert json.loads(page.text_content("#try-response"))["requestError"]["serviceException"]["messageId"] == \
        "UNAUTHORIZED"
    assert page.is_visible("#try-error")


def test_raw_query_url_for_a_template_with_unicode_values(page, bridge, sandbox):
    """A legacy app that URL-encodes UTF-8 (as PRTG does): the answer comes back, the text intact."""
    login(page, bridge.url)
    page.wait_for_function("() => document.getElementById('url').value !== ''")
    built = url_value(page)  # the raw query API with %to% and %text%
    assert built == f"{bridge.url}/sms/1/text/query?username=demo&password=YOUR_PASSWORD&to=%to%&text=%text%"
    filled = built.replace(ub.PASSWORD_TOKEN, "demo").replace("%to%", "41793026727").replace(
        "%text%", quote("Grüße 100% ✓", safe=""))
    resp = page.goto(filled)
    assert resp.status == 200
    assert sandbox.messages()[-1]["text"] == "Grüße 100% ✓"


@pytest.fixture(scope="module")
def slow_dlr_sandbox() -> Iterator[Sandbox]:
    """A sandbox that reports DELIVERED 3 s after a send: long enough to see PENDING in the log first."""
    with running_sandbox(dlr_delay=3.0, time_scale=0.001) as sandbox:
        yield sandbox


STATUS_CELL = '#log-table [data-cell="status"]'


def test_a_legacy_url_sends_and_the_log_shows_it_reach_delivered(page, make_bridge, slow_dlr_sandbox):
    """Build a template URL, call it as a legacy app would, then watch the log turn PENDING into
    DELIVERED from the sandbox's report, without reloading the page."""
    slow_dlr_sandbox.reset()
    b = make_bridge(upstream_url=slow_dlr_sandbox.url)
    login(page, b.url)
    page.select_option("#target", "alarm")
    page.wait_for_selector("#value-phone")
    page.fill("#value-phone", "phoneNumber")
    page.fill("#value-msg", "message")
    page.wait_for_function("() => document.getElementById('url').value.includes('msg=%message%')")
    built = url_value(page)
    filled = ub.substitute(built.replace(ub.PASSWORD_TOKEN, "demo"),
                           {"phoneNumber": "41793026727", "message": "Pump 7 overheated"}, ub.STYLES["percent"])
    resp = page.goto(filled)
    assert resp.status == 200
    mid = json.loads(resp.text())["messages"][0]["messageId"]

    page.goto(b.url + "/ui/log")
    page.fill("#f-messageId", mid)
    page.click("#f-apply")
    page.wait_for_url("**/ui/log?*messageId=*")
    assert page.locator("#log-table tbody tr").count() == 1
    assert page.text_content('#log-table [data-cell="messageId"]') == mid  # in the row's details
    assert page.inner_text('#log-table td[data-cell="text"]') == "[AL… (29 chars)"  # "[ALARM] HQ: Pump 7 overheated", masked
    assert page.inner_text(STATUS_CELL).startswith("PENDING")
    shot(page, "06-log-pending")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function(f"() => document.querySelector('{STATUS_CELL}').textContent.startsWith('DELIVERED')",
                           timeout=20000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place by the polling script
    assert page.inner_text(STATUS_CELL) == "DELIVERED (DELIVERED_TO_HANDSET)"
    page.click("#log-table details summary")  # details on demand
    assert "DELIVERED_TO_HANDSET [report]" in page.inner_text('#log-table [data-cell="history"]')
    shot(page, "07-log-delivered")
    for n, view in enumerate(("attempts", "outbox", "dead", "inbound"), start=8):
        page.click(f"#view-{view}")
        page.wait_for_url(f"**/ui/log?view={view}*")
        shot(page, f"{n:02d}-log-{view}")
    page.fill("#f-messageId", "")
    page.click("#f-apply")
    page.wait_for_url("**/ui/log?view=inbound*")
    page.click("#view-attempts")
    assert page.inner_text('#log-table td[data-cell="http"]') == "200"
