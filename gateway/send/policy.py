"""Caller policy: the senders a caller (or template) may use and the destinations it may reach.

Entries (checked when the configuration loads, every problem named by its key path):

- ``senders``: exact sender names (``InfoSMS``, ``41793026834``) or shell globs (``Alarm*``, ``Plant-?``,
  ``4179302683[0-9]``; :func:`fnmatch.fnmatchcase`: case-sensitive, ``*`` ``?`` ``[…]``). A numeric sender
  matches with or without ``+``/``00``.
- ``destinations``: ISO country codes (``CH``: the number belongs to that country, also where a calling code is
  shared, as +1 is), country or number prefixes (``+41``, ``0041``, ``41``, ``+41 79``) or shell globs over the
  international digits (``4179*``, ``41[78]?*``).

An empty or missing list allows everything. A send through a template must satisfy the caller's rules and the
template's. A forbidden sender refuses the whole request with 403 naming the rule, before anything is recorded
or sent. A forbidden destination among allowed ones is answered ``REJECTED_DESTINATION`` at its place and the
rest is sent, as an invalid one is (gateway/send/rejects.py); when every destination is forbidden, 403. A send
without a sender from a caller whose ``senders`` are set gets the first exact name of the list (the caller's
default sender): the upstream account's default could be one the caller may not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .. import numbers
from ..errors import PolicyRefused
from ..model import Submission
from ..validate import Limits, check_sender, control_reason

GLOB = frozenset("*?[")
Problems = list[tuple[str, str]]


def _is_glob(entry: str) -> bool:
    return any(c in GLOB for c in entry)


def _sender_key(sender: str) -> str:
    """A numeric sender (or a digit glob) without ``+``/``00``, how Infobip reads it; an alphanumeric one as
    given."""
    v = sender.strip()
    plain = v[1:] if v.startswith("+") else v[2:] if v.startswith("00") else v
    numeric = any(c.isdigit() for c in plain) and all(c.isdigit() or c in "*?[]!-" for c in plain)
    return plain if numeric else v


@dataclass(frozen=True)
class Rule:
    """One owner's rules: ``owner`` names it in refusals (``caller demo``, ``template alarm``)."""

    owner: str
    senders: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()

    def sender_allowed(self, sender: str) -> bool:
        if not self.senders:
            return True
        key = _sender_key(sender)
        return any(fnmatchcase(key, _sender_key(e)) for e in self.senders)

    def destination_allowed(self, digits: str) -> bool:
        if not self.destinations:
            return True
        return any(_destination_matches(e, digits) for e in self.destinations)

    @property
    def default_sender(self) -> str | None:
        return next((e for e in self.senders if not _is_glob(e)), None)


def _destination_matches(entry: str, digits: str) -> bool:
    region = numbers.region(entry) if entry.strip().isalpha() else None
    if region:
        return numbers.in_region(digits, region)
    if _is_glob(entry):
        return fnmatchcase(digits, _pattern_digits(entry))
    return digits.startswith(numbers.search_form(entry))


def _pattern_digits(entry: str) -> str:
    v = entry.strip()
    v = v[1:] if v.startswith("+") else v[2:] if v.startswith("00") else v
    return v.replace(" ", "")


def _listing(entries: tuple[str, ...]) -> str:
    return ", ".join(entries)


@dataclass(frozen=True)
class SendPolicy:
    """What constrains one send: the rules (the caller's, and the template's when one is used) and the country
    national numbers are read with."""

    rules: tuple[Rule, ...] = ()
    default_country: str | None = None

    @classmethod
    def of(cls, caller: Any, spec: Any = None) -> SendPolicy:
        """The policy of ``caller`` (a config.Caller), through template ``spec`` (a config.TemplateSpec)."""
        rules = [Rule(f"caller {caller.name}", caller.senders, caller.destinations)]
        country = caller.default_country or None
        if spec is not None:
            rules.append(Rule(f"template {spec.name}", spec.senders, spec.destinations))
            country = spec.default_country or country
        return cls(tuple(r for r in rules if r.senders or r.destinations), country)

    def destination_reason(self, digits: str) -> str | None:
        """Why international ``digits`` may not be reached, naming the rule; None when allowed."""
        for r in self.rules:
            if not r.destination_allowed(digits):
                return f"destination {digits!r} is not among {r.owner}'s destinations ({_listing(r.destinations)})"
        return None

    def check_senders(self, sub: Submission) -> None:
        """Every message's sender allowed by every rule (Forbidden naming the first that is not); a message
        without a sender gets the first rule's default sender."""
        for m in sub.messages:
            if m.sender is None:
                m.sender = next((r.default_sender for r in self.rules if r.default_sender), None)
            for r in self.rules:
                if not r.senders:
                    continue
                if m.sender is None:
                    raise PolicyRefused(f"a sender is required: {r.owner} may send only from {_listing(r.senders)}")
                if not r.sender_allowed(m.sender):
                    raise PolicyRefused(f"sender {m.sender!r} is not among {r.owner}'s senders ({_listing(r.senders)})")


