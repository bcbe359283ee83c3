"""``kill -9`` of a real bridge process during a burst of GETs, each retried (issue 13 item 12, for items 1
and 2): sync and queued callers mixed, with and without idempotency keys. Every request answered 200 -
first try or retry - reaches the sandbox exactly once, and a retry of an answered request gets its first
answer (same messageIds), before and after the restart."""

from __future__ import annotations

import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml

from gateway.config import SandboxSettings
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from tests.helpers import wait_for
from tests.test_queued_crash import _config, _start

BURST = 240
CREDS = {"username": "demo", "password": "demo"}


def _request(i: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Request ``i``: queued query GETs and sync template GETs, every other one with a key."""
    headers = {"Idempotency-Key": f"burst-key-{i}"} if i % 2 else {}
    if i % 3 == 0:  # the alarm template is sync (query API upstream)
        return "/t/alarm", {**CREDS, "phone": f"4179{i:07d}", "msg": f"burst-{i}"}, headers
    return "/sms/1/text/query", {**CREDS, "to": f"4179{i:07d}", "text": f"burst-{i}"}, headers


def test_kill_9_with_retried_gets_sends_each_accepted_message_once(tmp_path: Path) -> None:
    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=8).start()
    config = _config(tmp_path, sandbox.url)
    raw = yaml.safe_load(config.read_text())
    raw["idempotency"] = {"wait": 1}  # a request of the killed process stays in flight until its lease: 409 sooner
    config.write_text(yaml.safe_dump(raw))
    proc, url = _start(config)
    first: dict[int, list[str]] = {}  # request -> the messageIds of its first 200
    lock = threading.Lock()
    killed = threading.Event()

    def send(base: str, i: int) -> requests.Response | None:
        path, params, headers = _request(i)
        try:
            return requests.get(base + path, params=params, headers=headers, timeout=15)
        except requests.RequestException:
            return None  # the process died under this request

    def ids(r: requests.Response) -> list[str]:
        return [m["messageId"] for m in r.json()["messages"]]

    def burst(i: int) -> None:
        for _ in range(2):  # the legacy client's retry after its first answer (or after a timeout)
            r = send(url, i)
            if r is None or r.status_code != 200:
                continue
            with lock:
                if i in first:
                    assert ids(r) == first[i], f"a retry of request {i} got other messageIds"
                    assert r.headers.get("Idempotent-Replayed") == "true"
                else:
                    first[i] = ids(r)
                if len(first) == BURST // 3 and not killed.is_set():
                    killed.set()
                    os.kill(proc.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(burst, range(BURST)))
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        proc, url = _start(config)  # same database
        before = dict(first)
        for i in range(BURST):  # every request retried once more after the restart
            r = send(url, i)
            assert r is not None and r.status_code in (200, 409), (i, r.status_code if r else None)
            if r.status_code == 200:
                if i in before:
                    assert ids(r) == before[i] and r.headers.get("Idempotent-Replayed") == "true", i
                first.setdefault(i, ids(r))
            else:  # 409: its first try died with the process (in flight until its lease): never a second send
                assert "still being processed" in r.text

        def texts() -> list[str]:
            got = requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()
            return [re.search(r"burst-\d+", m["text"]).group(0) for m in got]  # type: ignore[union-attr]

        wait_for(lambda: {f"burst-{i}" for i in first} <= set(texts()), timeout=30,
                 what="every accepted message upstream")
        seen = texts()
        assert len(seen) == len(set(seen)), "a message reached the upstream twice"
    finally:
        proc.kill()
        proc.wait(10)
        sandbox.stop()
