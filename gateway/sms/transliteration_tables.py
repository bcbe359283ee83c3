"""Transliteration tables as data: character -> replacement, one table per Infobip transliteration value.

Infobip publishes no tables; these follow the reference notes (sms-encoding.md §6.2). Only the Greek
behaviour is confirmed by a published Infobip example. A replacement only ever applies to a character the
active GSM alphabet cannot encode (see transliteration.py).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final


def _pairs(spec: str) -> dict[str, str]:
    """Parse 'aA bB ...' style specs: each whitespace-separated token is source char + replacement."""
    return {token[0]: token[1:] for token in spec.split()}


def _with_capitals(lower: dict[str, str]) -> dict[str, str]:
    """Add upper-case entries (replacement capitalised) for a lower-case table."""
    table = dict(lower)
    for src, dst in lower.items():
        upper = src.upper()
        if upper != src and len(upper) == 1 and not upper.isascii() and upper not in table:
            table[upper] = dst[:1].upper() + dst[1:]
    return table


TURKISH: Final = MappingProxyType(_with_capitals(_pairs("şs ğg çc âa îi ûu ıi")) | {"İ": "I"})

GREEK: Final = MappingProxyType({
    # letters with a GSM capital keep it (lower case, accented and final forms too)
    **dict.fromkeys("γΓ", "Γ"), **dict.fromkeys("δΔ", "Δ"), **dict.fromkeys("θΘ", "Θ"),
    **dict.fromkeys("λΛ", "Λ"), **dict.fromkeys("ξΞ", "Ξ"), **dict.fromkeys("πΠ", "Π"),
    **dict.fromkeys("σςΣ", "Σ"), **dict.fromkeys("φΦ", "Φ"), **dict.fromkeys("ψΨ", "Ψ"),
    **dict.fromkeys("ωώΩΏ", "Ω"),
    # the others become the look-alike Latin capital
    **dict.fromkeys("αάΑΆ", "A"), **dict.fromkeys("βΒ", "B"), **dict.fromkeys("εέΕΈ", "E"),
    **dict.fromkeys("ζΖ", "Z"), **dict.fromkeys("ηήΗΉ", "H"), **dict.fromkeys("ιίϊΐΙΊΪ", "I"),
    **dict.fromkeys("κΚ", "K"), **dict.fromkeys("μΜ", "M"), **dict.fromkeys("νΝ", "N"),
    **dict.fromkeys("οόΟΌ", "O"), **dict.fromkeys("ρΡ", "P"), **dict.fromkeys("τΤ", "T"),
    **dict.fromkeys("υύϋΰΥΎΫ", "Y"), **dict.fromkeys("χΧ", "X"),
    "\u037e": ";", "\u0387": ".",  # Greek question mark, ano teleia
})

_RUSSIAN = (
    "аa бb вv гg дd еe ёyo жzh зz иi йy кk лl мm нn оo пp рr сs тt уu фf хkh цts чch шsh щshch "
    "ыy эe юyu яya"
)
_OTHER_CYRILLIC = "єye їyi іi ґg ўu ђdj ћc џdz љlj њnj јj ѓgj ќkj ѕdz"

CYRILLIC: Final = MappingProxyType(
    _with_capitals(_pairs(_RUSSIAN) | _pairs(_OTHER_CYRILLIC)) | dict.fromkeys("ъьЪЬ", "")
)

SERBIAN_CYRILLIC: Final = MappingProxyType(_with_capitals(_pairs(
    "аa бb вv гg дd ђdj еe жz зz иi јj кk лl љlj мm нn њnj оo пp рr сs тt ћc уu фf хh цc чc џdz шs"
)))

BULGARIAN_CYRILLIC: Final = MappingProxyType(_with_capitals(_pairs(
    "аa бb вv гg дd еe жzh зz иi йy кk лl мm нn оo пp рr сs тt уu фf хh цts чch шsh щsht ъa ьy "
    "юyu яya"
)))

CENTRAL_EUROPEAN: Final = MappingProxyType(_with_capitals(_pairs(
    # Polish
    "ąa ćc ęe łl ńn óo śs źz żz "
    # Czech, Slovak
    "áa čc ďd ěe íi ňn řr šs ťt úu ůu ýy žz ĺl ľl ŕr ôo "
    # Hungarian (ő ű keep the GSM umlaut)
    "őö űü "
    # Romanian
    "ăa âa îi șs şs țt ţt "
    # Croatian, Albanian
    "đdj ëe çc"
)))

BALTIC: Final = MappingProxyType(_with_capitals(_pairs(
    # Latvian
    "āa čc ēe ģg īi ķk ļl ņn šs ūu žz "
    # Lithuanian
    "ąa ęe ėe įi ųu "
    # Estonian
    "õo"
)))

PORTUGUESE: Final = MappingProxyType(_with_capitals(_pairs("áa âa ãa êe íi óo ôo õo úu çc")) | {"À": "A"})

COLOMBIAN: Final = MappingProxyType(_with_capitals(_pairs("áa íi óo úu")))

NON_UNICODE: Final = MappingProxyType({
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u00b4`", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    "\u2039": "<", "\u203a": ">",
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...", "\u2022": "-", "\u00d7": "x", "\u00f7": "/",
    **dict.fromkeys(
        "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
        "\u202f\u205f\u3000", " "
    ),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
})

# ALL: the union of the above (generic CYRILLIC wins for Cyrillic letters), plus the NFKD fallback.
ALL: Final = MappingProxyType({
    **SERBIAN_CYRILLIC, **BULGARIAN_CYRILLIC, **CYRILLIC, **GREEK, **TURKISH, **CENTRAL_EUROPEAN,
    **BALTIC, **PORTUGUESE, **COLOMBIAN, **NON_UNICODE,
})

TABLES: Final = MappingProxyType({
    "NONE": MappingProxyType({}),
    "TURKISH": TURKISH,
    "GREEK": GREEK,
    "CYRILLIC": CYRILLIC,
    "SERBIAN_CYRILLIC": SERBIAN_CYRILLIC,
    "BULGARIAN_CYRILLIC": BULGARIAN_CYRILLIC,
    "CENTRAL_EUROPEAN": CENTRAL_EUROPEAN,
    "BALTIC": BALTIC,
    "PORTUGUESE": PORTUGUESE,
    "COLOMBIAN": COLOMBIAN,
    "NON_UNICODE": NON_UNICODE,
    "ALL": ALL,
})

# Tables followed by the generic accent stripper (NFKD, only where the base letter is GSM).
NFKD_FALLBACK: Final = frozenset({"NON_UNICODE", "ALL"})

# Code-point ranges the NFKD fallback is precomputed for (Latin-1, Latin Extended A/B/Additional,
# letter-like symbols, fullwidth ASCII).
NFKD_RANGES: Final = ((0x00A0, 0x0250), (0x1E00, 0x1F00), (0x2100, 0x2150), (0xFB00, 0xFB07), (0xFF01, 0xFF5F))
