"""Loading and validating config.yaml.

``${NAME}`` and ``${NAME:-default}`` in any string are replaced from the environment. Every problem
is reported with its key path (``templates.alarm.fields.text: …``); all of them at once.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .inbound.loops import config_numbers
from .inbound.settings import InboundSettings, parse_inbound
from .placeholders import Hygiene
from .redact import Masking
from .send.pacing import Rate, parse_rate
from .send.policy import POLICY_KEYS, pop_policy, template_problems
from .send.windows import DeliveryWindow, parse_window
from .validate import Limits

SANDBOX = "sandbox"  # upstream.base_url value meaning "the embedded sandbox"
UPSTREAM_APIS = ("query", "advanced", "messages")
SCOPES = ("query", "advanced", "messages", "templates", "preview", "reports", "logs", "inbox",
          "conversions", "bulks", "jasmin", "smseagle", "kannel")
PARAM_TYPES = ("string", "phone", "int", "bool")
MODES = ("sync", "queued")  # delivery modes (gateway/dispatch.py)
ON_UPSTREAM_FAILURE = ("queue", "fail")  # a sync send's upstream hiccup: hand over to the queue, or answer the error
CALLBACK_METHODS = ("GET", "POST")


class ConfigError(Exception):
    """All problems found in a configuration, each as (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{p}: {m}" for p, m in problems))


@dataclass
class UrlAllow:
    hosts: list[str] = field(default_factory=list)
    public: bool = False
    loopback: bool = False
    private: bool = False


@dataclass
class Callback:
    """A legacy delivery-report callback: ``url`` (and ``body``) are Jinja templates rendered with the
    report's fields; Kannel ``%``-escapes are aliases (gateway/relay.py)."""

    url: str
    method: str = "GET"
    body: str | None = None
    content_type: str = "application/x-www-form-urlencoded"


@dataclass
class Caller:
    name: str
    password_hash: str | None = None
    password: str | None = None  # plain: sandbox demo only
    api_key_hash: str | None = None
    api_key: str | None = None  # plain: sandbox demo only
    scopes: tuple[str, ...] = SCOPES
    templates: tuple[str, ...] = ("*",)
    upstream_api: str = "advanced"  # default: upstream.api (docs/delivery.md: why advanced)
    limits: Limits = field(default_factory=Limits)
    hygiene: Hygiene = field(default_factory=lambda: Hygiene.from_config(None))
    allow: UrlAllow = field(default_factory=UrlAllow)
    mode: str = "sync"  # sync | queued (queued needs upstream_api: advanced)
    callback: Callback | None = None  # legacy delivery-report callback (gateway/relay.py)
    on_upstream_failure: str = "queue"  # sync: queue (hand over, PENDING_ACCEPTED) | fail (503/502/504)
    dedupe_window: float | None = None  # None: idempotency.dedupe_window
    # Caller policy (gateway/send/policy.py, docs/security.md): senders and destinations it may use (empty: any),
    # and the ISO country national numbers are read with (empty: national numbers are refused).
    senders: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    default_country: str = ""
    # traffic control (gateway/send/pacing.py, windows.py; docs/delivery.md "Traffic control")
    rate: Rate | None = None  # limits.rate: messages per second with a burst; None: unpaced
    max_waiting: int = 0  # limits.max_waiting: queued messages at most (more: 429 Retry-After); 0: no cap
    max_age: float | None = None  # seconds a message may wait in the queue; None: queue.max_age
    delivery_window: DeliveryWindow | None = None

    def may_use_template(self, name: str) -> bool:
        return "templates" in self.scopes and ("*" in self.templates or name in self.templates)


@dataclass
class Param:
    name: str
    required: bool = False
    default: str | None = None
    type: str = "string"
    regex: re.Pattern[str] | None = None
    choices: tuple[str, ...] = ()
    placeholders: bool = True  # detection on/off for this parameter


@dataclass
class TemplateSpec:
    name: str
    api: str
    params: dict[str, Param]
    fields: dict[str, str]  # query-API parameter name -> Jinja source
    callers: tuple[str, ...] = ("*",)
    description: str = ""
    hygiene: Hygiene | None = None
    limits: Limits | None = None
    mode: str | None = None  # None: the caller's mode
    callback: Callback | None = None  # None: the caller's callback
    on_upstream_failure: str | None = None  # None: the caller's
    dedupe_window: float | None = None  # None: the caller's
    senders: tuple[str, ...] = ()  # besides the caller's (both must allow); empty: the caller's alone
    destinations: tuple[str, ...] = ()
    default_country: str = ""  # empty: the caller's
    rate: Rate | None = None  # limits.rate of the template itself (its own bucket, besides the caller's)
    max_age: float | None = None  # None: the caller's
    delivery_window: DeliveryWindow | None = None  # None: the caller's (unless urgent)
    urgent: bool = False  # true: no delivery window at all, not even the caller's


@dataclass
class Upstream:
    base_url: str = SANDBOX
    api_key: str = ""
    username: str | None = None
    password: str | None = None
    api: str = "advanced"  # carries the bridge's own messageId/bulkId: resends are refused as duplicates
    connect_timeout: float = 3.0
    read_timeout: float = 15.0
    pool_size: int = 32
    # -- failover (gateway/send/upstreams.py, docs/delivery.md "Failover") --
    name: str = "primary"  # how the record, the UI and /metrics name this upstream
    failures_to_open: int = 3  # consecutive failures that open its circuit (sends go to the next upstream)
    cooldown: float = 30.0  # seconds an open circuit waits before a half-open probe
    rate: Rate | None = None  # this upstream's pace (every caller together); None: unpaced

    @property
    def is_sandbox(self) -> bool:
        return self.base_url == SANDBOX


@dataclass
class SandboxSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    api_key: str = "sandbox-key"
    username: str = "sandbox"
    password: str = "sandbox"
    threads: int = 8
    inbound_url: str = ""  # where injected inbound messages are pushed; empty with `serve`: this bridge's hook
    push_time_scale: float = 1.0  # the push retry cycle's delays are multiplied by this (tests: 0.001)
    # Delivery reports (gateway/sandbox/reports.py): final status after dlr_delay seconds; rules are
    # "<prefix> <STATUS_NAME> [<ERROR_NAME>]", first match wins; time_scale shrinks the push retry cycle.
    dlr_delay: float = 1.0
    dlr_status: str = "DELIVERED_TO_HANDSET"
    dlr_rules: list[str] = field(default_factory=list)
    time_scale: float = 1.0


@dataclass
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 16
    default_charset: str = "utf-8"
    public_url: str = ""  # how the upstream reaches the bridge (its own notifyUrl); default http://host:port
    # Slow or idle clients (docs/security.md): connections held open at most, seconds a client may take to send one
    # whole request (headers and body), seconds a keep-alive connection may idle, bytes a request body may hold.
    connection_limit: int = 1000
    request_timeout: float = 15.0
    idle_timeout: float = 60.0
    max_request_bytes: int = 8 << 20
    workers: int = 1  # bridge processes sharing the listening socket (app.py --workers; docs/deployment.md)
    # Addresses/CIDRs whose X-Forwarded-For/-Proto/-Host/-Port/-Prefix are believed (a reverse proxy); empty: none
    trusted_proxies: list[str] = field(default_factory=list)


@dataclass
class Store:
    # store.url: sqlite:///<file> (the default, = store.path) or postgresql://user:pw@host/db (psycopg 3).
    # After loading, ``path`` is what the engine opens: the SQLite file, or the PostgreSQL URL.
    url: str = ""
    path: str = "data/smsbridge.db"  # relative paths are relative to the working directory (a synonym of url)
    synchronous: str = "FULL"  # FULL: every commit fsynced (see gateway/db.py); NORMAL: faster
    retention_hours: float = 48.0  # messages and reports are pruned this long after their last update
    prune_interval: float = 3600.0  # seconds between prune runs of the cluster (0: never; gateway/store/periodic.py)
    # Seconds a work claim (lease) outlives the request it guards: queue and sync-send leases last
    # upstream.connect_timeout + read_timeout + this, outbox leases outbox.connect_timeout + read_timeout + this.
    # A dead process's claims come back after that; a live one records its outcome well within it.
    lease_margin: float = 30.0
    # Most seconds an idle queue or outbox worker waits before looking at the store again. 0: 1 s on SQLite,
    # 5 s on PostgreSQL (where LISTEN/NOTIFY wakes it at once; the poll is the safety net).
    poll_interval: float = 0.0
    # PostgreSQL: server connections in each process's pool (the listener's one not counted). 0: automatic,
    # server.threads + queue.workers + outbox.workers + 2, so nothing ever waits for a connection.
    pool_size: int = 0


_STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")


def _store_url(store: Store, problems: list[tuple[str, str]]) -> None:
    """Resolve ``store.url`` (or its synonym ``store.path``) into ``store.url`` and ``store.path``."""
    url = (store.url or "").strip()
    if not url:
        store.url = f"sqlite:///{store.path}"
        return
    if not url.startswith(_STORE_SCHEMES):
        problems.append(("store.url", "must be sqlite:///<file> or postgresql://<user>@<host>/<database>"))
        return
    if url.startswith("sqlite:///"):
        if not url[len("sqlite:///"):]:
            problems.append(("store.url", "sqlite:/// needs a file name (sqlite:///data/smsbridge.db)"))
            return
        store.path = url[len("sqlite:///"):]
    else:
        store.path = url
    store.url = url


@dataclass
class IdempotencySettings:
    """Idempotency keys and duplicate suppression (gateway/send/idempotency.py, docs/delivery.md)."""

    ttl: float = 86400.0  # seconds a key's answer is kept and replayed (IETF draft: at least 24 h)
    dedupe_window: float = 120.0  # seconds an identical request without a key is answered as a duplicate; 0: off
    wait: float = 10.0  # seconds a request waits for one in flight with its key, then 409


@dataclass
class QueueSettings:
    """Queued mode's forwarder (gateway/dispatch.py)."""

    workers: int = 2
    max_batch: int = 1000  # destinations per advanced-API request
    retry_base: float = 1.0  # seconds before the first retry; doubles up to retry_max
    retry_max: float = 60.0
    time_scale: float = 1.0  # multiplies retry delays (tests use a small value)
    max_age: float = 0.0  # seconds a queued message may wait before it expires (callers/templates: max_age); 0: off


@dataclass
class OutboxSettings:
    workers: int = 2
    time_scale: float = 1.0  # retry delays are multiplied by this (tests use 0.001)
    retry_on_4xx: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_batch: int = 100  # due reports for one notifyUrl (same format, headers) share one POST, at most this many


@dataclass
class Logging:
    level: str = "INFO"
    access_log: bool = True
    format: str = "text"  # text | json (one JSON object per line)
    mask_texts: bool = True  # message texts, codes and template values: first mask_keep characters and length
    mask_keep: int = 3

    @property
    def masking(self) -> Masking:
        return Masking(self.mask_texts, self.mask_keep)


@dataclass
class ThrottleSettings:
    """Failed logins (API and admin UI), gateway/throttle.py: free failures, then doubling lockouts."""

    free_failures: int = 5
    first_delay: float = 1.0
    max_delay: float = 900.0
    forget_after: float = 900.0
    max_entries: int = 100_000
    sync_interval: float = 1.0  # seconds: each process reads the cluster's locks from the store at most this often


@dataclass
class UiSettings:
    """The admin web UI (URL builder, try-it): off unless enabled."""

    enabled: bool = False
    admin_user: str = "admin"
    admin_password_hash: str | None = None
    admin_password: str | None = None  # plain: sandbox demo only
    secret_key: str = ""  # signs the session cookie; empty = a random key per start (sessions end on restart)
    secure_cookie: bool = False  # set true behind HTTPS
    session_minutes: int = 480
    mask_text: bool = True  # the message log shows only the first mask_keep characters and the length of texts
    mask_keep: int = 3
    log_page_size: int = 50  # rows per page of the message log


@dataclass
class OpsSettings:
    """Health, readiness and metrics."""

    ready_outbox_max: int = 1000  # /readyz fails when more outbox jobs than this are waiting
    ready_upstream_timeout: float = 2.0  # seconds for the upstream reachability probe
    ready_cache: float = 1.0  # seconds /readyz answers from its last checks (one database write and one upstream
    #                           probe per upstream per this, however often anyone asks: /readyz needs no login)
    metrics: bool = True  # serve GET /metrics


@dataclass
class Config:
    server: Server
    upstream: Upstream
    sandbox: SandboxSettings
    logging: Logging
    store: Store
    outbox: OutboxSettings
    callers: dict[str, Caller]
    templates: dict[str, TemplateSpec]
    limits: Limits
    placeholders: dict[str, Any]
    source: str = "<dict>"
    warnings: list[str] = field(default_factory=list)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    auth: ThrottleSettings = field(default_factory=ThrottleSettings)
    idempotency: IdempotencySettings = field(default_factory=IdempotencySettings)
    # every upstream in failover order; ``upstream`` is the first (``upstream:`` alone: a list of one)
    upstreams: list[Upstream] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.upstreams:
            self.upstreams = [self.upstream]

    @property
    def upstream_lease(self) -> float:
        """Seconds a claim on one upstream request (a queue batch) lasts: the slowest upstream's timeouts plus
        ``store.lease_margin``."""
        return max(u.connect_timeout + u.read_timeout for u in self.upstreams) + self.store.lease_margin

    @property
    def sync_lease(self) -> float:
        """Seconds a sync send (and its idempotency key) may be in flight: it may try every upstream in turn."""
        return sum(u.connect_timeout + u.read_timeout for u in self.upstreams) + self.store.lease_margin


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str], path: str, problems: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"))
            return ""

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


