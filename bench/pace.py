"""Pace benchmark (issue 16): does the bridge hold a caller's rate within 5 % over a minute while it is offered
ten times that rate? ``python bench/pace.py [--rate 50] [--seconds 60] [--workers 2] [--quick]``.

Real parts, real time (no time scale): the sandbox runs in this process under waitress on a loopback port,
the bridge is ``app.py serve --workers N`` in a subprocess (N processes on one SQLite file, spending the
same token buckets through the store), its queued caller paced at ``--rate`` messages per second (burst:
one second's worth). A load thread offers ``10 × rate`` messages a second for the whole run (GETs of one
tenth of the rate each, ten a second). The sandbox records the arrival time of every upstream request; the
pace is measured on those arrivals, after the first five seconds (the initial burst and start-up) over
``--seconds``. Results: bench/results/issue16/pace.json and pace.md.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from werkzeug.security import generate_password_hash

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from gateway.config import SandboxSettings  # noqa: E402
from gateway.sandbox import create_sandbox_app  # noqa: E402
from gateway.servers import ServerThread  # noqa: E402

OUT = HERE / "results" / "issue16"
SETTLE = 5.0  # seconds after the first arrival left out of the measurement (initial burst, start-up)


def bridge_config(tmp: Path, upstream: str, rate: float) -> Path:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["server"].update(port=0)
    raw["upstream"].update(base_url=upstream)
    raw["store"] = {"path": str(tmp / "bridge.db")}
    raw["logging"] = {"level": "WARNING", "access_log": False}
    demo = raw["callers"]["demo"]  # a real upstream URL (not the embedded sandbox) takes hashed secrets only
    demo.pop("api_key", None)
    demo["password_hash"] = generate_password_hash(demo.pop("password"), method="pbkdf2:sha256:1000")
    raw["inbound"]["token"] = "t" + "0123456789abcdef" * 3
    raw["ui"] = {"enabled": False}
    demo.update(mode="queued", upstream_api="advanced")
    demo.setdefault("limits", {})["rate"] = {"per_second": rate, "burst": rate}
    raw["templates"]["alarm"]["mode"] = "sync"
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def offer(url: str, rate: float, seconds: float, stop: threading.Event, counts: dict[str, int]) -> None:
    """Ten GETs a second, each of ``rate`` destinations: ten times the rate, for ``seconds``."""
    per_get = max(1, round(rate))
    session = requests.Session()
    start, i = time.monotonic(), 0
    while not stop.is_set() and time.monotonic() - start < seconds:
        to = ",".join(f"4179{(i * per_get + k) % 10_000_000:07d}" for k in range(per_get))
        r = session.get(url + "/sms/1/text/query", timeout=30,
                        params={"username": "demo", "password": "demo", "to": to, "text": "pace"})
        counts["accepted" if r.status_code == 200 else f"http {r.status_code}"] = \
            counts.get("accepted" if r.status_code == 200 else f"http {r.status_code}", 0) + per_get
        i += 1
        delay = start + i * 0.1 - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def measure(arrivals: list[tuple[float, int]], rate: float, seconds: float) -> dict[str, Any]:
    arrivals.sort()
    t0 = arrivals[0][0]
    lo, hi = t0 + SETTLE, t0 + SETTLE + seconds
    window = sum(n for t, n in arrivals if lo <= t < hi)
    per_second = [0] * int(seconds)
    for t, n in arrivals:
        if lo <= t < hi:
            per_second[int(t - lo)] += n
    held = window / seconds
    return {"rate": rate, "measured_per_second": round(held, 3), "deviation": round(held / rate - 1, 4),
            "within_5_percent": abs(held / rate - 1) <= 0.05, "messages_in_window": window,
            "window_seconds": seconds, "per_second_min": min(per_second), "per_second_max": max(per_second),
            "per_second": per_second, "upstream_requests": len(arrivals), "first_second": sum(n for t, n in arrivals if t < t0 + 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="10 s instead of a minute (a smoke run; not written)")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    sandbox_app = create_sandbox_app(SandboxSettings(dlr_delay=3600))
    sandbox = ServerThread(sandbox_app, "127.0.0.1", 0, threads=8).start()
    tmp = Path(tempfile.mkdtemp(prefix="pace-"))
    log = (tmp / "bridge.log").open("w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config",
                             str(bridge_config(tmp, sandbox.url, args.rate)), "serve", "--workers", str(args.workers)],
                            cwd=tmp, stdout=subprocess.PIPE, stderr=log, text=True)
    stop, counts = threading.Event(), {}
    try:
        m = re.search(r"listening on (http://\S+)", proc.stdout.readline())  # type: ignore[union-attr]
        if not m:
            print("the bridge did not start; see", tmp / "bridge.log")
            return 1
        url = m.group(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the worker processes start behind the banner
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        load = threading.Thread(target=offer, args=(url, args.rate, SETTLE + seconds, stop, counts), daemon=True)
        started = time.time()
        load.start()
        load.join()
        counts["load_seconds"] = round(time.time() - started, 2)
        # the backlog keeps the pace after the load ends: wait until the measured window has passed
        while True:
            seen = requests.get(sandbox.url + "/sandbox/requests", timeout=60).json()
            first = min((r["at"] for r in seen if r.get("path") == "/sms/2/text/advanced"), default=time.time())
            if time.time() > first + SETTLE + seconds + 1.0:
                break
            time.sleep(0.5)
        arrivals = [(r["at"], sum(len(m["destinations"]) for m in r["json"]["messages"]))
                    for r in seen if r.get("path") == "/sms/2/text/advanced" and r.get("json")]
        result = measure(arrivals, args.rate, seconds)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)
        log.close()
        sandbox.stop()
        sandbox_app.extensions["sandbox"].stop()
    result.update(offered_per_second=10 * args.rate, offered=counts, workers=args.workers,
                  started=dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
                  machine={"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()})
    print(json.dumps(result, indent=2))
    if args.quick:
        return 0 if result["within_5_percent"] else 2
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pace.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (OUT / "pace.md").write_text(
        "# Pace under a burst ten times the rate (issue 16)\n\n"
        f"`python bench/pace.py --rate {args.rate:g} --seconds {seconds:g} --workers {args.workers}`, "
        f"{result['started']}, {os.cpu_count()} CPUs shared with other work.\n\n"
        f"- Caller paced at **{args.rate:g}/s** (burst {args.rate:g}), offered **{10 * args.rate:g}/s** for "
        f"{SETTLE + seconds:g} s (accepted: {counts.get('accepted', 0)} messages, all `200 PENDING_ACCEPTED`; "
        f"nothing refused), through `app.py --workers {args.workers}` on one SQLite file.\n"
        f"- Upstream arrivals over {seconds:g} s after the first {SETTLE:g} s: **{result['messages_in_window']}** "
        f"messages = **{result['measured_per_second']}/s**, deviation **{result['deviation'] * 100:+.2f} %** "
        f"({'within' if result['within_5_percent'] else 'NOT within'} 5 %); per second min "
        f"{result['per_second_min']}, max {result['per_second_max']}.\n"
        f"- First second: {result['first_second']} messages (the burst, then the rate).\n\n"
        "Real time, no time scale. Raw figures: `pace.json`.\n", encoding="utf-8")
    return 0 if result["within_5_percent"] else 2


if __name__ == "__main__":
    sys.exit(main())
