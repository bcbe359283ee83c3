"""Issue 16 item 4: operations signals that tell the truth - readiness while the upstream is down, a real
authenticated probe, queue and worker metrics, request durations, circuit state, process metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO
from tests.helpers import free_port, wait_for
from tests.test_ops import metric


def queued(raw):
    raw["callers"]["demo"]["mode"] = "queued"
    raw["queue"] = {"time_scale": 0.01, "workers": 1}


def test_a_queued_bridge_stays_ready_but_degraded_while_the_upstream_is_down(make_bridge):
    b = make_bridge(queued, upstream_url=f"http://127.0.0.1:{free_port()}")
    r = b.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    assert body["checks"]["upstream"]["ok"] is False
    assert any("no upstream is healthy" in x and "connection refused" in x and "queue" in x for x in body["reasons"])
    # and it does accept sends meanwhile: that is why it stays in the load balancer
    sent = b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "held"})
    assert sent.status_code == 200 and sent.json()["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"


def test_a_sync_bridge_that_hands_over_to_the_queue_is_degraded_too(make_bridge):
    b = make_bridge(upstream_url=f"http://127.0.0.1:{free_port()}")  # demo: sync, on_upstream_failure: queue
    r = b.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "degraded"


def test_the_probe_is_authenticated_and_a_refused_key_is_not_healthy(make_bridge, sandbox):
    good = make_bridge()
    r = good.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    up = r.json()["checks"]["upstream"]
    assert up["ok"] and up["status"] == 200 and up["upstreams"][0]["name"] == "primary"
    probes = [x for x in sandbox.requests() if x["path"] == "/account/1/balance"]
    assert probes and probes[-1]["auth"] == "App"  # a real request with the bridge's key
    bad = make_bridge(lambda raw: raw["upstream"].update(api_key="not-the-key"))
    r = bad.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "degraded"  # it answers, but 401 is not healthy
    assert r.json()["checks"]["upstream"]["status"] == 401 and r.json()["checks"]["upstream"]["ok"] is False


def test_a_404_from_something_that_is_not_infobip_is_not_healthy(make_bridge, receiver):
    b = make_bridge(lambda raw: raw["callers"]["demo"].update(on_upstream_failure="fail"),
                    upstream_url=receiver.url("/not-infobip"))
    receiver.status = 404  # any path answers 404
    r = b.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["upstream"]["status"] == 404


def test_queued_sends_parts_depth_age_and_worker_errors_are_counted(make_bridge, sandbox):
    b = make_bridge(queued)
    ctx = b.app.extensions["smsbridge"]
    sandbox.faults(status=503, count=1, path="/sms/2/text/advanced")
    r = b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727,41793026834", "text": "x" * 200})
    assert r.status_code == 200
    wait_for(lambda: metric(b, "smsbridge_messages_sent_total") == 2, what="queued sends counted")
    assert metric(b, "smsbridge_sms_parts_sent_total") == 4
    assert metric(b, "smsbridge_upstream_errors_total", api="advanced", reason="http 503", upstream="primary") == 1
    assert metric(b, "smsbridge_upstream_messages_sent_total", upstream="primary") == 2
    assert metric(b, "smsbridge_send_events_total", event="retried") == 2
    # depth and age per caller: stop the workers so messages wait
    ctx.queue.stop()
    assert b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "waits"}).status_code == 200
    assert metric(b, "smsbridge_queue_depth", caller="demo") == 1
    assert metric(b, "smsbridge_queue_oldest_age_seconds", caller="demo") >= 0
    ctx.queue.start()
    wait_for(lambda: metric(b, "smsbridge_queue_depth", caller="demo") == 0, what="the queue drained")


def test_request_durations_circuit_state_and_process_metrics(make_bridge):
    b = make_bridge()
    assert b.get("/sms/1/text/query", params={**DEMO, "to": "41793026727", "text": "hi"}).status_code == 200
    assert b.get("/sms/1/text/query", params={**DEMO, "to": "1", "text": "x"}).status_code == 400
    assert metric(b, "smsbridge_http_request_seconds_count", entrance="query", status_class="2xx") == 1
    assert metric(b, "smsbridge_http_request_seconds_count", entrance="query", status_class="4xx") == 1
    assert metric(b, "smsbridge_upstream_circuit_state", upstream="primary", state="closed") == 1
    assert metric(b, "smsbridge_upstream_circuit_state", upstream="primary", state="open") == 0
    text = b.get("/metrics").text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds"} <= names


def test_readyz_body_names_each_upstream(make_bridge, sandbox):
    b = make_bridge()
    up = requests.get(b.url + "/readyz", timeout=10).json()["checks"]["upstream"]
    assert [u["name"] for u in up["upstreams"]] == ["primary"] and up["upstreams"][0]["circuit"] == "closed"


# -- alert rules and the dashboard -------------------------------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs"
_NAME = re.compile(r"\b((?:smsbridge|process)_[a-z0-9_]+)\b")


def _exposed(bridge) -> set[str]:
    """Every series name the bridge's /metrics can show (families and their sample suffixes)."""
    names: set[str] = set()
    for fam in text_string_to_metric_families(bridge.get("/metrics").text):
        names |= {fam.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created")}
        names |= {s.name for s in fam.samples}
    return names


def test_alert_rules_load_and_name_existing_metrics(bridge):
    path = DOCS / "prometheus" / "alerts.yml"
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [g["name"] for g in rules["groups"]] == ["smsbridge"]
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {"SmsbridgeQueueGrowing", "SmsbridgeDeadLetters", "SmsbridgeUpstreamFailing",
            "SmsbridgeCircuitOpen"} <= set(alerts)
    exposed = _exposed(bridge)
    for name, rule in alerts.items():
        assert {"expr", "labels", "annotations"} <= set(rule), name
        used = set(_NAME.findall(rule["expr"]))
        assert used and used <= exposed, (name, used - exposed)


def test_the_dashboard_queries_name_existing_metrics(bridge):
    dash = json.loads((DOCS / "grafana" / "smsbridge.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    exposed = _exposed(bridge)
    for expr in exprs:
        used = set(_NAME.findall(expr))
        assert used and used <= exposed, (expr, used - exposed)
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for topic in ("queue", "circuit", "upstream", "dead letters", "memory"):
        assert topic in titles
