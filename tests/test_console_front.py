"""Issue 18, items 1, 7 and 9 over real HTTP: the front door and the favicon, the login's demo hint, a session
that ends says "logged out" and returns to the same page and filter, and the command line chooses the same
ports and addresses as the server."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from app import main
from gateway.clock import ManualClock
from tests.conftest import DEMO, default_raw_config


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def _login(url: str, s: requests.Session, next_: str = "") -> requests.Response:
    page = s.get(url + "/ui/login", timeout=10)
    return s.post(url + "/ui/login", data={"username": "admin", "password": "admin", "csrf_token": _csrf(page.text),
                                           "next": next_}, allow_redirects=False, timeout=10)


def test_the_front_door_says_what_runs_here_and_links_console_api_and_health(bridge):
    resp = bridge.get("/")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert "smsbridge is running here" in resp.text and "no real SMS is sent" in resp.text
    links = dict(re.findall(r'<a href="([^"]+)" id="([^"]+)"', resp.text))
    assert set(links.values()) == {"console", "openapi", "healthz", "readyz"}
    for href in links:  # every link answers (the console through its login)
        assert bridge.get(href).status_code == 200, href
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    icon = bridge.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert '<link rel="icon" href="/favicon.ico">' in bridge.get("/ui/login").text


def test_front_door_with_the_console_off(make_bridge):
    bridge = make_bridge(lambda raw: raw["ui"].update(enabled=False))
    resp = bridge.get("/")
    assert resp.status_code == 200 and "The console is off" in resp.text and 'id="console"' not in resp.text


def test_login_page_says_where_the_demo_credentials_are_on_the_sandbox(bridge):
    page = bridge.get("/ui/login").text
    assert 'id="demo-hint"' in page and "ui.admin_user and ui.admin_password" in page


def test_an_ended_session_says_logged_out_and_returns_to_the_same_page_and_filter(make_bridge):
    clock = ManualClock()
    bridge = make_bridge(clock=clock)
    s = requests.Session()
    assert _login(bridge.url, s).status_code == 302
    page = s.get(bridge.url + "/ui/log?status=DELIVERED_TO_HANDSET&to=41793026727", timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    # a live session with a wrong token: the CSRF message, and only then
    bad = s.post(bridge.url + "/ui/api/build", json={}, headers={"X-CSRF-Token": "stale"}, timeout=10)
    assert bad.status_code == 400 and "CSRF" in bad.json()["requestError"]["serviceException"]["text"]

    clock.advance(bridge.app.extensions["smsbridge"].config.ui.session_minutes * 60 + 1)  # the session ends
    api = s.post(bridge.url + "/ui/api/build", json={}, headers={"X-CSRF-Token": token}, timeout=10)
    assert api.status_code == 401
    assert api.json()["requestError"]["serviceException"]["text"].startswith("Logged out: the session ended")
    again = s.get(bridge.url + "/ui/log?status=DELIVERED_TO_HANDSET&to=41793026727", allow_redirects=False,
                  timeout=10)
    assert again.status_code == 302
    query = parse_qs(urlsplit(again.headers["Location"]).query)
    assert query["ended"] == ["1"] and query["next"] == ["/ui/log?status=DELIVERED_TO_HANDSET&to=41793026727"]
    login_page = s.get(bridge.url + again.headers["Location"], timeout=10).text
    assert "You were logged out" in login_page and "CSRF" not in login_page
    back = _login(bridge.url, s, next_=query["next"][0])
    assert back.status_code == 302 and back.headers["Location"].endswith(
        "/ui/log?status=DELIVERED_TO_HANDSET&to=41793026727")

    # never logged in on this browser: "log in", not "logged out"
    fresh = requests.post(bridge.url + "/ui/api/build", json={}, timeout=10)
    assert fresh.json()["requestError"]["serviceException"]["text"] == "Log in to the admin UI first"
    # an explicit logout forgets the browser: no "logged out" notice for the next visitor
    token = re.search(r'name="csrf-token" content="([^"]+)"', s.get(bridge.url + "/ui/builder", timeout=10).text)
    s.post(bridge.url + "/ui/logout", data={"csrf_token": token.group(1)}, timeout=10)
    assert "smsbridge_ui_was" not in s.cookies


@pytest.fixture()
def config_file(tmp_path):
    def write(**server):
        raw = default_raw_config()
        raw["store"] = {"path": str(tmp_path / "cli.db")}
        raw["server"].update(server)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return str(path)
    return write


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_url_uses_the_port_the_server_would_and_the_public_url(config_file, capsys, monkeypatch):
    path = config_file()
    code, out, err = _run(capsys, "--config", path, "url", "query", "--port", "9123")
    assert code == 0 and out.startswith("http://127.0.0.1:9123/sms/1/text/query?username=demo&password=YOUR_PASSWORD")
    assert "caller demo" in err
    monkeypatch.setenv("PORT", "9234")
    assert _run(capsys, "--config", path, "url", "query")[1].startswith("http://127.0.0.1:9234/")
    path = config_file(public_url="https://sms.example.net/bridge")
    assert _run(capsys, "--config", path, "url", "query", "--username", "alarm")[1].startswith(
        "https://sms.example.net/bridge/sms/1/text/query?username=alarm&password=YOUR_PASSWORD")


def test_inject_inbound_goes_to_the_sandbox_port_it_is_given(sandbox, bridge, config_file, capsys, monkeypatch):
    path, port = config_file(), str(urlsplit(sandbox.url).port)
    code, out, _ = _run(capsys, "--config", path, "inject-inbound", "--from", "41793026727", "--to", "41793026834",
                        "--text", "port flag", "--sandbox-port", port)
    assert code == 0
    assert "port flag" in requests.get(sandbox.url + "/sandbox/inbound", timeout=5).text
    monkeypatch.setenv("SANDBOX_PORT", port)
    assert _run(capsys, "--config", path, "inject-inbound", "--from", "41793026727", "--to", "41793026834",
                "--text", "port env")[0] == 0
    # what answers on the port is the bridge, not a sandbox: said, not "succeeded"
    code, _, err = _run(capsys, "--config", path, "inject-inbound", "--from", "41793026727", "--to", "41793026834",
                        "--text", "x", "--sandbox-port", str(urlsplit(bridge.url).port))
    assert code == 1 and "is not the smsbridge sandbox" in err


def test_send_errors_read_like_the_ui(bridge, config_file, capsys):
    code, out, err = _run(capsys, "--config", config_file(), "send", "alarm", "phone=%phoneNumber%", "msg=x",
                          "--url", bridge.url, "--username", "demo", "--password", DEMO["password"])
    assert code == 1 and err.startswith("error: HTTP 400: ")
    assert re.search(r"^  phone: .*placeholder", err, re.M), err
    assert '"requestError"' in out  # the answer itself stays on stdout for scripts


def test_configuration_view_shows_callers_templates_rules_upstream_and_no_secret(make_bridge):
    secrets = {"pw-Zq81demo", "key-Zq81demo", "adm-Zq81pw", "tok-Zq81inbound-0123456789", "s3cr3t-cb"}

    def mutate(raw):
        demo = raw["callers"]["demo"]
        demo.update(password="pw-Zq81demo", api_key="key-Zq81demo")
        demo["callback"] = {"url": "https://hooks.example.net/dlr?token=s3cr3t-cb&id=%i"}
        raw["ui"]["admin_password"] = "adm-Zq81pw"
        raw["inbound"]["token"] = "tok-Zq81inbound-0123456789"

    bridge = make_bridge(mutate)
    s = requests.Session()
    page = s.get(bridge.url + "/ui/login", timeout=10)
    assert s.post(bridge.url + "/ui/login", data={"username": "admin", "password": "adm-Zq81pw",
                                                  "csrf_token": _csrf(page.text)}, timeout=10).status_code == 200
    page = s.get(bridge.url + "/ui/config", timeout=10)
    assert page.status_code == 200
    text = page.text
    for anchor in ("callers", "templates", "inbound", "upstream"):
        assert f'<section id="{anchor}"' in text
    assert "<dt>scopes</dt>" in text and "<dt>mode</dt>" in text and "<dt>allow</dt>" in text
    assert "<dt>keyword</dt>" in text  # the inbound rule of config.yaml
    upstreams = text[text.index('<section id="upstream"'):text.index('<section id="ui"')]
    assert "<dt>primary</dt>" in upstreams and "<dt>failures_to_open</dt>" in upstreams  # each, by name
    ready = re.search(r'id="url-alarm">([^<]+)<', text).group(1)
    assert ready.startswith(bridge.url + "/t/alarm?username=demo&amp;password=YOUR_PASSWORD&amp;phone=%phone%")
    for secret in secrets:
        assert secret not in text, f"{secret} reached the page"
    assert "•••• (set)" in text and "token=MASKED&amp;id=%i" in text
    from gateway.configview import plain
    assert plain({"store_url": "postgresql://bridge:pg-pass-9@db.example.net/sms"}) == {
        "store_url": "postgresql://db.example.net/sms"}
