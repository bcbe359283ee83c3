"""smsbridge: legacy HTTP GET callers to the Infobip SMS API.

``create_app(config, upstream_url)`` is the app factory; ``upstream_url`` is where the upstream really
is (the embedded sandbox's address when ``upstream.base_url`` is ``sandbox``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from .auth import Authenticator
from .clock import Clock, SystemClock
from .config import Config, ConfigError
from .delivery.outbox import Outbox
from .delivery.urlpolicy import UrlPolicy, policy_table
from .entrances.errors import install_error_handlers
from .inbound.routing import Router
from .logs import install_access_log
from .render import compile_fields, make_environment
from .reports.intake import ReportIntake
from .reports.relay import Relay
from .send.dispatch import Dispatcher, QueueWorker
from .send.sender import Sender
from .send.upstream import UpstreamClient
from .services import Bridge
from .store.engine import Database
from .store.records import Store

log = logging.getLogger("smsbridge")


def compile_templates(config: Config) -> dict:
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


def url_policies(config: Config):
    """``policy_for(caller)``: each caller's allow-list for URLs the bridge calls on its behalf."""
    policies = {
        name: UrlPolicy(allow_hosts=c.allow.hosts, allow_public=c.allow.public, allow_loopback=c.allow.loopback,
                        allow_private=c.allow.private)
        for name, c in config.callers.items()
    }
    return policy_table(policies, UrlPolicy())


def wire_store(ctx: Bridge) -> None:
    """The durable record, store-and-forward dispatch and the report relay (gateway/store.py,
    dispatch.py, intake.py, relay.py); the public URL defaults to http://host:port (see Bridge.bind)."""
    config = ctx.config
    ctx.public_url = config.server.public_url or f"http://{config.server.host}:{config.server.port}"
    if not config.upstream.is_sandbox and not config.server.public_url:
        log.warning("server.public_url is not set: the upstream is told to report to this bridge's own "
                    "address, which it can only reach if that address is public; set server.public_url")
    ctx.store = Store(ctx.db, ctx.clock)
    ctx.intake = ReportIntake(ctx.db, ctx.store, Relay(config, ctx.outbox), ctx.clock)
    ctx.dispatch = Dispatcher(config, ctx.store, ctx.sender, ctx.clock, url_policies(config), lambda: ctx.public_url)
    ctx.queue = QueueWorker(config, ctx.store, ctx.sender, ctx.clock, ctx.dispatch.wake, ctx.intake.rejected)


def create_app(config: Config, upstream_url: str | None = None, clock: Clock | None = None) -> Flask:
    """The bridge's Flask app for ``config``; ``upstream_url`` overrides ``upstream.base_url``.

    Background workers are not started here: call ``app.extensions["smsbridge"].start()``.
    """
    app = Flask(__name__, template_folder="../templates", static_folder=None)  # the UI serves its own
    url = upstream_url or config.upstream.base_url
    if url == "sandbox":
        raise ConfigError([("upstream.base_url", "is 'sandbox': start the sandbox and pass its URL")])
    templates = compile_templates(config)
    policy_for = url_policies(config)
    inbound_router = Router(config.inbound, policy_for)  # before opening anything: it may raise ConfigError
    clock = clock or SystemClock()
    Path(config.store.path).parent.mkdir(parents=True, exist_ok=True)
    db = Database(config.store.path, synchronous=config.store.synchronous)
    ob = config.outbox
    outbox = Outbox(db, clock, time_scale=ob.time_scale, workers=ob.workers, retry_on_4xx=ob.retry_on_4xx,
                    connect_timeout=ob.connect_timeout, read_timeout=ob.read_timeout, policy_for=policy_for,
                    max_batch=ob.max_batch)
    ctx = app.extensions["smsbridge"] = Bridge(
        config=config,
        auth=Authenticator(config.callers),
        sender=Sender(UpstreamClient(config.upstream, url)),
        templates=templates,
        db=db,
        outbox=outbox,
        clock=clock,
    )
    wire_store(ctx)
    from .entrances import (
        advanced,
        bulks,
        conversion,
        inbound,
        messages,
        preview,
        pulls_v3,
        query,
        reports,
        templates,
    )

    app.extensions[inbound.ROUTER] = inbound_router
    for bp in (query.bp, templates.bp, advanced.bp, preview.bp, messages.bp, reports.bp, inbound.bp, conversion.bp,
               pulls_v3.bp, bulks.bp):
        app.register_blueprint(bp)
    from .entrances.ops import install_ops
    from .entrances.ui import install_ui

    install_ops(app)  # /healthz, /readyz, /metrics, /openapi.json, X-Request-Id
    install_ui(app, config)  # /ui/ when ui.enabled
    install_error_handlers(app)
    if config.logging.access_log:
        install_access_log(app, config.logging.masking)
    for w in config.warnings:
        log.warning(w)
    return app
