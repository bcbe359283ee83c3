"""smsbridge: legacy HTTP GET callers to the Infobip SMS API.

``create_app(config, upstream_url)`` is the app factory; ``upstream_url`` is where the upstream really
is (the embedded sandbox's address when ``upstream.base_url`` is ``sandbox``).
"""

from __future__ import annotations

import logging

from flask import Flask

from .clock import Clock, SystemClock
from .config import Config, ConfigError
from .entrances.errors import install_error_handlers
from .logs import install_access_log
from .proxies import TrustedProxies
from .services import KEY, build_services, compile_templates, url_policies

__all__ = ["compile_templates", "create_app", "url_policies"]  # app.py imports the two helpers from here

log = logging.getLogger("smsbridge")


def create_app(config: Config, upstream_url: str | None = None, clock: Clock | None = None) -> Flask:
    """The bridge's Flask app for ``config``; ``upstream_url`` overrides ``upstream.base_url``.

    Background workers are not started here: call ``app.extensions["smsbridge"].start()``.
    """
    url = upstream_url or config.upstream.base_url
    if url == "sandbox" or (upstream_url is None and any(u.is_sandbox for u in config.upstreams)):
        raise ConfigError([("upstream.base_url", "is 'sandbox': start the sandbox and pass its URL")])
    app = Flask(__name__, template_folder="../templates", static_folder=None)  # the UI serves its own
    app.extensions[KEY] = build_services(config, url, clock or SystemClock())
    from .entrances import (
        advanced,
        bulks,
        conversion,
        front,
        inbound,
        jasmin,
        kannel,
        messages,
        preview,
        pulls_v3,
        query,
        reports,
        smseagle,
        templates,
    )
    from .entrances.ops import install_ops
    from .entrances.ui import install_ui

    for bp in (query.bp, templates.bp, advanced.bp, preview.bp, messages.bp, reports.bp, inbound.bp, conversion.bp,
               pulls_v3.bp, bulks.bp, jasmin.bp, smseagle.bp, kannel.bp, front.bp):
        app.register_blueprint(bp)
    install_ops(app)  # /healthz, /readyz, /metrics, /openapi.json, X-Request-Id
    install_ui(app, config)  # /ui/ when ui.enabled
    install_error_handlers(app)
    db = app.extensions[KEY].db
    if db.pooled:  # PostgreSQL: the request thread's connection goes back to the pool when the request ends
        app.teardown_request(lambda _exc: db.release())
    if config.logging.access_log:
        install_access_log(app, config.logging.masking)
    app.wsgi_app = TrustedProxies(app.wsgi_app, config.server.trusted_proxies)  # type: ignore[method-assign]
    for w in config.warnings:
        log.warning(w)
    return app
