"""Run the fuzz targets, each in a subprocess: ``python -m tests.fuzz.run --seconds 600 [--target NAME]``.

A crash is reported (the target, the exception's last lines) and its input saved as a regression case,
``tests/fuzz/corpus/<target>/crash-<sha1>``, which tests/test_fuzz_corpus.py replays without atheris
until the parser is fixed. Exit status: 0 when no target crashed, 1 otherwise, 2 without atheris.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass
class Outcome:
    target: str
    crashed: bool
    inputs: list[bytes]
    tail: str


def available() -> str | None:
    """None when atheris can run here, else the reason it cannot."""
    if importlib.util.find_spec("atheris") is None:
        return "atheris is not installed (pip install -r requirements-test.txt; it needs a Linux/macOS wheel or clang)"
    return None


def fuzz(target: str, seconds: float, workdir: Path, runs: int | None = None) -> Outcome:
    """Fuzz one target for ``seconds`` (or ``runs`` inputs) in a subprocess; its crash inputs, if any."""
    workdir.mkdir(parents=True, exist_ok=True)
    limit = f"runs={runs}" if runs else str(seconds)
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.worker", target, limit, str(workdir)],
                          cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=seconds + 120)
    crashes = sorted(workdir.glob("crash-*")) + sorted(workdir.glob("timeout-*")) + sorted(workdir.glob("oom-*"))
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
    return Outcome(target, proc.returncode != 0 or bool(crashes), [c.read_bytes() for c in crashes], tail)


def save(outcome: Outcome, corpus: Path = CORPUS) -> list[Path]:
    """Keep each crash input as a regression case under ``corpus/<target>/``."""
    import hashlib

    out = []
    for data in outcome.inputs:
        path = corpus / outcome.target / f"crash-{hashlib.sha1(data).hexdigest()}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz.targets import TARGETS

    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="per target (default 60)")
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="only this target (repeatable)")
    args = ap.parse_args(argv)
    reason = available()
    if reason:
        print(f"fuzzing skipped: {reason}", file=sys.stderr)
        return 2
    crashed = 0
    work = Path(tempfile.mkdtemp(prefix="smsbridge-fuzz-"))
    try:
        for name in args.target or sorted(TARGETS):
            o = fuzz(name, args.seconds, work / name)
            if not o.crashed:
                print(f"{name}: no crash in {args.seconds:g} s")
                continue
            crashed += 1
            saved = save(o)
            print(f"{name}: CRASH; regression case(s): {', '.join(str(p.relative_to(ROOT)) for p in saved) or '-'}")
            print(o.tail)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
