"""Issue 18 items 8 and 10: every console page in headless Chromium at 1280×900 and 390×844, checked with
axe-core (no serious or critical violation), for horizontal scrolling of the page at phone width, a skip
link, landmarks and a visible focus; screenshots of each in tests/artifacts/."""

from __future__ import annotations

import json

import pytest

from tests.axe import axe_violations
from tests.test_browser import ARTIFACTS, browser  # noqa: F401 - the session's browser fixture

SIZES = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {"front": "/", "login": "/ui/login", "dashboard": "/ui/dashboard", "builder": "/ui/builder",
         "try": "/ui/try", "log": "/ui/log", "log-attempts": "/ui/log?view=attempts", "config": "/ui/config"}
OPEN = {"front", "login"}


def _login(page, url: str) -> None:
    page.goto(url + "/ui/login")
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#login")
    page.wait_for_url("**/ui/dashboard")


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_is_accessible_and_fits_the_screen(browser, bridge, size):  # noqa: F811
    ctx = browser.new_context(viewport=SIZES[size])
    page = ctx.new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026727",
                                                "text": "A message for the log"})
        problems = {}
        logged_in = False
        for name in sorted(PAGES, key=lambda n: n not in OPEN):  # the open pages first, then log in
            if name not in OPEN and not logged_in:
                _login(page, bridge.url)
                logged_in = True
            page.goto(bridge.url + PAGES[name])
            page.wait_for_load_state("load")
            page.screenshot(path=str(ARTIFACTS / f"a11y-{size}-{name}.png"), full_page=True)
            found = axe_violations(page)
            if found:
                problems[name] = found
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                problems.setdefault(name, []).append({"id": "page-scrolls-sideways", "px": overflow})
            if name not in ("front",):
                skip = page.locator("a.skip-link")
                if skip.count() != 1 or page.locator("main#main").count() != 1:
                    problems.setdefault(name, []).append({"id": "no-skip-link-to-main"})
        (ARTIFACTS / f"a11y-{size}-problems.json").write_text(json.dumps(problems, indent=1))
        assert not problems, json.dumps(problems)
        assert not errors, errors
    finally:
        ctx.close()


def test_keyboard_focus_is_visible_and_the_skip_link_comes_first(browser, bridge):  # noqa: F811
    ctx = browser.new_context(viewport=SIZES["wide"])
    page = ctx.new_page()
    try:
        page.goto(bridge.url + "/ui/login")
        page.keyboard.press("Tab")
        first = page.evaluate("document.activeElement.className")
        assert "skip-link" in first
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
        # keyboard only: the login form, then the dashboard
        page.focus("#username")
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type("admin")
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/dashboard")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        width = page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
        assert width >= 2, "the focus ring is faint"
    finally:
        ctx.close()


def test_keyboard_only_the_log_filter_and_the_dashboard_period(browser, bridge):  # noqa: F811
    """The console's own forms work from the keyboard alone: filter the log by number, change the dashboard's
    period, open a row's details."""
    bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo", "to": "41793026727",
                                            "text": "Keyboard"})
    ctx = browser.new_context(viewport=SIZES["wide"])
    page = ctx.new_page()
    page.set_default_timeout(15000)
    try:
        _login(page, bridge.url)
        page.goto(bridge.url + "/ui/log")
        page.focus("#f-number")
        page.keyboard.type("+41 79 302 67 27")
        page.keyboard.press("Enter")  # submits the filter form
        page.wait_for_url("**/ui/log?*number=*")
        assert page.locator("#log-table tbody tr").count() == 1
        page.focus("#log-table details summary")
        page.keyboard.press("Enter")  # details on demand
        assert page.is_visible('#log-table [data-cell="history"]')
        page.goto(bridge.url + "/ui/dashboard")
        page.focus("#d-range")
        page.keyboard.press("ArrowUp")  # last 24 hours -> last hour
        page.focus("#d-apply")
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/dashboard?range=hour*")
        assert "last hour" in page.inner_text("#h-traffic")
    finally:
        ctx.close()
