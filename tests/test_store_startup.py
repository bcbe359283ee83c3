"""Safe failure at start-up (issue 14 item 7): a store that cannot be opened stops ``python app.py`` with
one sentence naming the path and the reason, a non-zero exit code and no traceback.

The tests run as root, which ignores file permissions, so the failures are made with paths no one can
write: a file where the store's folder should be, a folder where the file should be, and sysfs (refused
even to root: "Permission denied")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, default_raw_config


def _run(tmp_path: Path, store_path: str, *command: str) -> subprocess.CompletedProcess:
    raw = default_raw_config()
    raw["store"] = {"path": store_path}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(config), *command,
                           *(("--port", "0", "--sandbox-port", "0") if not command or command[0] == "serve" else ())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def _cases(tmp_path: Path) -> list[tuple[str, str]]:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite" * 100)
    return [
        (str(blocker / "data" / "bridge.db"), f"{blocker} is a file, not a folder"),
        (str(garbage), "file is not a database"),
        (str(folder), "it is a folder, not a file"),
        ("/sys/smsbridge-test.db", "Permission denied"),
    ]


@pytest.mark.parametrize("command", [(), ("migrate",), ("prune",), ("outbox", "list")])
def test_a_store_that_cannot_be_opened_stops_with_one_sentence(tmp_path, command):
    base = tmp_path / ("-".join(command) or "serve")
    base.mkdir()
    for path, reason in _cases(base):
        out = _run(base, path, *command)
        assert out.returncode == 3, (path, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout, out.stderr
        lines = [ln for ln in out.stderr.splitlines() if "cannot open the store" in ln]
        assert lines == [f"smsbridge: cannot open the store {path}: {reason}"], out.stderr
    assert not Path("/sys/smsbridge-test.db").exists()
