"""Encoding configurations (GSM-7 with optional NLI shift tables, or UCS-2) and their capacities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .gsm_tables import (
    DEFAULT_ALPHABET,
    DEFAULT_EXTENSION,
    ESC,
    LOCKING_SHIFT_TABLES,
    SINGLE_SHIFT_TABLES,
)

GSM7: Final = "GSM7"
UCS2: Final = "UCS2"

# Part capacities (septets for GSM-7, UTF-16 units for UCS-2): (single part, each part of a concatenation).
GSM_CAPACITY: Final = (160, 153)
GSM_ONE_NLI_CAPACITY: Final = (155, 149)
GSM_TWO_NLI_CAPACITY: Final = (152, 146)
UCS2_CAPACITY: Final = (70, 67)


def _char_class(chars: frozenset[str]) -> str:
    return "".join(re.escape(c) for c in sorted(chars))


@dataclass(frozen=True, slots=True, eq=False)
class Config:
    """One encoding configuration: what it can encode, what each character costs, how much fits."""

    encoding: str
    language: str | None
    locking_shift: bool
    single_shift: bool
    single_cap: int
    multi_cap: int
    charset: frozenset[str]  # every encodable character (GSM-7 only)
    double: frozenset[str]  # characters that cost 2 septets (ESC + code)
    double_chars: tuple[str, ...]  # the same, as a tuple for fast scanning
    invalid: re.Pattern[str]  # matches one character the configuration cannot encode

    def with_escapes(self, text: str) -> str:
        """The septet stream as a string: every 2-septet character preceded by ESC."""
        for char in self.double_chars:
            if char in text:
                text = text.replace(char, ESC + char)
        return text

    @property
    def key(self) -> tuple[str | None, bool, bool]:
        return (self.language, self.locking_shift, self.single_shift)


def _gsm_config(language: str | None, locking: bool, single: bool) -> Config:
    main = LOCKING_SHIFT_TABLES[language] if locking else DEFAULT_ALPHABET
    ext = SINGLE_SHIFT_TABLES[language] if single else DEFAULT_EXTENSION
    one = frozenset(main) - {ESC}
    two = frozenset(ext.values()) - one  # a character in both tables uses the 1-septet main code
    charset = one | two
    ies = int(locking) + int(single)
    caps = (GSM_CAPACITY, GSM_ONE_NLI_CAPACITY, GSM_TWO_NLI_CAPACITY)[ies]
    return Config(
        encoding=GSM7,
        language=language,
        locking_shift=locking,
        single_shift=single,
        single_cap=caps[0],
        multi_cap=caps[1],
        charset=charset,
        double=two,
        double_chars=tuple(sorted(two)),
        invalid=re.compile(f"[^{_char_class(charset)}]"),
    )


DEFAULT: Final = _gsm_config(None, False, False)

UCS2_CONFIG: Final = Config(
    encoding=UCS2,
    language=None,
    locking_shift=False,
    single_shift=False,
    single_cap=UCS2_CAPACITY[0],
    multi_cap=UCS2_CAPACITY[1],
    charset=frozenset(),
    double=frozenset(),
    double_chars=(),
    invalid=re.compile(r"(?!)"),
)

SINGLE: Final = MappingProxyType({lang: _gsm_config(lang, False, True) for lang in SINGLE_SHIFT_TABLES})
LOCKING: Final = MappingProxyType({lang: _gsm_config(lang, True, False) for lang in LOCKING_SHIFT_TABLES})
BOTH: Final = MappingProxyType({lang: _gsm_config(lang, True, True) for lang in LOCKING_SHIFT_TABLES})

# Fast path for ASCII text in the default alphabet: bytes.translate(None, delete) leaves what is not 1 septet.
DEFAULT_ASCII_SINGLE: Final = bytes(sorted(ord(c) for c in DEFAULT.charset - DEFAULT.double if ord(c) < 0x80))
DEFAULT_ASCII_DOUBLE: Final = bytes(sorted(ord(c) for c in DEFAULT.double if ord(c) < 0x80))

# Every GSM-7 configuration, in tie-break order (default first, then TR/ES/PT single, locking, both).
ALL_GSM_CONFIGS: Final = (DEFAULT, *SINGLE.values(), *LOCKING.values(), *BOTH.values())
