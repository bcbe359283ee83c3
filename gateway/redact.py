"""Secrets and message texts out of log lines.

Secrets (passwords, keys, tokens, webhook path tokens, ``Authorization`` values, URL userinfo) become
``***``. Texts a person wrote or will read (message texts, one-time codes, a template's values) are masked
like the admin UI's log shows them: the first few characters and the length (:class:`Masking`, on by
default, ``logging.mask_texts``). Parameter names are judged decoded, whatever their percent-encoding
(``pass%77ord=`` is a password).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

SECRET_PARAMS = frozenset({"password", "pass", "passwd", "pwd", "apikey", "api_key", "token", "access_token", "h",
                           "key", "secret", "client_secret"})
#: Parameters whose values are texts or codes: masked, not hidden (their length helps an operator).
TEXT_PARAMS = frozenset({"text", "message", "msg", "content", "txt", "sms", "body", "code", "otp", "pin",
                         "callbackdata", "messagetext"})
#: On a template route (``/t/<name>``) every value is the template's, masked, except these.
PLAIN_TEMPLATE_PARAMS = frozenset({"username", "user", "charset", "format"})
_PAIR = re.compile(r"(^|[?&;])([^=&;#\s?]+)=([^&;#\s]*)")
_USERINFO = re.compile(r"(?i)(https?://)[^/@\s]+@")
#: Webhook path tokens are secrets (/hooks/dlr/<token>, /hooks/inbound/<token>).
_HOOK = re.compile(r"(/hooks/[A-Za-z]+/)[^/?#\s]+")
_AUTH = re.compile(r"(?i)\b(App|Basic|Bearer|IBSSO)\s+[A-Za-z0-9+/=._~-]+")
#: an ASCII text without one of these cannot match _AUTH (a non-ASCII one is always scanned: case folding)
_AUTH_WORDS = ("app", "basic", "bearer", "ibsso")


@dataclass(frozen=True)
class Masking:
    """Whether texts are masked in logs, and how many leading characters stay readable."""

    enabled: bool = True
    keep: int = 3


def mask(text: str | None, enabled: bool = True, keep: int = 3) -> str:
    """``text`` as logs show it: the first ``keep`` characters (none for a text of at most ``2*keep``)
    and the length, e.g. ``Pum… (13 chars)``."""
    if text is None:
        return ""
    if not enabled:
        return text
    shown = text[:keep] if len(text) > 2 * keep else ""
    return f"{shown}… ({len(text)} chars)"


def _name(raw: str) -> str:
    if "%" not in raw and "+" not in raw:  # nothing to decode (the common case: unquote_plus is the cost)
        return raw.strip().lower()
    try:
        return unquote_plus(raw, errors="replace").strip().lower()
    except ValueError:
        return raw.lower()


_UNSAFE_IN_VALUE = re.compile(r"[\x00-\x20\x7f&;=#%+?]")


def _masked_value(raw: str, masking: Masking) -> str:
    """A masked query value, ``Boi…(33)`` (the length in characters), escaped so that it stays one value."""
    text = unquote_plus(raw, errors="replace")
    shown = f"{text[:masking.keep] if len(text) > 2 * masking.keep else ''}…({len(text)})"
    return _UNSAFE_IN_VALUE.sub(lambda m: quote(m.group(0), safe=""), shown)


def _pair(m: re.Match[str], masking: Masking | None, mask_all: bool) -> str:
    lead, raw_name, value = m.group(1), m.group(2), m.group(3)
    name = _name(raw_name)
    if name in SECRET_PARAMS:
        return f"{lead}{raw_name}=***"
    if masking is not None and masking.enabled and value and (
            name in TEXT_PARAMS or (mask_all and name not in PLAIN_TEMPLATE_PARAMS)):
        return f"{lead}{raw_name}={_masked_value(value, masking)}"
    return m.group(0)


def redact(text: str, masking: Masking | None = None, mask_all: bool = False) -> str:
    """Mask secret query values (and, with ``masking``, texts: every value but a few with ``mask_all``),
    URL userinfo, webhook tokens and Authorization values in any text."""
    if "=" in text:  # each pattern needs its marker: a line without one is not scanned for it
        text = _PAIR.sub(lambda m: _pair(m, masking, mask_all), text)
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    if "/hooks/" in text:
        text = _HOOK.sub(r"\1***", text)
    if text.isascii() and not any(w in text.lower() for w in _AUTH_WORDS):  # cheaper than the scan
        return text
    return _AUTH.sub(lambda m: f"{m.group(1)} ***", text)


def redact_url(url: str) -> str:
    """``url`` without secrets: userinfo becomes ``***`` and secret query values become ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = "&".join(_redact_pair(p) for p in parts.query.split("&")) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, _HOOK.sub(r"\1***", parts.path), query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def _redact_pair(pair: str) -> str:
    name, _, _ = pair.partition("=")
    if _name(name) in SECRET_PARAMS:
        return f"{name}=***"
    return pair
