"""JSON bodies from the outside, read strictly: bad input is a 400 naming the field, never a 500.

``json.loads`` alone lets three kinds of hostile body through to the core: nesting thousands deep
(a ``RecursionError`` in the parser or in any code that walks the document), strings with lone
surrogates (``"\\ud800"``: valid JSON, but no encoder, database or upstream can take them) and
non-finite numbers (``NaN``, ``Infinity``: not JSON at all). :func:`loads` refuses each, naming where.
The checks cost a few byte scans in C; the Python walks run only when a scan finds a suspect.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..model import ApiError

MAX_DEPTH = 32  # Infobip's deepest body (v3 messages[].destinations[].…) is 6 levels
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (strings skipped)."""
    depth = deepest = 0
    for ch in _STRING.sub(b'""', data):
        if ch in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in b"]}":
            depth -= 1
    return deepest


def _surrogate_path(value: Any, path: str) -> str | None:
    """Where the first string with a lone surrogate is (``messages[0].text``), or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return p
        elif isinstance(v, dict):
            for k, item in v.items():
                if isinstance(k, str) and _surrogate_path(k, p) is not None:
                    return f"{p}.{k.encode('utf-8', 'backslashreplace').decode()}".lstrip(".")
                stack.append((item, f"{p}.{k}".lstrip(".")))
        elif isinstance(v, list):
            stack.extend((item, f"{p}[{i}]") for i, item in enumerate(v))
    return None


def loads(data: bytes, what: str = "body", max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in ``data`` (UTF-8, -16 or -32); :class:`ApiError` 400 naming ``what`` or the field."""
    if data.count(b"[") + data.count(b"{") > max_depth and _depth(data) > max_depth:
        raise ApiError.bad_request(what, f"is nested deeper than {max_depth} levels")
    try:
        doc = json.loads(data, parse_constant=_no_constant)
    except RecursionError:  # unreachable after the depth check, kept as the last line of defence
        raise ApiError.bad_request(what, f"is nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise ApiError.bad_request(what, "is not valid UTF-8 (JSON must be UTF-8)") from None
    except ValueError as e:
        raise ApiError.bad_request(what, f"must be a JSON document ({e})") from None
    if _SURROGATE_ESCAPE.search(data):
        where = _surrogate_path(doc, "")
        if where is not None:
            raise ApiError.bad_request(where or what, "contains a lone surrogate (\\ud800-\\udfff), which no text "
                                       "encoding can carry")
    return doc
