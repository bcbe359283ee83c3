"""Operations: liveness, readiness, Prometheus metrics, request ids, JSON log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO, ROOT, default_raw_config
from tests.helpers import free_port, wait_for
from tests.test_secrets_cli import _start

SEND = {**DEMO, "to": "41793026727,41793026834", "text": "x" * 200}


def metric(bridge, name: str, **labels: str) -> float:
    """The current value of one sample of /metrics (0 when absent)."""
    text = bridge.get("/metrics").text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_healthz_and_readyz(bridge):
    h = bridge.get("/healthz")
    assert h.status_code == 200 and h.json() == {"status": "ok"}
    r = bridge.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["upstream"]["ok"]
    assert body["checks"]["outbox"] == {"ok": True, "depth": 0, "max": 1000, "oldestAgeSeconds": None}


def test_readyz_fails_when_the_upstream_is_unreachable_and_nothing_can_wait(make_bridge):
    # issue 16: a bridge that stores and forwards stays ready (tests/test_ops_signals.py); this one answers
    # every send sync and fails it while the upstream is down: not ready
    b = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"),
                    upstream_url=f"http://127.0.0.1:{free_port()}")
    r = b.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not ready" and r.json()["checks"]["upstream"]["ok"] is False
    assert r.json()["checks"]["database"]["ok"] is True
    assert b.get("/healthz").status_code == 200  # alive all the same


def test_readyz_fails_when_the_outbox_backlog_is_over_its_threshold(make_bridge):
    b = make_bridge(lambda raw: raw.setdefault("ops", {}).update(ready_outbox_max=1))
    outbox = b.app.extensions["smsbridge"].outbox
    for _ in range(2):  # nobody listens there: the jobs stay pending on the retry schedule
        outbox.enqueue("test", f"http://127.0.0.1:{free_port()}/hook", caller="demo")
    r = b.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["outbox"]["depth"] == 2
    assert r.json()["checks"]["outbox"]["oldestAgeSeconds"] >= 0
    assert metric(b, "smsbridge_outbox_depth") == 2


def test_metrics_count_requests_messages_parts_and_latency(bridge):
    assert bridge.get("/sms/1/text/query", params=SEND).status_code == 200
    assert bridge.get("/sms/1/text/query", params={**DEMO, "to": "1", "text": "x"}).status_code == 400
    assert bridge.get("/t/alarm", params={**DEMO, "phone": "41793026727", "msg": "hi"}).status_code == 200
    assert metric(bridge, "smsbridge_requests_total", entrance="query", outcome="ok") == 1
    assert metric(bridge, "smsbridge_requests_total", entrance="query", outcome="rejected") == 1
    assert metric(bridge, "smsbridge_requests_total", entrance="templates", outcome="ok") == 1
    assert metric(bridge, "smsbridge_messages_sent_total") == 3
    assert metric(bridge, "smsbridge_sms_parts_sent_total") == 2 * 2 + 1  # 200 GSM-7 chars = 2 parts
    assert metric(bridge, "smsbridge_upstream_request_seconds_count", api="advanced") == 2  # the default API
    assert metric(bridge, "smsbridge_upstream_errors_total") == 0
    assert metric(bridge, "smsbridge_store_group_submissions_total", group="record") == 2  # the two sync sends
    assert 1 <= metric(bridge, "smsbridge_store_group_commits_total", group="record") <= 2
    # issue 13 item 5: each sync send is recorded (fsynced, "accept" group) before it is forwarded
    assert metric(bridge, "smsbridge_store_group_submissions_total", group="accept") == 2
    assert bridge.get("/metrics").headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_metrics_count_upstream_errors(make_bridge):
    b = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"), upstream_url=f"http://127.0.0.1:{free_port()}")  # the fail policy (default: queue, issue 13 item 4)
    assert b.get("/sms/1/text/query", params=SEND).status_code == 503
    assert metric(b, "smsbridge_requests_total", entrance="query", outcome="failed") == 1
    assert metric(b, "smsbridge_upstream_errors_total", api="advanced", reason="connection refused") == 1
    assert metric(b, "smsbridge_upstream_request_seconds_count", api="advanced") == 1
    assert metric(b, "smsbridge_messages_sent_total") == 0


def test_each_app_has_its_own_registry(make_bridge):
    a, b = make_bridge(), make_bridge()
    assert a.get("/sms/1/text/query", params=SEND).status_code == 200
    assert metric(a, "smsbridge_messages_sent_total") == 2 and metric(b, "smsbridge_messages_sent_total") == 0


def test_metrics_can_be_switched_off(make_bridge):
    b = make_bridge(lambda raw: raw.setdefault("ops", {}).update(metrics=False))
    r = b.get("/metrics")
    assert r.status_code == 404 and "requestError" in r.json()


def test_request_id_is_echoed_or_made(bridge):
    given = bridge.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = {bridge.get("/sms/1/text/query", params={"to": "1"}).headers["X-Request-Id"] for _ in range(3)}
    assert len(made) == 3 and all(len(x) == 16 for x in made)  # on errors too, unique per request
    hostile = bridge.get("/healthz", headers={"X-Request-Id": "x" * 65})
    assert hostile.headers["X-Request-Id"] != "x" * 65  # not a token: replaced, never echoed


def test_json_log_lines_carry_the_request_id(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "b.db")}
    raw["logging"] = {"level": "INFO", "access_log": True, "format": "json"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    proc, url, output = _start(tmp_path / "config.yaml", dict(os.environ))
    try:
        import requests

        resp = requests.get(url + "/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "hi"},
                            headers={"X-Request-Id": "req-json-1"}, timeout=10)
        assert resp.status_code == 200
    finally:
        proc.terminate()
    lines = [ln for ln in output.text(timeout=10).splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]  # every log line is one JSON object
    assert records and all({"ts", "level", "logger", "msg", "request_id"} <= r.keys() for r in records)
    access = [r for r in records if r["logger"] == "smsbridge.access" and r["request_id"] == "req-json-1"]
    assert access and "password=***" in access[0]["msg"] and "demo&password=demo" not in access[0]["msg"]


def test_json_format_is_validated(tmp_path):
    raw = default_raw_config()
    raw["logging"] = {"format": "xml"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "c.yaml"), "check-config"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "logging.format: must be text or json" in out.stderr


def test_a_flood_of_readyz_costs_one_upstream_probe_and_one_write_per_period(make_bridge, receiver):
    # /readyz needs no login: each answer used to write to the database and make an authenticated upstream
    # request, so anyone could spend the account's rate and the fsyncs the sends need. Shared checks bound both.
    b = make_bridge(lambda raw: raw.setdefault("ops", {}).update(ready_cache=60),
                    upstream_url=f"http://127.0.0.1:{receiver.port}")
    db = b.app.extensions["smsbridge"].db
    writes: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute",
                    lambda conn, cursor, stmt, *a: writes.append(stmt) if "ops_probe" in stmt else None)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: b.get("/readyz"), range(64)))
    assert len({json.dumps(r.json()["checks"], sort_keys=True) for r in answers}) == 1  # one check, shared
    probes = [r for r in receiver.requests if r.path == "/account/1/balance"]
    assert len(probes) == 1, [r.path for r in receiver.requests]
    assert 1 <= len(writes) <= 2  # one probe row: an UPDATE (and an INSERT the first time)


def test_readyz_checks_again_after_its_cache_period(make_bridge, receiver):
    b = make_bridge(lambda raw: raw.setdefault("ops", {}).update(ready_cache=0),
                    upstream_url=f"http://127.0.0.1:{receiver.port}")
    for _ in range(3):
        b.get("/readyz")
    assert len([r for r in receiver.requests if r.path == "/account/1/balance"]) == 3


def test_readiness_memo_shares_one_failing_computation_and_never_queues_behind_a_slow_one():
    from gateway.services import Memo

    memo, calls, gate = Memo(60), [], threading.Event()

    def failing() -> None:
        calls.append(1)
        gate.wait(10)  # a database connect that takes its time, then fails
        raise RuntimeError("store down")

    heard: list[str] = []

    def probe() -> None:
        try:
            memo.get(failing)
        except RuntimeError as exc:
            heard.append(str(exc))

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(calls) == 1, what="the one computation started")
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and heard == ["store down"] * 8  # one computation, its error shared
    # a later, slow recomputation: the other callers get the last answer at once instead of waiting for it
    memo2, release, started = Memo(0.001), threading.Event(), threading.Event()
    assert memo2.get(lambda: "first") == "first"
    slow = threading.Thread(target=lambda: memo2.get(lambda: (started.set(), release.wait(10), "second")[2]))
    wait_for(lambda: time.monotonic() - (memo2._at or 0) > 0.001, what="the first answer aged")
    slow.start()
    started.wait(10)
    assert memo2.get(lambda: "never") == "first"  # stale by one computation, not queued behind it
    release.set()
    slow.join(10)
    wait_for(lambda: memo2.get(lambda: "third") in ("second", "third"), what="the slow one landed")
