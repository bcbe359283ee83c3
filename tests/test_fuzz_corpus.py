"""Regression cases the fuzzer found (tests/fuzz/corpus/<target>/), replayed as plain tests: no atheris.

Each file is an input that once crashed a parser; it must now end in a documented error (or none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS, check

CORPUS = Path(__file__).resolve().parent / "fuzz" / "corpus"
CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name[:20]}" for p in CASES])
def test_regression_case(path: Path):
    check(TARGETS[path.parent.name], path.read_bytes())


def test_every_corpus_folder_is_a_target():
    assert CASES, "the corpus holds the crashes found so far"
    assert {p.parent.name for p in CASES} <= set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_run_cleanly(name: str):
    for seed in TARGETS[name].seeds:
        TARGETS[name].run(seed)  # a seed is a valid input: no error at all
