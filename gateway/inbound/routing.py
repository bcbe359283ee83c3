"""Compiled routing rules: which rule takes a message, and the compiled templates of its actions.

The forward itself is prepared by gateway/delivery/channels.py's :class:`InboundForwardChannel`.
Rules are tried in config order and the first match wins (Kannel picks one sms-service the same
way); the default, if configured, takes what no rule matched. A rule's conditions all have to
hold: the receiving number is one of ``match.to``, the text's first word is one of
``match.keyword`` (case-insensitive), ``match.regex`` is found in the text (``re.search``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import ConfigError
from ..delivery.urlpolicy import HostUnresolvable, UrlNotAllowed, UrlPolicy
from ..model import InboundMessage
from ..render import make_environment
from .loops import ReplyGuard
from .settings import InboundSettings, Rule, digits
from .templating import Template, compile_template, sample_values, url_environment


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    url: Template | None
    fields: Template | None
    reply: Template | None

    def matches(self, msg: InboundMessage) -> bool:
        m = self.rule.match
        if m.to and digits(msg.to) not in m.to:
            return False
        text = msg.text or ""
        if m.keyword:
            words = text.split(maxsplit=1)
            if not words or words[0].upper() not in m.keyword:
                return False
        return not (m.regex and not m.regex.search(text))


class Router:
    """The rules of one configuration, compiled once at start-up (``ConfigError`` naming each problem,
    including a forward URL that the rule's caller's allow-list refuses)."""

    def __init__(self, settings: InboundSettings, policy_for: Callable[[str | None], UrlPolicy]):
        self.settings = settings
        problems: list[tuple[str, str]] = []
        self.rules = [self._compile(r, f"inbound.rules[{i}]", policy_for, problems)
                      for i, r in enumerate(settings.rules)]
        self.default = (self._compile(settings.default, "inbound.default", policy_for, problems)
                        if settings.default else None)
        if problems:
            raise ConfigError(problems)
        self.loops = ReplyGuard(settings.own_numbers, settings.reply_limit,
                                {r.name: r.reply.limit for r in settings.all_rules if r.reply and r.reply.limit})

    @staticmethod
    def _compile(rule: Rule, path: str, policy_for: Callable[[str | None], UrlPolicy],
                 problems: list[tuple[str, str]]) -> CompiledRule:
        url = fields = reply = None
        if rule.forward:
            url, errs = compile_template(url_environment(), rule.name, {"url": rule.forward.url}, f"{path}.forward")
            problems += errs
            if rule.forward.fields:
                fields, errs = compile_template(make_environment(), rule.name, rule.forward.fields,
                                                f"{path}.forward.fields")
                problems += errs
            if url is not None:  # a URL the caller's allow-list refuses is a start-up error, not 20 retries
                try:
                    policy_for(rule.caller).check(url.render(sample_values())["url"])
                except HostUnresolvable:
                    pass  # DNS may be down now; delivery checks again
                except UrlNotAllowed as exc:
                    problems.append((f"{path}.forward.url", f"{exc.reason} (callers.{rule.caller}.allow)"))
        if rule.reply:
            src = {"text": rule.reply.text, **({"from": rule.reply.sender} if rule.reply.sender else {})}
            reply, errs = compile_template(make_environment(), rule.name, src, f"{path}.reply")
            problems += errs
        return CompiledRule(rule, url, fields, reply)

    def route(self, msg: InboundMessage) -> CompiledRule | None:
        """The first rule matching ``msg``, else the default (None when there is none)."""
        for r in self.rules:
            if r.matches(msg):
                return r
        return self.default
