"""Split text into the exact parts a handset receives (3GPP TS 23.040 §9.2.3.24.1).

Rules: a text that fits the single-part capacity is one part; otherwise parts are filled greedily at the
multipart capacity, never cutting an ESC pair (GSM-7) or a surrogate pair (UCS-2); a cut that would land
inside one ends the part one unit early. Optionally grapheme clusters are kept whole too.
"""

from __future__ import annotations

import unicodedata

from .charsets import UCS2, Config
from .gsm_tables import ESC

_ZWJ = "\u200d"
_REGIONAL = range(0x1F1E6, 0x1F200)
_EXTENDERS = frozenset(
    {0xFE0E, 0xFE0F, 0x200C, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)}
)


def grapheme_clusters(text: str) -> list[str]:
    """Approximate extended grapheme clusters (UAX #29): CRLF, combining marks, ZWJ sequences,
    emoji modifiers/variation selectors/tags and regional-indicator pairs stay together."""
    clusters: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i] == "\r" and j < n and text[j] == "\n":
            j += 1
        elif ord(text[i]) in _REGIONAL and j < n and ord(text[j]) in _REGIONAL:
            j += 1
        while j < n:
            cp = ord(text[j])
            if cp in _EXTENDERS or unicodedata.category(text[j]) in ("Mn", "Me", "Mc"):
                j += 1
            elif text[j] == _ZWJ:
                j += 2 if j + 1 < n else 1
            else:
                break
        clusters.append(text[i:j])
        i = j
    return clusters


def _split_gsm(text: str, config: Config) -> tuple[list[str], int]:
    septets = config.with_escapes(text)
    total = len(septets)
    if total <= config.single_cap:
        return [text], total
    cap = config.multi_cap
    parts: list[str] = []
    pos = 0
    while pos < total:
        end = pos + cap
        if end >= total:
            end = total
        elif septets[end - 1] == ESC:
            end -= 1
        parts.append(septets[pos:end].replace(ESC, ""))
        last, pos = end - pos, end
    return parts, last


def _split_ucs2(text: str, config: Config) -> tuple[list[str], int]:
    data = text.encode("utf-16-le")
    total = len(data) >> 1
    if total <= config.single_cap:
        return [text], total
    cap = config.multi_cap
    if total == len(text):  # BMP only: units are characters
        parts = [text[i : i + cap] for i in range(0, total, cap)]
        return parts, len(parts[-1])
    parts: list[str] = []
    pos = 0
    while pos < total:
        end = pos + cap
        if end >= total:
            end = total
        elif data[2 * end - 1] & 0xFC == 0xD8:  # last unit is a high surrogate: keep the pair whole
            end -= 1
        parts.append(data[2 * pos : 2 * end].decode("utf-16-le"))
        last, pos = end - pos, end
    return parts, last


def _split_clusters(text: str, config: Config) -> tuple[list[str], int]:
    """Greedy fill keeping grapheme clusters whole where a cluster fits in a part."""
    ucs2 = config.encoding == UCS2
    double = config.double

    def cost(s: str) -> int:
        if ucs2:
            return len(s.encode("utf-16-le")) >> 1
        return len(s) + sum(1 for c in s if c in double)

    total = cost(text)
    if total <= config.single_cap:
        return [text], total
    cap = config.multi_cap
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in grapheme_clusters(text):
        c = cost(cluster)
        if c > cap:  # a cluster longer than a part: fall back to code-point boundaries
            for char in cluster:
                cc = cost(char)
                if used + cc > cap:
                    parts.append("".join(current))
                    current, used = [], 0
                current.append(char)
                used += cc
            continue
        if used + c > cap:
            parts.append("".join(current))
            current, used = [], 0
        current.append(cluster)
        used += c
    if current:
        parts.append("".join(current))
    return parts, used


def split(text: str, config: Config, *, grapheme_safe: bool = False) -> list[str]:
    """The parts a handset receives for ``text`` sent with ``config`` (text must be encodable)."""
    return segment(text, config, grapheme_safe=grapheme_safe)[0]


def segment(text: str, config: Config, *, grapheme_safe: bool = False) -> tuple[list[str], int]:
    """(parts, units used in the last part) for ``text`` sent with ``config``."""
    if grapheme_safe:
        return _split_clusters(text, config)
    if config.encoding == UCS2:
        return _split_ucs2(text, config)
    return _split_gsm(text, config)


def measure(text: str, config: Config) -> tuple[int, int]:
    """(message count, units used in the last part) without building the parts: the fast path."""
    if config.encoding == UCS2:
        data = text.encode("utf-16-le")
        total = len(data) >> 1
        if total <= config.single_cap or total == len(text):
            return _arithmetic(total, config)
        high_surrogate_at = 1
        units = data
    else:
        units = config.with_escapes(text)
        total = len(units)
        if total <= config.single_cap or total == len(text):
            return _arithmetic(total, config)
        high_surrogate_at = 0
    cap = config.multi_cap
    count, pos = 0, 0
    while True:
        count += 1
        end = pos + cap
        if end >= total:
            return count, total - pos
        if high_surrogate_at:  # UCS-2: the unit before the cut is a high surrogate
            if units[2 * end - 1] & 0xFC == 0xD8:
                end -= 1
        elif units[end - 1] == ESC:  # GSM-7: the septet before the cut is ESC
            end -= 1
        pos = end


def _arithmetic(total: int, config: Config) -> tuple[int, int]:
    """Count when no pair can straddle a cut (or everything fits one part)."""
    if total <= config.single_cap:
        return 1, total
    count = -(-total // config.multi_cap)
    return count, total - (count - 1) * config.multi_cap


def part_units(part: str, config: Config) -> int:
    """Septets (GSM-7) or 16-bit units (UCS-2) one part occupies."""
    if config.encoding == UCS2:
        return len(part.encode("utf-16-le")) >> 1
    return len(config.with_escapes(part))
