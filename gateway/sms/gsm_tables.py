"""3GPP TS 23.038 character tables as data: default alphabet, extension, national shift tables.

Main (locking) tables are 128-character strings indexed by septet value; position 0x1B is ESC and
carries no character. Single-shift (extension) tables map septet value -> character.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

ESC: Final = "\x1b"

# §6.2.1 default alphabet, septet 0x00..0x7F (0x1B = ESC placeholder).
DEFAULT_ALPHABET: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# §6.2.1.1 default extension table (ESC + code, 2 septets each).
DEFAULT_EXTENSION: Final = MappingProxyType({
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
})


def _single_shift(additions: dict[int, str]) -> MappingProxyType[int, str]:
    """A national single-shift table: the default extension plus the national additions."""
    return MappingProxyType({**DEFAULT_EXTENSION, **additions})


def _locking_shift(changes: dict[int, str]) -> str:
    """A national locking-shift table: the default alphabet with positions replaced."""
    table = list(DEFAULT_ALPHABET)
    for position, char in changes.items():
        table[position] = char
    return "".join(table)


# Annex A.2.x national single-shift tables (language ids 1 TR, 2 ES, 3 PT).
SINGLE_SHIFT_TABLES: Final = MappingProxyType({
    "TR": _single_shift({
        0x47: "Ğ", 0x49: "İ", 0x53: "Ş", 0x63: "ç", 0x67: "ğ", 0x69: "ı", 0x73: "ş",
    }),
    "ES": _single_shift({
        0x09: "ç", 0x41: "Á", 0x49: "Í", 0x4F: "Ó", 0x55: "Ú", 0x61: "á", 0x69: "í", 0x6F: "ó", 0x75: "ú",
    }),
    "PT": _single_shift({
        0x05: "ê", 0x09: "ç", 0x0B: "Ô", 0x0C: "ô", 0x0E: "Á", 0x0F: "á", 0x12: "Φ", 0x13: "Γ",
        0x15: "Ω", 0x16: "Π", 0x17: "Ψ", 0x18: "Σ", 0x19: "Θ", 0x1F: "Ê", 0x41: "À", 0x49: "Í",
        0x4F: "Ó", 0x55: "Ú", 0x5B: "Ã", 0x5C: "Õ", 0x61: "Â", 0x69: "í", 0x6F: "ó", 0x75: "ú",
        0x7B: "ã", 0x7C: "õ", 0x7F: "â",
    }),
})

# Annex A.3.x national locking-shift tables. Spanish has none.
LOCKING_SHIFT_TABLES: Final = MappingProxyType({
    "TR": _locking_shift({
        0x04: "€", 0x07: "ı", 0x0B: "Ğ", 0x0C: "ğ", 0x1C: "Ş", 0x1D: "ş", 0x40: "İ", 0x60: "ç",
    }),
    "PT": _locking_shift({
        0x04: "ê", 0x06: "ú", 0x07: "í", 0x08: "ó", 0x09: "ç", 0x0B: "Ô", 0x0C: "ô", 0x0E: "Á",
        0x0F: "á", 0x12: "ª", 0x13: "Ç", 0x14: "À", 0x15: "∞", 0x16: "^", 0x17: "\\", 0x18: "€",
        0x19: "Ó", 0x1A: "|", 0x1C: "Â", 0x1D: "â", 0x1E: "Ê", 0x24: "º", 0x40: "Í", 0x5B: "Ã",
        0x5C: "Õ", 0x5D: "Ú", 0x60: "~", 0x7B: "ã", 0x7C: "õ", 0x7D: "`",
    }),
})

# NLI language ids (TS 23.038 §6.2.1.2.4) as carried in the UDH IEs 0x24 / 0x25.
LANGUAGE_IDS: Final = MappingProxyType({"TR": 1, "ES": 2, "PT": 3})
