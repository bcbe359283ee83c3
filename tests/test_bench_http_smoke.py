"""Smoke test: the HTTP benchmark runner starts its servers, drives tiny runs and writes well-formed results.

Only the structure is checked, never a figure: speed is for bench/run.py to report, not for tests to assert.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_runner_writes_results_for_tiny_scenarios(tmp_path: Path) -> None:
    run = _load("run")
    report = run.main(["--loadgen", "python", "--duration", "0.2", "--runs", "3", "--concurrency", "2",
                       "--only", "floor,bridge-query,bridge-template,bulk-sync,queued,bulk-queued,reports",
                       "--bulk", "25", "--reports", "20", "--no-install", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "http.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(report))
    env = written["environment"]
    assert {"date", "cpu_count", "versions", "loadavg_start"} <= set(env)
    assert {"python", "flask", "waitress", "requests"} <= set(env["versions"])
    assert written["settings"]["runs"] == 3 and written["settings"]["loadgen"] == "python"
    assert set(written["scenarios"]) == {"floor", "bridge-query", "bridge-template", "queued"}
    queued = written["scenarios"]["queued"]["concurrency"]["2"]
    assert queued["delivered"] > 0 and queued["e2e_msgs_per_s"]["runs"] == 3  # accepted ones reached the sandbox
    for name, row in written["scenarios"].items():
        assert row["peak_rss_mb"] > 0, name
        r = row["concurrency"]["2"]
        assert r["requests"] > 0 and r["errors"] == 0, (name, r)  # every request answered 2xx
        for key in ("rps", "msgs_per_s", "p50_ms", "p99_ms"):
            s = r[key]
            assert s["runs"] == 3 and s["min"] <= s["median"] <= s["max"], (name, key, s)
    ratio = written["ratios"]["bridge-template/bridge-query"]["2"]
    assert ratio["runs"] == 3 and ratio["min"] <= ratio["median"] <= ratio["max"]
    assert {t["target"] for t in written["targets"]} >= {"(d) template vs (c)", "(h) peak RSS bridge-query, MB"}
    bulk = written["extra"]["bulk-sync"]["sizes"]["25"]
    assert bulk["errors"] == 0 and bulk["upstream_requests"] == 1  # one upstream GET for 25 destinations
    qbulk = written["extra"]["bulk-queued"]["sizes"]["25"]
    assert qbulk["errors"] == 0 and qbulk["upstream_requests"] == 1  # 25 queued destinations, one batch upstream
    reports = written["extra"]["reports"]
    assert reports["errors"] == 0 and reports["reports"] == 20 and reports["relayed_per_s"]["runs"] == 3
    assert {"(e) queued accepted vs floor (FULL)", "(g) reports relayed per second"} <= {
        t["target"] for t in written["targets"]}
    markdown = (tmp_path / "http.md").read_text(encoding="utf-8")
    assert "os.cpu_count()" in markdown and "| scenario | conc | req/s |" in markdown
    assert "(d) template vs (c)" in markdown


def test_wrk_output_is_parsed() -> None:
    loadgen = _load("loadgen")
    out = """Running 1s test @ http://127.0.0.1:1/
  2 threads and 16 connections
  Latency Distribution
     50%  812.00us
     75%    1.10ms
     90%    1.50ms
     99%    2.31s
  1234 requests in 1.00s, 1.2MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   1234.50
""".replace("2.31s\n", "2.31s \n")  # wrk pads some latency lines with a trailing space
    r = loadgen.parse_wrk(out)
    assert r == {"requests": 1234, "rps": 1234.5, "p50_ms": 0.812, "p99_ms": 2310.0, "errors": 7, "non2xx": 4,
                 "socket_errors": 3}


def test_load_generators_refuse_non_loopback_targets() -> None:
    loadgen = _load("loadgen")
    with pytest.raises(ValueError):
        loadgen.run_python("http://192.0.2.1:80/", 1, 0.1)
