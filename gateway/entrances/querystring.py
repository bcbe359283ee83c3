"""Decoding of legacy query strings: exactly once, in a declared charset, strictly.

Werkzeug's own ``request.args`` decodes UTF-8 with replacement characters, which would turn a
Latin-1 ``%FC`` into ``\ufffd`` silently. Legacy callers need better, so the raw bytes are parsed here:

* pairs split on ``&`` only; ``+`` means a space; ``%XX`` is decoded once (a ``%25`` stays ``%``);
* the bytes are decoded with ``charset`` (UTF-8 by default; ISO-8859-1, windows-1252 and a few more
  on request); bytes invalid in that charset are an error naming the parameter;
* ``¬ifyUrl=`` and ``¬ifyContentType=`` are read as ``&notifyUrl=`` and ``&notifyContentType=``:
  copying Infobip's example from an HTML page turns ``&not`` into ``¬`` (the ``&not;`` entity), and
  that example must work verbatim. Only these two names are repaired; a ``¬`` elsewhere is data.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from ..model import ApiError

# Charset names a legacy app may send, mapped to Python codec names.
CHARSETS: dict[str, str] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "iso-8859-1",
    "iso8859-1": "iso-8859-1",
    "latin1": "iso-8859-1",
    "latin-1": "iso-8859-1",
    "iso-8859-15": "iso-8859-15",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "windows-1250": "cp1250",
    "cp1250": "cp1250",
    "iso-8859-2": "iso-8859-2",
}

# "¬" (raw UTF-8 or percent-encoded) where "&not" stood before an HTML entity decode ate it.
_HTML_NOT = re.compile(rb"(?:\xc2\xac|%[cC]2%[aA][cC])(ify(?:Url|ContentType)=)")


class QueryParams:
    """Ordered multi-valued parameters; ``get`` gives the last value, ``getall`` every value."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in reversed(self._items):
            if key == name:
                return value
        return default

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for k, _ in self._items:
            seen.setdefault(k, None)
        return list(seen)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self._items)


def _split(raw: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for part in _HTML_NOT.sub(rb"&not\1", raw).split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((unquote_to_bytes(name.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def _charset_of(pairs: list[tuple[bytes, bytes]], default: str) -> tuple[str, str]:
    declared = default
    for name, value in pairs:
        if name == b"charset":
            declared = value.decode("ascii", "replace").strip().lower()
    codec = CHARSETS.get(declared)
    if codec is None:
        raise ApiError.bad_request(
            "charset", f"unsupported charset {declared!r}; use one of {', '.join(sorted(set(CHARSETS)))}"
        )
    return declared, codec


def parse_query(raw: bytes, default_charset: str = "utf-8") -> QueryParams:
    """Parse a raw query string; raise ApiError(400) naming the parameter on undecodable bytes."""
    pairs = _split(raw)
    declared, codec = _charset_of(pairs, default_charset)
    items: list[tuple[str, str]] = []
    errors: dict[str, list[str]] = {}
    for bname, bvalue in pairs:
        try:
            name = bname.decode(codec)
        except UnicodeDecodeError:
            name = bname.decode("utf-8", "backslashreplace")
            errors.setdefault(name, []).append(f"parameter name is not valid {declared}")
            continue
        try:
            value = bvalue.decode(codec)
        except UnicodeDecodeError as exc:
            bad = bvalue[exc.start : exc.start + 1].hex().upper()
            errors.setdefault(name, []).append(
                f"byte 0x{bad} at position {exc.start} is not valid {declared}; "
                "send UTF-8, or declare the charset the application uses, e.g. charset=windows-1252"
            )
            continue
        items.append((name, value))
    if errors:
        raise ApiError.invalid(errors)
    return QueryParams(items)


def parse_form(body: bytes, default_charset: str = "utf-8") -> QueryParams:
    """A form body (application/x-www-form-urlencoded) follows the same rules as a query string."""
    return parse_query(body, default_charset)
