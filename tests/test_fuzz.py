"""The coverage-guided fuzzer, briefly: every parser target in its own subprocess (a crash is reported
with its input, not fatal to the suite). Longer runs: ``python -m tests.fuzz.run --seconds 600``
(docs/testing.md#fuzzing). Skipped, with the reason, where atheris cannot be installed."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fuzz.run import available, fuzz
from tests.fuzz.targets import TARGETS

RUNS = 4000  # inputs per target: ~0.3 s of fuzzing after ~2 s of start-up (instrumentation)


@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_fuzz_every_parser_briefly(tmp_path):
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda n: fuzz(n, 60, tmp_path / n, runs=RUNS), sorted(TARGETS)))
    crashes = [f"{o.target}: inputs (base64) {[base64.b64encode(i).decode() for i in o.inputs]}\n{o.tail}"
               for o in outcomes if o.crashed]
    assert not crashes, "\n\n".join(crashes)
