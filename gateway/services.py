"""The bridge's per-app services, built complete in one step by ``build_services`` and kept in
``app.extensions`` (no module-level state)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from .auth import Authenticator
from .clock import Clock
from .config import Config, ConfigError
from .config import Server as ServerSettings
from .delivery.channels import InboundForwardChannel
from .delivery.kannel import SubmitEvents
from .delivery.outbox import Outbox
from .delivery.urlpolicy import UrlPolicy, policy_table
from .inbound.answers import AnswerReplies
from .inbound.routing import Router
from .render import CompiledFields, compile_fields, make_environment
from .reports.intake import ReportIntake
from .reports.relay import Relay
from .send.dispatch import Dispatcher, QueueWorker
from .send.idempotency import Idempotency
from .send.sender import Sender
from .send.upstream import UpstreamClient
from .send.upstreams import Breaker, Route, Upstreams
from .store import notify, periodic, rejected
from .store.engine import Database
from .store.idempotency import prune as prune_keys
from .store.opening import open_store
from .store.records import Store
from .store.throttle import prune as prune_logins
from .throttle import LoginThrottle

log = logging.getLogger("smsbridge")
KEY = "smsbridge"  # the app.extensions key of the Bridge


def compile_templates(config: Config) -> dict[str, CompiledFields]:
    """Compile every template once; raise ConfigError naming each broken one."""
    env = make_environment()
    compiled, problems = {}, []
    for name, spec in config.templates.items():
        result, errs = compile_fields(env, name, spec.fields, spec.params, f"templates.{name}.fields")
        problems += errs
        if result:
            compiled[name] = result
    if problems:
        raise ConfigError(problems)
    return compiled


def url_policies(config: Config) -> Callable[[str | None], UrlPolicy]:
    """``policy_for(caller)``: each caller's allow-list for URLs the bridge calls on its behalf."""
    policies: dict[str | None, UrlPolicy] = {
        name: UrlPolicy(allow_hosts=c.allow.hosts, allow_public=c.allow.public, allow_loopback=c.allow.loopback,
                        allow_private=c.allow.private)
        for name, c in config.callers.items()
    }
    return policy_table(policies, UrlPolicy())


class PublicUrl:
    """How the upstream reaches this bridge (the base of its own notifyUrl): ``server.public_url`` when
    configured, else the server's address, ``http://host:port`` until ``bind()`` tells the real one."""

    def __init__(self, server: ServerSettings) -> None:
        self.configured = server.public_url
        self._url = server.public_url or f"http://{server.host}:{server.port}"

    def bind(self, url: str) -> None:
        """The address the server really got (port 0 picks one); a configured public_url wins."""
        if not self.configured:
            self._url = url

    def get(self) -> str:
        return self._url


