"""A PostgreSQL server for tests: ``SMSBRIDGE_TEST_DATABASE_URL``, else 127.0.0.1:5432 (user postgres, database
test) when one answers. Each test (or bridge) gets a fresh database, dropped afterwards. Without a server the
PostgreSQL tests skip with the reason; with ``SMSBRIDGE_REQUIRE_POSTGRES=1`` (.ci/run) they fail instead."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("SMSBRIDGE_TEST_DATABASE_URL") or DEFAULT_URL


def _admin():  # type: ignore[no-untyped-def]
    import psycopg

    url = server_url().replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def require_server() -> None:
    """Skip (or fail, under SMSBRIDGE_REQUIRE_POSTGRES=1) when no PostgreSQL server answers."""
    try:
        with _admin() as c:
            c.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server here"
        reason = f"no PostgreSQL server answers at {server_url()} ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        if os.environ.get("SMSBRIDGE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + "; SMSBRIDGE_REQUIRE_POSTGRES=1 makes these tests mandatory")
        pytest.skip(reason)


def databases() -> Iterator[Callable[[], str]]:
    """A factory of fresh databases (``smsbridge_test_<random>``), each dropped when the test ends."""
    require_server()
    made: list[str] = []

    def make() -> str:
        name = f"smsbridge_test_{secrets.token_hex(6)}"
        with _admin() as c:
            c.execute(f"CREATE DATABASE {name}")
        made.append(name)
        base = server_url().rsplit("/", 1)[0]
        return f"{base}/{name}"

    yield make
    with _admin() as c:
        for name in made:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
