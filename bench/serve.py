"""One benchmark server in its own process: ``python bench/serve.py ROLE [options]``.

Roles: ``sandbox`` (gateway.sandbox), ``bridge`` (gateway.create_app with ``--config``), ``floor`` and
``proxy`` (bench/baselines.py). Each runs under waitress via gateway.servers.ServerThread on a loopback
ephemeral port, prints one JSON line ``{"role", "url", "pid"}`` on stdout when it listens, and serves
until SIGTERM. The runner starts one process per server so that RSS is per server and the load
generator does not share a GIL with what it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


THREADS = 16  # the bridge's default server.threads; the baselines use the same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("sandbox", "bridge", "floor", "proxy"))
    ap.add_argument("--config", help="bridge configuration file")
    ap.add_argument("--upstream", help="upstream URL (bridge, proxy)")
    ap.add_argument("--api-key", default="sandbox-key")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to import gateway from")
    args = ap.parse_args(argv)
    for p in (str(HERE), str(args.root)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from baselines import create_floor_app, create_proxy_app

    from gateway import create_app
    from gateway.config import SandboxSettings, load_config
    from gateway.logs import configure
    from gateway.sandbox import create_sandbox_app
    from gateway.servers import ServerThread

    stop_hooks = []
    if args.role == "sandbox":
        settings = SandboxSettings()
        app = create_sandbox_app(settings)
        threads = settings.threads
    elif args.role == "floor":
        app, threads = create_floor_app(), args.threads
    elif args.role == "proxy":
        app, threads = create_proxy_app(args.upstream, args.api_key), args.threads
    else:
        config = load_config(args.config)
        configure(config.logging.level)
        app = create_app(config, args.upstream)
        ctx = app.extensions["smsbridge"]
        ctx.start()
        stop_hooks.append(ctx.stop)
        threads = config.server.threads
    server = ServerThread(app, "127.0.0.1", 0, threads=threads)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(json.dumps({"role": args.role, "url": server.url, "pid": os.getpid()}), flush=True)
    done.wait()
    server.stop()
    for hook in stop_hooks:
        hook()
    return 0


if __name__ == "__main__":
    sys.exit(main())
