"""Profile one benchmark scenario's server under load with py-spy: ``python bench/profile.py [SCENARIO]``.

Starts the servers as bench/run.py does, drives SCENARIO (default ``bridge-query``) with wrk at concurrency
16 while ``py-spy record --gil`` samples the server process (only samples holding the GIL: CPU spent in
Python, not time waiting on sockets), and writes the top functions by own and by cumulative share to
bench/results/profile-SCENARIO.txt. Needs wrk and py-spy (requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run  # noqa: E402


def summarise(raw: str, top: int = 30) -> str:
    """Own and cumulative shares per frame from py-spy's collapsed (``raw``) output."""
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        own[frames[-1]] += int(n)
        for f in set(frames):
            cum[f] += int(n)
    out = [f"{total} samples holding the GIL", "", "own:"]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "cumulative (smsbridge frames):"]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in cum.most_common() if "gateway/" in f][:top]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default="bridge-query")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--out", type=Path, default=run.DEFAULT_OUT)
    ap.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks here (for flame graphs)")
    args = ap.parse_args(argv)
    spy, wrk = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), shutil.which("wrk")
    if not wrk or not Path(spy).exists():
        raise SystemExit("needs wrk (apt-get install wrk) and py-spy (pip install -r requirements-bench.txt)")
    sc = next(s for s in run.SCENARIOS if s.name == args.scenario)
    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-profile-"))
    procs = run.start_servers(workdir, {sc.server})
    try:
        url = procs[sc.server].url + sc.target
        subprocess.run([wrk, "-t2", "-c16", "-d2s", url], capture_output=True, check=True)  # warm-up
        raw = workdir / "raw.txt"
        rec = subprocess.Popen([spy, "record", "--gil", "--nonblocking", "-r", "200", "-f", "raw", "-o", str(raw),
                                "-p", str(procs[sc.server].pid), "-d", str(args.seconds)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let py-spy attach before the load starts
        load = subprocess.run([wrk, "-t2", "-c16", f"-d{args.seconds}s", url], capture_output=True, text=True,
                              check=True)
        rec.wait(args.seconds + 30)
        rps = next((line for line in load.stdout.splitlines() if line.startswith("Requests/sec")), "")
        text = f"py-spy --gil, {sc.name} ({sc.label}), wrk c=16 {args.seconds}s: {rps}\n\n" + summarise(raw.read_text())
        if args.raw:
            shutil.copyfile(raw, args.raw)
    finally:
        for p in procs.values():
            p.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    dest = args.out / f"profile-{sc.name}.txt"
    dest.write_text(text, encoding="utf-8")
    shutil.rmtree(workdir, ignore_errors=True)
    print(text)
    return dest


if __name__ == "__main__":
    main()
