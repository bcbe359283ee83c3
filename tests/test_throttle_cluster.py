"""Failed logins are the cluster's, not a process's (gateway/throttle.py, gateway/store/throttle.py): two
bridges on one store (a SQLite file, or one PostgreSQL database) count every failure once, lock a name after
``free_failures`` in total, refuse it on both within ``auth.sync_interval``, and a success clears it
everywhere. Each client request comes from an address of its own (``X-Forwarded-For`` from a trusted
loopback proxy), so only the name's count is at stake."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gateway.errors import Throttled
from gateway.store import throttle as shared
from gateway.store.engine import Database
from tests.helpers import wait_for
from tests.workers import WorkersBridge, workers_config

Q = {"to": "41793026727", "text": "hello"}
SYNC = 0.3  # auth.sync_interval of these tests
_addresses = (f"10.9.{i // 250}.{i % 250 + 1}" for i in itertools.count())


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The one store section both bridges of a test get."""
    if request.param == "sqlite":
        return {"path": str(tmp_path / "shared.db")}
    return {"url": request.getfixturevalue("pg_database")()}


def _pair(make_bridge: Callable[..., Any], store: dict[str, Any], free: int, first: float,
          **auth: float) -> tuple[Any, Any]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["store"] = dict(store)
        raw["server"]["trusted_proxies"] = ["127.0.0.0/8"]
        raw["auth"] = {"free_failures": free, "first_delay": first, "max_delay": 60, "sync_interval": SYNC, **auth}

    return make_bridge(mutate), make_bridge(mutate)


def _send(bridge: Any, password: str) -> Any:
    return bridge.get("/sms/1/text/query", params={"username": "demo", "password": password, **Q},
                      headers={"X-Forwarded-For": next(_addresses)})


def _locked_on(bridge: Any) -> bool:
    """Whether ``bridge`` refuses the name demo now (asked of its throttle, which counts nothing)."""
    try:
        bridge.app.extensions["smsbridge"].throttle.check(["name:demo"], "probe")
    except Throttled:
        return True
    return False


def _refused(r: Any) -> bool:
    return r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 31


def test_failures_on_two_bridges_lock_the_name_after_the_free_ones_in_total_and_both_refuse_it(
        make_bridge, store, sandbox):
    a, b = _pair(make_bridge, store, free=3, first=30)
    for bridge in (a, b, a):  # free: 3 in total
        assert _send(bridge, "wrong").status_code == 401
    assert _send(b, "wrong").status_code == 401  # the cluster's 4th: locks the name for 30 s
    assert _refused(_send(b, "demo"))  # the right password is not even checked
    locked = time.monotonic()
    wait_for(lambda: _locked_on(a), timeout=SYNC + 5, interval=0.02, what="the other bridge to learn the lock")
    assert time.monotonic() - locked < SYNC + 2  # within the sync interval (and a slow machine's slack)
    assert _refused(_send(a, "demo")) and _refused(_send(b, "demo"))
    assert not sandbox.sends()


def test_a_success_on_one_bridge_clears_the_name_for_both(make_bridge, store, sandbox):
    a, b = _pair(make_bridge, store, free=2, first=0.5)
    for _ in range(3):  # all on A: the third locks the name for 0.5 s
        assert _send(a, "wrong").status_code == 401
    wait_for(lambda: _locked_on(b), timeout=SYNC + 5, interval=0.02, what="B to learn the lock")
    wait_for(lambda: _send(b, "demo").status_code == 200, timeout=10, interval=0.1, what="the lock to end")
    for _ in range(2):  # counted from zero again: both free (else the count would go on at 4: locked)
        assert _send(a, "wrong").status_code == 401
    assert _send(a, "demo").status_code == 200


def test_concurrent_failures_on_two_bridges_all_count(make_bridge, store, sandbox):
    n = 24
    a, b = _pair(make_bridge, store, free=n - 1, first=30)  # the n-th failure, and only it, locks
    start = threading.Barrier(n)
    answers: list[int] = []

    def guess(bridge: Any) -> None:
        start.wait(10)
        answers.append(_send(bridge, "wrong").status_code)

    threads = [threading.Thread(target=guess, args=(a if i % 2 else b,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [401] * n
    db = a.app.extensions["smsbridge"].db
    assert {r.key: r.failures for r in shared.view(db, 0, 0)}["name:demo"] == n
    wait_for(lambda: _locked_on(a) and _locked_on(b), timeout=SYNC + 5, interval=0.02, what="both to refuse")
    assert _refused(_send(a, "demo")) and _refused(_send(b, "demo"))
    assert not sandbox.sends()


def test_the_stores_failures_are_pruned_once_forgotten_and_their_lock_ended(make_bridge, store):
    a, _ = _pair(make_bridge, store, free=0, first=1, forget_after=0.2)  # every failure locks, for 1 s
    ctx = a.app.extensions["smsbridge"]
    assert _send(a, "wrong").status_code == 401  # two rows: the name and the address, locked 1 s
    assert ctx.prune()["login_failures"] == 0  # still locked (and not yet forgotten)
    wait_for(lambda: ctx.prune()["login_failures"] == 2, timeout=5, interval=0.05, what="the rows to be pruned")
    assert shared.view(ctx.db, 0, 0) == []


def test_concurrent_failures_on_two_worker_processes_all_count_and_lock(tmp_path, sandbox):
    n = 16
    path = workers_config(tmp_path, sandbox.url, trusted_proxies=["127.0.0.0/8"])
    raw = yaml.safe_load(path.read_text())
    raw["auth"] = {"free_failures": n - 1, "first_delay": 60, "sync_interval": SYNC}
    path.write_text(yaml.safe_dump(raw))
    bridge = WorkersBridge(path, workers=2)
    try:
        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(lambda _: requests.get(
                bridge.url + "/sms/1/text/query", params={"username": "demo", "password": "wrong", **Q},
                headers={"X-Forwarded-For": next(_addresses)}, timeout=30).status_code, range(n)))
        assert answers == [401] * n
        db = Database(raw["store"]["path"])
        try:
            row = {r.key: r for r in shared.view(db, 0, 0)}["name:demo"]
        finally:
            db.close()
        assert row.failures == n and row.locked_until > time.time() + 50  # the n-th, of either process, locked it
        assert "Traceback" not in bridge.text()
    finally:
        assert bridge.stop() == 0, bridge.text()
