"""Preview throughput benchmark: gateway.sms vs the PyPI packages smsutil and gsm0338.

Builds a deterministic (seeded) corpus of mixed texts (GSM, extension-heavy, Turkish, Cyrillic, emoji),
measures "encode + count parts" per text category for each engine (median, min and max of several
runs), counts where the other engines disagree with gateway.sms, and writes
bench/results/preview.json and bench/results/preview.md.

Run: python bench/bench_preview.py [--size BYTES] [--runs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.sms import analyse, sms_count  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"

WORDS = {
    "gsm": "the quick brown fox jumps over lazy dog your code is 4821 meeting at 10:30 "
    "please call back order shipped café Zürich Ærø £5 @home dear customer balance".split(),
    "extension": "price 5€ [promo] {code} ~approx a|b ^up back\\slash total €12 [OK] {id}".split(),
    "turkish": "Şişli'deki toplantı yarın saat başlayacak Lütfen Iğdır şubesindeki çalışma "
    "arkadaşlarınıza haber verin Görüşmek üzere ağaç ışık".split(),
    "cyrillic": "Привет как дела ваш код подтверждения заказ отправлен встреча завтра в "
    "банк баланс спасибо щука объявление".split(),
    "emoji": "hello 😀 world 🎉 thanks 👍 see you 🇮🇹 party 👨‍👩‍👧 ok ❤️ 🚀 great 👍🏽".split(),
}
# "edge": texts placed on part boundaries, and the characters implementations disagree on.
EDGE_SPECIALS = ("€", "]", "{", "^", "\f", "😀", "🇮🇹", "ç", "\x1b", "\u00a0", "\x00", "`", "Ç", "")
EDGE_PREFIXES = (64, 65, 66, 67, 68, 69, 70, 151, 152, 153, 154, 158, 159, 160, 304, 305, 306)
CATEGORIES = (*WORDS, "edge")


def build_corpus(total_bytes: int = 1_000_000, seed: int = 20240601) -> dict[str, list[str]]:
    """Deterministic texts, about total_bytes of UTF-8 split evenly over the categories."""
    rng = random.Random(seed)
    per_category = max(1, total_bytes // len(CATEGORIES))
    corpus: dict[str, list[str]] = {}
    for category in CATEGORIES:
        texts: list[str] = []
        if category == "edge":
            corpus[category] = _edge_texts(rng, per_category)
            continue
        words = WORDS[category]
        size = 0
        while size < per_category:
            length = rng.choice((rng.randint(5, 160), rng.randint(100, 480)))
            parts: list[str] = []
            chars = 0
            while chars < length:
                word = rng.choice(words)
                parts.append(word)
                chars += len(word) + 1
            text = " ".join(parts)[:length]
            texts.append(text)
            size += len(text.encode("utf-8"))
        corpus[category] = texts
    return corpus


def _edge_texts(rng: random.Random, size: int) -> list[str]:
    texts: list[str] = [""]
    total = 0
    while total < size:
        prefix = "a" * rng.choice(EDGE_PREFIXES)
        text = prefix + rng.choice(EDGE_SPECIALS) + "b" * rng.randint(0, 160)
        texts.append(text)
        total += len(text.encode("utf-8"))
    return texts


def _smsutil_engine() -> Callable[[str], tuple[str, int]] | None:
    try:
        import smsutil
    except ImportError:
        return None

    def run(text: str) -> tuple[str, int]:
        result = smsutil.split(text)
        return ("GSM7" if result.encoding == "gsm0338" else "UCS2"), len(result.parts)

    return run


def _gsm0338_engine() -> Callable[[str], tuple[str, int]] | None:
    try:
        import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
    except ImportError:
        return None

    def run(text: str) -> tuple[str, int]:
        # gsm0338 only encodes; parts follow from the unit count (160/153, 70/67).
        try:
            units, single, multi, encoding = len(text.encode("gsm03.38")), 160, 153, "GSM7"
        except UnicodeEncodeError:
            units, single, multi, encoding = len(text.encode("utf-16-le")) // 2, 70, 67, "UCS2"
        return encoding, (1 if units <= single else math.ceil(units / multi))

    return run


def engines() -> dict[str, Callable[[str], tuple[str, int]] | None]:
    """Engine name -> callable returning (encoding, message count); None when not installed."""

    def ours_analyse(text: str) -> tuple[str, int]:
        result = analyse(text)
        return result.encoding, result.message_count

    def ours_count(text: str) -> tuple[str, int]:
        return "", sms_count(text)

    return {
        "gateway.sms analyse": ours_analyse,
        "gateway.sms sms_count": ours_count,
        "smsutil": _smsutil_engine(),
        "gsm0338": _gsm0338_engine(),
    }


def _time_once(func: Callable[[str], Any], texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        func(text)
    return time.perf_counter() - start


def measure(corpus: dict[str, list[str]], runs: int = 5) -> dict[str, Any]:
    """Timings and disagreements per category and engine."""
    engine_map = engines()
    results: dict[str, Any] = {}
    for category, texts in corpus.items():
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        truth = [(a.encoding, a.message_count) for a in map(analyse, texts)]
        per_engine: dict[str, Any] = {}
        for name, func in engine_map.items():
            if func is None:
                per_engine[name] = {"available": False}
                continue
            answers = [func(t) for t in texts]  # also a warm-up run
            times = [_time_once(func, texts) for _ in range(runs)]
            median = statistics.median(times)
            count_diff = sum(1 for a, t in zip(answers, truth, strict=True) if a[1] != t[1])
            enc_diff = sum(1 for a, t in zip(answers, truth, strict=True) if a[0] and a[0] != t[0])
            per_engine[name] = {
                "available": True,
                "seconds": {"median": median, "min": min(times), "max": max(times), "runs": len(times)},
                "texts_per_second": len(texts) / median if median else None,
                "mb_per_second": nbytes / 1e6 / median if median else None,
                "disagreements": {"messageCount": count_diff, "encoding": enc_diff},
            }
        results[category] = {"texts": len(texts), "bytes": nbytes, "engines": per_engine}
    return results


def _markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# Preview benchmark (encode + count parts)",
        "",
        f"- date: {env['date']}",
        f"- python: {env['python']} ({env['implementation']}), platform: {env['platform']}",
        f"- os.cpu_count(): {env['cpu_count']}",
        f"- corpus: {report['corpus']['bytes']} bytes UTF-8, {report['corpus']['texts']} texts, "
        f"seed {report['corpus']['seed']}; runs per measurement: {report['runs']}",
        "",
        "Throughput is texts per second from the median run (min-max run time in ms). Disagreements count "
        "texts whose message count (encoding) differs from gateway.sms, whose answers follow 3GPP and the "
        "reference vectors.",
        "",
        "| category | engine | texts/s (median) | MB/s | run ms median (min-max) | count diffs | encoding diffs |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for category, data in report["results"].items():
        for name, r in data["engines"].items():
            if not r["available"]:
                lines.append(f"| {category} | {name} | not installed | | | | |")
                continue
            s = r["seconds"]
            lines.append(
                f"| {category} ({data['texts']} texts) | {name} | {r['texts_per_second']:,.0f} | "
                f"{r['mb_per_second']:.2f} | {s['median'] * 1e3:.1f} ({s['min'] * 1e3:.1f}-{s['max'] * 1e3:.1f}) | "
                f"{r['disagreements']['messageCount']} | {r['disagreements']['encoding']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the corpus, measure, write preview.json and preview.md; return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="corpus size in UTF-8 bytes")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per engine and category (>= 3)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    runs = max(3, args.runs)
    corpus = build_corpus(args.size, args.seed)
    report = {
        "environment": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "corpus": {
            "bytes": sum(len(t.encode("utf-8")) for texts in corpus.values() for t in texts),
            "texts": sum(len(texts) for texts in corpus.values()),
            "seed": args.seed,
            "categories": list(corpus),
        },
        "runs": runs,
        "results": measure(corpus, runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "preview.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "preview.md").write_text(_markdown(report), encoding="utf-8")
    return report


if __name__ == "__main__":
    result = main()
    print(_markdown(result))
