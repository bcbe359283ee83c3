"""Where a queued acceptance's CPU goes, beside the bare Flask floor: ``python bench/decompose.py [--runs 3]``.

Issue 15 item 7 asks a queued acceptance to cost at most twice the floor's request. This splits the queued
bridge's CPU per answered request by thread kind (the server's threads: waitress' loop and its task threads;
the queue workers that forward; the rest) and runs three variants of the same bridge beside the floor, each
its own process, interleaved, wrk c=16 on the README's GET:

- ``queued``: config.yaml's queued bridge, as bench/run.py's (e) row;
- ``no-access-log``: the same with ``logging.access_log: false``;
- ``no-store``: the same with ``Store.accept`` answering an id without writing (bench/serve.py
  ``--stub-accept``): the request path without its store, and nothing for the queue workers to forward.

Also voluntary context switches per request (/proc ``voluntary_ctxt_switches``): each is a thread giving up the
CPU (a lock, the GIL, I/O) and, on these machines, a large part of the kernel's share of the CPU. Threads are
named in the OS by bench/serve.py ``--name-threads``. Writes bench/results/issue15/decompose.md.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import run  # noqa: E402

TARGET = f"/sms/1/text/query?{run.SEED}"


def kind_of(comm: str) -> str:
    if comm.startswith("waitress"):
        return "server threads"
    if comm.startswith("queue-"):
        return "queue workers"
    return "other"


def per_thread(pid: int) -> dict[str, list[int]]:
    """CPU ticks and voluntary switches per thread kind of ``pid``'s process tree."""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for p in run.process_tree(pid):
        for task in Path(f"/proc/{p}/task").iterdir():
            try:
                comm = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text()
            except OSError:
                continue
            vol = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
            acc = out[kind_of(comm)]
            acc[0] += int(fields[11]) + int(fields[12])
            acc[1] += vol
    return out


def variant(workdir: Path, name: str, sandbox: str, extra: list[str], access_log: bool = True) -> run.ServerProcess:
    cfg = run.bridge_config(workdir, name, "advanced", "queued", "FULL")
    raw = yaml.safe_load(cfg.read_text())
    raw.setdefault("logging", {})["access_log"] = access_log
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    return run.ServerProcess(name, "bridge", ["--config", str(cfg), "--upstream", sandbox, "--name-threads", *extra],
                             workdir).wait_ready()


def measure(proc: run.ServerProcess, sandbox: str, seconds: float) -> dict[str, float]:
    requests.post(sandbox + "/sandbox/reset", timeout=10)
    loadgen.run_load("wrk", proc.url + TARGET, 16, 1.0)  # warm
    proc.settled_cpu()
    before = per_thread(proc.pid)
    r = loadgen.run_load("wrk", proc.url + TARGET, 16, seconds)
    proc.settled_cpu()  # the queue workers' forwarding belongs to the requests accepted
    after = per_thread(proc.pid)
    answered = max(1, r["requests"] - r["non2xx"])
    out = {"rps": r["rps"]}
    total = 0.0
    for kind in sorted(set(after) | set(before)):
        ticks = after[kind][0] - before.get(kind, [0, 0])[0]
        ms = 1000 * ticks / run.TICK / answered
        out[f"cpu {kind}"] = ms
        out[f"switches {kind}"] = (after[kind][1] - before.get(kind, [0, 0])[1]) / answered
        total += ms
    out["cpu total"] = total
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "issue15" / "decompose.md")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-decompose-"))
    procs = run.start_servers(workdir, set())
    sandbox = procs["sandbox"].url
    procs["floor"] = run.ServerProcess("floor", "floor", ["--name-threads"], workdir).wait_ready()
    procs["queued"] = variant(workdir, "queued", sandbox, [])
    procs["no-access-log"] = variant(workdir, "no-access-log", sandbox, [], access_log=False)
    procs["no-store"] = variant(workdir, "no-store", sandbox, ["--stub-accept"])
    names = ["floor", "queued", "no-access-log", "no-store"]
    samples: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    try:
        for i in range(args.runs):
            for n in names:
                samples[n].append(measure(procs[n], sandbox, args.duration))
                s = samples[n][-1]
                print(f"[{i + 1}/{args.runs}] {n:14s} {s['rps']:7.0f} req/s  CPU {s['cpu total']:.3f} ms/req", flush=True)
    finally:
        for p in procs.values():
            p.stop()
    keys = sorted({k for n in names for s in samples[n] for k in s if k.startswith("cpu ") and k != "cpu total"})
    med = {n: {k: statistics.median(s.get(k, 0.0) for s in samples[n]) for k in [*keys, "cpu total", "rps"]} for n in names}
    sw = {n: statistics.median(sum(v for k, v in s.items() if k.startswith("switches")) for s in samples[n])
          for n in names}
    lines = [
        "# Where a queued acceptance's CPU goes (bench/decompose.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {args.runs} × {args.duration:g} s, wrk c=16, "
        f"interleaved · load average at start {' '.join(load0)} · commit {run.versions()['smsbridge_commit']}",
        "",
        "CPU ms per answered request (median of the runs), by thread kind; voluntary context switches per request.",
        "",
        "| variant | req/s | " + " | ".join(k[4:] for k in keys) + " | total | × floor | switches/req |",
        "|---|---:|" + "---:|" * (len(keys) + 3),
    ]
    floor = med["floor"]["cpu total"]
    for n in names:
        m = med[n]
        lines.append(f"| {n} | {m['rps']:,.0f} | " + " | ".join(f"{m[k]:.3f}" for k in keys)
                     + f" | {m['cpu total']:.3f} | {m['cpu total'] / floor:.2f} | {sw[n]:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
