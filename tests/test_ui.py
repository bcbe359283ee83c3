"""The admin UI over HTTP: login, session cookie, CSRF, the builder's JSON endpoints, no secret on a page."""

from __future__ import annotations

import re

import requests
from werkzeug.security import generate_password_hash

from tests.conftest import DEMO


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(url: str, user: str = "admin", password: str = "admin") -> tuple[requests.Session, str]:
    """A logged-in browser-like session and its CSRF token."""
    s = requests.Session()
    page = s.get(url + "/ui/login", timeout=10)
    resp = s.post(url + "/ui/login", data={"username": user, "password": password, "csrf_token": _csrf(page.text),
                                           "next": ""}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    builder = s.get(url + "/ui/builder", timeout=10)
    assert builder.status_code == 200
    return s, re.search(r'name="csrf-token" content="([^"]+)"', builder.text).group(1)


def test_pages_need_login_and_keep_the_path(bridge):
    resp = bridge.get("/ui/builder", allow_redirects=False)
    assert resp.status_code == 302 and "/ui/login?next=/ui/builder" in resp.headers["Location"]
    api = requests.post(bridge.url + "/ui/api/build", json={}, timeout=10)
    assert api.status_code == 401  # no session: "log in" comes before any CSRF check (issue 18 item 7)
    assert api.json()["requestError"]["serviceException"]["text"] == "Log in to the admin UI first"
    s = requests.Session()
    s.get(bridge.url + "/ui/login", timeout=10)
    token = _csrf(s.get(bridge.url + "/ui/login", timeout=10).text)
    unauth = s.post(bridge.url + "/ui/api/build", json={}, headers={"X-CSRF-Token": token}, timeout=10)
    assert unauth.status_code == 401
    assert unauth.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"


def test_login_cookie_flags_and_redirect_to_next(bridge):
    s = requests.Session()
    page = s.get(bridge.url + "/ui/login?next=/ui/try", timeout=10)
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    resp = s.post(bridge.url + "/ui/login", data={"username": "admin", "password": "admin", "next": "/ui/try",
                                                  "csrf_token": _csrf(page.text)}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ui/try")
    evil = requests.Session()
    p2 = evil.get(bridge.url + "/ui/login", timeout=10)
    resp = evil.post(bridge.url + "/ui/login", data={"username": "admin", "password": "admin",
                                                      "next": "//evil.example/ui/", "csrf_token": _csrf(p2.text)},
                     allow_redirects=False, timeout=10)
    assert resp.headers["Location"].endswith("/ui/dashboard")  # no open redirect


def test_wrong_password_and_missing_csrf_are_refused(bridge):
    s = requests.Session()
    token = _csrf(s.get(bridge.url + "/ui/login", timeout=10).text)
    bad = s.post(bridge.url + "/ui/login", data={"username": "admin", "password": "nope", "csrf_token": token},
                 timeout=10)
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    no_csrf = s.post(bridge.url + "/ui/login", data={"username": "admin", "password": "admin"}, timeout=10)
    assert no_csrf.status_code == 400 and "CSRF" in no_csrf.text
    assert s.get(bridge.url + "/ui/builder", allow_redirects=False, timeout=10).status_code == 302


def test_logout_needs_csrf_and_ends_the_session(bridge):
    s, token = login(bridge.url)
    assert s.post(bridge.url + "/ui/logout", data={}, allow_redirects=False, timeout=10).status_code == 400
    out = s.post(bridge.url + "/ui/logout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert s.get(bridge.url + "/ui/builder", allow_redirects=False, timeout=10).status_code == 302


def test_security_headers_on_pages(bridge):
    s, _ = login(bridge.url)
    page = s.get(bridge.url + "/ui/builder", timeout=10)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert "<script src=\"/ui/static/ui.js\"></script>" in page.text and "http" not in page.text.split("<main")[0]
    js = s.get(bridge.url + "/ui/static/ui.js", timeout=10)
    assert js.status_code == 200 and "X-CSRF-Token" in js.text


def test_build_parse_default_and_preview_endpoints(bridge):
    s, token = login(bridge.url)
    h = {"X-CSRF-Token": token}
    d = s.post(bridge.url + "/ui/api/default", json={"target": "alarm", "style": "percent", "username": "demo"},
               headers=h, timeout=10).json()
    assert [f["param"] for f in d["spec"]["fields"]] == ["phone", "msg", "site", "charset", "idempotencyKey"]
    assert [p["role"] for p in d["params"]] == ["to", "text", "", "", ""]
    for f in d["spec"]["fields"]:
        if f["param"] == "phone":
            f["value"] = "phoneNumber"
        if f["param"] == "msg":
            f["value"] = "message"
    built = s.post(bridge.url + "/ui/api/build", json={"spec": d["spec"]}, headers=h, timeout=10).json()
    assert built["url"] == (f"{bridge.url}/t/alarm?username=demo&password=YOUR_PASSWORD"
                            "&phone=%phoneNumber%&msg=%message%")
    assert built["curl"] == (f"curl -sS -G {bridge.url}/t/alarm --data-urlencode 'username=demo' "
                             "--data-urlencode 'password=YOUR_PASSWORD' --data-urlencode 'phone=%phoneNumber%' "
                             "--data-urlencode 'msg=%message%'")
    back = s.post(bridge.url + "/ui/api/parse", json={"url": built["url"]}, headers=h, timeout=10).json()
    assert back["spec"]["fields"] == [f for f in d["spec"]["fields"] if f["mode"] != "omit"]
    preset = s.post(bridge.url + "/ui/api/default", json={"target": "query", "preset": "zabbix"}, headers=h,
                    timeout=10).json()
    b2 = s.post(bridge.url + "/ui/api/build", json={"spec": preset["spec"]}, headers=h, timeout=10).json()
    assert b2["url"].endswith("/sms/1/text/query?username=demo&password=YOUR_PASSWORD"
                              "&to={ALERT.SENDTO}&text={ALERT.MESSAGE}")  # presets carry credentials
    bad = s.post(bridge.url + "/ui/api/parse", json={"url": "http://x/nope"}, headers=h, timeout=10)
    assert bad.status_code == 400 and "url" in bad.json()["requestError"]["serviceException"]["validationErrors"]
    pv = s.post(bridge.url + "/ui/api/preview", json={"target": "alarm", "values": {"msg": "Grüße ½"}},
                headers=h, timeout=10).json()
    assert pv["originalText"] == "[ALARM] HQ: Grüße ½" and pv["encoding"] == "UCS2" and pv["parts"] == 1
    tr = s.post(bridge.url + "/ui/api/preview", json={"target": "query",
                                                      "values": {"text": "Ωμέγα", "transliteration": "GREEK"}},
                headers=h, timeout=10).json()
    assert (tr["encoding"], tr["textPreview"], tr["parts"]) == ("GSM7", "ΩMEΓA", 1)


def test_pages_never_show_a_stored_password(make_bridge):
    def mutate(raw):
        raw["callers"]["demo"]["password"] = "caller-pw-never-shown"
        raw["ui"] = {"enabled": True, "admin_user": "root", "admin_password_hash": generate_password_hash("admin-pw-42", "pbkdf2:sha256:1000")}

    b = make_bridge(mutate)
    s, token = login(b.url, "root", "admin-pw-42")
    texts = [s.get(b.url + p, timeout=10).text for p in ("/ui/builder", "/ui/try", "/ui/static/ui.js")]
    texts.append(s.post(b.url + "/ui/api/default", json={"target": "query", "username": "demo"},
                        headers={"X-CSRF-Token": token}, timeout=10).text)
    for t in texts:
        assert "caller-pw-never-shown" not in t and "admin-pw-42" not in t and "pbkdf2" not in t


def test_try_page_labels_the_upstream(bridge):
    s, _ = login(bridge.url)
    page = s.get(bridge.url + "/ui/try", timeout=10).text
    assert "Sandbox: the embedded Infobip stand-in. No real SMS is sent." in page


def test_ui_is_off_unless_enabled(make_bridge):
    b = make_bridge(lambda raw: raw.pop("ui"))
    assert b.get("/ui/login").status_code == 404
    assert b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x"}).status_code == 200


def test_a_browsers_accept_header_gets_json_without_an_extension(bridge):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    resp = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x"},
                      headers={"Accept": browser})
    assert resp.headers["Content-Type"].startswith("application/json") and resp.json()["messages"]
    xml = bridge.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "x"},
                     headers={"Accept": "application/xml"})
    assert xml.headers["Content-Type"].startswith("application/xml")
