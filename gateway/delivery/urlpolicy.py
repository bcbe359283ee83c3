"""Which URLs the bridge may call on a caller's behalf (SSRF guard), and URL redaction for logs.

A :class:`UrlPolicy` is per caller. ``check(url)`` raises :class:`UrlNotAllowed` with a sentence that
names the host and the rule. Names are resolved and *every* address must pass, so a name cannot
smuggle a private address among public ones. The check is repeated on the connection actually made
(:meth:`UrlPolicy.check_peer`, called by gateway/delivery/guard.py once the socket is connected), so a
name that changes its answer between the check and the connection (DNS rebinding) gains nothing.

Whatever a caller's allow-list says, the process's own servers (the bridge's ports, an embedded or
upstream sandbox with its ``/sandbox/*`` control endpoints) are never a caller's target:
:func:`register_inside` records them and :func:`inside_reason` refuses a local address on one of them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.redact import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]

#: Query parameter names whose values never reach a log line or a stored error.

#: Cloud instance metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")


_INSIDE: dict[int, int] = {}  # port -> how many of this process's servers (or its sandbox upstream) use it
_INSIDE_LOCK = threading.Lock()


def register_inside(port: int) -> None:
    """Mark ``port`` on this host as the bridge's own (or its sandbox's): never a caller's target."""
    with _INSIDE_LOCK:
        _INSIDE[port] = _INSIDE.get(port, 0) + 1


def unregister_inside(port: int) -> None:
    with _INSIDE_LOCK:
        if _INSIDE.get(port, 0) <= 1:
            _INSIDE.pop(port, None)
        else:
            _INSIDE[port] -= 1


def _is_local(addr: IPAddress) -> bool:
    """Whether ``addr`` is one of this host's own addresses (loopback, unspecified, or an interface's)."""
    if addr.is_loopback or addr.is_unspecified:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((str(addr), 0))  # only an address of this host can be bound
        return True
    except OSError:
        return False


def inside_reason(addr: IPAddress, port: int | None) -> str | None:
    """Why ``addr:port`` is one of this process's own servers (refused whatever the allow-list), or None."""
    if port is None or port not in _INSIDE:
        return None
    if _is_local(_effective(addr)):
        return f"is this bridge's own server (or its sandbox) on port {port}, which callers can never reach"
    return None


class UrlNotAllowed(ValueError):
    """The URL may not be called; ``reason`` is a human sentence naming the host and the rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HostUnresolvable(UrlNotAllowed):
    """The host name did not resolve (possibly a transient DNS failure, unlike the other refusals)."""


def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``); raises ``OSError`` if none."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _effective(addr: IPAddress) -> IPAddress:
    """IPv4-mapped / IPv4-compatible IPv6 addresses are judged as the IPv4 address they carry."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
    return addr


