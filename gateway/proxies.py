"""``X-Forwarded-*`` believed only from configured reverse proxies (``server.trusted_proxies``).

A request whose TCP peer is in the list gets werkzeug's ProxyFix applied (one hop): the client
address (logs, login throttling), scheme, host, port and path prefix (``X-Forwarded-Prefix``, which
becomes ``SCRIPT_NAME``, so ``url_for`` links carry it) are the proxy's. From any other peer these
headers are removed before the app sees them: a client cannot choose its own address. Default: no
proxy is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
             "HTTP_X_FORWARDED_PREFIX", "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED")


class TrustedProxies:
    """WSGI middleware: ProxyFix for trusted peers, forwarded headers stripped for the others."""

    def __init__(self, app, trusted: Iterable[str]):
        self.app = app
        self.nets = [ipaddress.ip_network(str(t), strict=False) for t in trusted]
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    def trusts(self, peer: str | None) -> bool:
        if not self.nets or not peer:
            return False
        try:
            addr = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.nets)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for key in FORWARDED:
            environ.pop(key, None)
        return self.app(environ, start_response)
