"""The URL builder and try-it in headless Chromium at 1280×900 and 390×844 (issue 18 items 5 and 8, and the
try page of item 4): labelled fields (axe-core), errors beside the paste box and their fields, a pasted URL
that resets the form, keyboard-only use, no sideways scrolling; screenshots in tests/artifacts/."""

from __future__ import annotations

import json

import pytest

from tests.axe import axe_violations
from tests.test_browser import ARTIFACTS, browser  # noqa: F401 - the session's browser fixture

SIZES = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
INFOBIP = ("https://xxxxx.api.infobip.com/sms/1/text/query?username=myUsername&password=myPassword"
           "&to=%phoneNumber%&text=%message")
FIELDS = "main input:not([type=hidden]), main select, main textarea"
# The widest right edge of anything in the page's main content, against the viewport.
WIDEST = """() => Math.max(...Array.from(document.querySelectorAll('main *'))
    .filter((e) => e.offsetParent !== null && !e.closest('.table-scroll'))
    .map((e) => e.getBoundingClientRect().right)) - window.innerWidth"""
UNNAMED = f"""() => Array.from(document.querySelectorAll('{FIELDS}')).filter((e) => !(e.labels && e.labels.length)
    && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')).map((e) => e.id || e.outerHTML)"""


@pytest.fixture
def open_page(browser):  # noqa: F811
    contexts, errors = [], []

    def make(url: str, size: str = "wide", path: str = "/ui/builder"):
        ctx = browser.new_context(viewport=SIZES[size])
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(10000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + path)
        page.fill("#username", "admin")
        page.fill("#password", "admin")
        page.click("#login")
        page.wait_for_url("**" + path)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def _built(page) -> None:
    page.wait_for_function("() => document.getElementById('url').value !== ''")


