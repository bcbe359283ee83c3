"""CPU per request, read from each server's own process: ``python bench/cpu.py [--compare REF]``.

Throughput on a 2-core machine shared by the load generator, the sandbox and the server under test moves
by a third between runs; the CPU a server process spends per answered request moves far less. Each
scenario's server is driven with wrk for ``--duration`` seconds at ``--concurrency``, its user+system CPU
time is read from ``/proc/<pid>/stat`` before and after, and the figure is CPU milliseconds per answered
request. Repetitions are interleaved across scenarios; medians and same-repetition ratios against the
baselines (the bare Flask floor, the bare proxy, and the same bridge at ``--compare REF``) are written to
bench/results/cpu.md and cpu.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import run  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
#: scenario -> (server process, path); the bridges run config.yaml as shipped (see run.bridge_config)
TARGETS = {
    "floor": ("floor", f"/sms/1/text/query?{run.SEED}"),
    "proxy": ("proxy", f"/sms/1/text/query?{run.SEED}"),
    "sync": ("bridge-query", f"/sms/1/text/query?{run.SEED}"),
    "queued": ("bridge-queued", f"/sms/1/text/query?{run.SEED}"),
    "sync-ref": ("bridge-ref", f"/sms/1/text/query?{run.SEED}"),
    "queued-ref": ("bridge-queued-ref", f"/sms/1/text/query?{run.SEED}"),
}
RATIOS = [("sync", "proxy"), ("queued", "floor"), ("sync", "sync-ref"), ("queued", "queued-ref")]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def settled(pid: int, deadline: float = 60.0) -> float:
    """The process's CPU time once it has gone quiet (a queued bridge's workers forward after the load
    ends: their CPU belongs to the requests that were accepted)."""
    last, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < deadline:
        time.sleep(0.3)
        now = cpu_seconds(pid)
        if now - last < 0.01:
            return now
        last = now
    return last


def measure(proc: run.ServerProcess, path: str, concurrency: int, duration: float) -> dict[str, float]:
    before = settled(proc.pid)
    res = loadgen.run_wrk(proc.url + path, concurrency, duration)
    cpu = settled(proc.pid) - before
    n = max(1, int(res["requests"]) - int(res.get("errors", 0)))
    return {"cpu_ms_per_request": 1000 * cpu / n, "rps": res["rps"], "requests": n}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", metavar="REF", help="also run the sync and queued bridges from git REF")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    if not loadgen.wrk_path():
        raise SystemExit("wrk is needed (apt-get install wrk)")
    names = [n for n in TARGETS if args.compare or not n.endswith("-ref")]
    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-cpu-"))
    ref = run.export_ref(args.compare, workdir) if args.compare else None
    procs = run.start_servers(workdir, {TARGETS[n][0] for n in names}, ref)
    samples: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    try:
        for i in range(args.runs):
            for n in names:
                server, path = TARGETS[n]
                s = measure(procs[server], path, args.concurrency, args.duration)
                samples[n].append(s)
                print(f"[{i + 1}/{args.runs}] {n:11s} {s['cpu_ms_per_request']:.3f} ms CPU/request "
                      f"{s['rps']:,.0f} req/s", flush=True)
    finally:
        for p in procs.values():
            p.stop()
    med = {n: statistics.median(s["cpu_ms_per_request"] for s in v) for n, v in samples.items()}
    ratios = {}
    for a, b in RATIOS:
        if a in samples and b in samples:
            per_run = [x["cpu_ms_per_request"] / y["cpu_ms_per_request"] for x, y in zip(samples[a], samples[b],
                                                                                          strict=True)]
            ratios[f"{a}/{b}"] = {"median": statistics.median(per_run), "min": min(per_run), "max": max(per_run)}
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "compare": args.compare,
              "concurrency": args.concurrency, "duration_s": args.duration, "runs": args.runs,
              "cpu_ms_per_request": med, "ratios": ratios, "samples": samples}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu.json").write_text(json.dumps(result, indent=1))
    lines = [f"# CPU per request ({result['date']})", "",
             f"wrk c={args.concurrency}, {args.duration:g} s per run, {args.runs} runs interleaved; CPU = user+system "
             "time of the server process per answered request; medians (ratios: same run, median (min–max)).", "",
             "| scenario | CPU ms/request | req/s |", "|---|---:|---:|"]
    for n in names:
        lines.append(f"| {n} | {med[n]:.3f} | {statistics.median(s['rps'] for s in samples[n]):,.0f} |")
    lines += ["", "| ratio | median (min–max) |", "|---|---|"]
    lines += [f"| {k} | {v['median']:.2f} ({v['min']:.2f}–{v['max']:.2f}) |" for k, v in ratios.items()]
    (args.out / "cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
