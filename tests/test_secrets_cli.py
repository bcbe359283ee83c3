"""The real entry point as a subprocess: secrets never reach its logs; the CLI's config checks."""

from __future__ import annotations

import base64
import http.client
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml

from tests.conftest import ROOT, default_raw_config
from tests.helpers import ChildOutput, wait_for

SECRETS = ["demo-secret-pw", "upstream-secret-key", "caller-password-xyz"]


def _start(config_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, ChildOutput]:
    """The bridge (with its sandbox) as a subprocess, its URL, and its output (stdout and stderr), read as it
    comes: a pipe left unread fills with the access log and stops the bridge (see ``ChildOutput``)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--config", str(config_path), "--port", "0", "--sandbox-port", "0"],
        cwd=config_path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = ChildOutput(proc)
    try:
        return proc, output.search(r"smsbridge listening on (http://\S+)").group(1), output
    except AssertionError:
        proc.kill()
        proc.wait(10)
        raise


def test_no_secret_in_any_log_line(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    raw["callers"]["demo"]["password"] = "caller-password-xyz"
    raw["sandbox"]["api_key"] = "upstream-secret-key"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "INFOBIP_API_KEY": "upstream-secret-key"}
    proc, url, output = _start(tmp_path / "config.yaml", env)
    try:
        ok = requests.get(url + "/sms/1/text/query", params={"username": "demo", "password": "caller-password-xyz",
                                                              "to": "41793026727", "text": "hi"}, timeout=10)
        assert ok.status_code == 200
        basic = base64.b64encode(b"demo:demo-secret-pw").decode()
        bad = requests.get(url + "/sms/1/text/query", params={"to": "41793026727", "text": "hi", "apikey": "x",
                                                               "token": "demo-secret-pw"},
                           headers={"Authorization": f"Basic {basic}"}, timeout=10)
        assert bad.status_code == 401
        for resp in (ok, bad):
            assert not any(s in resp.text for s in SECRETS)
        requests.get(url + "/t/alarm", params={"username": "demo", "password": "demo-secret-pw", "phone": "1"},
                     timeout=10)
    finally:
        proc.terminate()
        out = output.text(timeout=10)
    assert "GET /sms/1/text/query?username=demo&password=*** " in out or "password=***" in out
    for secret in SECRETS + [basic]:
        assert secret not in out, f"{secret!r} leaked into the log"


def _keep_alive_healthz(url: str, n: int, pad: int) -> None:
    """``n`` requests on one keep-alive connection, each logging an access line of ``pad`` bytes more; each
    must be answered 200 within 10 s."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        for i in range(n):
            conn.request("GET", f"/healthz?n={i}&pad=" + "x" * pad)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, f"request {i}"
    finally:
        conn.close()


def test_a_bridge_subprocess_answers_past_a_full_pipe(tmp_path):
    """Its output pipe is read as it comes: 200 requests on one keep-alive connection log 400 KiB, six times
    what a pipe holds, each is answered and every access line is there."""
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    try:
        _keep_alive_healthz(url, 200, 2000)  # a 2 KiB access-log line each
    finally:
        proc.terminate()
        out = output.text(timeout=20)
    assert sum("GET /healthz?n=" in line for line in out.splitlines()) == 200


def test_a_bridge_whose_standard_error_nobody_reads_keeps_answering(tmp_path):
    """Standard error is a pipe nobody reads (a stalled journald or docker log driver): 400 requests on one
    keep-alive connection log 6.4 MB, past the pipe (64 KiB) and the handler's buffer (4 Mi characters), and
    each is answered at once; once the pipe is read the log says how many lines it dropped, and SIGTERM stops
    the bridge cleanly. Before the log writer had a thread of its own the bridge stopped answering some ten
    requests in: each request thread waited at its access-log line for the pipe."""
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "config.yaml"), "--port", "0",
         "--sandbox-port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
    )
    stdout = ChildOutput(proc)  # the banner; standard error is left unread until the requests are done
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    try:
        _keep_alive_healthz(stdout.search(r"smsbridge listening on (http://\S+)").group(1), 400, 16000)  # 16 KB lines
        reader.start()
        notice = wait_for(lambda: next((m for line in list(stderr) if (m := re.search(
            r"logging: (\d+) line\(s\) dropped since \S+: standard error was not being read", line))), None),
                          timeout=20, what="the dropped-lines notice")
        answered = sum("GET /healthz?n=" in line for line in stderr)
        assert int(notice.group(1)) > 0 and answered + int(notice.group(1)) >= 400
        started = time.monotonic()
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.returncode == 0 and time.monotonic() - started < 20
    finally:
        if reader.ident is None:
            reader.start()  # a bridge stuck at its log line cannot stop until its pipe is read
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_check_config_reports_key_paths(tmp_path):
    raw = default_raw_config()
    raw["templates"]["alarm"]["fields"]["text"] = "{{ nope }}"
    raw["callers"]["demo"]["scopes"] = ["query", "fly"]
    raw["limits"]["max_destinations"] = "lots"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "check-config", "--config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "callers.demo.scopes: unknown scope 'fly'" in out.stderr
    assert "limits.max_destinations: must be a non-negative whole number" in out.stderr
    good = subprocess.run([sys.executable, str(ROOT / "app.py"), "check-config", "--config", str(ROOT / "config.yaml")],
                          capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and "OK" in good.stdout


def test_template_errors_reported_by_check_config(tmp_path):
    raw = default_raw_config()
    raw["templates"]["alarm"]["fields"]["text"] = "{{ nope }}"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "check-config", "--config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "templates.alarm.fields.text: uses undeclared parameter(s) nope" in out.stderr


def test_plain_password_refused_with_real_upstream(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(default_raw_config()))
    env = {**os.environ, "INFOBIP_BASE_URL": "https://example.invalid", "INFOBIP_API_KEY": "k"}
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "check-config", "--config", str(path)],
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 1 and "callers.demo.password: plain passwords are only accepted" in out.stderr


def test_hash_password_cli_produces_a_working_hash(make_bridge, sandbox):
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "hash-password", "s3cret"],
                         capture_output=True, text=True, timeout=60)
    hashed = out.stdout.strip()
    assert hashed.startswith("pbkdf2:sha256:") and "s3cret" not in hashed

    def use_hash(raw):
        raw["callers"]["demo"].pop("password")
        raw["callers"]["demo"]["password_hash"] = hashed

    bridge = make_bridge(use_hash)
    params = {"username": "demo", "to": "41793026727", "text": "x"}
    assert bridge.get("/sms/1/text/query", params={**params, "password": "s3cret"}).status_code == 200
    assert bridge.get("/sms/1/text/query", params={**params, "password": "demo"}).status_code == 401


def test_sandbox_runs_alone(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config", str(ROOT / "config.yaml"), "sandbox",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"sandbox listening on (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "the sandbox did not start"
        r = requests.get(url + "/sms/1/text/query", params={"username": "sandbox", "password": "sandbox",
                                                             "to": "41793026727", "text": "hi"}, timeout=10)
        assert r.status_code == 200 and r.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
        bad = requests.get(url + "/sms/1/text/query", params={"username": "sandbox", "password": "x", "to": "1"},
                           timeout=10)
        assert bad.status_code == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
