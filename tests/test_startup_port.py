"""A port that is taken stops the start with one sentence naming it and how to choose another: no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import yaml

from tests.conftest import default_raw_config
from tests.test_secrets_cli import ROOT


def _taken() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def _serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "config.yaml"), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_a_taken_bridge_port_is_one_sentence(tmp_path):
    with _taken() as s:
        port = s.getsockname()[1]
        out = _serve(tmp_path, "--port", str(port), "--sandbox-port", "0")
    assert out.returncode == 4, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "--port or PORT" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_taken_sandbox_port_is_one_sentence(tmp_path):
    with _taken() as s:
        port = s.getsockname()[1]
        out = _serve(tmp_path, "--port", "0", "--sandbox-port", str(port))
    assert out.returncode == 4, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "--sandbox-port or SANDBOX_PORT" in out.stderr
    assert "Traceback" not in out.stderr
