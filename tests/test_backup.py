"""``python app.py backup FILE``: a consistent copy of the SQLite store, WAL included, taken while the bridge
runs and writes; the copy opens on its own and holds every message answered before the backup began."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import requests
import yaml

from gateway.store.engine import Database
from tests.conftest import default_raw_config
from tests.storehelp import db_count, raw_messages_count
from tests.test_secrets_cli import ROOT, _start


def test_backup_while_the_bridge_writes(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "live.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    stop = threading.Event()
    try:
        q = {"username": "demo", "password": "demo", "to": "41793026727"}
        with requests.Session() as s:
            for i in range(30):
                assert s.get(url + "/sms/1/text/query", params={**q, "text": f"before {i}"}, timeout=10).ok
        # the main file alone (no -wal beside it) lacks messages the WAL still holds: the backup must read both
        naked = tmp_path / "naked"
        naked.mkdir()
        shutil.copyfile(tmp_path / "live.db", naked / "live.db")
        in_main_file = raw_messages_count(str(naked / "live.db"))
        assert in_main_file < 30 and (tmp_path / "live.db-wal").stat().st_size > 0

        def keep_writing() -> None:  # the bridge keeps committing while the copy is taken
            with requests.Session() as s:
                while not stop.is_set():
                    s.get(url + "/sms/1/text/query", params={**q, "text": "during"}, timeout=10)

        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()
        out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "config.yaml"),
                              "backup", str(tmp_path / "copy.db")], capture_output=True, text=True, timeout=60)
        stop.set()
        writer.join(10)
    finally:
        proc.terminate()
        output.text(timeout=20)
    assert out.returncode == 0, out.stderr
    assert "integrity ok" in out.stdout
    assert not (tmp_path / "copy.db-wal").exists() or (tmp_path / "copy.db-wal").stat().st_size == 0
    copy = Database(str(tmp_path / "copy.db"))
    try:
        assert db_count(copy, "messages") >= 30  # everything answered before the backup, maybe more
    finally:
        copy.close()


def test_backup_refuses_to_overwrite_and_names_a_missing_store(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "nothing-here.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    run = [sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "config.yaml"), "backup"]
    out = subprocess.run([*run, str(tmp_path / "copy.db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "nothing-here.db: no database file there" in out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "exists.db").write_bytes(b"")
    raw["store"] = {"path": str(tmp_path / "exists.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run([*run, str(tmp_path / "exists.db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "exists already" in out.stderr
