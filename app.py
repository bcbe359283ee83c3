#!/usr/bin/env python3
"""smsbridge entry point.

    python app.py [serve] [--config config.yaml] [--port 8080] [--sandbox-port 8081] [--workers N]
    python app.py sandbox [--port 8081]
    python app.py hash-password [PASSWORD]
    python app.py check-config [--config config.yaml]
    python app.py inject-inbound --from 41793026727 --to 41793026834 --text "INFO hello" [--sandbox-url URL]
    python app.py send TARGET name=value… | preview TEXT | url TARGET [--style S] | outbox list|redrive
    python app.py prune [--config config.yaml]          # delete records past store.retention_hours
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

import requests

from gateway import compile_templates, create_app, supervisor, url_policies
from gateway.auth import hash_api_key, hash_password
from gateway.cli import add_commands
from gateway.config import ConfigError, load_config
from gateway.inbound.routing import Router
from gateway.logs import configure
from gateway.reports.relay import compile_callbacks
from gateway.sandbox import create_sandbox_app
from gateway.sandbox.reports import parse_rules
from gateway.servers import Limits, ServerThread, listening_socket
from gateway.store.opening import StoreUnavailable

log = logging.getLogger("smsbridge")


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v else None


def _first(*values: int | None) -> int:
    """The first value given (0 counts: it asks for any free port)."""
    return next(v for v in values if v is not None)


def _workers(value: str) -> int:
    n = int(value) if value.isdigit() else 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a whole number of processes, at least 1")
    return n


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop, kill) stops like Ctrl-C: workers stop, queued log lines are written."""

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


class CannotListen(Exception):
    """A port that cannot be bound (taken, or not allowed): one sentence, no traceback."""


def _listen(host: str, port: int, override: str) -> socket.socket:
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port with "
                           f"{override} (0 picks a free one)") from None


def _start_sandbox(args: argparse.Namespace, config, listener) -> str:
    """The embedded sandbox (``upstream.base_url: sandbox``) in this process; its URL."""
    inbound_url = config.sandbox.inbound_url
    if not inbound_url and config.inbound.token:
        # the embedded sandbox pushes injected inbound messages to this bridge's webhook
        own = ServerThread.url_of(config.server.host, listener.getsockname()[1])
        inbound_url = f"{own}/hooks/inbound/{config.inbound.token}"
    sport = _first(args.sandbox_port, _env_int("SANDBOX_PORT"), config.sandbox.port)
    sock = _listen(config.sandbox.host, sport, "--sandbox-port or SANDBOX_PORT")
    sandbox = ServerThread(create_sandbox_app(config.sandbox, inbound_url=inbound_url), config.sandbox.host,
                           sock=sock, threads=config.sandbox.threads).start()
    log.info("embedded Infobip sandbox on %s", sandbox.url)
    return sandbox.url


def _banner(config, url: str) -> None:
    print(f"smsbridge listening on {url}  (try {url}/sms/1/text/query?username=demo&password=demo"
          "&from=InfoSMS&to=41793026727&text=Hello)", flush=True)
    if config.ui.enabled:
        print(f"admin UI on {url}/ui/", flush=True)


def _serve(config, listener, upstream_url: str | None, child: bool = False) -> int:
    """One bridge process serving ``listener`` until SIGTERM/SIGINT."""
    app = create_app(config, upstream_url)
    srv = config.server
    limits = Limits(srv.connection_limit, srv.request_timeout, srv.idle_timeout, srv.max_request_bytes)
    server = ServerThread(app, srv.host, sock=listener, threads=srv.threads, limits=limits,
                          clear_untrusted_proxy_headers=False)  # gateway/proxies.py: trusted_proxies decide
    bridge = app.extensions["smsbridge"]
    bridge.bind(server.url)  # port 0 picks a port: the report URL needs it
    if child:
        bridge.queue.requeue_at_start = False  # the parent did it once: a sibling's leases are live
    bridge.start()
    log.info("smsbridge on %s (upstream %s)", server.url, upstream_url or config.upstream.base_url)
    if not child:
        _banner(config, server.url)
    try:
        server.server.run()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
    return 0


