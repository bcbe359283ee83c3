"""Secrets out of log lines: query values and headers that carry credentials are masked."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

SECRET_PARAMS = frozenset({"password", "pass", "passwd", "pwd", "apikey", "api_key", "token", "access_token", "h",
                           "key", "secret", "client_secret"})
_PARAM = re.compile(
    r"(?i)(^|[?&;])(" + "|".join(re.escape(p) for p in sorted(SECRET_PARAMS)) + r")=([^&;#\s]*)"
)
_USERINFO = re.compile(r"(?i)(https?://)[^/@\s]+@")
#: Webhook path tokens are secrets (/hooks/dlr/<token>, /hooks/inbound/<token>).
_HOOK = re.compile(r"(/hooks/[A-Za-z]+/)[^/?#\s]+")
_AUTH = re.compile(r"(?i)\b(App|Basic|Bearer|IBSSO)\s+[A-Za-z0-9+/=._~-]+")


def redact(text: str) -> str:
    """Mask secret query values, URL userinfo and Authorization values in any text."""
    text = _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", text)
    text = _USERINFO.sub(r"\1***@", text)
    text = _HOOK.sub(r"\1***", text)
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
    if unquote_plus(name).strip().lower() in SECRET_PARAMS:
        return f"{name}=***"
    return pair