class Memo:
    """One value computed at most once per ``ttl`` seconds (monotonic), errors included. While one caller
    computes, the others get the last value at once (none yet: they wait for it), so a slow or failing
    computation (a database that does not answer) never queues every caller behind it. ``ttl`` 0: each
    caller computes its own."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cv = threading.Condition()
        self._at: float | None = None  # when the last computation ended
        self._busy = False
        self._value: Any = None
        self._error: Exception | None = None

    def get(self, compute: Callable[[], Any]) -> Any:
        if self.ttl <= 0:
            return compute()
        with self._cv:
            while True:
                fresh = self._at is not None and time.monotonic() - self._at < self.ttl
                if fresh or (self._busy and self._at is not None):
                    return self._last()
                if not self._busy:
                    self._busy = True
                    break
                self._cv.wait()  # the very first computation: there is nothing else to give
        value, error = None, None
        try:
            value = compute()
        except Exception as exc:  # kept for ttl like a value: the next callers hear it without recomputing
            error = exc
        with self._cv:
            self._value, self._error, self._at, self._busy = value, error, time.monotonic(), False
            self._cv.notify_all()
            return self._last()

    def _last(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class Bridge:
    """Every service of one bridge app; complete from construction (see ``build_services``)."""

    config: Config
    auth: Authenticator
    sender: Sender
    templates: dict[str, CompiledFields]
    router: Router  # inbound rules
    db: Database
    outbox: Outbox
    clock: Clock
    store: Store
    intake: ReportIntake
    dispatch: Dispatcher
    queue: QueueWorker
    public_url: PublicUrl
    throttle: LoginThrottle  # failed logins, API and admin UI
    idempotency: Idempotency  # idempotency keys, duplicate suppression, custom messageIds
    submit_events: SubmitEvents  # Kannel's DLR events of the upstream's answer to a send
    ready: Memo  # /readyz's last checks, shared for ops.ready_cache seconds
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def bind(self, url: str) -> None:
        """Tell the bridge the address its server really got (port 0 picks one) unless
        ``server.public_url`` is configured. Call before start()."""
        self.public_url.bind(url)

    def start(self) -> None:
        """Start the background workers (explicit: creating an app starts no threads)."""
        self.outbox.start()
        self.queue.start()
        # PostgreSQL: other processes' commits wake this one's idle workers (gateway/store/notify.py)
        self.db.listen(notify.QUEUE, self.dispatch.wake.set)
        self.db.listen(notify.OUTBOX, self.outbox.wake)
        self.db.release()  # the starting thread's connection (requeue) back to the pool
        self._stop.clear()
        if self.config.store.prune_interval > 0 and not self._threads:
            t = threading.Thread(target=self._prune_loop, name="prune", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.db.unlisten()
        self.queue.stop()
        self.outbox.stop()
        for t in self._threads:
            t.join(5)
        self._threads = []
        self.sender.upstreams.close()

    def prune(self) -> dict[str, int]:
        return prune_all(self.store, self.db, self.clock, self.config.store.retention_hours * 3600,
                         self.config.auth.forget_after)

    def _prune_loop(self) -> None:
        """Prune once per ``store.prune_interval`` across every bridge on the store (gateway/store/periodic.py):
        each looks four times per interval, the one that claims the interval prunes."""
        interval = self.config.store.prune_interval
        while not self._stop.wait(interval / 4):
            try:
                with periodic.once(self.db, "prune", time.time(), interval) as mine:
                    if not mine:
                        continue
                    counts = self.prune()
                if any(counts.values()):
                    log.info("pruned %s", ", ".join(f"{n} {k}" for k, n in counts.items() if n))
            except Exception:
                log.exception("prune failed")
            finally:
                self.db.release()


def prune_all(store: Store, db: Database, clock: Clock, retention_seconds: float,
              forget_logins: float) -> dict[str, int]:
    """Everything past retention: the store's records, the rejected pushes, expired idempotency keys; and
    failed logins ``forget_logins`` seconds old whose lock has ended (gateway/throttle.py)."""
    counts = store.prune(retention_seconds)
    counts["rejected_pushes"] = rejected.prune(db, clock.now() - retention_seconds)
    counts["idempotency"] = prune_keys(db, clock.now())  # expired idempotency keys and fingerprints
    counts["login_failures"] = prune_logins(db, clock.now(), forget_logins)
    return counts


def upstream_routes(config: Config, upstream_url: str, clock: Clock) -> Upstreams:
    """The configured upstreams in failover order, each with its client and circuit breaker; ``upstream_url``
    is where ``upstream:`` (one) really is, or, in a list, each entry whose base_url is ``sandbox``."""
    one = len(config.upstreams) == 1
    return Upstreams([Route(up.name, UpstreamClient(up, upstream_url if one or up.is_sandbox else up.base_url),
                            Breaker(up.failures_to_open, up.cooldown)) for up in config.upstreams], clock,
                     config.ops.ready_upstream_timeout)


def build_services(config: Config, upstream_url: str, clock: Clock) -> Bridge:
    """Every service of a bridge for ``config``, forwarding to ``upstream_url``; starts no thread.

    Everything that may raise ConfigError (templates, inbound rules) runs before a file is opened."""
    templates = compile_templates(config)
    policy_for = url_policies(config)
    router = Router(config.inbound, policy_for)
    if not config.upstream.is_sandbox and not config.server.public_url:
        log.warning("server.public_url is not set: the upstream is told to report to this bridge's own "
                    "address, which it can only reach if that address is public; set server.public_url")
    db = open_store(config.store.path, synchronous=config.store.synchronous,  # StoreUnavailable: one sentence
                    pool_size=config.store.pool_size)
    ob = config.outbox
    outbox = Outbox(db, clock, time_scale=ob.time_scale, workers=ob.workers, retry_on_4xx=ob.retry_on_4xx,
                    connect_timeout=ob.connect_timeout, read_timeout=ob.read_timeout, policy_for=policy_for,
                    lease_seconds=ob.connect_timeout + ob.read_timeout + config.store.lease_margin,
                    max_batch=ob.max_batch, idle_wait=config.store.poll_interval)
    store = Store(db, clock)
    sender = Sender(upstream_routes(config, upstream_url, clock))
    public_url = PublicUrl(config.server)
    intake = ReportIntake(db, store, Relay(config, outbox), clock)
    dispatch = Dispatcher(config, store, sender, clock, policy_for, public_url.get)
    submit_events = SubmitEvents(db, outbox, clock)  # Kannel's DLR events 8/16 (gateway/delivery/kannel.py)
    queue = QueueWorker(config, store, sender, clock, dispatch.wake, intake.rejected, submit_events.accepted)
    idempotency = Idempotency(db, clock, config.idempotency, config.sync_lease,
                              config.store.retention_hours * 3600)
    built = Bridge(config=config, auth=Authenticator(config.callers), sender=sender, templates=templates,
                   router=router, db=db, outbox=outbox, clock=clock, store=store, intake=intake, dispatch=dispatch,
                   queue=queue, public_url=public_url, throttle=LoginThrottle(config.auth, clock, db),
                   idempotency=idempotency, submit_events=submit_events, ready=Memo(config.ops.ready_cache))
    # Kannel's sms-service reply: a forward's answer is the reply SMS (gateway/inbound/answers.py)
    outbox.on_answer(InboundForwardChannel.kind_answer, AnswerReplies(built))
    return built


def bridge() -> Bridge:
    return current_app.extensions[KEY]
