"""SIGTERM (systemd, docker stop) stops the bridge like Ctrl-C: a clean exit, every access line written."""

from __future__ import annotations

import os

import requests
import yaml

from tests.conftest import default_raw_config
from tests.test_secrets_cli import _start


def test_sigterm_right_after_a_burst_exits_cleanly_with_every_access_line_written(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    try:
        with requests.Session() as s:
            for i in range(50):
                r = s.get(url + "/sms/1/text/query", params={"username": "demo", "password": "demo",
                                                             "to": "41793026727", "text": f"burst-{i}"}, timeout=10)
                assert r.status_code == 200
    finally:
        proc.terminate()  # at once, right after the burst
    out = output.text(timeout=20)
    assert proc.returncode == 0, out[-2000:]  # a normal exit, not death by signal
    lines = [line for line in out.splitlines() if "smsbridge.access" in line and "/sms/1/text/query" in line]
    assert len(lines) == 50 and "text=bur…(8) 200" in lines[-1]  # texts are masked in the log