class _Reader:
    """Typed access to a config mapping that records problems with key paths."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems

    def section(self, d: Any, path: str) -> dict[str, Any]:
        if d is None:
            return {}
        if not isinstance(d, dict):
            self.problems.append((path, "must be a mapping"))
            return {}
        return d

    def fill(self, cls: type, d: dict[str, Any], path: str, **extra: Any) -> Any:
        """Build dataclass ``cls`` from the keys of ``d`` that match its fields, type-checked."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in names or key in extra:
                self.problems.append((f"{path}.{key}", f"unknown key; known: {', '.join(sorted(names))}"))
                continue
            kwargs[key] = self.coerce(value, _default_of(names[key]), f"{path}.{key}")
        kwargs.update(extra)
        return cls(**kwargs)

    def coerce(self, value: Any, like: Any, path: str) -> Any:
        if like is None or value is None:
            return value
        if isinstance(like, bool):
            if isinstance(value, bool):
                return value
            self.problems.append((path, f"must be true or false, got {value!r}"))
            return like
        if isinstance(like, int | float):
            try:
                return type(like)(value)
            except (TypeError, ValueError):
                self.problems.append((path, f"must be a number, got {value!r}"))
                return like
        if isinstance(like, str):
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
            self.problems.append((path, f"must be a string, got {value!r}"))
            return like
        if isinstance(like, tuple | list):
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value) if isinstance(like, tuple) else list(value)
            self.problems.append((path, "must be a list of strings"))
            return like
        return value


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _limits(r: _Reader, d: Any, path: str, base: Limits) -> Limits:
    d = r.section(d, path)
    names = {f.name for f in dataclasses.fields(Limits)}
    values = {}
    for k, v in d.items():
        if k not in names:
            r.problems.append((f"{path}.{k}", f"unknown limit; known: {', '.join(sorted(names))}"))
        elif not isinstance(v, int) or isinstance(v, bool) or v < 0:
            r.problems.append((f"{path}.{k}", f"must be a non-negative whole number, got {v!r}"))
        else:
            values[k] = v
    return dataclasses.replace(base, **values)


