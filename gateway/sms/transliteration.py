"""Apply a transliteration table to the characters an encoding configuration cannot carry."""

from __future__ import annotations

import unicodedata
from types import MappingProxyType
from typing import Final

from .charsets import ALL_GSM_CONFIGS, Config
from .transliteration_tables import NFKD_FALLBACK, NFKD_RANGES, TABLES

TRANSLITERATIONS: Final = frozenset(TABLES)


def _nfkd_table(charset: frozenset[str]) -> dict[str, str]:
    """Accent stripping by NFKD, for characters whose decomposition (minus marks) is all in charset."""
    table: dict[str, str] = {}
    for lo, hi in NFKD_RANGES:
        for cp in range(lo, hi):
            char = chr(cp)
            if char in charset:
                continue
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            if base and base != char and all(c in charset for c in base):
                table[char] = base
    return table


def _translate_table(name: str, config: Config) -> MappingProxyType[int, str]:
    """str.translate table for ``name`` restricted to characters ``config`` cannot encode."""
    source = dict(TABLES[name])
    if name in NFKD_FALLBACK:
        source = _nfkd_table(config.charset) | source
    return MappingProxyType({ord(c): r for c, r in source.items() if c not in config.charset})


# (transliteration, configuration key) -> translate table; built once, read-only.
_TRANSLATE: Final = MappingProxyType({
    (name, config.key): _translate_table(name, config)
    for name in TABLES
    if name != "NONE"
    for config in ALL_GSM_CONFIGS
})


def transliterate(text: str, transliteration: str | None, config: Config) -> str:
    """``text`` with the characters ``config`` cannot encode replaced per the named table."""
    if transliteration is None or transliteration == "NONE":
        return text
    return text.translate(_TRANSLATE[transliteration, config.key])
