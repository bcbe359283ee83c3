"""Each process's view of the cluster's failed logins (gateway/throttle.py): read whole once, then only what
changed (new locks, counts, a success's clear), kept between reads, expired locks dropped, and capped at
``auth.max_entries`` (those ending soonest go first). Two throttles on one store, one manual clock."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.config import ThrottleSettings
from gateway.errors import Throttled
from gateway.store import throttle as shared
from gateway.store.engine import Database
from gateway.throttle import LoginThrottle, key


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = str(tmp_path / "shared.db") if request.param == "sqlite" else request.getfixturevalue("pg_database")()
    database = Database(url)
    yield database
    database.close()


@pytest.fixture
def read_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each read of the store returned."""
    sizes: list[int] = []
    view = shared.view

    def counted(*args: Any) -> list[shared.Failures]:
        rows = view(*args)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(shared, "view", counted)
    return sizes


def _pair(db: Database, **settings: Any) -> tuple[LoginThrottle, LoginThrottle, ManualClock]:
    clock = ManualClock()
    s = ThrottleSettings(**{"free_failures": 0, "first_delay": 60, "max_delay": 600, "sync_interval": 1, **settings})
    return LoginThrottle(s, clock, db), LoginThrottle(s, clock, db), clock


def _locked(t: LoginThrottle, key: str) -> bool:
    try:
        t.check([key], "probe")
    except Throttled:
        return True
    return False


def test_the_first_read_takes_the_locks_in_force_later_reads_only_what_changed(db, read_sizes):
    a, b, clock = _pair(db)
    for i in range(20):
        a.failed([f"addr:10.0.0.{i}"], "api")  # each locked 60 s
    clock.advance(10)  # more than SKEW: a later read does not overlap them
    assert _locked(b, "addr:10.0.0.3") and read_sizes == [20]
    a.failed(["name:demo"], "api")
    clock.advance(10)
    assert _locked(b, "name:demo") and read_sizes == [20, 1]  # the new lock only; the others kept
    assert _locked(b, "addr:10.0.0.3")
    clock.advance(45)  # the 20 locks have ended: dropped, not read again
    assert not _locked(b, "addr:10.0.0.3") and read_sizes[-1] == 0
    assert set(b._cluster) == {"name:demo"}


def test_a_success_elsewhere_clears_the_name_from_every_view(db):
    a, b, clock = _pair(db, free_failures=1)
    a.failed(["name:demo"], "api")  # free
    clock.advance(1)
    b.check(["name:demo"], "api")
    assert b._entries["name:demo"].failures == 1  # B knows of it: its success would clear the store's count
    a.succeeded("demo")
    clock.advance(1)
    b.check(["name:demo"], "api")
    assert "name:demo" not in b._entries
    b.failed(["name:demo"], "api")  # counted from zero again: free
    assert not _locked(a, "name:demo") and not _locked(b, "name:demo")


def test_the_view_of_the_clusters_locks_keeps_the_longest_within_max_entries(db):
    a, b, clock = _pair(db, max_entries=3)
    for i in range(6):
        a.failed([f"addr:10.0.0.{i}"], "api")  # locked 60 s from now + i
        clock.advance(1)
    assert _locked(b, "addr:10.0.0.5")
    assert sorted(b._cluster) == ["addr:10.0.0.3", "addr:10.0.0.4", "addr:10.0.0.5"]


def test_a_count_is_forgotten_from_the_end_of_its_lock_not_from_its_last_failure(db):
    """With the defaults (max_delay == forget_after == 900 s), counting from the last failure would forget
    the count just as each longest lock ends: free failures again. Guessing one name whenever it is not
    locked, for 4 hours: the free 5, 11 doubling locks (1 s .. 900 s, 17 min), then one guess per 900 s."""
    clock = ManualClock()
    t = LoginThrottle(ThrottleSettings(), clock, db)
    keys, start, counts = ["name:victim"], clock.now(), []
    while clock.now() - start < 4 * 3600:
        try:
            t.check(keys, "api")
        except Throttled as exc:
            clock.advance(exc.retry_after + 0.01)
            continue
        t.failed(keys, "api")
        counts.append(t._entries["name:victim"].failures)
    assert counts == list(range(1, len(counts) + 1))  # never counted anew
    assert len(counts) <= 5 + 11 + (4 * 3600 - 1023) // 900 + 1
    locked_until = t._entries["name:victim"].locked_until
    clock.set(locked_until + 899)  # the lock ended 899 s ago: still counted, and kept by pruning
    assert shared.prune(db, clock.now(), 900) == 0
    t.failed(keys, "api")
    assert t._entries["name:victim"].failures == len(counts) + 1
    clock.set(t._entries["name:victim"].locked_until + 901)
    assert shared.prune(db, clock.now(), 900) == 1


def test_a_name_no_store_keeps_is_counted_under_its_hash_by_the_cluster(make_bridge, pg_database, caplog):
    """A NUL in a caller name (PostgreSQL refuses it in text) or a very long one: counted in the store under
    ``name#<sha256>``, with its address, by a real bridge on PostgreSQL; nothing is logged of the store."""
    def mutate(raw: dict[str, Any]) -> None:
        raw["store"] = {"url": pg_database()}
        raw["auth"] = {"free_failures": 2, "first_delay": 30, "max_delay": 60}

    bridge = make_bridge(mutate)
    for name in ("de\x00mo", "x" * 10_000, "de\x00mo"):
        header = "Basic " + base64.b64encode(f"{name}:wrong".encode()).decode()
        r = bridge.get("/sms/1/text/query", params={"to": "41793026727", "text": "hi"},
                       headers={"Authorization": header})
        assert r.status_code == 401
    rows = {r.key: r.failures for r in shared.view(bridge.app.extensions["smsbridge"].db, 0, 0)}
    assert rows == {key("name", "de\x00mo"): 2, key("name", "x" * 10_000): 1, "addr:127.0.0.1": 3}
    assert key("name", "de\x00mo").startswith("name#") and len(key("name", "x" * 10_000)) == 5 + 64
    assert not [r for r in caplog.records if r.name == "smsbridge" and "in the store" in r.getMessage()]


def test_a_store_that_fails_is_logged_once_per_minute_its_traceback_once(caplog):
    clock = ManualClock()
    down = Database("postgresql://postgres@127.0.0.1:1/none", migrate=False)  # nothing listens on port 1
    t = LoginThrottle(ThrottleSettings(free_failures=1), clock, down)
    for _ in range(3):
        t.failed(["name:demo"], "api")  # counted here alone
    assert t._entries["name:demo"].failures == 3 and t._entries["name:demo"].locked_until > clock.now()
    clock.advance(61)
    t.failed(["name:demo"], "api")
    warned = [r for r in caplog.records if "counted by this process alone" in r.getMessage()]
    assert [r.exc_info is not None for r in warned] == [True, False]
    assert "Connection refused (2 more store errors" in warned[1].getMessage()
    down.close()