def _hygiene(r: _Reader, d: Any, path: str, base: dict[str, Any]) -> Hygiene | None:
    merged = {**base, **r.section(d, path)}
    try:
        return Hygiene.from_config(merged)
    except ValueError as exc:
        r.problems.append((path, str(exc)))
        return None


def _caller(r: _Reader, name: str, d: Any, path: str, limits: Limits, placeholders: dict[str, Any],
            default_api: str = "advanced", base_rate: Rate | None = None,
            base_waiting: int = 0) -> Caller:
    d = dict(r.section(d, path))
    d.setdefault("upstream_api", default_api)
    traffic = _traffic(r, d, path, base_rate, base_waiting)
    lim = _limits(r, d.pop("limits", None), f"{path}.limits", limits)
    hyg = _hygiene(r, d.pop("placeholders", None), f"{path}.placeholders", placeholders)
    allow = r.fill(UrlAllow, r.section(d.pop("allow", None), f"{path}.allow"), f"{path}.allow")
    callback = _callback(r, d.pop("callback", None), f"{path}.callback")
    policy = pop_policy(d, path, r.problems)
    c = r.fill(Caller, d, path, name=name, **policy, **traffic)
    c.limits, c.allow, c.callback = lim, allow, callback
    if c.mode not in MODES:
        r.problems.append((f"{path}.mode", f"must be one of {', '.join(MODES)}"))
    elif c.mode == "queued" and c.upstream_api == "query":
        r.problems.append((f"{path}.mode", "queued needs upstream_api: advanced (the bridge passes its own "
                           "messageId/bulkId upstream as custom IDs, which the query API cannot carry)"))
    if c.on_upstream_failure not in ON_UPSTREAM_FAILURE:
        r.problems.append((f"{path}.on_upstream_failure", f"must be one of {', '.join(ON_UPSTREAM_FAILURE)}"))
    if hyg:
        c.hygiene = hyg
    for s in c.scopes:
        if s not in SCOPES:
            r.problems.append((f"{path}.scopes", f"unknown scope {s!r}; known: {', '.join(SCOPES)}"))
    c.dedupe_window = _window(r, c.dedupe_window, f"{path}.dedupe_window")
    if c.upstream_api not in UPSTREAM_APIS:
        r.problems.append((f"{path}.upstream_api", f"must be one of {', '.join(UPSTREAM_APIS)}"))
    if not (c.password_hash or c.password or c.api_key_hash or c.api_key):
        r.problems.append((path, "has no credentials: set password_hash (see `python app.py hash-password`)"))
    return c


