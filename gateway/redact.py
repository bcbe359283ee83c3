"""Secrets out of log lines: query values and headers that carry credentials are masked."""

from __future__ import annotations

import re

SECRET_PARAMS = ("password", "pass", "passwd", "pwd", "apikey", "api_key", "token", "access_token", "h", "key",
                 "secret", "client_secret")
_PARAM = re.compile(
    r"(?i)(^|[?&;])(" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")=([^&;#\s]*)"
)
_USERINFO = re.compile(r"(?i)(https?://)[^/@\s]+@")
_AUTH = re.compile(r"(?i)\b(App|Basic|Bearer|IBSSO)\s+[A-Za-z0-9+/=._~-]+")


def redact(text: str) -> str:
    """Mask secret query values, URL userinfo and Authorization values in any text."""
    text = _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", text)
    text = _USERINFO.sub(r"\1***@", text)
    return _AUTH.sub(lambda m: f"{m.group(1)} ***", text)
