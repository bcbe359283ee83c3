"""Python function calls per request on the bridge's request path, counted by cProfile (deterministic,
unlike times on a shared machine): ``python bench/calls.py ROOT sync|queued N [SORTKEY]``.

ROOT is a checkout (e.g. ``git archive REF | tar -x -C /tmp/ref``) whose ``gateway`` is imported; a sandbox
must listen on 127.0.0.1:18081 (``python app.py sandbox --port 18081``). Requests go through Flask's test
client (no waitress), 100 warm-up requests first; prints calls per request and the top functions.
Duplicate suppression is off as in bench/run.py (``CALLS_DEDUPE=1`` keeps it on, as config.yaml ships it: each
request has a text of its own, so each is reserved and completed, never replayed).
``CALLS_STORE_URL`` puts the store elsewhere (a fresh PostgreSQL database). Run it as ``python -P bench/calls.py …`` (bench/profile.py would shadow the standard library's ``profile``).
"""

from __future__ import annotations

import cProfile
import importlib
import logging
import os
import pstats
import sys
import tempfile

import yaml

QUERY = "/sms/1/text/query?username=demo&password=demo&from=InfoSMS&to=41793026727,41793026834&text=Hello%20world"


def main() -> None:
    root, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, root)
    create_app = importlib.import_module("gateway").create_app
    build_config = importlib.import_module("gateway.config").build_config
    logging.disable(logging.CRITICAL)
    with open(os.path.join(root, "config.yaml"), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    raw["store"] = {**raw.get("store", {}), "path": tempfile.mkdtemp() + "/b.db"}
    if os.environ.get("CALLS_STORE_URL"):  # e.g. a fresh PostgreSQL database: postgresql://…/<db>
        raw["store"].pop("path")
        raw["store"]["url"] = os.environ["CALLS_STORE_URL"]
    raw["callers"]["demo"]["mode"] = mode
    if "idempotency" in raw and os.environ.get("CALLS_DEDUPE") != "1":  # one URL repeated: with duplicate
        raw["idempotency"]["dedupe_window"] = 0  # suppression every request would be a replay (as bench/run.py)
    raw["callers"]["demo"]["upstream_api"] = "query" if mode == "sync" else "advanced"
    for t in raw["templates"].values():
        if mode == "queued" and t.get("api") == "query":
            t["api"] = "advanced"
    app = create_app(build_config(raw, env={}), "http://127.0.0.1:18081")
    ctx = app.extensions["smsbridge"]
    ctx.bind("http://127.0.0.1:1")
    ctx.start()
    client = app.test_client()
    for i in range(100):
        client.get(f"{QUERY}-{i}")  # a text of its own: with CALLS_DEDUPE=1 no request is a duplicate
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        client.get(f"{QUERY}-{i + 100}")
    prof.disable()
    ctx.stop()
    stats = pstats.Stats(prof)
    print("main calls per request", stats.total_calls / n)
    stats.sort_stats(sys.argv[4] if len(sys.argv) > 4 else "tottime").print_stats(30)


if __name__ == "__main__":
    main()
