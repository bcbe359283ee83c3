"""``python app.py --workers N`` on one SQLite file: N processes share the port and the store.

Measured here (the decision docs/deployment.md records): two processes, 400 sends mixed sync and
queued, every message reaches the upstream exactly once and every report is relayed exactly once;
SIGTERM stops them all; a child that dies is restarted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml
from werkzeug.security import generate_password_hash

from tests.conftest import DEMO, ROOT, running_sandbox
from tests.helpers import wait_for
from tests.workers import QUEUED, WorkersBridge, alive, report_counts, workers_config

N = 400


@pytest.fixture
def fast_sandbox():
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as sandbox:
        yield sandbox


def test_two_processes_on_one_sqlite_file_send_and_relay_exactly_once(tmp_path, fast_sandbox, receiver):
    bridge = WorkersBridge(workers_config(tmp_path, fast_sandbox.url), workers=2)
    try:
        pids = bridge.worker_pids()
        assert len(pids) == 2 and all(alive(p) for p in pids.values())

        def send(i: int) -> str:
            who = DEMO if i % 2 else QUEUED  # odd: sync, even: queued
            r = requests.get(bridge.url + "/sms/1/text/query", timeout=30, params={
                **who, "from": "InfoSMS", "to": f"4179{i:07d}", "text": f"n{i}", "notifyUrl": receiver.url("/dlr")})
            assert r.status_code == 200, r.text
            return r.json()["messages"][0]["messageId"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(send, range(N)))
        assert len(set(ids)) == N

        def at_sandbox() -> Counter:
            return Counter(m["messageId"] for m in fast_sandbox.messages())

        wait_for(lambda: set(ids) <= set(at_sandbox()), timeout=60, what="every message at the sandbox")
        sent = at_sandbox()
        assert set(sent) == set(ids) and set(sent.values()) == {1}, [k for k, v in sent.items() if v != 1]
        wait_for(lambda: set(ids) <= set(report_counts(receiver)), timeout=60, what="every report relayed")
        relayed = report_counts(receiver)
        assert set(relayed) == set(ids) and set(relayed.values()) == {1}, [k for k, v in relayed.items() if v != 1]
        assert "database is locked" not in bridge.text() and "Traceback" not in bridge.text()
        assert bridge.worker_pids() == pids  # no child died on the way
    finally:
        code = bridge.stop()
    assert code == 0, bridge.text()
    assert not any(alive(p) for p in pids.values())  # SIGTERM to the parent stopped every child


def test_a_dead_child_is_restarted_and_the_port_keeps_answering(tmp_path, fast_sandbox):
    bridge = WorkersBridge(workers_config(tmp_path, fast_sandbox.url), workers=2)
    try:
        first = bridge.worker_pids()
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: bridge.worker_pids().get(0, first[0]) != first[0], timeout=30, what="worker 0 restarted")
        assert f"worker 0 (pid {first[0]}) died (signal SIGKILL); restarting it" in bridge.text()
        for _ in range(20):  # either child may take each connection: all are answered
            assert requests.get(bridge.url + "/readyz", timeout=10).status_code == 200
        assert alive(bridge.worker_pids()[0]) and alive(first[1])
    finally:
        assert bridge.stop() == 0, bridge.text()


def test_server_workers_in_the_config_works_like_the_option(tmp_path, fast_sandbox):
    bridge = WorkersBridge(workers_config(tmp_path, fast_sandbox.url, workers=2), workers=None)  # no --workers
    try:
        pids = wait_for(lambda: len(bridge.worker_pids()) == 2 and bridge.worker_pids(), timeout=30,
                        what="two workers from server.workers")
        assert all(alive(p) for p in pids.values()) and "2 worker processes" in bridge.text()
        for _ in range(10):
            assert requests.get(bridge.url + "/readyz", timeout=10, headers={"Connection": "close"}).status_code == 200
    finally:
        code = bridge.stop()
    assert code == 0, bridge.text()
    assert not any(alive(p) for p in pids.values())  # SIGTERM to the parent stopped every child


def test_workers_is_validated(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "serve", "--workers", "0"], capture_output=True,
                         text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 2 and "--workers: '0': must be a whole number of processes, at least 1" in out.stderr


def test_an_admin_ui_session_holds_on_every_process(tmp_path, fast_sandbox):
    bridge = WorkersBridge(workers_config(tmp_path, fast_sandbox.url), workers=2)
    try:
        s = requests.Session()
        page = s.get(bridge.url + "/ui/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = s.post(bridge.url + "/ui/login", allow_redirects=False, timeout=10,
                   data={"csrf_token": token, "next": "/ui/log", "username": "admin", "password": "admin"})
        assert r.status_code in (302, 303) and r.headers["Location"].endswith("/ui/log"), r.text
        codes = Counter()
        for _ in range(40):  # a new connection each time: the kernel hands them to either process
            got = s.get(bridge.url + "/ui/log", allow_redirects=False, timeout=10, headers={"Connection": "close"})
            codes[got.status_code] += 1
        assert codes == {200: 40}, codes  # one cookie key, one session table for all processes
        token = re.search(r'name="csrf_token" value="([^"]+)"', got.text).group(1)
        assert s.post(bridge.url + "/ui/logout", data={"csrf_token": token}, allow_redirects=False,
                      timeout=10).status_code in (302, 303)
        for _ in range(10):  # revoked on every process
            assert s.get(bridge.url + "/ui/log", allow_redirects=False, timeout=10,
                         headers={"Connection": "close"}).status_code in (302, 303)
    finally:
        assert bridge.stop() == 0, bridge.text()


def _login(s: requests.Session, url: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(url + "/ui/login", timeout=10).text).group(1)
    r = s.post(url + "/ui/login", allow_redirects=False, timeout=10,
               data={"csrf_token": token, "next": "/ui/log", "username": "admin", "password": "admin"})
    assert r.status_code in (302, 303), r.text


@pytest.mark.parametrize("workers", [1, 2])
def test_a_restart_keeps_admin_ui_sessions_and_a_password_change_ends_them(tmp_path, fast_sandbox, workers):
    config = workers_config(tmp_path, fast_sandbox.url)
    raw = yaml.safe_load(config.read_text())
    raw["ui"]["secret_key"] = "a-fixed-key-so-cookies-stay-valid"  # the cookie itself stays valid
    config.write_text(yaml.safe_dump(raw))
    bridge = WorkersBridge(config, workers=workers)
    s = requests.Session()
    try:
        _login(s, bridge.url)
        assert s.get(bridge.url + "/ui/log", allow_redirects=False, timeout=10).status_code == 200
    finally:
        assert bridge.stop() == 0
    again = WorkersBridge(config, workers=workers)  # a rolling restart: the admins stay logged in
    try:
        url = again.url  # another port (port 0): the cookie is for the host, not the port
        assert s.get(url + "/ui/log", allow_redirects=False, timeout=10).status_code == 200
    finally:
        assert again.stop() == 0
    raw["ui"]["admin_password_hash"] = generate_password_hash("a-new-admin-password", method="pbkdf2:sha256:1000")
    config.write_text(yaml.safe_dump(raw))
    changed = WorkersBridge(config, workers=workers)
    try:
        assert s.get(changed.url + "/ui/log", allow_redirects=False, timeout=10).status_code in (302, 303)
    finally:
        assert changed.stop() == 0
