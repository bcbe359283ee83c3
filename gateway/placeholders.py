"""Detection of unsubstituted placeholders: a value the legacy app forgot to fill in.

Each style is a named regular expression. Address fields (destinations, sender) use every style,
since a phone number never contains braces or dollars; free text uses only the unambiguous ones, so
real alert texts such as ``[ALARM] Pump 3 <critical>`` still go through. The lists are configurable
per caller and per template, and can be switched off per parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"[A-Za-z_][A-Za-z0-9_]*"

STYLES: dict[str, str] = {
    "percent": rf"%{_ID}(?:\.{_ID})*%",  # %phoneNumber%
    "percent_prefix": rf"%{_ID}",  # %SMSNUMBER (PRTG)
    "prtg": r"%SMS[A-Za-z0-9_]*",  # PRTG's %SMSTEXT, %SMSNUMBER in free text
    "nagios": r"\$[A-Z][A-Z0-9_]*\$",  # $CONTACTPAGER$
    "dollar_brace": rf"\$\{{\s*{_ID}(?:\.{_ID})*\s*\}}",  # ${name}
    "dollar": rf"\${_ID}",  # $name, $recipient (OpManager)
    "dollar_only": rf"^\s*\${_ID}\s*$",  # a value that is nothing but $NAME
    "double_brace": rf"\{{\{{\s*{_ID}(?:\.{_ID})*\s*\}}\}}",  # {{ name }}
    "zabbix": r"\{[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+\}",  # {ALERT.SENDTO}
    "brace": rf"\{{{_ID}(?:\.{_ID})*\}}",  # {name}
    "bracket": rf"\[{_ID}\]",  # [name]
    "angle": rf"<{_ID}>",  # <name>
}

ADDRESS_DEFAULT: tuple[str, ...] = (
    "percent", "percent_prefix", "nagios", "dollar_brace", "dollar", "double_brace", "zabbix", "brace",
    "bracket", "angle",
)
TEXT_DEFAULT: tuple[str, ...] = ("percent", "prtg", "double_brace", "dollar_brace", "nagios", "zabbix", "dollar_only")


@dataclass(frozen=True)
class Detector:
    """A compiled set of styles; ``find`` returns the first placeholder seen, or None."""

    styles: tuple[str, ...]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, styles: tuple[str, ...] | list[str]) -> Detector:
        unknown = [s for s in styles if s not in STYLES]
        if unknown:
            raise ValueError(f"unknown placeholder style(s) {unknown}; known: {sorted(STYLES)}")
        styles = tuple(styles)
        if not styles:
            return cls(styles, None)
        # Case-insensitive: ``%phonenumber%`` and ``{alert.sendto}`` count as well.
        return cls(styles, re.compile("|".join(f"(?:{STYLES[s]})" for s in styles), re.IGNORECASE))

    def find(self, value: str) -> str | None:
        if self.pattern is None or not value:
            return None
        m = self.pattern.search(value)
        return m.group(0).strip() if m else None


@dataclass(frozen=True)
class Hygiene:
    """The detectors for one caller/template: one for address fields, one for free text."""

    address: Detector
    text: Detector
    off: frozenset[str] = frozenset()  # parameter names never checked

    @classmethod
    def from_config(cls, cfg: dict | None) -> Hygiene:
        cfg = cfg or {}
        unknown = set(cfg) - {"address", "text", "off"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; known: address, text, off")
        return cls(
            Detector.of(cfg.get("address", ADDRESS_DEFAULT)),
            Detector.of(cfg.get("text", TEXT_DEFAULT)),
            frozenset(cfg.get("off", ())),
        )

    def check(self, name: str, value: str, address: bool) -> str | None:
        """The error reason for one value, or None when it is clean."""
        if name in self.off:
            return None
        seen = (self.address if address else self.text).find(value)
        if seen is None:
            return None
        return (
            f"holds the unsubstituted placeholder {seen!r}: the calling application did not fill it in "
            "(check the placeholder name in its SMS settings); nothing was sent"
        )