@dataclass
class UrlPolicy:
    """Rules for one caller. ``allow_hosts`` entries: ``name``, ``*.example.com``, an IP or a CIDR.

    A host listed in ``allow_hosts`` is allowed whatever class its addresses are in, except the
    never-allowed ones (unspecified, link-local, multicast, reserved, cloud metadata), which pass
    only when that exact address (or a network containing it) is listed.
    """

    allow_hosts: Sequence[str] = field(default_factory=list)
    allow_public: bool = False
    allow_loopback: bool = False
    allow_private: bool = False
    allow_schemes: Sequence[str] = ("http", "https")
    resolver: Resolver = system_resolver

    def __post_init__(self) -> None:
        self._names: set[str] = set()
        self._suffixes: list[str] = []
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in self.allow_hosts:
            e = entry.strip().lower().rstrip(".").strip("[]")
            if not e:
                continue
            if e.startswith("*."):
                self._suffixes.append(e[1:])  # ".example.com"
                continue
            try:
                self._nets.append(ipaddress.ip_network(e, strict=False))
            except ValueError:
                self._names.add(e)
        self._schemes = {s.lower() for s in self.allow_schemes}

    # -- public API ----------------------------------------------------------------------------
    def check(self, url: str) -> None:
        """Raise :class:`UrlNotAllowed` unless this policy lets the bridge call ``url``."""
        host, literal, port = self._host_of(url)
        if literal is not None:
            self._check_addresses(host, [literal], listed=False, port=port)
            return
        listed = host in self._names or any(host.endswith(s) for s in self._suffixes)
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback, no DNS
            addrs: list[IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        else:
            try:
                resolved = self.resolver(host)
            except (OSError, UnicodeError) as exc:
                raise HostUnresolvable(f"host {host} could not be resolved ({_gai_reason(exc)})") from None
            addrs = [a for a in (_parse_ip(r) for r in resolved) if a is not None]
            if not addrs:
                raise HostUnresolvable(f"host {host} could not be resolved (no addresses)")
        self._check_addresses(host, addrs, listed=listed, port=port)

    def check_peer(self, host: str, address: str, port: int) -> None:
        """Raise :class:`UrlNotAllowed` unless a connection to ``host`` that reached ``address:port``
        may be used: the same rules as :meth:`check`, on the address actually connected to."""
        addr = _parse_ip(address.split("%", 1)[0])
        if addr is None:
            raise UrlNotAllowed(f"host {host} connected to an address that cannot be checked ({address})")
        host = host.strip("[]").lower().rstrip(".")
        listed = _parse_ip(host) is None and (host in self._names or any(host.endswith(s) for s in self._suffixes))
        self._check_addresses(host, [addr], listed=listed, port=port)

    def allows(self, url: str) -> bool:
        """``check`` as a boolean."""
        try:
            self.check(url)
        except UrlNotAllowed:
            return False
        return True

    # -- rules ---------------------------------------------------------------------------------
    def _host_of(self, url: str) -> tuple[str, IPAddress | None, int]:
        try:
            parts = urlsplit(url.strip())
            port = parts.port  # raises ValueError for a bad port
        except ValueError as exc:
            raise UrlNotAllowed(f"the URL {redact_url(url)} cannot be parsed ({exc})") from None
        scheme = parts.scheme.lower()
        port = port if port is not None else (443 if scheme == "https" else 80)
        if scheme not in self._schemes:
            allowed = ", ".join(sorted(self._schemes)) or "none"
            raise UrlNotAllowed(f"scheme {scheme or '(none)'!r} is not allowed (allowed: {allowed})")
        if "@" in parts.netloc:
            raise UrlNotAllowed(
                "URLs with credentials in them (user:password@host) are refused; "
                "put credentials in a header or the query instead"
            )
        raw = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
        if raw.startswith("["):  # IPv6 literal
            inner = raw[1:].split("]", 1)[0]
            if "%" in inner:
                raise UrlNotAllowed(f"host [{inner}] has an IPv6 zone id, which is refused")
            addr = _parse_ip(inner)
            if not isinstance(addr, ipaddress.IPv6Address):
                raise UrlNotAllowed(f"host [{inner}] is not a valid IPv6 address")
            return str(addr), addr, port
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlNotAllowed(f"the URL {redact_url(url)} has no host")
        addr = _parse_ip(host)
        if isinstance(addr, ipaddress.IPv4Address):
            return host, addr, port
        labels = host.split(".")
        if _NUMERIC_LABEL.match(labels[-1]) or any(lb.startswith("0x") and _NUMERIC_LABEL.match(lb) for lb in labels):
            raise UrlNotAllowed(
                f"host {host} looks like an IP address in a non-standard form; write it as a dotted quad"
            )
        if not _HOSTNAME.match(host):
            raise UrlNotAllowed(f"host {host!r} is not a valid host name")
        return host, None, port

    def _listed_ip(self, addr: IPAddress) -> bool:
        return any(addr.version == n.version and addr in n for n in self._nets)

    def _check_addresses(self, host: str, addrs: Iterable[IPAddress], listed: bool, port: int | None = None) -> None:
        for raw in addrs:
            addr = _effective(raw)
            shown = str(raw) if str(raw) == host else f"{host} (address {raw})"
            inside = inside_reason(raw, port)
            if inside:
                raise UrlNotAllowed(f"host {shown} {inside}")
            if self._listed_ip(raw) or self._listed_ip(addr):
                continue
            never = _never_reason(addr)
            if never:
                raise UrlNotAllowed(
                    f"host {shown} {never}, which is never allowed unless that exact address is in allow_hosts"
                )
            if listed:
                continue
            if addr.is_loopback:
                if not self.allow_loopback:
                    raise UrlNotAllowed(f"host {shown} is a loopback address and this caller's allow_loopback is off")
            elif not addr.is_global:
                if not self.allow_private:
                    raise UrlNotAllowed(
                        f"host {shown} is in a private range and this caller's allow_private is off"
                    )
            elif not self.allow_public:
                raise UrlNotAllowed(
                    f"host {shown} is a public address and this caller may only call hosts in its allow_hosts"
                )


def _never_reason(addr: IPAddress) -> str | None:
    if addr in METADATA_ADDRESSES:
        return "is the cloud metadata address"
    if addr.is_unspecified:
        return "is the unspecified address"
    if addr.is_link_local:
        return "is link-local"
    if addr.is_multicast:
        return "is a multicast address"
    if isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    if addr.is_reserved and not addr.is_loopback:  # ::1 sits inside the reserved ::/8
        return "is in a reserved range"
    return None


def _gai_reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def policy_table(policies: dict[str | None, UrlPolicy], default: UrlPolicy) -> Callable[[str | None], UrlPolicy]:
    """A ``policy_for(caller)`` function over a dict, falling back to ``default``."""

    def policy_for(caller: str | None) -> UrlPolicy:
        return policies.get(caller, default)

    return policy_for
