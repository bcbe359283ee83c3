"""One fuzz target under atheris, in its own process: ``python -m tests.fuzz.worker TARGET LIMIT WORKDIR``
(LIMIT: seconds, or ``runs=N`` inputs: the suite's brief run).

The gateway's modules are instrumented for coverage; libFuzzer mutates from the target's seeds and its
corpus (tests/fuzz/corpus/<target>/, read only) into WORKDIR/corpus, and writes a crashing input to
WORKDIR/crash-<sha1> (exit status non-zero). The parent (tests.fuzz.run) reports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# the parsers only: instrumenting all of gateway (Flask blueprints, the store) costs seconds per process
PARSERS = ["gateway.wire", "gateway.entrances.querystring", "gateway.urlbuilder", "gateway.render", "gateway.sms.preview",
           "gateway.sms.segmentation", "gateway.sms.charsets", "gateway.sms.transliteration",
           "gateway.validate", "gateway.reports.callbacks", "gateway.clock"]

with atheris.instrument_imports(include=PARSERS):
    from tests.fuzz.targets import TARGETS, check

CORPUS = Path(__file__).resolve().parent / "corpus"


def main() -> None:
    name, limit, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    target = TARGETS[name]
    work = workdir / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(target.seeds):
        (work / f"seed-{i}").write_bytes(seed)
    dirs = [str(work)] + ([str(CORPUS / name)] if (CORPUS / name).is_dir() else [])
    sys.setrecursionlimit(3000)
    budget = f"-{limit}" if limit.startswith("runs=") else f"-max_total_time={max(1, round(float(limit)))}"
    args = [sys.argv[0], budget, "-timeout=20", "-rss_limit_mb=2048",
            "-max_len=8192", f"-artifact_prefix={workdir}/", "-print_final_stats=0", *dirs]
    atheris.Setup(args, lambda data: check(target, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
