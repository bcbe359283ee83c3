"""Phone numbers: national ones made international with a default country, and the international check
the bridge and the sandbox share (Google's libphonenumber metadata, through ``phonenumbers``).

How a written number is read (docs/configuration.md, "Numbers"):

- ``+41 79 302 67 27``, ``0041 79 302 67 27`` and ``41793026727`` are international: Infobip's own
  convention is digits with the country code and without ``+``, and legacy apps rely on it, so bare digits
  are never re-read as national. ``+41 (0)79 …`` drops the bracketed trunk ``0``.
- A single leading ``0`` (``079 302 67 27``, ``(079) 302-67-27``) is a trunk prefix: the number is national.
  With a default country it is converted (``phonenumbers.parse`` with that region) and must be a valid
  number of that country; without one it is refused, never forwarded as ``0793026727``.
- An international number must begin with an assigned country calling code and have a length possible for
  that country (``is_possible_number``: lengths only, so new number ranges are not refused); Infobip
  rejects the rest as ``REJECTED_INVALID_DESTINATION``, and so does the sandbox.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, ValidationResult

_SEP = re.compile(r"[\s\-./()]")
_TRUNK = re.compile(r"\(0\)")
REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)  # ISO 3166 codes libphonenumber knows (CH, LI, GB…)
_LENGTH = {
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has an impossible length",
}


def compact(raw: str) -> str:
    """``raw`` without spaces, dashes, dots and brackets (a ``(0)`` after an international prefix dropped)."""
    v = raw.strip()
    if v.startswith(("+", "00")):
        v = _TRUNK.sub("", v)
    return _SEP.sub("", v)


def is_national(raw: str, compacted: str | None = None) -> bool:
    """A number written with a trunk ``0`` (``079 302 67 27``), not ``00``/``+`` (international)."""
    c = compact(raw) if compacted is None else compacted
    return c.startswith("0") and not c.startswith("00") and c[1:].isdigit()


def digits_of(raw: str, country: str | None, hint: str = "") -> tuple[str | None, str | None]:
    """(international digits, None) or (None, reason): the ``+``/``00`` prefix dropped, a national number
    converted with ``country`` (an ISO code) or refused; digits not checked further (see :func:`reason`).
    ``hint`` ends the refusal of a national number without a country (the bridge: how to set one)."""
    c = raw if raw.isdigit() and raw.isascii() else compact(raw)  # the common case: digits already
    if is_national(raw, c):
        if not country:
            return None, (f"{raw!r} is a national number (it starts with 0), not an international one: write it "
                          f"with its country code, e.g. 41793026727{hint}")
        try:
            number = phonenumbers.parse(raw, country)
        except NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number_for_region(number, country):
            return None, f"{raw!r} is not a valid phone number of {country} (the default country)"
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:], None
    if c.startswith("+"):
        c = c[1:]
    elif c.startswith("00"):
        c = c[2:]
    if not c.isdigit() or not c.isascii():
        return None, f"{raw!r} is not a phone number in international format (digits only, e.g. 41793026727)"
    return c, None


def _fast_possible(digits: str) -> bool:
    """Whether international ``digits`` have a length libphonenumber calls possible, read straight from its
    metadata: the country code is the first 1 to 3 digits that are one (libphonenumber's own rule). ``parse``
    costs ~90 µs a number, which a 10,000-destination send would pay on each check; False sends the number
    down the exact path."""
    if digits[:1] in ("", "0"):
        return False
    for n in (1, 2, 3):
        cc = int(digits[:n])
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc)
        if regions:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
            return meta is not None and len(digits) - n in meta.general_desc.possible_length
    return False


def _possible(result: int) -> bool:
    return result in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY)


def reason(raw: str, digits: str) -> str | None:
    """Why ``digits`` (international, without ``+``) cannot be a destination, or None."""
    if _fast_possible(digits):
        return None
    try:  # the slow, exact path for what the fast one refuses (parse also drops a written trunk 0: +32 0…)
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        number = None
    if number is None:
        return f"{raw!r} does not begin with a country calling code (41 for Switzerland, 44 for the UK…)"
    result = phonenumbers.is_possible_number_with_reason(number)
    if _possible(result):
        return None
    region = phonenumbers.region_code_for_country_code(number.country_code)
    return f"{raw!r} {_LENGTH.get(result, 'is not possible')} for a number of +{number.country_code} ({region})"


def search_form(raw: str) -> str:
    """A number as the store keeps it, for searching: ``+41 79…``, ``0041 79…`` and ``4179…`` are one number;
    anything that is not a phone number (an alphanumeric sender) comes back stripped, as given."""
    digits, _ = digits_of(raw, None)
    return digits if digits else raw.strip()


def region(raw: str) -> str | None:
    """``raw`` as a supported ISO region code (``ch`` → ``CH``), or None."""
    code = raw.strip().upper()
    return code if code in REGIONS else None


def in_region(digits: str, region_code: str) -> bool:
    """Whether international ``digits`` belong to ``region_code`` (an ISO code): its calling code, and for a
    code several regions share (+1, +7, +44…) the region the number's own ranges belong to."""
    cc = phonenumbers.country_code_for_region(region_code)
    if not cc or not digits.startswith(str(cc)):
        return False
    if len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())) == 1:
        return True
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits)) == region_code
    except NumberParseException:
        return False


def is_country_code_prefix(digits: str) -> bool:
    """Whether ``digits`` starts with an assigned country calling code, or is the start of one."""
    codes = [str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    return any(digits.startswith(cc) or cc.startswith(digits) for cc in codes)
