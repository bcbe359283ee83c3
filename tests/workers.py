"""A ``python app.py --workers N`` bridge in a subprocess, for the multi-process and nginx tests."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from werkzeug.security import generate_password_hash

from gateway.auth import hash_api_key
from tests.conftest import ROOT, Sandbox, default_raw_config
from tests.helpers import wait_for

QUEUED = {"username": "qdemo", "password": "qdemo"}  # a queued caller beside the sync demo caller
ADMIN_HASH = generate_password_hash("admin", method="pbkdf2:sha256:1000")  # fast for tests
# A report POST the killed process had sent may be read by the receiver (a thread of the busy test process)
# a little after the kill was seen: the seconds after the kill in which a first copy still counts as its.
KILL_WINDOW = 2.0


def workers_config(tmp: Path, upstream_url: str, store: dict[str, Any] | None = None,
                   name: str = "config.yaml", **server: Any) -> Path:
    """config.yaml for a bridge on ``upstream_url``, its store ``store`` (default: a SQLite file in ``tmp``),
    fast retries; ``server`` keys added."""
    raw = copy.deepcopy(default_raw_config())
    raw["server"].update(port=0, **server)
    raw["upstream"].update(base_url=upstream_url, connect_timeout=1, read_timeout=2)  # leases of ~33 s
    raw["store"] = store or {"path": str(tmp / "bridge.db")}
    raw["outbox"] = {"time_scale": 0.001, "workers": 2}
    raw["queue"] = {"time_scale": 0.01, "max_batch": 50}
    demo = raw["callers"]["demo"]  # a real upstream (not the embedded sandbox) takes hashed secrets only
    demo.pop("password")
    demo["password_hash"] = generate_password_hash("demo", method="pbkdf2:sha256:1000")  # fast for tests
    demo["api_key_hash"] = hash_api_key(demo.pop("api_key"))
    demo["allow"]["loopback"] = True  # the tests' loopback receiver: an explicit opt-in (the shipped config refuses)
    q = copy.deepcopy(demo)
    q.update(password_hash=generate_password_hash("qdemo", method="pbkdf2:sha256:1000"), mode="queued",
             upstream_api="advanced")
    q.pop("api_key_hash")
    raw["callers"]["qdemo"] = q
    raw["inbound"]["token"] = "t" + "0123456789abcdef" * 3
    raw["ui"].pop("admin_password")
    raw["ui"]["admin_password_hash"] = ADMIN_HASH  # one hash for every bridge, as one copied config.yaml has
    path = tmp / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


class WorkersBridge:
    """``app.py --workers N`` with stderr in a file (the access log and the supervisor's lines)."""

    def __init__(self, config: Path, workers: int | None, port: int | None = None, log_name: str = "bridge.log"):
        """``workers`` None: the option is left out (``server.workers`` decides); ``port``: ``--port``."""
        self.log_path = config.parent / log_name
        self.log = self.log_path.open("a")
        argv = [sys.executable, str(ROOT / "app.py"), "--config", str(config), "serve"]
        argv += ["--workers", str(workers)] if workers is not None else []
        argv += ["--port", str(port)] if port is not None else []
        self.proc = subprocess.Popen(argv, cwd=config.parent, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        m = re.search(r"listening on (http://\S+)", line)
        assert m, f"no banner: {line!r}\n{self.text()}"
        self.url = m.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        if workers is not None and workers > 1:
            wait_for(lambda: len(self.worker_pids()) >= workers, timeout=30, what="the workers")

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def worker_pids(self) -> dict[int, int]:
        """worker index -> its newest pid, from the supervisor's log lines."""
        return {int(i): int(p) for i, p in re.findall(r"worker (\d+) started \(pid (\d+)\)", self.text())}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


def report_counts(receiver) -> Counter:
    """messageId -> how many times a report for it reached the receiver (JSON bodies, batched or not)."""
    seen: Counter = Counter()
    for r in receiver.snapshot():
        for result in json.loads(r.body)["results"]:
            seen[result["messageId"]] += 1
    return seen


class SandboxProcess(Sandbox):
    """``python app.py sandbox`` in a process of its own (not sharing the test process's GIL), fast delivery
    reports; ``ca``: a certificate it trusts (it pushes reports to an HTTPS front)."""

    def __init__(self, d: Path, ca: Path | None = None):  # Sandbox's methods need only ``url``
        raw = default_raw_config()
        raw["sandbox"].update(dlr_delay=0.05, time_scale=0.001)
        cfg = d / "sandbox.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        self.log = (d / "sandbox.log").open("w")
        env = {**os.environ, **({"REQUESTS_CA_BUNDLE": str(ca)} if ca else {})}
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config", str(cfg), "sandbox", "--port",
                                      "0"], cwd=d, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        m = re.search(r"listening on (http://\S+)", line)
        assert m, f"no sandbox banner: {line!r}"
        self.url = m.group(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
