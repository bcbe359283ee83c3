"""CLI commands ``send``, ``preview``, ``url`` and ``outbox`` (wired into app.py).

``send`` talks HTTP to a running bridge, like a legacy application: it exercises exactly what callers
get (authentication, placeholder hygiene, validation, records and metrics of that bridge), needs no
second sandbox, and never runs a second outbox against the same database. ``preview`` and ``url``
are offline. ``outbox`` works on the database file directly (the running bridge's workers notice a
re-driven job within ``idle_wait`` seconds).

``prune`` (old messages and reports) arrives with the store.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import requests

from . import urlbuilder as ub
from .clock import SystemClock
from .config import Config, load_config
from .delivery.outbox import STATES, Outbox
from .sms import LANGUAGE_CODES, TRANSLITERATIONS, analyse
from .store.opening import open_store


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{what} must look like name=value, got {item!r}")
        out[name] = value
    return out


def bridge_url(config: Config, port: int | None = None) -> str:
    """The address a client reaches the bridge at: ``server.public_url``, else host and port, where the port is
    ``--port``, else ``PORT``, else ``server.port`` (as ``python app.py`` itself chooses it)."""
    s = config.server
    if s.public_url:
        return s.public_url.rstrip("/")
    env = os.environ.get("PORT", "")
    chosen = port if port is not None else int(env) if env.isdigit() else s.port
    host = "127.0.0.1" if s.host in ("0.0.0.0", "", "::") else s.host
    return f"http://{host}:{chosen}"


def _answer_error(resp: requests.Response) -> str:
    """An error answer in the words the UI uses: the reason, then each parameter with its problem."""
    try:
        exc = (resp.json().get("requestError") or {}).get("serviceException") or {}
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text.strip()[:300]}"
    lines = [f"HTTP {resp.status_code}: {exc.get('text') or resp.reason}"]
    for param, problems in (exc.get("validationErrors") or {}).items():
        lines.append(f"  {param}: {'; '.join(problems) if isinstance(problems, list) else problems}")
    return "\n".join(lines)


def add_commands(sub: Any) -> dict[str, Any]:
    """Add the subcommands to an argparse ``sub``; return {name: handler}."""
    p = sub.add_parser("send", help="send through a running bridge (template or raw query API); print the answer")
    p.add_argument("target", help="'query' for the raw query API, 'kannel' for Kannel's sendsms, or a template name")
    p.add_argument("values", nargs="*", help="parameters as name=value (query: to=… text=… from=…)")
    p.add_argument("--url", help="the bridge's base URL (default: server.public_url or http://host:port)")
    p.add_argument("--port", type=int, default=None, help="the bridge's port (or PORT; default server.port)")
    p.add_argument("--username", default=os.environ.get("SMSBRIDGE_USERNAME"), help="caller (or SMSBRIDGE_USERNAME)")
    p.add_argument("--password", default=os.environ.get("SMSBRIDGE_PASSWORD"),
                   help="caller's password (or SMSBRIDGE_PASSWORD; prompted when missing)")
    p.add_argument("--xml", action="store_true", help="ask for XML")
    p.add_argument("--timeout", type=float, default=30.0)

    p = sub.add_parser("preview", help="encoding, parts, characters remaining and the text as it arrives (offline)")
    p.add_argument("text")
    p.add_argument("--language-code", choices=sorted(LANGUAGE_CODES))
    p.add_argument("--transliteration", choices=sorted(TRANSLITERATIONS))
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("url", help="the URL builder: the URL a legacy app calls, with its own placeholders")
    p.add_argument("target", help="'query' for the raw query API, 'kannel', 'jasmin' or 'smseagle' for an "
                                  "application written for that gateway, or a template name")
    p.add_argument("--style", default="percent", choices=[*ub.STYLES, "custom"], help="placeholder style")
    p.add_argument("--prefix", default="", help="custom style: the placeholder's prefix")
    p.add_argument("--suffix", default="", help="custom style: the placeholder's suffix")
    p.add_argument("--preset", choices=sorted(ub.PRESETS), help="a known caller's style and placeholders")
    p.add_argument("--name", action="append", default=[], metavar="PARAM=PLACEHOLDER",
                   help="the placeholder name for a parameter (default: the parameter's own name)")
    p.add_argument("--value", action="append", default=[], metavar="PARAM=VALUE", help="a fixed value")
    p.add_argument("--omit", action="append", default=[], metavar="PARAM", help="leave a parameter out")
    p.add_argument("--format", choices=["json", "xml"], default="", help="answer format (path extension)")
    p.add_argument("--username", help="the caller: adds username=… and password=" + ub.PASSWORD_TOKEN)
    p.add_argument("--base", help="the bridge's address as the legacy app reaches it")
    p.add_argument("--port", type=int, default=None, help="the bridge's port (or PORT; default server.port)")
    p.add_argument("--curl", action="store_true", help="print the curl command too")
    p.add_argument("--parse", metavar="URL", help="read a URL instead and print the form as JSON")

    p = sub.add_parser("outbox", help="list outbox jobs or re-drive dead letters")
    osub = p.add_subparsers(dest="outbox_command", required=True)
    lp = osub.add_parser("list", help="jobs, newest first (default: dead letters)")
    lp.add_argument("--state", default="dead", choices=[*STATES, "all"])
    lp.add_argument("--limit", type=int, default=50)
    lp.add_argument("--json", action="store_true")
    rp = osub.add_parser("redrive", help="dead letters back to pending, due now")
    rp.add_argument("ids", nargs="*", type=int)
    rp.add_argument("--all", action="store_true", help="every dead letter")
    return {"send": cmd_send, "preview": cmd_preview, "url": cmd_url, "outbox": cmd_outbox}


def cmd_send(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    values = _pairs(args.values, "a value")
    base = (args.url or bridge_url(config, args.port)).rstrip("/")
    path = ub.path_of(args.target, "xml" if args.xml else "")
    username = args.username or input("Caller: ")
    password = args.password if args.password is not None else getpass.getpass(f"Password for {username}: ")
    try:
        resp = requests.get(base + path, params=values, auth=(username, password), timeout=args.timeout)
    except requests.RequestException as exc:
        print(f"could not reach the bridge at {base}: {type(exc).__name__}", file=sys.stderr)
        return 3
    # the answer as it came on stdout (scripts parse it); on stderr the status, or the error in the UI's words
    print(f"HTTP {resp.status_code}" if resp.ok else f"error: {_answer_error(resp)}", file=sys.stderr)
    print(resp.text)
    return 0 if resp.ok else 1


def cmd_preview(args: argparse.Namespace) -> int:
    a = analyse(args.text, args.language_code, args.transliteration)
    out = {"encoding": a.encoding, "parts": a.message_count, "charactersRemaining": a.characters_remaining,
           "languageCode": a.language_code, "textPreview": a.text, "segments": list(a.segments)}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"encoding:             {a.encoding}" + (f" ({a.language_code})" if a.language_code else ""))
    print(f"parts:                {a.message_count}")
    print(f"characters remaining: {a.characters_remaining}")
    print(f"text as it arrives:   {a.text}")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    base = args.base or bridge_url(config, args.port)
    username = args.username
    if username is None and config.callers and not args.parse:  # a URL without credentials answers 401
        username = next(iter(config.callers))
        print(f"(caller {username}; --username picks another of: {', '.join(config.callers)})", file=sys.stderr)
    try:
        if args.parse:
            parsed = ub.parse(args.parse, bridge_base=base)
            print(json.dumps({"spec": parsed.spec.to_dict(), "notes": parsed.notes}, ensure_ascii=False, indent=2))
            return 0
        style = ub.style_of(args.style, args.prefix, args.suffix)
        spec = ub.default_spec(base, args.target, config.templates, style, username, args.format, args.preset)
        names, fixed = _pairs(args.name, "--name"), _pairs(args.value, "--value")
        known = {f.param for f in spec.fields}
        for param in [*names, *fixed, *args.omit]:
            if param not in known:
                raise ValueError(f"{param!r} is not a parameter of {args.target!r} (its parameters: "
                                 f"{', '.join(sorted(known))})")
        for f in spec.fields:
            if f.param in names:
                f.mode, f.value, f.style = "placeholder", names[f.param], f.style or style
            elif f.param in fixed:
                f.mode, f.value, f.style = "value", fixed[f.param], None
            elif f.param in args.omit:
                f.mode = "omit"
        found = ub.check(spec, config.templates, config.callers)  # nothing the bridge would refuse is printed
        for note in found.notes:
            print(f"note: {note}", file=sys.stderr)
        if found.errors:
            for name, reason in found.errors.items():
                print(f"error: {name}: {reason}", file=sys.stderr)
            return 2
        url = ub.build(spec)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(url)
    if args.curl:
        print(ub.curl(spec))
    return 0


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_outbox(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    db = open_store(config.store.path, synchronous=config.store.synchronous)
    outbox = Outbox(db, SystemClock())
    try:
        if args.outbox_command == "list":
            jobs = outbox.jobs(None if args.state == "all" else args.state, args.limit)
            if args.json:
                print(json.dumps([j.public() for j in jobs], ensure_ascii=False))
                return 0
            if not jobs:
                print(f"no {args.state if args.state != 'all' else ''} outbox jobs".replace("  ", " "))
            for j in jobs:
                p = j.public()
                print(f"{j.id:>6}  {j.state:<9} {j.kind:<8} {j.attempts:>2} attempts  next {_when(j.next_at)}  "
                      f"{p['method']} {p['url']}  {j.last_error or ''}".rstrip())
            return 0
        ids = [j.id for j in outbox.dead_letters(limit=100000)] if args.all else args.ids
        if not ids:
            print("nothing to re-drive: give job ids or --all", file=sys.stderr)
            return 2
        failed = [i for i in ids if not outbox.redrive(i)]
        for i in ids:
            if i not in failed:
                print(f"job {i}: re-driven (pending, due now)")
        for i in failed:
            print(f"job {i}: not a dead letter", file=sys.stderr)
        return 1 if failed else 0
    finally:
        outbox.close()
        db.close()
