"""Fault injection for tests (``POST /sandbox/faults``): rules that make the sandbox fail like a real
upstream can — any status (``Retry-After`` on 429), a delay beyond the caller's timeout, or a connection
dropped before the request is handled, before the answer, or in the middle of it — by count or by
probability, for every endpoint or one path. See docs/sandbox.md.

Drops need the server's socket: :class:`Dropper` (WSGI middleware) raises waitress's
``ClientDisconnected``, which waitress answers by closing the connection without writing anything more
(smsbridge always runs the sandbox under waitress, gateway/servers.py).
"""

from __future__ import annotations

import difflib
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from waitress.channel import ClientDisconnected

from ..model import ApiError

DROP_KEY = "sandbox.drop"  # the WSGI environ key a fault sets for Dropper
DROPS = ("request", "answer", "middle")
KEYS = ("status", "count", "probability", "delay_ms", "retry_after", "drop", "path")


@dataclass
class FaultRule:
    """One rule. With an effect (``status`` or ``drop``) it fires on the next ``count`` matching requests
    (default 1; unlimited when only ``probability`` is given), each with ``probability``; without one,
    ``delay_ms`` slows every matching request (the next ``count`` when given)."""

    status: int | None = None
    count: int | None = None
    probability: float | None = None
    delay_ms: int = 0
    retry_after: int | None = None
    drop: str | None = None
    path: str | None = None

    @property
    def has_effect(self) -> bool:
        return self.status is not None or self.drop is not None

    def matches(self, path: str) -> bool:
        if self.path is None:
            return True
        want, got = self.path.rstrip("/"), path.rstrip("/")
        return got == want or got.startswith(want + "/") or got.startswith(want + ".")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS if getattr(self, k) not in (None, 0) or k == "count"}


@dataclass
class Fault:
    """What one request suffers: a delay, then a status answer or a drop (or neither)."""

    delay_ms: int = 0
    status: int | None = None
    retry_after: int | None = None
    drop: str | None = None


def _int(errs: dict[str, list[str]], field: str, v: Any, lo: int, hi: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        errs.setdefault(field, []).append(f"must be a whole number from {lo} to {hi}, got {v!r}")
        return None
    return v


def parse_rule(body: Any, where: str = "") -> FaultRule:
    """A rule from its JSON object; unknown keys and bad values raise ApiError(400) naming them."""
    if not isinstance(body, dict):
        raise ApiError.bad_request(where or "body", "must be a JSON object")
    errs: dict[str, list[str]] = {}
    for key in body:
        if key not in KEYS:
            near = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.5) or \
                [k for k in KEYS if k.lower() == str(key).lower()]
            hint = f"; did you mean {near[0]!r}?" if near else ""
            errs.setdefault(where + str(key), []).append(f"is not a fault key (known: {', '.join(KEYS)}){hint}")
    rule = FaultRule(
        status=_int(errs, where + "status", body.get("status"), 100, 599),
        count=_int(errs, where + "count", body.get("count"), 0, 10**9),
        delay_ms=_int(errs, where + "delay_ms", body.get("delay_ms"), 0, 600_000) or 0,
        retry_after=_int(errs, where + "retry_after", body.get("retry_after"), 0, 86_400),
    )
    p = body.get("probability")
    if p is not None:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            errs.setdefault(where + "probability", []).append(f"must be a number from 0 to 1, got {p!r}")
        else:
            rule.probability = float(p)
    drop = body.get("drop")
    if drop is not None and drop not in DROPS:
        errs.setdefault(where + "drop", []).append(f"must be one of {', '.join(DROPS)}, got {drop!r}")
    else:
        rule.drop = drop
    path = body.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        errs.setdefault(where + "path", []).append(f"must be a path starting with /, e.g. /sms/2/text/advanced, got {path!r}")
    else:
        rule.path = path
    if rule.status is not None and rule.drop is not None:
        errs.setdefault(where + "drop", []).append("cannot be combined with status: a dropped connection has none")
    if errs:
        raise ApiError.invalid(errs)
    if rule.has_effect and rule.count is None and rule.probability is None:
        rule.count = 1
    return rule


def parse_faults(body: Any) -> list[FaultRule]:
    """``{}`` (clear), one rule object, or ``{"rules": [rule, ...]}`` (first matching rule that fires wins)."""
    if isinstance(body, dict) and "rules" in body:
        if set(body) != {"rules"} or not isinstance(body["rules"], list):
            raise ApiError.bad_request("rules", "must be the only key, an array of fault rules")
        return [parse_rule(r, f"rules[{i}].") for i, r in enumerate(body["rules"])]
    if isinstance(body, dict) and not body:
        return []
    return [parse_rule(body)]


class Faults:
    """The rules in force; ``take`` decides (thread-safely) what one request suffers."""

    def __init__(self, rules: list[FaultRule] | None = None, rng: Callable[[], float] = random.random) -> None:
        self.rules = rules or []
        self.rng = rng
        self.lock = threading.Lock()

    def set(self, rules: list[FaultRule]) -> None:
        with self.lock:
            self.rules = rules

    def show(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.to_json() for r in self.rules]

    def take(self, path: str) -> Fault | None:
        with self.lock:
            delay = 0
            for r in self.rules:
                if not r.matches(path):
                    continue
                if not r.has_effect:  # a delay only: count 0 or absent means every request
                    if r.probability is not None and self.rng() >= r.probability:
                        continue
                    delay = max(delay, r.delay_ms)
                    if r.count:
                        r.count -= 1
                        if r.count == 0:
                            r.delay_ms, r.count = 0, None  # spent
                    continue
                if r.count == 0 or r.probability is not None and self.rng() >= r.probability:
                    continue
                if r.count is not None:
                    r.count -= 1
                return Fault(max(delay, r.delay_ms), r.status, r.retry_after, r.drop)
            return Fault(delay) if delay else None


class Dropper:
    """WSGI middleware closing the connection where a fault (``environ[DROP_KEY]``) says: ``request`` and
    ``answer`` write nothing; ``middle`` writes the status line, headers and half the body."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        held: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            held[:] = [status, headers, exc_info]
            return lambda data: None

        body = self.app(environ, hold)
        drop = environ.get(DROP_KEY)
        if not drop:
            start_response(*held)
            return body
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close:
                close()
        if drop != "middle" or len(data) < 2:
            raise ClientDisconnected(f"injected fault: connection dropped ({drop})")
        start_response(*held)
        return _half(data)


def _half(data: bytes) -> Iterator[bytes]:
    yield data[: len(data) // 2]
    raise ClientDisconnected("injected fault: connection dropped in the middle of the answer")