def _supervise(args: argparse.Namespace, config, listener, upstream_url: str | None, workers: int) -> int:
    """``--workers N``: migrate and requeue once, then N children on the shared socket (gateway/supervisor.py)."""
    from gateway.clock import SystemClock
    from gateway.store.opening import open_store
    from gateway.store.records import Store

    db = open_store(config.store.path, synchronous=config.store.synchronous)
    try:
        n = Store(db, SystemClock()).requeue_inflight(config.sync_lease)
        if n:
            log.info("queue: %d message(s) leased before a restart are due again", n)
    finally:
        db.close()
    listener.listen(1024)  # connections wait in the kernel while a child starts or restarts
    url = ServerThread.url_of(config.server.host, listener.getsockname()[1])
    # one admin UI cookie key for all children (else a session signed by one is refused by the others)
    env = {supervisor.UPSTREAM_URL: upstream_url or "",
           supervisor.UI_SECRET: config.ui.secret_key or secrets.token_hex(32)}
    sup = supervisor.Supervisor(supervisor.child_argv(str(Path(__file__).resolve()), args.config), workers,
                                listener.fileno(), env)
    log.info("smsbridge on %s: %d worker processes", url, workers)
    _banner(config, url)
    return sup.run(threading.Event())


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure(config.logging.level, config.logging.format, config.logging.masking)
    _stop_on_sigterm()
    if os.environ.get(supervisor.LISTEN_FD):  # a child of `--workers N`
        supervisor.watch_parent()
        listener = socket.socket(fileno=int(os.environ[supervisor.LISTEN_FD]))
        config.ui.secret_key = config.ui.secret_key or os.environ.get(supervisor.UI_SECRET, "")
        return _serve(config, listener, os.environ.get(supervisor.UPSTREAM_URL) or None, child=True)
    workers = args.workers or config.server.workers
    port = _first(args.port, _env_int("PORT"), config.server.port)
    listener = _listen(config.server.host, port, "--port or PORT")  # bound first: the sandbox is told the address
    upstream_url = _start_sandbox(args, config, listener) if any(u.is_sandbox for u in config.upstreams) else None
    if workers > 1:
        return _supervise(args, config, listener, upstream_url, workers)
    return _serve(config, listener, upstream_url)


def cmd_sandbox(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure(config.logging.level, config.logging.format, config.logging.masking)
    _stop_on_sigterm()
    port = _first(args.port, _env_int("SANDBOX_PORT"), config.sandbox.port)
    server = ServerThread(create_sandbox_app(config.sandbox), config.sandbox.host, port, threads=config.sandbox.threads)
    print(f"Infobip sandbox listening on {server.url}", flush=True)
    try:
        server.server.run()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_inject_inbound(args: argparse.Namespace) -> int:
    """Inject an inbound SMS into a running sandbox (which pushes it to its inbound URL)."""
    url = args.sandbox_url
    if not url:  # the same port choice as `python app.py` makes for the embedded sandbox
        config = load_config(args.config)
        port = _first(args.sandbox_port, _env_int("SANDBOX_PORT"), config.sandbox.port)
        url = f"http://{config.sandbox.host}:{port}"
    body = {"from": args.sender, "to": args.to, "text": args.text}
    if args.keyword:
        body["keyword"] = args.keyword
    try:
        resp = requests.post(url.rstrip("/") + "/sandbox/inbound", json=body, timeout=10)
    except requests.RequestException as exc:
        print(f"no sandbox at {url}: {type(exc).__name__} (is `python app.py` running?)", file=sys.stderr)
        return 1
    if resp.status_code in (404, 405) or "json" not in resp.headers.get("Content-Type", ""):
        print(f"what answers at {url} is not the smsbridge sandbox (HTTP {resp.status_code} for /sandbox/inbound); "
              "give --sandbox-port or SANDBOX_PORT as the bridge was started with, or --sandbox-url", file=sys.stderr)
        return 1
    print(resp.text)
    return 0 if resp.ok else 1


def cmd_hash_password(args: argparse.Namespace) -> int:
    secret = args.secret or getpass.getpass("Password or key to hash: ")
    print(hash_api_key(secret) if args.api_key else hash_password(secret))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        compile_templates(config)
        Router(config.inbound, url_policies(config))
        compile_callbacks(config)
        parse_rules(config.sandbox)
    except ConfigError as exc:
        for path, msg in exc.problems:
            print(f"{path}: {msg}", file=sys.stderr)
        return 1
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{args.config}: OK ({len(config.callers)} callers, {len(config.templates)} templates)")
    return 0


def _store(args: argparse.Namespace):
    from gateway.clock import SystemClock
    from gateway.delivery.outbox import Outbox
    from gateway.store.opening import open_store
    from gateway.store.records import Store

    config = load_config(args.config)
    db = open_store(config.store.path, synchronous=config.store.synchronous)
    return config, db, Store(db, SystemClock()), Outbox(db, SystemClock())


def cmd_prune(args: argparse.Namespace) -> int:
    from gateway.clock import SystemClock
    from gateway.services import prune_all

    config, db, store, _ = _store(args)
    counts = prune_all(store, db, SystemClock(), config.store.retention_hours * 3600, config.auth.forget_after)
    db.close()
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" pruned (older than {config.store.retention_hours:g} h)")
    return 0


