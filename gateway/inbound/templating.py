"""Templates of inbound rules: sandboxed Jinja plus Kannel's ``get-url`` escapes as aliases.

Variables (Jinja): ``from to text cleanText keyword receivedAt messageId smsCount callbackData rule``.
Kannel escapes (legacy-gateways.md §1.3) are rewritten to those variables before compiling, so a
``get-url`` copied from a Kannel ``sms-service`` works as is:

=====  =====================================================  =====================================
code   value                                                  notes
=====  =====================================================  =====================================
%p     from: the handset that sent the message
%P     to: the receiving (customer's) number
%q %Q  like %p %P with a leading ``+``                         Infobip numbers carry no ``+``/``00``
%k     keyword: the first word of the text                    as typed (``keyword`` var: upper case)
%s     the next word after the keyword, consumed in order     each ``%s`` takes one more word
%r     the words no ``%s`` used, joined by spaces
%a     all words, spaces squeezed
%b %A  the text exactly as received
%t     receivedAt as ``YYYY-MM-DD HH:MM:SS`` (UTC)
%T     receivedAt as UNIX epoch seconds
%I     messageId
%i     ``infobip`` (Kannel's smsc-id)
%n     the rule's name (Kannel: the sms-service name)
%C     ``UTF-8`` (the charset of every value sent)
%c     ``0`` (Kannel's coding of text in UTF-8)
%e     the text's UTF-8 bytes in hexadecimal
%%     a literal ``%``
=====  =====================================================  =====================================

Kannel's escapes with no value for an Infobip MO (``%B %D %F %O %M %R %V %d %f %m %o %u %v``) are empty.

Any other ``%x`` is copied through (as Kannel does); ``{%`` (a Jinja tag) is never an escape. In a
URL template every ``{{ … }}`` output (and so every escape) is percent-encoded as UTF-8 with no safe
characters (a space is ``%20``; ``&``, ``+``, ``%``, ``/`` are encoded), so a value can never add a
parameter or change the path; Kannel's ``+`` between words therefore arrives as ``%20``, which every
form decoder reads as the same space. In bodies and reply texts values are inserted as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from ..model import InboundMessage
from ..render import CompiledFields, kannel_to_jinja, make_environment

VARIABLES = ("from", "to", "text", "cleanText", "keyword", "receivedAt", "messageId", "smsCount", "callbackData",
             "rule")
_ALIASES = {
    "p": "from", "P": "to", "q": "_q", "Q": "_Q", "k": "_k", "r": "_r", "a": "_a", "b": "text", "A": "text",
    "t": "_t", "T": "_T", "I": "messageId", "i": "_i", "n": "rule", "C": "_C", "c": "_c", "e": "_e",
    # Kannel's other escapes have no value for an Infobip MO: empty, never copied through (a literal "%o" in a
    # URL is not percent-encoding, and HTTP clients then re-encode the whole URL)
    **{code: "_none" for code in "BDFOMRVdfmouv"},
}
MAX_S = 20  # %s escapes per template


def translate(src: str, first_s: int = 0) -> tuple[str, int]:
    """Kannel escapes in ``src`` -> Jinja expressions; return (source, number of ``%s`` after it).

    ``%s`` escapes are numbered from ``first_s``: in a template of several fields they continue
    across the fields in order, as if the fields were one URL."""
    return kannel_to_jinja(src, _ALIASES, "%", first_s)


def url_environment() -> SandboxedEnvironment:
    """The sandboxed environment with every output percent-encoded (for URL templates)."""
    return make_environment(url=True)


def declared(n_s: int) -> list[str]:
    """Every variable a template may use (the public ones and the escapes' internal ones)."""
    return [*VARIABLES, *{v for v in _ALIASES.values() if v.startswith("_")}, *(f"_s{i}" for i in range(n_s))]


@dataclass(frozen=True)
class Template:
    """Compiled fields of one action, and how many words their ``%s`` escapes take."""

    fields: CompiledFields
    n_s: int

    def render(self, values: dict[str, Any]) -> dict[str, str]:
        """Render every field; raises ``RenderError`` naming the rule and field."""
        words = values["_a"].split()
        return self.fields.render({**values, "_r": " ".join(words[1 + self.n_s:])})


def compile_template(env: SandboxedEnvironment, name: str, fields: Mapping[str, str], path: str
                     ) -> tuple[Template | None, list[tuple[str, str]]]:
    """Compile each field (after escape translation); problems name ``path.field``."""
    problems: list[tuple[str, str]] = []
    compiled: dict[str, object] = {}
    n_s = 0
    for field, raw in fields.items():
        src, n_s = translate(raw, n_s)
        fpath = f"{path}.{field}" if field else path
        if n_s > MAX_S:
            problems.append((fpath, f"uses {n_s} %s escapes; at most {MAX_S}"))
            continue
        try:
            unknown = sorted(meta.find_undeclared_variables(env.parse(src)) - set(declared(n_s)) - set(env.globals))
        except TemplateError as exc:
            problems.append((fpath, f"does not compile: {exc}"))
            continue
        if unknown:
            problems.append((fpath, f"uses unknown variable(s) {', '.join(unknown)}; known: {', '.join(VARIABLES)}"))
            continue
        compiled[field] = env.from_string(src)
    if problems:
        return None, problems
    result = Template(CompiledFields(name, compiled), n_s)
    try:  # a trial render reports unsafe constructs (__class__ ...) at start-up
        result.render(sample_values())
    except Exception as exc:  # noqa: BLE001 - any failure here is a configuration problem
        if "unsafe" in str(exc):
            return None, [(path, str(exc))]
    return result, problems


def _received(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def template_values(msg: InboundMessage, rule: str) -> dict[str, Any]:
    """The variables for one message."""
    text = msg.text or ""
    words = text.split()
    first = words[0] if words else ""
    received = _received(msg.received_at or "")
    values: dict[str, Any] = {
        "from": msg.sender or "",
        "to": msg.to or "",
        "text": text,
        "cleanText": msg.clean_text if msg.clean_text is not None else text,
        "keyword": first.upper(),
        "receivedAt": msg.received_at or "",
        "messageId": msg.message_id or "",
        "smsCount": msg.sms_count if msg.sms_count is not None else 1,
        "callbackData": msg.callback_data or "",
        "rule": rule,
        "_k": first,
        "_a": " ".join(words),
        "_i": "infobip",
        "_C": "UTF-8",
        "_c": "0",  # Kannel's coding of a text whose charset (%C) is UTF-8
        "_e": text.encode("utf-8").hex(),
        "_none": "",
        "_t": received.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if received else "",
        "_T": str(int(received.timestamp())) if received else "",
    }
    values["_q"] = "+" + values["from"].lstrip("+") if values["from"] else ""
    values["_Q"] = "+" + values["to"].lstrip("+") if values["to"] else ""
    rest = words[1:]
    for i in range(MAX_S):
        values[f"_s{i}"] = rest[i] if i < len(rest) else ""
    return values


def sample_values() -> dict[str, Any]:
    return template_values(InboundMessage("1", "41793026727", "41793026834", "KEY word rest",
                                          received_at="2021-08-25T16:10:00.000+0500"), "rule")
