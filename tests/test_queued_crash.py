"""``kill -9`` of a real bridge process during a burst of queued and sync sends with the upstream flapping: no
accepted message lost, none sent twice.
Also the store CLI (prune, outbox list/redrive) on the same kind of real process set-up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from gateway.auth import hash_password
from gateway.clock import ManualClock
from gateway.config import SandboxSettings
from gateway.delivery.outbox import Outbox
from gateway.delivery.urlpolicy import UrlPolicy
from gateway.sandbox import create_sandbox_app
from gateway.servers import ServerThread
from gateway.store.engine import Database
from tests.conftest import ROOT, default_raw_config
from tests.helpers import wait_for
from tests.storehelp import db_count, db_set

BURST = 500


def _config(tmp_path: Path, upstream_url: str) -> Path:
    raw = default_raw_config()
    raw["upstream"] = {"base_url": upstream_url, "api_key": "sandbox-key", "api": "advanced"}
    raw["store"] = {"path": str(tmp_path / "bridge.db"), "synchronous": "NORMAL"}
    raw["queue"] = {"time_scale": 0.01, "max_batch": 50}
    raw["logging"] = {"level": "WARNING", "access_log": False}
    demo = raw["callers"]["demo"]
    demo.pop("password")
    demo.pop("api_key", None)  # plain demo secrets are refused with a real upstream
    raw["ui"] = {"enabled": False}
    raw["inbound"]["token"] = "test-inbound-token-0123456789"
    demo.update(password_hash=hash_password("demo"), mode="queued", upstream_api="advanced")
    # a sync caller beside the queued one (issue 13): recorded before forwarding, handed over on a hiccup
    raw["callers"]["syncer"] = {**{k: v for k, v in demo.items() if k != "mode"}, "mode": "sync",
                                "on_upstream_failure": "queue"}
    raw["templates"]["alarm"]["mode"] = "sync"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _start(config: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--config", str(config), "--port", "0"],
        cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        m = re.search(r"smsbridge listening on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain
            return proc, m.group(1)
    raise AssertionError("the bridge exited before listening:\n" + "".join(seen))


def _flap(sandbox_url: str, stop: threading.Event) -> None:
    """The upstream flapping: bursts of 503s and 500s, then healthy, until ``stop``."""
    faults = [{"status": 503, "count": 4}, {}, {"status": 500, "count": 3}, {}]
    i = 0
    while not stop.is_set():
        try:
            requests.post(sandbox_url + "/sandbox/faults", json=faults[i % len(faults)], timeout=5)
        except requests.RequestException:
            pass
        i += 1
        stop.wait(0.03)  # the flapping's own rhythm (load generation, not synchronisation)


def test_kill_9_during_a_mixed_burst_with_the_upstream_flapping_loses_and_duplicates_nothing(tmp_path):
    """Queued and sync callers mixed, the upstream flapping (faults on and off), the bridge killed mid-burst
    and restarted: every accepted message reaches the sandbox exactly once, with the id its caller got;
    every refused one never."""
    sandbox = ServerThread(create_sandbox_app(SandboxSettings(dlr_delay=3600)), "127.0.0.1", 0, threads=8).start()
    config = _config(tmp_path, sandbox.url)
    proc, url = _start(config)
    accepted: dict[str, str] = {}
    refused: set[str] = set()
    lock = threading.Lock()
    session = requests.Session()
    stop = threading.Event()
    flapper = threading.Thread(target=_flap, args=(sandbox.url, stop), daemon=True)
    flapper.start()

    def send(i: int) -> None:
        caller = "demo" if i % 2 else "syncer"  # queued and sync, interleaved
        text = f"burst-{i}"
        try:
            r = session.get(url + "/sms/1/text/query", timeout=10, params={
                "username": caller, "password": "demo", "to": f"4179{i:07d}", "text": text})
        except requests.RequestException:
            return  # the process died under this request: not accepted (nor refused: unknown to the caller)
        with lock:
            if r.status_code == 200:
                accepted[text] = r.json()["messages"][0]["messageId"]
                if len(accepted) == BURST // 3:
                    os.kill(proc.pid, signal.SIGKILL)  # mid-burst, while workers and sync requests forward
            else:
                refused.add(text)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(BURST)))
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert BURST // 3 <= len(accepted) < BURST
        proc, url = _start(config)  # same database: the restarted bridge sends what is left
        for i in range(BURST, BURST + 40):  # more traffic while the upstream still flaps
            send(i)
        stop.set()
        flapper.join(5)
        requests.post(sandbox.url + "/sandbox/faults", json={}, timeout=5)

        def texts() -> list[str]:
            return [m["text"] for m in requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()]

        wait_for(lambda: set(accepted) <= set(texts()), timeout=60, what="every accepted message upstream")
        db = Database(str(tmp_path / "bridge.db"))
        wait_for(lambda: db_count(db, "messages", state=("queued", "sending", "unknown")) == 0, timeout=60,
                 what="the queue drained and every unknown outcome reconciled")
        seen = texts()
        assert len(seen) == len(set(seen)), "a message reached the upstream twice"
        assert not refused & set(seen), "a refused message was sent"
        got = {m["text"]: m["messageId"] for m in requests.get(sandbox.url + "/sandbox/messages", timeout=5).json()}
        assert all(got[t] == mid for t, mid in accepted.items())  # the ids the callers were given
        forwarded = [d for r in requests.get(sandbox.url + "/sandbox/requests", timeout=5).json()
                     if r["path"] == "/sms/2/text/advanced" for m in r["json"]["messages"] for d in m["destinations"]]
        print(f"\naccepted {len(accepted)} ({len(refused)} refused); {len(forwarded)} destinations forwarded for "
              f"{len(seen)} messages ({len(forwarded) - len(seen)} resent or refused while the upstream flapped)")
        sent = db_count(db, "messages", state="sent")
        assert sent == len(seen)  # every committed message was sent once (accepted or answer lost in the kill)
        db.close()
    finally:
        stop.set()
        proc.kill()
        proc.wait(10)
        sandbox.stop()


def test_prune_and_redrive_cli(tmp_path):
    config = _config(tmp_path, "http://127.0.0.1:9")
    db = Database(str(tmp_path / "bridge.db"))
    outbox = Outbox(db, ManualClock(1_000.0), policy_for=lambda caller: UrlPolicy(allow_loopback=True))
    job = outbox.enqueue("dlr", "http://127.0.0.1:9/x", caller="demo")
    db_set(db, "outbox_jobs", job, state="dead", attempts=21, last_error="refused")
    app = [sys.executable, str(ROOT / "app.py")]
    listed = subprocess.run([*app, "--config", str(config), "outbox", "list", "--state", "dead"], capture_output=True,
                            text=True, timeout=30)
    assert listed.returncode == 0 and str(job) in listed.stdout and "dead" in listed.stdout
    redrive = subprocess.run([*app, "--config", str(config), "outbox", "redrive", str(job)], capture_output=True,
                             text=True, timeout=30)
    assert redrive.returncode == 0 and f"job {job}: re-driven" in redrive.stdout
    assert outbox.job(job).state == "pending" and outbox.job(job).attempts == 0
    db_set(db, "outbox_jobs", None, state="done", updated_at=1000)  # delivered long ago
    pruned = subprocess.run([*app, "prune", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert pruned.returncode == 0 and "1 outbox_jobs" in pruned.stdout
    assert outbox.job(job) is None
    db.close()