def _pop_pace(r: _Reader, d: dict[str, Any], key: str, path: str) -> tuple[Rate | None, int | None]:
    """Take ``rate`` and ``max_waiting`` out of ``d[key]`` (a limits section; copied, not changed)."""
    lim, where = d.get(key), f"{path}.{key}" if path else key
    if not isinstance(lim, dict) or not ({"rate", "max_waiting"} & lim.keys()):
        return None, None
    lim = d[key] = dict(lim)
    rate = None
    if "rate" in lim:
        rate, problem = parse_rate(lim.pop("rate"))
        if problem:
            r.problems.append((f"{where}.rate", problem))
    waiting = lim.pop("max_waiting", None)
    if waiting is not None and (not isinstance(waiting, int) or isinstance(waiting, bool) or waiting < 0):
        r.problems.append((f"{where}.max_waiting", f"must be a whole number, 0 or more (0: no cap), got {waiting!r}"))
        waiting = None
    if not lim:  # only traffic limits: the validation limits stay inherited
        del d[key]
    return rate, waiting


def _traffic(r: _Reader, d: dict[str, Any], path: str, base_rate: Rate | None, base_waiting: int | None,
             template: bool = False) -> dict[str, Any]:
    """A caller's or template's traffic control (pops its keys from ``d``): ``limits.rate``,
    ``limits.max_waiting`` (callers), ``max_age``, ``delivery_window`` and ``urgent`` (templates)."""
    rate, waiting = _pop_pace(r, d, "limits", path)
    out: dict[str, Any] = {"rate": rate if rate is not None else base_rate,
                           "max_age": _window(r, d.pop("max_age", None), f"{path}.max_age")}
    if template:
        urgent = d.pop("urgent", False)
        if not isinstance(urgent, bool):
            r.problems.append((f"{path}.urgent", f"must be true or false, got {urgent!r}"))
        out["urgent"] = urgent is True
        if waiting is not None:
            r.problems.append((f"{path}.limits.max_waiting", "is a caller's limit (the queue is counted per caller)"))
    else:
        out["max_waiting"] = waiting if waiting is not None else (base_waiting or 0)
    out["delivery_window"] = None
    if d.get("delivery_window") is not None:
        window, problems = parse_window(d.pop("delivery_window"))
        r.problems += [(f"{path}.delivery_window{'.' + k if k else ''}", m) for k, m in problems]
        out["delivery_window"] = window
    d.pop("delivery_window", None)
    return out


