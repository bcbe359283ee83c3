"""XML bodies from the outside (report and inbound pushes), read strictly with defusedxml.

Only UTF-8, UTF-16, US-ASCII and ISO-8859-1 (Latin-1) are accepted: an XML declaration naming any
other encoding (``UTF-7``, which can smuggle markup past filters, or a name Python does not know) is a
400 naming the encoding, as is a body that is not well-formed or uses DTDs/entities. Never a 500.
"""

from __future__ import annotations

import codecs
import re
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

from ..model import ApiError

MAX_DEPTH = 16  # a push is 4 or 5 levels deep (<reportResponse><results><result><status><name>)
ACCEPTED = frozenset({"utf-8", "utf-16", "utf-16-le", "utf-16-be", "ascii", "latin-1", "iso8859-1"})
_DECL = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")


def _declared(data: bytes) -> str | None:
    """The encoding named in the XML declaration, looked at in the body's own byte order."""
    head = data[:512]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[:2] in (b"<\x00", b"\x00<"):
        enc = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else (
            "utf-16-le" if head[:1] == b"<" else "utf-16-be")
        head = head[: len(head) // 2 * 2].decode(enc, "replace").encode("utf-8", "replace")
    elif head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    m = _DECL.match(head)
    return m.group(1).decode("ascii", "replace") if m else None


def parse(data: bytes, what: str = "body") -> Element:
    """The root element of ``data``; :class:`ApiError` 400 naming ``what`` for anything unacceptable."""
    declared = _declared(data)
    if declared is not None:
        try:
            name = codecs.lookup(declared).name
        except (LookupError, ValueError):  # unknown, or not even a name ("UTF\0-8")
            name = None
        if name not in ACCEPTED:
            shown = declared.encode("ascii", "backslashreplace").decode()[:40]
            raise ApiError.bad_request(what, f"declares the encoding {shown!r}; only UTF-8, UTF-16, US-ASCII and "
                                       "ISO-8859-1 are accepted")
    try:
        root = fromstring(data)
    except RecursionError:
        raise ApiError.bad_request(what, "is nested too deeply") from None
    except Exception as exc:  # ParseError, DefusedXmlException, LookupError, ValueError: all hostile or broken XML
        raise ApiError.bad_request(what, f"is not acceptable XML ({type(exc).__name__}: well-formed, no DTDs or "
                                   "entities)") from None
    if _depth(root) > MAX_DEPTH:
        raise ApiError.bad_request(what, f"is nested deeper than {MAX_DEPTH} elements")
    return root


def _depth(root: Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        if d <= MAX_DEPTH:
            stack.extend((c, d + 1) for c in el)
    return deepest
