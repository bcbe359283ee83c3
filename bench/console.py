"""The console's queries on a big record (issue 18 items 2 and 3): a SQLite store (or ``--url``
PostgreSQL) filled with ``--rows`` messages spread over a week, then the dashboard's figures for an hour, a
day and a week (all callers, one caller, one template), a log page with its totals, and the CSV export of
100,000 rows, each timed (median of ``--repeat`` runs). Results: ``bench/results/issue18/console.json``.

    .venv/bin/python bench/console.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store import dashboard  # noqa: E402
from gateway.store.engine import Database  # noqa: E402
from gateway.store.logview import LogFilter, LogView  # noqa: E402
from gateway.store.schema import messages, status_changes, submissions  # noqa: E402

WEEK = 7 * 86400
GROUPS = [("DELIVERED", "DELIVERED_TO_HANDSET", "sent")] * 90 + [("PENDING", "PENDING_ACCEPTED", "sent")] * 5 + [
    ("UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", "sent")] * 3 + [("REJECTED", "REJECTED_DESTINATION", "sent")] * 2


def fill(db: Database, rows: int, now: float) -> None:
    rnd = random.Random(7)
    callers = ["demo", "alarm", "erp", "pbx"]
    entrances = ["query", "template:alarm", "advanced", "v3"]
    batch: list[dict] = []
    subs: list[dict] = []
    changes: list[dict] = []
    for i in range(rows):  # one submission per message, as most legacy GETs carry one destination
        created = now - WEEK + WEEK * i / rows
        group, name, state = GROUPS[rnd.randrange(len(GROUPS))]
        sent = created + 0.2
        subs.append({"id": i + 1, "caller": callers[i % 4], "entrance": entrances[(i // 4) % 4], "mode": "sync",
                     "api": "advanced", "dlr_token": f"t{i}", "destinations": 1, "created_at": created,
                     "updated_at": created})
        batch.append({"submission_id": i + 1, "caller": callers[i % 4], "entrance": entrances[(i // 4) % 4],
                      "mode": "sync", "state": state, "message_id": f"m{i}", "bulk_id": None,
                      "to_addr": f"4179{rnd.randrange(10**7):07d}", "sender": "InfoSMS", "text": "Pump 3 failed",
                      "spec": "{}", "status_group_name": group, "status_name": name, "sent_at": sent,
                      "done_at": sent + rnd.expovariate(1 / 4.0) if group != "PENDING" else None,
                      "created_at": created, "updated_at": created})
        changes.append({"message_row": i + 1, "at": sent, "source": "answer", "status_name": "PENDING_ACCEPTED",
                        "group_name": "PENDING"})
        if group != "PENDING":  # and the delivery report, as a real record has it
            changes.append({"message_row": i + 1, "at": batch[-1]["done_at"], "source": "report", "status_name": name,
                            "group_name": group})
        if len(batch) == 20000:
            with db.transaction() as c:
                c.execute(submissions.insert(), subs)
                c.execute(messages.insert(), batch)
                c.execute(status_changes.insert(), changes)
            batch, subs, changes = [], [], []
    if batch:
        with db.transaction() as c:
            c.execute(submissions.insert(), subs)
            c.execute(messages.insert(), batch)
            c.execute(status_changes.insert(), changes)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--url", default="", help="a PostgreSQL URL (an empty database) instead of a SQLite file")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "issue18" / "console.json"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    db = Database(args.url or os.path.join(tmp, "console.db"), synchronous="NORMAL")
    now = time.time()
    t = time.perf_counter()
    fill(db, args.rows, now)
    filled = time.perf_counter() - t
    out: dict[str, object] = {"rows": args.rows, "engine": db.engine.dialect.name, "fill_s": round(filled, 1),
                              "python": sys.version.split()[0], "ms_median": {}}
    ms = out["ms_median"]
    for name, span, buckets in (("hour", 3600, 12), ("day", 86400, 24), ("week", WEEK, 28)):
        ms[f"dashboard_{name}_all"] = timed(lambda s=span, b=buckets: dashboard.stats(db, now - s, now, b), args.repeat)
        ms[f"dashboard_{name}_caller"] = timed(
            lambda s=span, b=buckets: dashboard.stats(db, now - s, now, b, caller="alarm"), args.repeat)
        ms[f"dashboard_{name}_template"] = timed(
            lambda s=span, b=buckets: dashboard.stats(db, now - s, now, b, template="alarm"), args.repeat)
    ms["upstream_health"] = timed(lambda: dashboard.upstream_health(db, now - 300), args.repeat)
    lv = LogView(db, now, mask_text=True)
    ms["log_page1_with_total"] = timed(lambda: lv.page("messages", LogFilter(), 1, 50), args.repeat)
    ms["log_page1_caller_day"] = timed(
        lambda: lv.page("messages", LogFilter(caller="erp", since=now - 86400), 1, 50), args.repeat)
    ms["log_number_any_notation"] = timed(lambda: lv.page("messages", LogFilter(number="+41 79 000 00 01"), 1, 50),
                                          args.repeat)
    since = now - WEEK * 100_000 / args.rows  # the newest 100,000 rows
    count = sum(1 for _ in lv.export(LogFilter(since=since)))
    ms["csv_export_rows"] = count
    ms["csv_export_100k"] = timed(lambda: sum(1 for _ in lv.export(LogFilter(since=since))), max(1, args.repeat // 2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
