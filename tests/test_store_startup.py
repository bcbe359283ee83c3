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


@pytest.mark.parametrize("command", [(), ("migrate",)])
def test_a_newer_schema_stops_the_bridge_with_what_to_run(tmp_path, command):
    """A database a newer bridge migrated is left alone: the bridge (and migrate) stop with one sentence."""
    from gateway.store.engine import Database

    path = str(tmp_path / "newer.db")
    db = Database(path)
    with db.transaction() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    db.close()
    out = _run(tmp_path, path, *command)
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "cannot open the store" in ln]
    assert len(lines) == 1 and "'9999_from_the_future', newer than this bridge knows" in lines[0], out.stderr
    assert "run the smsbridge release that migrated it" in lines[0]
    check = Database(path, migrate=False)
    assert check.revision() == "9999_from_the_future"  # nothing changed
    check.close()


@pytest.mark.parametrize("store, path, url", [
    ({}, "data/smsbridge.db", "sqlite:///data/smsbridge.db"),
    ({"path": "x/y.db"}, "x/y.db", "sqlite:///x/y.db"),  # the synonym
    ({"url": "sqlite:///z.db"}, "z.db", "sqlite:///z.db"),
    ({"url": "postgresql://u@127.0.0.1/db"}, "postgresql://u@127.0.0.1/db", "postgresql://u@127.0.0.1/db"),
])
def test_store_url_and_its_synonym_path(store, path, url):
    from gateway.config import build_config

    raw = default_raw_config()
    raw["store"] = store
    config = build_config(raw, env={})
    assert (config.store.path, config.store.url) == (path, url)


@pytest.mark.parametrize("url, reason", [
    ("mysql://u@h/db", "must be sqlite:///<file> or postgresql://"),
    ("sqlite:///", "sqlite:/// needs a file name"),
])
def test_a_bad_store_url_is_refused_naming_the_key(url, reason):
    from gateway.config import ConfigError, build_config

    raw = default_raw_config()
    raw["store"] = {"url": url}
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={})
    assert any(p == "store.url" and reason in m for p, m in err.value.problems), err.value.problems


def test_lease_margin_sets_every_claims_length_and_is_validated(tmp_path):
    from gateway.config import ConfigError, build_config

    raw = default_raw_config()
    raw["store"] = {"lease_margin": 2}
    raw["upstream"].update(connect_timeout=1, read_timeout=3)
    raw["outbox"] = {"connect_timeout": 1, "read_timeout": 2}
    config = build_config(raw, env={})
    assert config.upstream_lease == 6  # queue batches, sync sends, idempotency keys
    from gateway import create_app

    raw["store"]["path"] = str(tmp_path / "b.db")
    app = create_app(build_config(raw, env={}), "http://127.0.0.1:9")
    ctx = app.extensions["smsbridge"]
    try:
        assert (ctx.queue.lease_seconds, ctx.dispatch.lease_seconds, ctx.outbox.lease_seconds) == (6, 6, 5)
    finally:
        ctx.stop()
    raw["store"] = {"lease_margin": 0}
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={})
    assert ("store.lease_margin", "must be at least 1 second (time to record an answer)") in err.value.problems
