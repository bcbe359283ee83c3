"""The ``inbound:`` section of config.yaml: the webhook token and the routing rules.

Parsed without importing gateway.config (which imports this module); every problem carries its key
path, like the rest of the configuration. Templates are compiled here once only to report their
problems at load time (``check-config``); :mod:`gateway.inbound.routing` compiles them for use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..numbers import search_form
from ..render import make_environment
from .loops import ReplyLimit, parse_limit
from .templating import compile_template, url_environment

#: The demo token of config.yaml: accepted only while the upstream is the sandbox.
SANDBOX_TOKEN = "sandbox-inbound-token"
MIN_TOKEN_CHARS = 16
FORWARD_METHODS = ("GET", "POST")
FORWARD_BODIES = ("form", "json", "infobip", "jasmin", "kannel")  # kannel: sms-service post-url (text, X-Kannel-*)
UPSTREAM_APIS = ("query", "advanced")
Problems = list[tuple[str, str]]


@dataclass
class Match:
    """All given conditions must hold; an empty Match matches every message."""

    to: tuple[str, ...] = ()  # receiving numbers, digits only
    keyword: tuple[str, ...] = ()  # upper case; compared with the text's first word
    regex: re.Pattern[str] | None = None  # re.search on the text


@dataclass
class Forward:
    url: str
    method: str = "GET"
    body: str = "form"  # POST only: form | json (of ``fields``) | infobip (Infobip's MO push shape) | kannel; jasmin
    # (Jasmin's HTTP-connector fields, GET or POST)
    fields: dict[str, str] = field(default_factory=dict)  # POST form/json fields; empty: every variable
    answer: Answer | None = None  # Kannel's sms-service: the answer's text is the reply SMS (inbound/answers.py)


@dataclass
class Answer:
    """Kannel's reply semantics for a forward: its ``max-messages``, ``omit-empty``, ``accept-x-kannel-headers``
    and ``faked-sender`` (``from``; default: the number the message was sent to)."""

    max_messages: int = 1
    omit_empty: bool = False
    accept_x_kannel_headers: bool = False
    sender: str | None = None


@dataclass
class Reply:
    text: str
    sender: str | None = None  # the reply's "from"
    api: str | None = None  # query | advanced; default: the caller's upstream_api
    limit: ReplyLimit | None = None  # replies to one number per window (gateway/inbound/loops.py); None: inbound's


@dataclass
class Rule:
    name: str
    caller: str
    match: Match = field(default_factory=Match)
    forward: Forward | None = None
    reply: Reply | None = None
    pull: tuple[str, ...] = ()  # callers that may pull the message


@dataclass
class InboundSettings:
    token: str = ""  # the webhook is POST /hooks/inbound/<token>; empty: the webhook is off
    rules: list[Rule] = field(default_factory=list)
    default: Rule | None = None  # for messages no rule matches; None: stored only
    max_body_bytes: int = 1 << 20
    reply_limit: ReplyLimit = field(default_factory=ReplyLimit)  # auto-replies to one number per window
    own_numbers: tuple[str, ...] = ()  # numbers never answered (the config's own numbers are added at load)

    @property
    def all_rules(self) -> list[Rule]:
        return [*self.rules, *([self.default] if self.default else [])]


def digits(number: str) -> str:
    """A number as digits only (``+41 79-302`` -> ``41793``; a leading ``00`` is dropped)."""
    d = "".join(c for c in number if c.isdigit())
    return d[2:] if number.strip().startswith("00") else d


def _strings(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return tuple(str(v) for v in value)
    problems.append((path, "must be a string or a list of strings"))
    return ()


def _mapping(value: Any, path: str, problems: Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((path, "must be a mapping"))
        return {}
    return value


def _unknown(d: Mapping[str, Any], known: tuple[str, ...], path: str, problems: Problems) -> None:
    for key in d:
        if key not in known:
            problems.append((f"{path}.{key}", f"unknown key; known: {', '.join(known)}"))


def _match(d: Any, path: str, problems: Problems) -> Match:
    d = _mapping(d, path, problems)
    _unknown(d, ("to", "keyword", "regex"), path, problems)
    m = Match(to=tuple(digits(t) for t in _strings(d.get("to"), f"{path}.to", problems)),
              keyword=tuple(k.strip().upper() for k in _strings(d.get("keyword"), f"{path}.keyword", problems)))
    if any(" " in k or not k for k in m.keyword):
        problems.append((f"{path}.keyword", "a keyword is one word"))
    if d.get("regex") is not None:
        try:
            m.regex = re.compile(str(d["regex"]))
        except re.error as exc:
            problems.append((f"{path}.regex", f"is not a valid regular expression: {exc}"))
    return m


def _forward(d: Any, path: str, problems: Problems) -> Forward | None:
    if d is None:
        return None
    if isinstance(d, str):
        d = {"url": d}
    d = _mapping(d, path, problems)
    _unknown(d, ("url", "method", "body", "fields", "answer"), path, problems)
    url = d.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append((f"{path}.url", "must be an http(s):// URL template"))
        return None
    f = Forward(url=url, method=str(d.get("method", "GET")).upper(), body=str(d.get("body", "form")),
                answer=_answer(d.get("answer"), f"{path}.answer", problems))
    if f.method not in FORWARD_METHODS:
        problems.append((f"{path}.method", f"must be one of {', '.join(FORWARD_METHODS)}"))
    if f.body not in FORWARD_BODIES:
        problems.append((f"{path}.body", f"must be one of {', '.join(FORWARD_BODIES)}"))
    fields = _mapping(d.get("fields"), f"{path}.fields", problems)
    f.fields = {str(k): str(v) for k, v in fields.items()}
    if f.fields and (f.method == "GET" or f.body in ("infobip", "jasmin", "kannel")):
        problems.append((f"{path}.fields", "only a POST with body form or json has fields"))
    _, errs = compile_template(url_environment(), path, {"url": f.url}, path)
    problems += errs
    if f.fields:
        problems += compile_template(make_environment(), path, f.fields, f"{path}.fields")[1]
    return f


def _answer(d: Any, path: str, problems: Problems) -> Answer | None:
    if d is None or d is False:
        return None
    d = {} if d is True else _mapping(d, path, problems)
    _unknown(d, ("max_messages", "omit_empty", "accept_x_kannel_headers", "from"), path, problems)
    a = Answer()
    n = d.get("max_messages", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10:
        problems.append((f"{path}.max_messages", "must be an integer 0 to 10 (SMS parts a reply may use; 0: never)"))
    else:
        a.max_messages = n
    for key in ("omit_empty", "accept_x_kannel_headers"):
        value = d.get(key, False)
        if not isinstance(value, bool):
            problems.append((f"{path}.{key}", "must be true or false"))
        else:
            setattr(a, key, value)
    a.sender = str(d["from"]) if d.get("from") is not None else None
    return a


def _reply(d: Any, path: str, problems: Problems) -> Reply | None:
    if d is None:
        return None
    if isinstance(d, str):
        d = {"text": d}
    d = _mapping(d, path, problems)
    _unknown(d, ("text", "from", "api", "limit"), path, problems)
    if not isinstance(d.get("text"), str) or not d["text"].strip():
        problems.append((f"{path}.text", "is required: the reply's text (a template)"))
        return None
    r = Reply(text=d["text"], sender=str(d["from"]) if d.get("from") is not None else None,
              api=str(d["api"]) if d.get("api") is not None else None,
              limit=parse_limit(d["limit"], f"{path}.limit", problems, ReplyLimit()) if "limit" in d else None)
    if r.api is not None and r.api not in UPSTREAM_APIS:
        problems.append((f"{path}.api", f"must be one of {', '.join(UPSTREAM_APIS)}"))
    fields = {"text": r.text, **({"from": r.sender} if r.sender else {})}
    problems += compile_template(make_environment(), path, fields, path)[1]
    return r


def _rule(d: Any, name: str, path: str, callers: Mapping[str, Any], problems: Problems, warnings: list[str],
          default: bool) -> Rule:
    d = _mapping(d, path, problems)
    known = ("name", "caller", "forward", "reply", "pull") + (() if default else ("match",))
    _unknown(d, known, path, problems)
    caller = str(d.get("caller", ""))
    if caller not in callers:
        problems.append((f"{path}.caller", f"must name a configured caller (the rule acts on its behalf); "
                                           f"known: {', '.join(callers)}"))
    pull_raw = d.get("pull", False)
    if pull_raw is True:
        pull: tuple[str, ...] = (caller,)
    elif pull_raw is False or pull_raw is None:
        pull = ()
    else:
        pull = _strings(pull_raw, f"{path}.pull", problems)
    for p in pull:
        c = callers.get(p)
        if c is None:
            problems.append((f"{path}.pull", f"unknown caller {p!r}"))
        elif "inbox" not in c.scopes:
            warnings.append(f"{path}.pull: caller {p!r} lacks the 'inbox' scope, so it cannot pull what is kept")
    rule = Rule(
        name=str(d.get("name", name)),
        caller=caller,
        match=Match() if default else _match(d.get("match"), f"{path}.match", problems),
        forward=_forward(d.get("forward"), f"{path}.forward", problems),
        reply=_reply(d.get("reply"), f"{path}.reply", problems),
        pull=pull,
    )
    if rule.reply is not None and rule.forward is not None and rule.forward.answer is not None:
        problems.append((f"{path}.reply", "a rule replies either with its reply template or with the forward's "
                                          "answer (forward.answer), not both"))
    return rule


def parse_inbound(raw: Any, callers: Mapping[str, Any], sandbox: bool, problems: Problems,
                  warnings: list[str]) -> InboundSettings:
    """Build :class:`InboundSettings` from the ``inbound`` mapping; problems and warnings appended."""
    d = _mapping(raw, "inbound", problems)
    _unknown(d, ("token", "rules", "default", "max_body_bytes", "reply_limit", "own_numbers"), "inbound", problems)
    s = InboundSettings(token=str(d.get("token") or ""),
                        reply_limit=parse_limit(d.get("reply_limit"), "inbound.reply_limit", problems, ReplyLimit()),
                        own_numbers=_strings(d.get("own_numbers"), "inbound.own_numbers", problems))
    if "max_body_bytes" in d:
        v = d["max_body_bytes"]
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            s.max_body_bytes = v
        else:
            problems.append(("inbound.max_body_bytes", "must be a positive whole number"))
    rules = d.get("rules") or []
    if not isinstance(rules, list):
        problems.append(("inbound.rules", "must be a list of rules"))
        rules = []
    s.rules = [_rule(r, f"rules[{i}]", f"inbound.rules[{i}]", callers, problems, warnings, False) for i, r in enumerate(rules)]
    if d.get("default") is not None:
        s.default = _rule(d["default"], "default", "inbound.default", callers, problems, warnings, True)
    for i, n in enumerate(s.own_numbers):
        if not search_form(n).isdigit():
            problems.append((f"inbound.own_numbers[{i}]", f"{n!r} is not a phone number in international format"))
    names = [r.name for r in s.all_rules]
    for n in {n for n in names if names.count(n) > 1}:
        problems.append(("inbound.rules", f"rule name {n!r} is used twice"))
    if s.token:
        if len(s.token) < MIN_TOKEN_CHARS:
            problems.append(("inbound.token", f"is shorter than {MIN_TOKEN_CHARS} characters: use a long random "
                                              "value from the environment"))
        if s.token == SANDBOX_TOKEN and not sandbox:
            problems.append(("inbound.token", "is the public demo token, accepted only with the sandbox upstream; "
                                              "set SMSBRIDGE_INBOUND_TOKEN to a long random value"))
    elif s.all_rules:
        warnings.append("inbound.token is empty: the inbound webhook is off, so no rule will ever run")
    return s