def cmd_rejected(args: argparse.Namespace) -> int:
    """List the report/inbound pushes that could not be parsed (kept, answered 200), or show one's body."""
    from datetime import UTC, datetime

    from gateway.store import rejected

    _, db, _, _ = _store(args)
    try:
        rows = rejected.recent(db, 10_000 if args.show else args.limit)
    finally:
        db.close()
    if args.show:
        row = next((r for r in rows if r.id == args.show), None)
        if row is None:
            print(f"no rejected push {args.show}", file=sys.stderr)
            return 1
        print(f"#{row.id} {row.kind} ref={row.ref or '-'} {row.content_type or '-'} {row.size} bytes: {row.reason}")
        print(row.body.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")
              .replace("\\n", "\n"))  # control characters shown escaped, line breaks kept
        return 0
    for r in rows:
        when = datetime.fromtimestamp(r.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"#{r.id} {when} {r.kind} ref={r.ref or '-'} {r.size} bytes: {r.reason}")
    if not rows:
        print("no rejected pushes")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database to the newest schema revision (the bridge also does this at start)."""
    from gateway.store.migrations import NewerSchema, head, upgrade
    from gateway.store.opening import open_store

    config = load_config(args.config)
    db = open_store(config.store.path, synchronous=config.store.synchronous, migrate=False)
    try:
        try:
            ran = upgrade(db)
        except NewerSchema as exc:
            raise StoreUnavailable(db.path, exc.reason) from None
        print(f"{db.path}: at revision {db.revision()} (head {head()});"
              f" {'ran ' + ', '.join(ran) if ran else 'nothing to do'}")
    finally:
        db.close()
    return 0


def cmd_migrate_to(args: argparse.Namespace) -> int:
    """Copy the configured store's whole record into an empty PostgreSQL database (gateway/store/transfer.py)."""
    from gateway.store.engine import shown
    from gateway.store.opening import open_store
    from gateway.store.transfer import TransferRefused, copy_record

    config = load_config(args.config)
    if not args.url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        print(f"migrate-to: {shown(args.url)} is not a PostgreSQL URL (postgresql://user@host:5432/database)",
              file=sys.stderr)
        return 2
    source = open_store(config.store.path, synchronous=config.store.synchronous)  # brought to head too
    try:
        target = open_store(args.url)  # StoreUnavailable: one sentence; an empty database gets the head schema
        try:
            copied = copy_record(source, target, force=args.force)
        except TransferRefused as exc:
            print(f"migrate-to: {exc}", file=sys.stderr)
            return 1
        finally:
            target.close()
    finally:
        source.close()
    print(f"{source.path} -> {shown(args.url)}: {sum(copied.values())} rows copied")
    for table, n in copied.items():
        print(f"  {table:<18} {n:>9}")
    print("point store.url at the new database, then start the bridges")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite store, taken while the bridge runs (PostgreSQL: use pg_dump)."""
    from gateway.store.backup import BackupError, backup_sqlite

    config = load_config(args.config)
    if "://" in config.store.path:
        print("backup: the store is on PostgreSQL: back it up with pg_dump (docs/deployment.md)", file=sys.stderr)
        return 1
    try:
        size = backup_sqlite(config.store.path, args.file)
    except BackupError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    print(f"{config.store.path} -> {args.file}: {size:,} bytes, integrity ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="smsbridge: legacy HTTP GET to Infobip SMS")
    parser.add_argument("--config", default=os.environ.get("SMSBRIDGE_CONFIG", "config.yaml"))
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the bridge (and the embedded sandbox when configured)")
    for p in (parser, serve):
        p.add_argument("--port", type=int, default=None, help="bridge port (or PORT)")
        p.add_argument("--sandbox-port", type=int, default=None, help="embedded sandbox port (or SANDBOX_PORT)")
        p.add_argument("--workers", type=_workers, default=None,
                       help="bridge processes sharing the port (default server.workers, 1); docs/deployment.md")
    sb = sub.add_parser("sandbox", help="run only the Infobip-compatible sandbox")
    sb.add_argument("--port", type=int, default=None)
    hp = sub.add_parser("hash-password", help="print the hash to store as password_hash (or api_key_hash)")
    hp.add_argument("secret", nargs="?")
    hp.add_argument("--api-key", action="store_true", help="hash an API key (api_key_hash) instead")
    sub.add_parser("check-config", help="validate the configuration; print every problem with its key path")
    inj = sub.add_parser("inject-inbound", help="inject an inbound SMS into a running sandbox")
    inj.add_argument("--from", dest="sender", required=True, help="the handset that sends it")
    inj.add_argument("--to", required=True, help="the receiving (customer's) number")
    inj.add_argument("--text", required=True)
    inj.add_argument("--keyword", default=None, help="a keyword registered for the number (sets keyword/cleanText)")
    inj.add_argument("--sandbox-url", default=None, help="default: http://sandbox.host:PORT of the config")
    inj.add_argument("--sandbox-port", type=int, default=None, help="the sandbox's port (or SANDBOX_PORT; default "
                     "sandbox.port), as given to `python app.py`")
    sub.add_parser("prune", help="delete messages, reports and delivered jobs past store.retention_hours")
    sub.add_parser("migrate", help="bring the database to the newest schema revision (also done at start)")
    mt = sub.add_parser("migrate-to", help="copy the whole record (SQLite) into an empty PostgreSQL database")
    mt.add_argument("url", help="postgresql://user:password@host:5432/database (created beforehand, empty)")
    mt.add_argument("--force", action="store_true", help="empty a target that already holds a record first")
    bk = sub.add_parser("backup", help="copy the SQLite store to FILE, consistently, while the bridge runs")
    bk.add_argument("file", help="the copy to write (must not exist)")
    rej = sub.add_parser("rejected", help="list report/inbound pushes that could not be parsed (kept for inspection)")
    rej.add_argument("--limit", type=int, default=50)
    rej.add_argument("--show", type=int, default=None, metavar="ID", help="print that push's reason and body")
    more = add_commands(sub)  # send, preview, url, outbox list|redrive (gateway/cli.py)
    for p in sub.choices.values():
        p.add_argument("--config", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    handlers = {None: cmd_serve, "serve": cmd_serve, "sandbox": cmd_sandbox, "hash-password": cmd_hash_password,
                "check-config": cmd_check_config, "inject-inbound": cmd_inject_inbound, "prune": cmd_prune,
                "migrate": cmd_migrate, "migrate-to": cmd_migrate_to, "backup": cmd_backup, "rejected": cmd_rejected, **more}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"configuration {args.config} has problems:", file=sys.stderr)
        for path, msg in exc.problems:
            print(f"  {path}: {msg}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:  # a sentence naming the path and the reason, no traceback
        print(f"smsbridge: {exc}", file=sys.stderr)
        return 3
    except CannotListen as exc:
        print(f"smsbridge: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
