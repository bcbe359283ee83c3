"""HTTP load generators for the benchmark: wrk (preferred) and a Python keep-alive fallback.

Both send the same GET over ``concurrency`` keep-alive connections for ``duration`` seconds and return
one dict: ``requests``, ``rps``, ``p50_ms``, ``p99_ms``, ``errors`` (socket errors + timeouts + non-2xx)
and ``non2xx``. Only loopback targets are accepted.
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise ValueError(f"benchmarks only target loopback addresses, not {host!r}")


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    exe = wrk_path()
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "wrk"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """The figures of ``wrk --latency`` output."""
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if not (pct.get("50") and pct.get("99") and total and rps):
        raise ValueError(f"unreadable wrk output:\n{out}")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    n_bad = int(non2xx.group(1)) if non2xx else 0
    return {
        "requests": int(total.group(1)), "rps": float(rps.group(1)), "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]), "errors": socket_errors + n_bad, "non2xx": n_bad, "socket_errors": socket_errors,
    }


def run_wrk(url: str, concurrency: int, duration: float, threads: int = 2) -> dict[str, Any]:
    check_loopback(url)
    exe = wrk_path()
    if not exe:
        raise RuntimeError("wrk is not installed")
    seconds = max(1, round(duration))
    cmd = [exe, f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    return parse_wrk(out.stdout)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def run_python(url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """Fallback: one thread per connection, ``http.client`` keep-alive, same GET repeated."""
    check_loopback(url)
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "socket": 0}
    start = threading.Event()
    deadline = [0.0]

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine: list[float] = []
        ok = bad = sock = 0
        start.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                conn.request("GET", target)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                sock += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            if 200 <= resp.status < 400:
                ok += 1
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["non2xx"] += bad
            counts["socket"] += sock

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for w in workers:
        w.start()
    t_start = time.perf_counter()
    deadline[0] = t_start + duration
    start.set()
    for w in workers:
        w.join(duration + 30)
    elapsed = time.perf_counter() - t_start
    latencies.sort()
    n = counts["ok"] + counts["non2xx"]
    return {
        "requests": n, "rps": n / elapsed if elapsed else 0.0, "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99), "errors": counts["non2xx"] + counts["socket"],
        "non2xx": counts["non2xx"], "socket_errors": counts["socket"],
        "mean_ms": statistics.fmean(latencies) if latencies else 0.0,
    }


def run_load(kind: str, url: str, concurrency: int, duration: float) -> dict[str, Any]:
    if kind == "wrk":
        return run_wrk(url, concurrency, duration)
    return run_python(url, concurrency, duration)
