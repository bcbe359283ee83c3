"""Failed logins cost the attacker, not the bridge: free failures, then doubling lockouts answered 429 with
Retry-After before any hash runs; per caller name and per client address; API and admin UI alike; wrong
names cost what wrong passwords cost; logout revokes a UI session server-side; failures in /metrics."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from gateway.auth import hash_password
from tests.helpers import wait_for
from tests.test_ui import _csrf, login

Q = {"to": "41793026727", "text": "hello"}


def _throttle(free: int = 3, first: float = 1.0):
    def mutate(raw):
        raw["auth"] = {"free_failures": free, "first_delay": first, "max_delay": 60}
        raw["ui"] = {**raw.get("ui", {}), "enabled": True}
    return mutate


def _send(bridge, user="demo", password="demo"):
    return bridge.get("/sms/1/text/query", params={"username": user, "password": password, **Q})


def test_api_lockout_after_free_failures_then_a_correct_login_works_again(make_bridge, sandbox):
    bridge = make_bridge(_throttle(free=3, first=1.0))
    for _ in range(3):
        assert _send(bridge, password="wrong").status_code == 401
    assert _send(bridge, password="wrong").status_code == 401  # the 4th failure locks the name for 1 s
    locked = _send(bridge)  # even the right password is not checked while locked
    assert locked.status_code == 429
    assert locked.json()["requestError"]["serviceException"]["messageId"] == "TOO_MANY_REQUESTS"
    assert 1 <= int(locked.headers["Retry-After"]) <= 2
    assert not sandbox.sends()
    wait_for(lambda: _send(bridge).status_code == 200, timeout=5, interval=0.2, what="the lock to end")
    assert len(sandbox.sends()) == 1


def test_the_delay_doubles_and_the_address_is_counted_across_names(make_bridge):
    bridge = make_bridge(_throttle(free=2, first=1.0))
    for name in ("alice", "bob"):  # unknown names: the address counts them all
        assert _send(bridge, user=name, password="x").status_code == 401
    assert _send(bridge, user="carol", password="x").status_code == 401  # third failure: 1 s lock
    r = _send(bridge, user="dave", password="x")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 2
    wait_for(lambda: _send(bridge, user="erin", password="x").status_code == 401, timeout=5, interval=0.2,
             what="the first lock to end")  # that was the fourth failure: now 2 s
    r = _send(bridge, user="frank", password="x")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 2
    m = bridge.get("/metrics").text
    assert 'smsbridge_auth_failures_total{kind="api"} 4.0' in m
    refused = float(m.split('smsbridge_auth_throttled_total{kind="api"} ')[1].split()[0])
    assert refused >= 2  # the two above, and whatever the wait saw


def test_a_locked_attempt_costs_no_hash(make_bridge):
    hashed = hash_password("s3cret-pass")

    def mutate(raw):
        _throttle(free=1, first=30)(raw)
        raw["callers"]["demo"].pop("password")
        raw["callers"]["demo"]["password_hash"] = hashed

    bridge = make_bridge(mutate)
    t0 = time.perf_counter()
    assert _send(bridge, password="wrong").status_code == 401
    checked = time.perf_counter() - t0
    assert _send(bridge, password="wrong").status_code == 401  # locks for 30 s
    t0 = time.perf_counter()
    for _ in range(20):
        assert _send(bridge, password="wrong").status_code == 429
    refused = (time.perf_counter() - t0) / 20
    assert refused < checked / 3, (refused, checked)  # the pbkdf2 hash no longer runs


def test_wrong_names_cost_what_wrong_passwords_cost(make_bridge):
    hashed = hash_password("s3cret-pass")

    def mutate(raw):
        _throttle(free=1000)(raw)
        raw["callers"]["demo"].pop("password")
        raw["callers"]["demo"]["password_hash"] = hashed

    bridge = make_bridge(mutate)

    def median(user: str) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert _send(bridge, user=user, password="guess").status_code == 401
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    known, unknown = median("demo"), median("no-such-caller")
    assert 0.5 < unknown / known < 2, (unknown, known)  # before: 1.6 ms against 112 ms


def test_ui_login_is_throttled_and_logout_revokes_the_session(make_bridge):
    bridge = make_bridge(_throttle(free=2, first=30))
    s, csrf = login(bridge.url)
    stolen = dict(s.cookies)
    assert requests.get(bridge.url + "/ui/builder", cookies=stolen, timeout=10).status_code == 200
    r = s.post(bridge.url + "/ui/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    again = requests.get(bridge.url + "/ui/builder", cookies=stolen, allow_redirects=False, timeout=10)
    assert again.status_code == 302 and "/ui/login" in again.headers["Location"]  # the copied cookie is dead

    t = requests.Session()
    page = t.get(bridge.url + "/ui/login", timeout=10)
    for _ in range(3):
        r = t.post(bridge.url + "/ui/login", data={"username": "admin", "password": "nope",
                                                    "csrf_token": _csrf(page.text), "next": ""}, timeout=10)
        assert r.status_code == 401
    r = t.post(bridge.url + "/ui/login", data={"username": "admin", "password": "admin",
                                                "csrf_token": _csrf(page.text), "next": ""}, timeout=10)
    assert r.status_code == 429 and "Too many failed logins" in r.text and int(r.headers["Retry-After"]) > 1
    assert 'smsbridge_auth_failures_total{kind="ui"} 3.0' in bridge.get("/metrics").text


def test_an_empty_authorization_header_still_counts_the_name_it_checks(make_bridge, sandbox):
    """``Authorization:`` with no value is absent to the check, which checks username/password: that name is
    counted. Each guess comes from an address of its own (a trusted proxy's ``X-Forwarded-For``), so only
    the name can lock; the SMSEagle login/pass go the same way."""
    def mutate(raw):
        _throttle(free=3, first=30.0)(raw)
        raw["server"]["trusted_proxies"] = ["127.0.0.0/8"]

    bridge = make_bridge(mutate)
    for i in range(4):  # 3 free, the 4th locks the name
        r = bridge.get("/sms/1/text/query", params={"username": "demo", "password": f"guess{i}", **Q},
                       headers={"Authorization": "", "X-Forwarded-For": f"10.1.0.{i + 1}"})
        assert r.status_code == 401
    for i, send in enumerate((
        lambda h: bridge.get("/sms/1/text/query", params={"username": "demo", "password": "demo", **Q}, headers=h),
        lambda h: bridge.get("/http_api/send_sms", headers=h,
                             params={"login": "demo", "pass": "demo", "to": "41793026727", "message": "m"}),
    )):
        locked = send({"Authorization": "", "X-Forwarded-For": f"10.1.1.{i + 1}"})
        assert locked.status_code == 429 and 1 <= int(locked.headers["Retry-After"]) <= 31
    assert not sandbox.sends()


def _hashed_demo(free: int):
    hashed = hash_password("s3cret-pass")

    def mutate(raw):
        raw["server"]["trusted_proxies"] = ["127.0.0.0/8"]
        raw["auth"] = {"free_failures": free, "first_delay": 30, "max_delay": 900}
        raw["callers"]["demo"].pop("password")
        raw["callers"]["demo"]["password_hash"] = hashed
    return mutate


def _burst(bridge, n: int, password) -> list[int]:
    def one(i: int) -> int:
        return requests.get(bridge.url + "/sms/1/text/query", params={"username": "demo", "password": password(i), **Q},
                            headers={"X-Forwarded-For": f"10.5.{i // 250}.{i % 250 + 1}"}, timeout=60).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_guesses_cost_no_more_hashes_than_sequential_ones(make_bridge, sandbox):
    """40 guesses at once (each from an address of its own): a guess is held in flight against the name's
    count, so at most free_failures + 1 passwords are checked (the free ones and the one that locks, as one
    after the other); the rest are refused unchecked."""
    bridge = make_bridge(_hashed_demo(free=5))
    codes = _burst(bridge, 40, lambda i: f"guess{i}")
    assert codes.count(401) == 6 and codes.count(429) == 34
    assert not sandbox.sends()


def test_concurrent_correct_logins_are_never_refused(make_bridge, sandbox):
    """A caller's first 20 concurrent logins with a password not yet verified: those past the free count wait
    for one to verify it, then pass without a reservation."""
    bridge = make_bridge(_hashed_demo(free=2))
    assert _burst(bridge, 20, lambda i: "s3cret-pass") == [200] * 20
