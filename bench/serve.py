"""One benchmark server in its own process: ``python bench/serve.py ROLE [options]``.

Roles: ``sandbox`` (gateway.sandbox; ``--dlr-delay``, plus a bench-only ``GET /sandbox/bench-count`` answering
how many messages and advanced requests it has, without serialising them), ``bridge`` (gateway.create_app
with ``--config``; told the address it really got, so the upstream's reports reach it), ``floor`` and
``proxy`` (bench/baselines.py), ``receiver`` (bench/receiver.py, asyncio). Each runs under waitress via gateway.servers.ServerThread on a loopback
ephemeral port, prints one JSON line ``{"role", "url", "pid"}`` on stdout when it listens, and serves
until SIGTERM. The runner starts one process per server so that RSS is per server and the load
generator does not share a GIL with what it measures.

``bridge --workers N`` runs the bridge as ``app.py --workers N`` does (gateway/supervisor.py): this process
binds the socket, migrates the store and requeues once, then supervises N children (``serve.py bridge`` again,
the socket inherited) and prints its line once every child serves; its ``pid`` is the parent's, and the
runner adds the children's CPU time (bench/run.py ``process_tree``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


READY_DIR = "SMSBRIDGE_BENCH_READY"  # run_supervised's children touch <dir>/<pid> once they serve
THREADS = 16  # the bridge's default server.threads; the baselines use the same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("sandbox", "bridge", "floor", "proxy", "receiver"))
    ap.add_argument("--config", help="bridge configuration file")
    ap.add_argument("--upstream", help="upstream URL (bridge, proxy)")
    ap.add_argument("--api-key", default="sandbox-key")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--dlr-delay", type=float, default=1.0, help="sandbox: seconds until a message's report")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to import gateway from")
    ap.add_argument("--workers", type=int, default=0, help="bridge: N processes on one socket (app.py --workers)")
    ap.add_argument("--name-threads", action="store_true",
                    help="give each thread its Python name in the OS (/proc/<pid>/task/<tid>/comm): bench/decompose.py")
    ap.add_argument("--stub-accept", action="store_true",
                    help="bridge, bench/decompose.py only: Store.accept answers an id without writing (what the "
                         "request path costs without its store)")
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

    if args.role == "receiver":
        return run_receiver()
    if args.name_threads:
        name_threads()
    if args.stub_accept:
        import itertools

        from gateway.store.records import Store

        ids = itertools.count(1)
        Store.accept = lambda self, sub, rows: next(ids)  # type: ignore[method-assign]
    if args.role == "bridge" and args.workers > 0:
        return run_supervised(args)
    stop_hooks = []
    ctx = None
    if args.role == "sandbox":
        settings = SandboxSettings(dlr_delay=args.dlr_delay)
        app = create_sandbox_app(settings)
        add_count_route(app)
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
        stop_hooks.append(ctx.stop)
        threads = config.server.threads
    child_fd = os.environ.get(READY_DIR) and os.environ.get("SMSBRIDGE_LISTEN_FD")
    sock = socket.socket(fileno=int(child_fd)) if child_fd else None  # a child of run_supervised
    server = ServerThread(app, "127.0.0.1", 0, threads=threads, sock=sock)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if ctx is not None:
        ctx.bind(server.url)  # the bridge's own notifyUrl must name the port it really got
        if child_fd:
            from gateway import supervisor

            ctx.queue.requeue_at_start = False  # the parent did it once: a sibling's leases are live
            supervisor.watch_parent()
        ctx.start()
    server.start()
    if child_fd:
        (Path(os.environ[READY_DIR]) / str(os.getpid())).touch()
    else:
        print(json.dumps({"role": args.role, "url": server.url, "pid": os.getpid()}), flush=True)
    done.wait()
    server.stop()
    for hook in stop_hooks:
        hook()
    return 0


def name_threads() -> None:
    """Every thread started from now on carries its Python name (15 bytes) as its OS name, so that its CPU
    time can be read per thread kind from /proc (Linux; elsewhere nothing changes)."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return
    inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def named(self: threading.Thread) -> None:
        prctl(15, self.name[:15].encode(), 0, 0, 0)  # PR_SET_NAME
        inner(self)

    threading.Thread._bootstrap_inner = named  # type: ignore[attr-defined]


def run_supervised(args: argparse.Namespace) -> int:
    """``bridge --workers N``: bind, migrate and requeue once, then N children on the shared socket."""
    import tempfile
    import time

    from gateway import supervisor
    from gateway.clock import SystemClock
    from gateway.config import load_config
    from gateway.logs import configure
    from gateway.servers import ServerThread, listening_socket
    from gateway.store.opening import open_store
    from gateway.store.records import Store

    config = load_config(args.config)
    configure(config.logging.level)
    db = open_store(config.store.path, synchronous=config.store.synchronous)
    try:
        Store(db, SystemClock()).requeue_inflight()
    finally:
        db.close()
    listener = listening_socket("127.0.0.1", 0)
    listener.listen(1024)
    ready = Path(tempfile.mkdtemp(prefix="serve-ready-"))
    argv = [sys.executable, str(Path(__file__).resolve()), "bridge", "--config", args.config,
            "--upstream", args.upstream or "", "--root", str(args.root), "--threads", str(args.threads)]
    sup = supervisor.Supervisor(argv, args.workers, listener.fileno(), {READY_DIR: str(ready)}, grace=10)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = threading.Thread(target=sup.run, args=(stop,), name="supervisor")
    runner.start()
    deadline = time.monotonic() + 120
    while len(list(ready.iterdir())) < args.workers and time.monotonic() < deadline and runner.is_alive():
        time.sleep(0.1)  # the children start (imports, store) in parallel; bounded by the deadline
    url = ServerThread.url_of("127.0.0.1", listener.getsockname()[1])
    print(json.dumps({"role": "bridge", "url": url, "pid": os.getpid(), "workers": args.workers}), flush=True)
    runner.join()
    return 0


def add_count_route(app: Any) -> None:
    """``GET /sandbox/bench-count``: messages the sandbox accepted and advanced-API requests it served (cheap)."""
    from flask import jsonify

    @app.get("/sandbox/bench-count")
    def bench_count() -> Any:
        state = app.extensions["sandbox"].state  # the Sandbox services (gateway/sandbox/services.py)
        with state.lock:
            advanced = sum(1 for r in state.requests if "advanced" in str(r.get("path", "")))
            return jsonify({"messages": len(state.messages), "requests": len(state.requests), "advanced": advanced})


def run_receiver() -> int:
    import asyncio

    from receiver import serve

    async def go() -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[str] = loop.create_future()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        task = asyncio.create_task(serve(ready, stop))
        print(json.dumps({"role": "receiver", "url": await ready, "pid": os.getpid()}), flush=True)
        await task

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
