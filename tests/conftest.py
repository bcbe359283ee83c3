"""Real servers on loopback: the sandbox and the bridge, each under waitress on an ephemeral port."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gateway import create_app
from gateway.config import SandboxSettings, build_config
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests import pghelp
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def default_raw_config() -> dict[str, Any]:
    """The repository's config.yaml, parsed (each test gets its own copy to modify)."""
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


class Sandbox:
    """A running sandbox and the calls tests make on it."""

    def __init__(self, server: ServerThread, settings: SandboxSettings):
        self.server, self.settings = server, settings
        self.url = server.url

    def requests(self) -> list[dict[str, Any]]:
        return requests.get(self.url + "/sandbox/requests", timeout=5).json()

    def sends(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["path"].startswith("/sms/")]

    def messages(self) -> list[dict[str, Any]]:
        return requests.get(self.url + "/sandbox/messages", timeout=5).json()

    def faults(self, **kw: Any) -> None:
        requests.post(self.url + "/sandbox/faults", json=kw, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(self.url + "/sandbox/reset", timeout=5).raise_for_status()


@contextmanager
def running_sandbox(**settings: Any) -> Iterator[Sandbox]:
    """A sandbox of its own (e.g. fast delivery reports: ``dlr_delay=0.05, time_scale=0.001``)."""
    config = SandboxSettings(**settings)
    app = create_sandbox_app(config)
    server = ServerThread(app, "127.0.0.1", 0, threads=8).start()
    try:
        yield Sandbox(server, config)
    finally:
        server.stop()
        app.extensions["sandbox"].stop()  # its scheduler's thread and push sessions


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    # No delivery reports from the shared sandbox within a test (seed examples carry public notifyUrls that
    # a relayed report would call); tests of reports start their own sandbox (running_sandbox).
    with running_sandbox(dlr_delay=3600) as sandbox:
        yield sandbox


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real loopback receiver that records what the bridge delivers to it."""
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    sandbox_server.reset()
    return sandbox_server


class Bridge:
    def __init__(self, server: ServerThread, app: Any):
        self.server, self.app = server, app
        self.url = server.url

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kw)


BridgeFactory = Callable[..., Bridge]


@pytest.fixture
def bridge_store(tmp_path: Path) -> Callable[[int], dict[str, Any]]:
    """The ``store`` section of the n-th bridge a test starts: its own SQLite file under ``tmp_path``
    (tests/test_postgres.py overrides it: a fresh PostgreSQL database each)."""
    return lambda n: {"path": str(tmp_path / f"bridge{n}.db")}


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases (URLs), dropped after the test; skips without a server
    (tests/pghelp.py)."""
    yield from pghelp.databases()


@pytest.fixture
def make_bridge(sandbox: Sandbox, bridge_store: Callable[[int], dict[str, Any]]) -> Iterator[BridgeFactory]:
    """Start a bridge on the default config, changed by ``mutate(raw_config)``, against ``upstream_url``.

    Each bridge gets its own store (``bridge_store``: a SQLite file) and a fast outbox time scale."""
    started: list[tuple[ServerThread, Any]] = []

    def make(mutate: Callable[[dict[str, Any]], None] | None = None, upstream_url: str | None = None,
             clock: Any = None) -> Bridge:
        raw = copy.deepcopy(default_raw_config())
        raw["store"] = bridge_store(len(started))
        raw["outbox"] = {"time_scale": 0.001, "workers": 2}
        # the loopback test receiver: an explicit opt-in for the demo caller (the shipped config refuses it)
        raw["callers"]["demo"]["allow"]["loopback"] = True
        if mutate:
            mutate(raw)
        config = build_config(raw, env={})
        app = create_app(config, upstream_url or sandbox.url, clock=clock)
        # served as app.py serves it: server.trusted_proxies (gateway/proxies.py) decides on X-Forwarded-*
        server = ServerThread(app, "127.0.0.1", 0, threads=8, clear_untrusted_proxy_headers=False).start()
        ctx = app.extensions["smsbridge"]
        ctx.bind(server.url)  # the bridge's own notifyUrl needs the ephemeral port
        ctx.start()
        started.append((server, ctx))
        return Bridge(server, app)

    yield make
    for server, ctx in started:
        server.stop()
        ctx.stop()


@pytest.fixture
def bridge(make_bridge: BridgeFactory) -> Bridge:
    return make_bridge()


DEMO = {"username": "demo", "password": "demo"}


PUSH_SCALE = 0.001  # pushing_sandbox's retry time scale


@pytest.fixture
def pushing_sandbox() -> Iterator[Callable[[str], str]]:
    """A sandbox of its own whose injected inbound messages are pushed to ``url`` (retries 1000 × faster);
    returns its address."""
    started: list[tuple[ServerThread, object]] = []

    def start(url: str) -> str:
        app = create_sandbox_app(SandboxSettings(inbound_url=url, push_time_scale=PUSH_SCALE))
        server = ServerThread(app, "127.0.0.1", 0, threads=4).start()
        started.append((server, app.extensions["sandbox"]))
        return server.url

    yield start
    for server, services in started:
        server.stop()
        services.stop()  # type: ignore[attr-defined]
