"""Smoke test: the preview benchmark runs on a tiny corpus and writes well-formed results (no speed checks)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_preview.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_preview", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_on_tiny_corpus(tmp_path: Path) -> None:
    bench = _load_bench()
    report = bench.main(["--size", "3000", "--runs", "3", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "preview.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(report))
    assert {"date", "python", "cpu_count"} <= set(written["environment"])
    assert written["runs"] >= 3
    assert set(written["results"]) == set(bench.CATEGORIES)
    for data in written["results"].values():
        assert data["texts"] > 0 and data["bytes"] > 0
        ours = data["engines"]["gateway.sms sms_count"]
        assert ours["available"] and ours["disagreements"] == {"messageCount": 0, "encoding": 0}
        for result in data["engines"].values():
            if result["available"]:
                seconds = result["seconds"]
                assert seconds["min"] <= seconds["median"] <= seconds["max"]
                assert seconds["runs"] >= 3
                assert set(result["disagreements"]) == {"messageCount", "encoding"}
    markdown = (tmp_path / "preview.md").read_text(encoding="utf-8")
    assert "os.cpu_count()" in markdown and "| category |" in markdown


def test_corpus_is_deterministic() -> None:
    bench = _load_bench()
    assert bench.build_corpus(5000, seed=7) == bench.build_corpus(5000, seed=7)
