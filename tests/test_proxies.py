"""server.trusted_proxies: X-Forwarded-* believed from listed peers (addresses, CIDRs) only."""

from __future__ import annotations

import pytest
from flask import request

from gateway.proxies import TrustedProxies

FORWARDED = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com",
             "X-Forwarded-Prefix": "/smsbridge"}


@pytest.mark.parametrize("peer, trusted", [("10.1.2.3", True), ("::ffff:10.1.2.3", True), ("192.168.0.1", False),
                                           ("fd00::7", True), ("fd01::7", False), ("", False)])
def test_only_listed_peers_are_trusted(peer, trusted):
    assert TrustedProxies(None, ["10.0.0.0/8", "fd00::/16"]).trusts(peer) is trusted


def test_nothing_is_trusted_by_default():
    assert not TrustedProxies(None, []).trusts("127.0.0.1")


@pytest.mark.parametrize("trusted, prefix, client", [(["127.0.0.0/8"], "/smsbridge", "203.0.113.5"),
                                                     ([], "", "127.0.0.1"), (["10.0.0.0/8"], "", "127.0.0.1")])
def test_the_bridge_builds_urls_and_sees_clients_through_trusted_proxies_only(make_bridge, sandbox, trusted, prefix,
                                                                              client):
    bridge = make_bridge(lambda raw: raw["server"].update(trusted_proxies=trusted))
    seen = {}

    @bridge.app.before_request
    def _peek():
        seen["addr"], seen["root"] = request.remote_addr, request.url_root

    c = bridge.app.test_client()
    page = c.get("/ui/login", headers=FORWARDED, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert f'action="{prefix}/ui/login"' in page.get_data(as_text=True)
    assert seen["addr"] == client
    assert seen["root"] == ("https://sms.example.com/smsbridge/" if prefix else "http://localhost/")