@pytest.mark.parametrize("size", list(SIZES))
def test_builder_and_try_are_labelled_accessible_and_fit_the_screen(open_page, bridge, size):
    page = open_page(bridge.url, size)
    _built(page)
    for path in ("/ui/builder", "/ui/try"):
        page.goto(bridge.url + path)
        page.wait_for_selector("#value-to" if path.endswith("builder") else "#try-to")
        if path.endswith("builder"):
            _built(page)
        assert page.locator(FIELDS).count() >= 8
        assert page.evaluate(UNNAMED) == []
        found = [v for v in axe_violations(page) if v["id"] not in ("region", "landmark-unique")]
        assert found == [], json.dumps(found)
        assert page.evaluate(WIDEST) <= 0.5, "the content is wider than the screen"
        page.screenshot(path=str(ARTIFACTS / f"builder-{size}-{path.rsplit('/', 1)[1]}.png"), full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_pasting_keeps_the_user_names_the_unknown_caller_and_resets_the_form(open_page, bridge, size):
    page = open_page(bridge.url, size)
    _built(page)
    page.select_option("#fmt", "xml")
    page.fill("#paste", INFOBIP)
    page.click("#parse")
    page.wait_for_function("() => document.getElementById('url').value.includes('myUsername')")
    assert page.input_value("#url") == (f"{bridge.url}/sms/1/text/query?username=myUsername&password=YOUR_PASSWORD"
                                        "&to=%phoneNumber%&text=%message")
    assert page.input_value("#username") == "myUsername"
    assert "not configured here" in page.inner_text("#username option:checked")
    assert "'myUsername' is not configured" in page.inner_text("#build-notes")
    assert "password was removed" in page.inner_text("#notes") and "myPassword" not in page.content()
    assert page.input_value("#fmt") == ""  # the previous form's .xml is not kept
    page.screenshot(path=str(ARTIFACTS / f"builder-{size}-pasted-infobip.png"), full_page=True)

    page.fill("#paste", "curl -G 'http://10.1.1.1:8080/t/alarm' -u demo:pw --data-urlencode 'phone={ALERT.SENDTO}' "
                        "--data-urlencode 'msg={ALERT.MESSAGE}'")
    page.click("#parse")
    page.wait_for_function("() => document.getElementById('url').value.includes('/t/alarm')")
    assert page.input_value("#url") == (f"{bridge.url}/t/alarm?username=demo&password=YOUR_PASSWORD"
                                        "&phone={ALERT.SENDTO}&msg={ALERT.MESSAGE}")
    assert page.input_value("#curl") == (f"curl -sS -G {bridge.url}/t/alarm --data-urlencode 'username=demo' "
                                         "--data-urlencode 'password=YOUR_PASSWORD' --data-urlencode "
                                         "'phone={ALERT.SENDTO}' --data-urlencode 'msg={ALERT.MESSAGE}'")
    assert page.input_value("#target") == "alarm" and page.input_value("#style") == "brace"
    assert page.locator("#username option[data-unknown]").count() == 0  # nothing of the previous paste
    assert page.inner_text("#build-notes") == ""


@pytest.mark.parametrize("size", list(SIZES))
def test_errors_show_beside_the_paste_box_and_their_fields_and_no_url_is_handed_out(open_page, bridge, size):
    page = open_page(bridge.url, size)
    _built(page)
    page.select_option("#mode-to", "value")
    page.fill("#value-to", "abc")
    page.wait_for_function("() => document.getElementById('error').textContent.includes(\"'abc'\")")
    assert "to: 'abc' is not a phone number" in page.inner_text("#error") and page.is_visible("#error")
    assert page.get_attribute("#value-to", "aria-invalid") == "true"
    described = page.get_attribute("#value-to", "aria-describedby")
    assert "is not a phone number" in page.inner_text(f"#{described}")
    assert page.input_value("#url") == "" and page.input_value("#curl") == "" and page.is_disabled("#copy-url")
    box = page.locator("#error").bounding_box()
    paste = page.locator("#paste").bounding_box()
    assert box["y"] - (paste["y"] + paste["height"]) < 120, "the error is not beside the paste box"
    page.screenshot(path=str(ARTIFACTS / f"builder-{size}-errors.png"), full_page=True)
    page.fill("#value-to", "41793026727")
    _built(page)
    assert page.is_hidden("#error") and page.get_attribute("#value-to", "aria-invalid") is None
    page.fill("#base", "not a url")
    page.wait_for_selector("#error:not([hidden])")
    assert page.get_attribute("#base", "aria-invalid") == "true"
    assert "is not an http:// or https:// address" in page.inner_text("#err-base")
    page.fill("#base", bridge.url)
    _built(page)
    page.fill("#paste", "http://x/nope?to=1")
    page.click("#parse")
    page.wait_for_selector("#error:not([hidden])")
    assert "neither Infobip's query API" in page.inner_text("#error")
    assert page.get_attribute("#paste", "aria-invalid") == "true" and page.input_value("#url") == ""


def test_keyboard_only_paste_preset_and_copy(open_page, bridge):
    page = open_page(bridge.url)
    _built(page)
    page.focus("#paste")
    page.keyboard.insert_text("http://old-host:8080/sms/1/text/query?username=demo&to=$CONTACTPAGER$&text=$SERVICEOUTPUT$")
    page.keyboard.press("Enter")  # Enter reads the pasted URL
    page.wait_for_function("() => document.getElementById('url').value.includes('$CONTACTPAGER$')")
    page.focus("#preset")
    for _ in range(page.locator("#preset option").count()):
        if page.input_value("#preset") == "zabbix":
            break
        page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.getElementById('url').value.includes('{ALERT.SENDTO}')")
    assert page.is_hidden("#value-notifyUrl")  # the optional parameters left out are folded away
    page.focus("#more-params")
    page.keyboard.press("Enter")
    assert page.is_visible("#mode-notifyUrl") and page.get_attribute("#more-params", "aria-expanded") == "true"
    page.focus("#mode-notifyUrl")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # "leave out" -> "placeholder"
    page.keyboard.press("Tab")
    page.keyboard.type("DLR.URL")
    page.wait_for_function("() => document.getElementById('url').value.endsWith('&notifyUrl={DLR.URL}')")
    page.focus("#url")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "copy-url"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('copy-url').textContent === 'Copied'")


@pytest.mark.parametrize("size", list(SIZES))
def test_try_it_multiline_errors_as_errors_no_stale_preview_and_a_link_to_the_log(open_page, bridge, sandbox, size):
    page = open_page(bridge.url, size, "/ui/try")
    page.wait_for_selector("#try-text")
    assert page.evaluate("document.getElementById('try-text').tagName") == "TEXTAREA"
    page.fill("#try-to", "41793026727")
    page.fill("#try-text", "Pump 3\nfailed at 100%\n  — check it")
    page.wait_for_function("() => document.getElementById('pv-parts').textContent === '1'")
    assert page.is_hidden("#try-languageCode")
    page.click("#try-more")
    page.fill("#try-languageCode", "XX")  # an error: the preview is cleared, the error says why
    page.wait_for_selector("#pv-error:not([hidden])")
    assert "languageCode" in page.inner_text("#pv-error") and page.inner_text("#pv-parts") == "–"
    page.fill("#try-languageCode", "")
    page.wait_for_function("() => document.getElementById('pv-parts').textContent === '1'")
    assert page.is_hidden("#pv-error")

    page.fill("#try-password", "wrong")
    page.click("#send")
    page.wait_for_function("() => document.getElementById('try-status').textContent.startsWith('401')")
    assert page.get_attribute("#try-status", "class") == "error"
    assert page.is_visible("#try-error") and "{" not in page.inner_text("#try-error")  # words, not raw JSON
    page.screenshot(path=str(ARTIFACTS / f"try-{size}-refused.png"), full_page=True)

    page.fill("#try-password", "demo")
    page.fill("#try-to", "abc")
    page.click("#send")
    page.wait_for_function("() => document.getElementById('try-to').getAttribute('aria-invalid') === 'true'")
    assert "to: 'abc' is not a phone number" in page.inner_text("#try-error")

    page.fill("#try-to", "41793026727")
    page.click("#send")
    page.wait_for_selector("a.log-link")
    assert page.inner_text("#try-status").startswith("200") and page.is_hidden("#try-error")
    assert sandbox.messages()[-1]["text"] == "Pump 3\nfailed at 100%\n  — check it"  # newlines kept
    href = page.get_attribute("a.log-link", "href")
    mid = json.loads(page.text_content("#try-response"))["messages"][0]["messageId"]
    assert href.endswith("/ui/log?messageId=" + mid)
    page.screenshot(path=str(ARTIFACTS / f"try-{size}-sent.png"), full_page=True)
    page.click("a.log-link")
    page.wait_for_url("**/ui/log?messageId=*")
    assert page.locator("#log-table tbody tr").count() == 1