# -- the configuration ---------------------------------------------------------------------------------------
def _strings(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        problems.append((path, "must be a list of strings"))
        return ()
    return tuple(str(v).strip() for v in value)


def parse_senders(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    """``senders``: exact names valid as senders, or globs."""
    entries = _strings(value, path, problems)
    for i, e in enumerate(entries):
        reason = control_reason(e) or ("is empty" if not e else None)
        if reason is None and not _is_glob(e):
            reason = check_sender(e, Limits())
        elif reason is None and "[" in e and "]" not in e.split("[", 1)[1]:
            reason = f"{e!r} opens a [ set it never closes"
        if reason:
            problems.append((f"{path}[{i}]", f"{reason} (an exact sender, or a shell glob: * ? [..])"))
    return entries


def parse_destinations(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    """``destinations``: ISO country codes, digit prefixes (``+41``, ``41``, ``0041``) or digit globs."""
    entries = _strings(value, path, problems)
    out = []
    for i, e in enumerate(entries):
        if e.isalpha():
            if numbers.region(e) is None:
                problems.append((f"{path}[{i}]", f"{e!r} is not an ISO country code libphonenumber knows (CH, LI, DE…)"))
            out.append(e.upper())
            continue
        digits = _pattern_digits(e).replace("-", "") if not _is_glob(e) else _pattern_digits(e)
        plain = "".join(c for c in digits if c.isdigit())
        if _is_glob(e):
            ok = all(c.isdigit() or c in "*?[]!-" for c in digits)
        else:
            ok = digits.isdigit() and digits.isascii()
        if not ok or not plain:
            problems.append((f"{path}[{i}]", f"{e!r} is not a country code (CH), a number prefix (+41, 41, 0041) "
                             "or a digit glob (4179*)"))
        elif not _is_glob(e) and not numbers.is_country_code_prefix(digits):
            problems.append((f"{path}[{i}]", f"{e!r} does not begin with a country calling code (41, 44, 1…): a "
                             "national prefix (079) cannot match, destinations are international"))
        out.append(e)
    return tuple(out)


def parse_country(value: Any, path: str, problems: Problems) -> str:
    """``default_country``: an ISO code (``CH``), or empty."""
    if value is None or value == "":
        return ""
    region = numbers.region(str(value)) if isinstance(value, str) else None
    if region is None:
        problems.append((path, f"must be an ISO country code libphonenumber knows (CH, DE, GB…), got {value!r}"))
        return ""
    return region


POLICY_KEYS = ("senders", "destinations", "default_country")


def template_problems(templates: dict[str, Any], callers: dict[str, Any], problems: Problems,
                      warnings: list[str]) -> None:
    """A template whose constant ``from`` its own ``senders`` refuse can never send (a problem); one its listed
    callers' ``senders`` refuse cannot be used by them (a warning)."""
    for name, t in templates.items():
        sender = t.fields.get("from")
        if not sender or any(c in sender for c in "{%"):
            continue
        own = Rule(f"template {name}", t.senders)
        if not own.sender_allowed(sender):
            problems.append((f"templates.{name}.senders", f"refuse the template's own from {sender!r}"))
        for cn in t.callers:
            c = callers.get(cn)
            if c is not None and not Rule(cn, c.senders).sender_allowed(sender):
                warnings.append(f"templates.{name}: caller {cn!r} may not send from {sender!r} (callers.{cn}.senders):"
                                " its sends through this template are refused")


def pop_policy(d: dict[str, Any], path: str, problems: Problems) -> dict[str, Any]:
    """Take ``senders``, ``destinations`` and ``default_country`` out of the mapping ``d``, checked (the keyword
    arguments of a config.Caller or config.TemplateSpec)."""
    return {
        "senders": parse_senders(d.pop("senders", None), f"{path}.senders", problems),
        "destinations": parse_destinations(d.pop("destinations", None), f"{path}.destinations", problems),
        "default_country": parse_country(d.pop("default_country", None), f"{path}.default_country", problems),
    }


def check_reply(policy: SendPolicy, sub: Submission) -> None:
    """An auto-reply (one message to one number) keeps to its caller's senders and destinations
    (PolicyRefused naming the rule)."""
    reason = policy.destination_reason(sub.messages[0].destinations[0].to)
    if reason:
        raise PolicyRefused(reason)
    policy.check_senders(sub)
