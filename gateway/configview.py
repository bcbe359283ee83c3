"""A read-only view of the running configuration for the console (issue 18 item 6): callers, templates,
inbound rules, the upstream(s) and the rest, from the loaded dataclasses, so that a key added to the
configuration shows up here without a second list to keep in step. Secrets never leave: every field whose
name says it holds one shows only whether it is set, and URLs lose their user info."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .config import Config

SECRET = re.compile(r"(password|api_key|secret|token|_hash|key)$", re.I)
HIDDEN = frozenset({"hygiene", "source", "warnings", "name", "placeholders"})  # internal, or shown elsewhere
SET, UNSET = "•••• (set)", "(not set)"


SECRET_QUERY = re.compile(r"pass|secret|token|key|auth|sig", re.I)


def _url(value: str) -> str:
    """A URL without user info (``postgresql://user:pw@host/db`` → ``postgresql://host/db``) and with the
    values of query parameters that look secret (``?token=…``) masked."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme:
        return value
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    if parts.query:  # split by hand: the other parameters stay exactly as written
        segs = [seg.partition("=") for seg in parts.query.split("&")]
        parts = parts._replace(query="&".join(k + "=MASKED" if SECRET_QUERY.search(unquote(k)) and eq else k + eq + v
                                              for k, eq, v in segs))
    return urlunsplit(parts)


def plain(value: Any, key: str = "") -> Any:
    """``value`` as JSON-like data, secrets masked."""
    if key and SECRET.search(key) and not isinstance(value, (dict, list)) and not dataclasses.is_dataclass(value):
        return SET if value not in (None, "", ()) else UNSET
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f.name) for f in dataclasses.fields(value)
                if f.name not in HIDDEN and not f.name.startswith("_")}
    if isinstance(value, Mapping):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, str):
        return _url(value) if "://" in value else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def sections(config: Config) -> list[tuple[str, str, Any]]:
    """(anchor, heading, data) for each part of the page."""
    rest = {f.name: plain(getattr(config, f.name), f.name) for f in dataclasses.fields(config)
            if f.name not in {"callers", "templates", "inbound", "upstream", "upstreams", "ui", *HIDDEN}}
    return [
        ("callers", "Callers", {name: plain(c) for name, c in config.callers.items()}),
        ("templates", "Templates", {name: plain(t) for name, t in config.templates.items()}),
        ("inbound", "Inbound rules", plain(config.inbound)),
        ("upstream", "Upstreams", {u.name: plain(u) for u in config.upstreams}),  # in failover order
        ("ui", "Console", plain(config.ui)),
        ("rest", "Server, store, queue, outbox and the rest", rest),
    ]