def _window(r: _Reader, value: Any, path: str) -> float | None:
    """An optional number of seconds, 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        r.problems.append((path, f"must be a number of seconds, 0 or more (0: off), got {value!r}"))
        return None
    return float(value)


def _callback(r: _Reader, d: Any, path: str) -> Callback | None:
    if d is None:
        return None
    if isinstance(d, str):
        d = {"url": d}
    d = r.section(d, path)
    if not isinstance(d.get("url"), str) or not d.get("url"):
        r.problems.append((f"{path}.url", "is required: the URL template to call for each report"))
        return None
    cb = r.fill(Callback, d, path)
    cb.method = cb.method.upper()
    if cb.method not in CALLBACK_METHODS:
        r.problems.append((f"{path}.method", f"must be one of {', '.join(CALLBACK_METHODS)}"))
    return cb


def _param(r: _Reader, name: str, d: Any, path: str) -> Param:
    if d is None or d is True:
        d = {"required": True}
    d = dict(r.section(d, path))
    regex = d.pop("regex", None)
    choices = d.pop("choices", None)
    default = d.pop("default", None)
    p = r.fill(Param, d, path, name=name)
    if default is not None:
        p.default = str(default)
    if p.type not in PARAM_TYPES:
        r.problems.append((f"{path}.type", f"must be one of {', '.join(PARAM_TYPES)}"))
    if regex is not None:
        try:
            p.regex = re.compile(str(regex))
        except re.error as exc:
            r.problems.append((f"{path}.regex", f"is not a valid regular expression: {exc}"))
    if choices is not None:
        if isinstance(choices, list):
            p.choices = tuple(str(c) for c in choices)
        else:
            r.problems.append((f"{path}.choices", "must be a list"))
    if p.required and p.default is not None:
        r.problems.append((path, "is required and has a default: choose one"))
    return p


TEMPLATE_FIELDS = (
    "from", "to", "text", "flash", "transliteration", "languageCode", "intermediateReport", "notifyUrl",
    "notifyContentType", "callbackData", "validityPeriod", "sendAt", "bulkId", "track", "trackingType",
    "processKey",
)


def _template(r: _Reader, name: str, d: Any, path: str, limits: Limits, placeholders: dict[str, Any],
              default_api: str = "advanced") -> TemplateSpec:
    d = dict(r.section(d, path))
    traffic = _traffic(r, d, path, None, None, template=True)
    params = {
        pn: _param(r, pn, pd, f"{path}.params.{pn}") for pn, pd in r.section(d.get("params"), f"{path}.params").items()
    }
    fields: dict[str, str] = {}
    for fn, src in r.section(d.get("fields"), f"{path}.fields").items():
        if fn not in TEMPLATE_FIELDS:
            r.problems.append((f"{path}.fields.{fn}", f"unknown field; known: {', '.join(TEMPLATE_FIELDS)}"))
        elif not isinstance(src, str | int | bool):
            r.problems.append((f"{path}.fields.{fn}", "must be a string (a Jinja template)"))
        else:
            fields[fn] = str(src).lower() if isinstance(src, bool) else str(src)
    for required in ("to", "text"):
        if required not in fields:
            r.problems.append((f"{path}.fields", f"needs a {required!r} field"))
    api = str(d.get("api", default_api))
    if api not in UPSTREAM_APIS:
        r.problems.append((f"{path}.api", f"must be one of {', '.join(UPSTREAM_APIS)}"))
    for key in d:
        if key not in ("params", "fields", "api", "callers", "description", "placeholders", "limits", "mode",
                       "callback", "on_upstream_failure", "dedupe_window", *POLICY_KEYS):
            r.problems.append((f"{path}.{key}", "unknown key; known: api, callback, callers, dedupe_window, "
                               "default_country, delivery_window, description, destinations, fields, limits, "
                               "max_age, mode, on_upstream_failure, params, placeholders, senders, urgent"))
    failure = d.get("on_upstream_failure")
    if failure is not None and failure not in ON_UPSTREAM_FAILURE:
        r.problems.append((f"{path}.on_upstream_failure", f"must be one of {', '.join(ON_UPSTREAM_FAILURE)}"))
    mode = d.get("mode")
    if mode is not None and mode not in MODES:
        r.problems.append((f"{path}.mode", f"must be one of {', '.join(MODES)}"))
    elif mode == "queued" and api == "query":
        r.problems.append((f"{path}.mode", "queued needs api: advanced (the bridge passes its own messageId/bulkId "
                           "upstream as custom IDs, which the query API cannot carry)"))
    callers = r.coerce(d.get("callers", ["*"]), ("*",), f"{path}.callers")
    return TemplateSpec(
        name=name,
        api=api,
        params=params,
        fields=fields,
        callers=tuple(callers),
        description=str(d.get("description", "")),
        hygiene=_hygiene(r, d.get("placeholders"), f"{path}.placeholders", placeholders) if "placeholders" in d else None,
        limits=_limits(r, d.get("limits"), f"{path}.limits", limits) if "limits" in d else None,
        mode=mode,
        callback=_callback(r, d.get("callback"), f"{path}.callback"),
        on_upstream_failure=failure,
        dedupe_window=_window(r, d.get("dedupe_window"), f"{path}.dedupe_window"),
        **pop_policy(dict(d), path, r.problems),
        **traffic,
    )


def build_config(raw: Any, env: dict[str, str] | None = None, source: str = "<dict>") -> Config:
    """Validate a parsed YAML document; raise ConfigError listing every problem."""
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        raise ConfigError([("(top)", "the configuration must be a mapping")])
    raw = interpolate(raw, dict(os.environ) if env is None else env, "", problems)
    r = _Reader(problems)
    known = {"server", "upstream", "sandbox", "logging", "store", "outbox", "callers", "templates", "limits",
             "placeholders", "inbound", "ui", "ops", "queue", "auth", "idempotency", "upstreams"}
    for key in raw:
        if key not in known:
            problems.append((str(key), f"unknown section; known: {', '.join(sorted(known))}"))
    server = r.fill(Server, r.section(raw.get("server"), "server"), "server")
    for key in ("connection_limit", "request_timeout", "idle_timeout", "max_request_bytes"):
        if getattr(server, key) <= 0:
            problems.append((f"server.{key}", "must be above 0"))
    if server.workers < 1:
        problems.append(("server.workers", "must be at least 1"))
    for i, net in enumerate(server.trusted_proxies):
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            problems.append((f"server.trusted_proxies[{i}]", f"{net!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
    upstreams = _upstreams(r, raw)  # --- failover: upstream: or upstreams: ---
    upstream = upstreams[0]
    sandbox = r.fill(SandboxSettings, r.section(raw.get("sandbox"), "sandbox"), "sandbox")
    logging_ = r.fill(Logging, r.section(raw.get("logging"), "logging"), "logging")
    store = r.fill(Store, r.section(raw.get("store"), "store"), "store")
    queue = r.fill(QueueSettings, r.section(raw.get("queue"), "queue"), "queue")
    if queue.max_age < 0:
        problems.append(("queue.max_age", "must be a number of seconds, 0 or more (0: off)"))
    if queue.max_batch < 1 or queue.workers < 1 or queue.time_scale <= 0:
        problems.append(("queue", "workers and max_batch must be at least 1, time_scale above 0"))
    outbox = r.fill(OutboxSettings, r.section(raw.get("outbox"), "outbox"), "outbox")
    if outbox.max_batch < 1:
        problems.append(("outbox.max_batch", "must be at least 1 (1: one report per POST)"))
    if store.lease_margin < 1:
        problems.append(("store.lease_margin", "must be at least 1 second (time to record an answer)"))
    if store.synchronous not in ("FULL", "NORMAL"):
        problems.append(("store.synchronous", "must be FULL or NORMAL"))
    _store_url(store, problems)
    if store.poll_interval < 0:
        problems.append(("store.poll_interval", "must be 0 (automatic) or more seconds"))
    elif store.poll_interval == 0:
        store.poll_interval = 1.0 if store.url.startswith("sqlite") else 5.0
    if store.pool_size < 0:
        problems.append(("store.pool_size", "must be 0 (automatic) or more connections"))
    top = {"limits": raw.get("limits")}
    base_rate, base_waiting = _pop_pace(r, top, "limits", "")
    limits = _limits(r, top.get("limits"), "limits", Limits())
    placeholders = r.section(raw.get("placeholders"), "placeholders")
    _hygiene(r, None, "placeholders", placeholders)
    callers = {
        str(n): _caller(r, str(n), d, f"callers.{n}", limits, placeholders, upstream.api, base_rate, base_waiting)
        for n, d in r.section(raw.get("callers"), "callers").items()
    }
    if not callers:
        problems.append(("callers", "define at least one caller"))
    templates = {
        str(n): _template(r, str(n), d, f"templates.{n}", limits, placeholders, upstream.api)
        for n, d in r.section(raw.get("templates"), "templates").items()
    }
    for tn, t in templates.items():
        for cn in t.callers:
            if cn != "*" and cn not in callers:
                problems.append((f"templates.{tn}.callers", f"unknown caller {cn!r}"))
        if t.mode is None and t.api == "query":  # inherits the caller's mode: a queued caller cannot use it
            users = [c for c in callers.values() if c.mode == "queued" and c.may_use_template(tn)
                     and ("*" in t.callers or c.name in t.callers)]
            for c in users:
                problems.append((f"templates.{tn}.mode", f"caller {c.name!r} is queued but this template uses the "
                                 "query API (no custom IDs): set mode: sync here, or api: advanced"))
    warnings: list[str] = _query_warnings(upstream, callers, templates)
    template_problems(templates, callers, problems, warnings)  # a constant from its senders refuse
    for c in callers.values():
        for plain, kind in ((c.password, "password"), (c.api_key, "api_key")):
            if plain is None:
                continue
            if upstream.is_sandbox:
                warnings.append(
                    f"callers.{c.name}.{kind} is stored in plain text: acceptable only for the sandbox demo; "
                    f"use {kind}_hash (python app.py hash-password{' --api-key' * (kind == 'api_key')}) before "
                    "pointing at the real Infobip"
                )
            else:
                problems.append(
                    (f"callers.{c.name}.{kind}", f"plain {kind}s are only accepted while the upstream is the "
                     f"sandbox; store {kind}_hash instead (python app.py hash-password"
                     f"{' --api-key' * (kind == 'api_key')})")
                )
    inbound = parse_inbound(raw.get("inbound"), callers, upstream.is_sandbox, problems, warnings)
    inbound.own_numbers = config_numbers(inbound, callers, templates)  # never auto-replied to (inbound/loops.py)
    ui = _ui(r, raw.get("ui"), upstream, warnings)
    if ui.enabled and not ui.secret_key and store.url.startswith(("postgres", "postgresql")):
        warnings.append("ui.secret_key is not set: with several bridges on one PostgreSQL store an admin UI login "
                        "holds only on the bridge that made it; set the same ui.secret_key on every bridge")
    ops = r.fill(OpsSettings, r.section(raw.get("ops"), "ops"), "ops")
    auth = r.fill(ThrottleSettings, r.section(raw.get("auth"), "auth"), "auth")
    if auth.free_failures < 0 or auth.first_delay <= 0 or auth.max_delay < auth.first_delay or auth.max_entries < 1:
        problems.append(("auth", "free_failures must be 0 or more, first_delay above 0, max_delay at least "
                                 "first_delay, max_entries at least 1"))
    idem = r.fill(IdempotencySettings, r.section(raw.get("idempotency"), "idempotency"), "idempotency")
    if idem.ttl <= 0 or idem.dedupe_window < 0 or idem.wait < 0:
        problems.append(("idempotency", "ttl must be above 0, dedupe_window and wait 0 or more (0: off)"))
    # a key links to its submission's record: one pruned while the key is still known lets a late retry of a
    # request that died in flight send again (docs/delivery.md, "A first request that never finished")
    kept = store.retention_hours * 3600
    for path, seconds in (("idempotency.ttl", idem.ttl), ("idempotency.dedupe_window", idem.dedupe_window),
                          *((f"callers.{n}.dedupe_window", c.dedupe_window) for n, c in callers.items()),
                          *((f"templates.{n}.dedupe_window", t.dedupe_window) for n, t in templates.items())):
        if seconds is not None and seconds > kept:
            problems.append((path, f"is {seconds:g} s, longer than store.retention_hours keeps records "
                             f"({store.retention_hours:g} h = {kept:g} s): a retry after its first request's record "
                             "was pruned could send the message again; shorten it or raise store.retention_hours"))
    if logging_.format not in ("text", "json"):
        problems.append(("logging.format", "must be text or json"))
    if problems:
        raise ConfigError(problems)
    if store.pool_size == 0:  # automatic: a connection for every thread that may use the store at once
        store.pool_size = server.threads + queue.workers + outbox.workers + 2
    return Config(server, upstream, sandbox, logging_, store, outbox, callers, templates, limits, placeholders,
                  source, warnings, inbound, ui, ops, queue, auth, idem, upstreams)


def _upstreams(r: _Reader, raw: dict[str, Any]) -> list[Upstream]:
    """``upstream:`` (one) or ``upstreams:`` (a list in failover order), each checked under its own key path."""
    if "upstreams" not in raw:
        return [_upstream_raw(r, r.section(raw.get("upstream"), "upstream"), "upstream")]
    items = raw["upstreams"]
    if "upstream" in raw:
        r.problems.append(("upstreams", "give either upstream: (one) or upstreams: (a list), not both"))
    if not isinstance(items, list) or not items:
        r.problems.append(("upstreams", "must be a non-empty list of upstreams, in failover order"))
        return [Upstream()]
    found = [_upstream_raw(r, r.section(d, f"upstreams[{i}]"), f"upstreams[{i}]") for i, d in enumerate(items)]
    names = [u.name for u in found]
    for i, u in enumerate(found):
        if "name" not in (items[i] if isinstance(items[i], dict) else {}):
            r.problems.append((f"upstreams[{i}].name", "is required: the record and /metrics name the upstream "
                               "that carried each message"))
        elif names.count(u.name) > 1:
            r.problems.append((f"upstreams[{i}].name", f"{u.name!r} is used twice"))
    return found


_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _upstream(r: _Reader, d: dict[str, Any], path: str) -> Upstream:
    up: Upstream = r.fill(Upstream, d, path)
    if up.api not in UPSTREAM_APIS:
        r.problems.append((f"{path}.api", f"must be one of {', '.join(UPSTREAM_APIS)}"))
    if not up.is_sandbox and not up.base_url.startswith(("http://", "https://")):
        r.problems.append((f"{path}.base_url", "must be 'sandbox' or an http(s):// URL"))
    if not up.api_key and not (up.username and up.password):
        r.problems.append((f"{path}.api_key", "is empty: set it from the environment, e.g. ${INFOBIP_API_KEY}"))
    if not _UPSTREAM_NAME.fullmatch(up.name):
        r.problems.append((f"{path}.name", "must be 1-40 letters, digits, '.', '_' or '-'"))
    if up.failures_to_open < 1:
        r.problems.append((f"{path}.failures_to_open", "must be at least 1"))
    if up.cooldown <= 0:
        r.problems.append((f"{path}.cooldown", "must be a number of seconds above 0"))
    return up


def _upstream_raw(r: _Reader, d: dict[str, Any], path: str) -> Upstream:
    """An upstream's section, its ``rate`` read as traffic control reads rates."""
    d = dict(d)
    rate, problem = parse_rate(d.pop("rate")) if "rate" in d else (None, None)
    if problem:
        r.problems.append((f"{path}.rate", problem))
    up = _upstream(r, d, path)
    up.rate = rate
    return up


