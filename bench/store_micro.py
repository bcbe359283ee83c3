"""Store micro-benchmark: the hot statements of the old (sqlite3) and the new (SQLAlchemy Core) store.

    python bench/store_micro.py [--old-commit fd9face] [--n 5000]

Each side runs in its own process on a fresh SQLite file in a temporary folder (same disk, same settings):
- sync records: ``Store.record`` of a 1-destination sync send, 1 thread (a group each) and 8 threads (groups);
- queued acceptance: ``Store.accept`` of a 2-destination queued submission, 8 threads (fsynced groups);
- the queue: ``claim_batch`` (100) + ``batch_answered`` until the accepted messages are drained.
The old side is the store of ``--old-commit`` (``git archive`` into a temporary folder). Results:
bench/results/store_micro.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _measure(n: int) -> dict[str, float]:
    from gateway.clock import SystemClock
    from gateway.model import Status
    from gateway.send.upstream import Attempt
    from gateway.store.engine import Database
    from gateway.store.records import MessageRow, Store, SubmissionRecord

    status = Status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(os.path.join(tmp, "b.db"))
        store = Store(db, SystemClock())
        seq = iter(range(10**9))

        def sub(mode: str) -> SubmissionRecord:
            return SubmissionRecord("demo", "query", mode, "advanced", None, f"tok-{next(seq)}", None)

        def row(state: str, i: int) -> MessageRow:
            return MessageRow(f"m-{i}", f"u-{i}", "41793026727", "Bridge", "hello " * 5, '{"from":"Bridge"}',
                              None, None, None, False, 1, status, state)

        def sync(i: int) -> int:
            return store.record(sub("sync"), [row("sent", i)], [Attempt("advanced", 200, 12.5)])

        def accept(i: int) -> int:
            return store.accept(sub("queued"), [row("queued", i), row("queued", i + 1)])

        for name, fn, threads in (("sync record, 1 thread", sync, 1), ("sync record, 8 threads", sync, 8),
                                  ("queued accept, 8 threads", accept, 8)):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fn, range(n)))
            out[name] = n / (time.perf_counter() - t0)
        t0, drained = time.perf_counter(), 0
        while True:
            batch = store.claim_batch(100, 60.0)
            if not batch:
                break
            ids = [r.row_id if hasattr(r, "row_id") else r["id"] for r in batch]
            store.batch_answered("b", [(i, "sent", status, 1) for i in ids], "bulk", Attempt("advanced", 200, 9.0),
                                 len(ids))
            drained += len(ids)
        out[f"queue claim+answer ({drained} messages), per message"] = drained / (time.perf_counter() - t0)
        db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-commit", default="fd9face")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3, help="runs per side, alternating; the best of each is kept")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_measure(args.n)))
        return
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old_commit, "gateway"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        for _ in range(args.rounds):  # alternating, best of each: the machine is shared and noisy
            for side, path in ((f"old ({args.old_commit}, sqlite3)", old), ("new (SQLAlchemy Core)", str(ROOT))):
                env = {**os.environ, "PYTHONPATH": path}
                run = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n)], env=env, cwd=path,
                                     check=True, capture_output=True, text=True)
                got = json.loads(run.stdout.strip().splitlines()[-1])
                best = results.setdefault(side, {})
                for op, v in got.items():
                    best[op] = max(best.get(op, 0.0), v)
    sides = list(results)
    lines = [f"# Store micro-benchmark ({args.n} submissions per row; operations per second, higher is better;"
             f" best of {args.rounds} alternating runs per side)", "",
             f"| operation | {' | '.join(sides)} | new/old |", "|---|" + "---:|" * (len(sides) + 1)]
    for op in results[sides[0]]:
        a, b = results[sides[0]][op], results[sides[1]].get(op, 0.0)
        lines.append(f"| {op} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "store_micro.md").write_text(text)


if __name__ == "__main__":
    main()
