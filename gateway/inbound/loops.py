"""No reply loops: an auto-reply never ping-pongs with another automaton (an auto-responder, a bank's
"replies to this number are not read", a second bridge).

Two guards, checked when an inbound message is stored (in its transaction) and again when its reply is
rendered:

- **The bridge's own numbers** are never answered: ``inbound.own_numbers``, every receiving number of a rule
  (``match.to``), numeric senders of the callers' ``senders``, of the templates' ``from`` and of the rules'
  reply ``from`` (constants only), the number the message was sent to, and the reply's own rendered sender.
- **A reply limit per sender**: at most ``count`` auto-replies to one number in ``window`` seconds, whatever
  rule sends them (``inbound.reply_limit``, or a rule's ``reply.limit`` for replies of that rule's). The count
  is read from the store (``inbound_replies``), so it holds across restarts and across the processes of one
  database; two pushes racing on PostgreSQL may each send one more than the limit.

A suppressed reply is kept as an ``inbound_replies`` row in state ``suppressed`` with the reason (the message
itself is stored, routed, forwarded and kept for pull as usual) and counted in
``smsbridge_inbound_replies_suppressed_total{reason="limit"|"own_number"}``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..numbers import search_form
from ..store import inbound as store
from ..store.engine import Connection

LIMIT, OWN = "limit", "own_number"
REASONS = (LIMIT, OWN)


@dataclass(frozen=True)
class ReplyLimit:
    """At most ``count`` replies to one number per ``window`` seconds; ``count`` 0: no limit."""

    count: int = 5
    window: float = 3600.0

    def describe(self) -> str:
        return f"{self.count} per {self.window:g} s"


def _numeric(value: str | None) -> str | None:
    """A constant numeric sender as stored digits (``+41 79…`` → ``4179…``); None for names and templates."""
    if not value or any(c in value for c in "{%$"):
        return None
    digits = search_form(value)
    return digits if digits.isdigit() else None


def own_numbers(explicit: Iterable[str], receiving: Iterable[str], senders: Iterable[str | None]) -> frozenset[str]:
    """The bridge's own numbers: the ``explicit`` list, the rules' receiving numbers, and the numeric constants
    among the ``senders`` it sends from."""
    found = {search_form(n) for n in explicit} | {search_form(n) for n in receiving}
    found |= {d for d in map(_numeric, senders) if d}
    return frozenset(n for n in found if n)


def config_numbers(settings: Any, callers: Mapping[str, Any], templates: Mapping[str, Any]) -> tuple[str, ...]:
    """:func:`own_numbers` of a whole configuration (an InboundSettings, config.Caller and TemplateSpec maps)."""
    rules = settings.all_rules
    senders = [s for c in callers.values() for s in c.senders] + [t.fields.get("from") for t in templates.values()]
    senders += [r.reply.sender for r in rules if r.reply]
    return tuple(sorted(own_numbers(settings.own_numbers, [t for r in rules for t in r.match.to], senders)))


class ReplyGuard:
    """Decides whether an auto-reply may go out; counts the ones it suppresses (this process). ``own``: the
    bridge's own numbers (:func:`own_numbers`); ``default``: ``inbound.reply_limit``; ``per_rule``: the rules'
    ``reply.limit``."""

    def __init__(self, own: Iterable[str], default: ReplyLimit, per_rule: Mapping[str, ReplyLimit]) -> None:
        self.own, self.default, self.per_rule = frozenset(own), default, dict(per_rule)
        self._lock = threading.Lock()
        self.suppressed: dict[str, int] = dict.fromkeys(REASONS, 0)

    def own_number(self, number: str, receiver: str = "") -> bool:
        n = search_form(number)
        return n in self.own or (bool(receiver) and n == search_form(receiver))

    def refusal(self, conn: Connection, rule: str, sender: str, receiver: str, now: float) -> tuple[str, str] | None:
        """(reason, sentence) when a reply of ``rule`` to ``sender`` must not go out (counted), else None."""
        found = None
        if self.own_number(sender, receiver):
            found = OWN, f"{sender} is one of the bridge's own numbers: no reply (a loop with itself)"
        else:
            limit = self.per_rule.get(rule, self.default)
            if limit.count and store.replies_since(conn, sender, now - limit.window) >= limit.count:
                found = LIMIT, f"reply limit reached: {limit.describe()} to {sender} (a loop with another automaton?)"
        if found:
            self.count(found[0])
        return found

    def count(self, reason: str) -> None:
        with self._lock:
            self.suppressed[reason] = self.suppressed.get(reason, 0) + 1


def parse_limit(value: Any, path: str, problems: list[tuple[str, str]], base: ReplyLimit) -> ReplyLimit:
    """``{count: N, window: seconds}``; ``count: 0`` turns the limit off."""
    if value is None:
        return base
    if not isinstance(value, dict):
        problems.append((path, "must be a mapping: {count: 5, window: 3600}"))
        return base
    for key in value:
        if key not in ("count", "window"):
            problems.append((f"{path}.{key}", "unknown key; known: count, window"))
    count, window = value.get("count", base.count), value.get("window", base.window)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        problems.append((f"{path}.count", f"must be a whole number, 0 or more (0: no limit), got {count!r}"))
        count = base.count
    if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
        problems.append((f"{path}.window", f"must be a number of seconds above 0, got {window!r}"))
        window = base.window
    return ReplyLimit(count, float(window))
