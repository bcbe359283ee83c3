"""UrlPolicy rules and redact_url. Only loopback literals, ``localhost`` and ``.invalid`` names reach
the system resolver; other names use an injected resolver (no network)."""

from __future__ import annotations

import pytest

from gateway.delivery.urlpolicy import HostUnresolvable, UrlNotAllowed, UrlPolicy
from gateway.redact import redact_url


def fixed(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError("not in the test table")
        return table[host]

    return resolve


def refused(policy: UrlPolicy, url: str) -> str:
    with pytest.raises(UrlNotAllowed) as info:
        policy.check(url)
    return info.value.reason


PUBLIC_IP = "93.184.216.34"
NAMES = fixed({
    "hooks.example.com": [PUBLIC_IP],
    "a.hooks.example.com": ["10.1.2.3"],
    "mixed.example.net": [PUBLIC_IP, "192.168.1.10"],
    "rebind.example.net": [PUBLIC_IP, "127.0.0.1"],
    "meta.example.net": ["169.254.169.254"],
    "v6.example.net": ["2606:2800:220:1:248:1893:25c8:1946"],
})


def test_default_policy_refuses_everything_with_a_named_reason() -> None:
    p = UrlPolicy(resolver=NAMES)
    assert "public address" in refused(p, "https://hooks.example.com/x")
    assert refused(p, "http://10.0.0.5/") == "host 10.0.0.5 is in a private range and this caller's allow_private is off"
    assert "allow_loopback is off" in refused(p, "http://127.0.0.1:8080/")


def test_public_allowed() -> None:
    p = UrlPolicy(allow_public=True, resolver=NAMES)
    p.check("https://hooks.example.com/dlr?x=1")
    p.check(f"http://{PUBLIC_IP}:8080/")
    p.check("http://v6.example.net/")
    assert "private range" in refused(p, "http://172.16.0.1/")


def test_loopback_forms() -> None:
    p = UrlPolicy(allow_loopback=True)
    for url in ("http://127.0.0.1/", "http://127.9.9.9:81/", "http://[::1]:8080/x", "http://localhost/",
                "http://LOCALHOST.:5000/", "http://api.localhost/", "http://[::ffff:127.0.0.1]/"):
        p.check(url)
    assert "loopback" in refused(UrlPolicy(allow_private=True), "http://[::1]/")


def test_private_ranges() -> None:
    p = UrlPolicy(allow_private=True)
    for url in ("http://10.0.0.5/", "http://192.168.1.1/", "http://172.31.255.1/", "http://[fd12::1]/",
                "http://100.64.0.1/", "http://[::ffff:10.0.0.1]/"):
        p.check(url)
    assert "loopback" in refused(p, "http://127.0.0.1/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
    ],
)
def test_never_allowed_even_with_everything_on(url, why) -> None:
    p = UrlPolicy(allow_public=True, allow_private=True, allow_loopback=True)
    reason = refused(p, url)
    assert why in reason and "never allowed" in reason


def test_never_allowed_passes_when_exact_ip_listed() -> None:
    UrlPolicy(allow_hosts=["169.254.169.254"]).check("http://169.254.169.254/")
    UrlPolicy(allow_hosts=["[fe80::1]"]).check("http://[fe80::1]:8080/")
    assert "metadata" in refused(UrlPolicy(allow_hosts=["meta.example.net"], resolver=NAMES), "http://meta.example.net/")
    UrlPolicy(allow_hosts=["meta.example.net", "169.254.169.254"], resolver=NAMES).check("http://meta.example.net/")


def test_allow_hosts_exact_wildcard_ip_and_cidr() -> None:
    p = UrlPolicy(allow_hosts=["hooks.example.com", "*.hooks.example.com", "10.9.0.0/16", "127.0.0.2"], resolver=NAMES)
    p.check("https://hooks.example.com/")
    p.check("https://a.hooks.example.com/")  # wildcard: resolves to private space, listed so allowed
    p.check("http://10.9.8.7/")
    p.check("http://127.0.0.2/")
    assert "allow_loopback" in refused(p, "http://127.0.0.1/")
    assert "private range" in refused(p, "http://10.8.0.1/")
    assert "public address" in refused(p, "http://mixed.example.net/")
    assert refused(UrlPolicy(allow_hosts=["*.example.com"], resolver=NAMES), "http://example.com/")


def test_every_resolved_address_must_pass() -> None:
    p = UrlPolicy(allow_public=True, resolver=NAMES)
    reason = refused(p, "http://mixed.example.net/")
    assert reason == ("host mixed.example.net (address 192.168.1.10) is in a private range "
                      "and this caller's allow_private is off")
    assert "loopback" in refused(p, "http://rebind.example.net/")


@pytest.mark.parametrize(
    "url", ["http://0x7f.1/", "http://0x7f000001/", "http://2130706433/", "http://127.1/",
            "http://0177.0.0.1/", "http://017700000001/", "http://127.0.0.01/", "http://1.2.3.4.5/"]
)
def test_weird_ip_forms_refused(url) -> None:
    assert "non-standard form" in refused(UrlPolicy(allow_loopback=True, allow_public=True), url)


def test_userinfo_scheme_and_malformed_refused() -> None:
    p = UrlPolicy(allow_loopback=True)
    assert "credentials" in refused(p, "http://user:pass@127.0.0.1/")
    assert "credentials" in refused(p, "http://user@localhost/")
    assert "scheme 'ftp'" in refused(p, "ftp://127.0.0.1/")
    assert "scheme 'file'" in refused(p, "file:///etc/passwd")
    assert "scheme 'https'" in refused(UrlPolicy(allow_loopback=True, allow_schemes=("http",)), "https://localhost/")
    assert "no host" in refused(p, "http:///path")
    assert "cannot be parsed" in refused(p, "http://127.0.0.1:99999/")
    assert "zone id" in refused(p, "http://[fe80::1%25eth0]/")
    assert "not a valid host name" in refused(p, "http://bad_host!.example/")


def test_unresolvable_name_uses_the_system_resolver() -> None:
    with pytest.raises(HostUnresolvable, match="nowhere.invalid could not be resolved"):
        UrlPolicy(allow_public=True).check("http://nowhere.invalid/")


def test_allows_is_boolean_check() -> None:
    p = UrlPolicy(allow_loopback=True)
    assert p.allows("http://localhost/") and not p.allows("http://10.0.0.1/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p@h.example/x", "http://***@h.example/x"),
        ("http://h/cb?user=bob&password=s3&msg=hi", "http://h/cb?user=bob&password=***&msg=hi"),
        ("http://h/?PASS=a&apikey=b&api_key=c&token=d&access_token=e&x=", "http://h/?PASS=***&apikey=***&api_key=***&token=***&access_token=***&x="),
        ("http://h/?api%5Fkey=zz", "http://h/?api%5Fkey=***"),
        ("http://h/path#frag", "http://h/path#frag"),
        ("http://[::1", "<unparseable URL>"),
    ],
)
def test_redact_url(url, expected) -> None:
    assert redact_url(url) == expected