QUERY_GAP = ("uses the query API, which cannot carry the bridge's own messageId and bulkId: a resend after an "
             "upstream timeout, a crash or a failover is not refused upstream as a duplicate and can send the SMS "
             "twice, and a timed-out send cannot be looked up by its id. Sends with options the query API cannot "
             "carry (custom messageId, sendingSpeedLimit, deliveryTimeWindow, URL options) go through the advanced "
             "API anyway. Use advanced (the default) unless the upstream account only allows the query API")


def _query_warnings(upstream: Upstream, callers: dict[str, Caller], templates: dict[str, TemplateSpec]) -> list[str]:
    """Which exactly-once guarantee does not hold where the query API is chosen (docs/delivery.md)."""
    out = [f"upstream.api {QUERY_GAP}"] if upstream.api == "query" else []
    out += [f"callers.{c.name}.upstream_api {QUERY_GAP}" for c in callers.values()
            if c.upstream_api == "query" and upstream.api != "query"]
    out += [f"templates.{t.name}.api {QUERY_GAP}" for t in templates.values()
            if t.api == "query" and upstream.api != "query"]
    return out


def _ui(r: _Reader, d: Any, upstream: Upstream, warnings: list[str]) -> UiSettings:
    ui = r.fill(UiSettings, r.section(d, "ui"), "ui")
    if ui.mask_keep < 0:
        r.problems.append(("ui.mask_keep", "must be 0 or more"))
    if not 1 <= ui.log_page_size <= 500:
        r.problems.append(("ui.log_page_size", "must be between 1 and 500"))
    if not ui.enabled:
        return ui
    if not (ui.admin_password_hash or ui.admin_password):
        r.problems.append(("ui", "is enabled without admin_password_hash (see `python app.py hash-password`)"))
    if ui.admin_password is not None:
        if upstream.is_sandbox:
            warnings.append("ui.admin_password is stored in plain text: acceptable only for the sandbox demo; "
                            "use ui.admin_password_hash (python app.py hash-password) before pointing at the real "
                            "Infobip")
        else:
            r.problems.append(("ui.admin_password", "a plain admin password is only accepted while the upstream "
                               "is the sandbox; store admin_password_hash instead (python app.py hash-password)"))
    return ui


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([(str(p), "file not found")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([(str(p), f"is not valid YAML: {exc}")]) from None
    return build_config(raw, env, source=str(p))
