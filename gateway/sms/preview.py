"""Choose the cheapest encoding for a text and build the preview (Infobip POST /sms/1/preview)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .charsets import (
    BOTH,
    DEFAULT,
    DEFAULT_ASCII_DOUBLE,
    DEFAULT_ASCII_SINGLE,
    LOCKING,
    SINGLE,
    UCS2_CONFIG,
    Config,
)
from .segmentation import measure, segment
from .transliteration import TRANSLITERATIONS, transliterate

AUTODETECT: Final = "AUTODETECT"
LANGUAGE_CODES: Final = frozenset({"NONE", "TR", "ES", "PT", AUTODETECT})
SHIFTS: Final = frozenset({"single", "locking", "both"})
_AUTODETECT_ORDER: Final = ("TR", "ES", "PT")


@dataclass(frozen=True)
class Analysis:
    """What a handset receives for one text and configuration."""

    text: str  # text after transliteration (what the handset shows)
    encoding: str  # "GSM7" or "UCS2"
    language_code: str | None  # NLI table actually used ("TR"/"ES"/"PT") or None
    single_shift: bool
    locking_shift: bool
    segments: tuple[str, ...]  # exact parts
    message_count: int
    characters_remaining: int  # capacity of the last part minus the units used in it


def _check(value: str | None, allowed: frozenset[str], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"invalid {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def _candidates(language: str | None, shift: str | None) -> tuple[Config, ...]:
    """GSM-7 configurations to try for a named language, in tie-break order."""
    if language is None:
        return (DEFAULT,)
    if shift is None:
        return tuple(c for c in (SINGLE.get(language), LOCKING.get(language), BOTH.get(language)) if c)
    table = {"single": SINGLE, "locking": LOCKING, "both": BOTH}[shift]
    if language not in table:
        raise ValueError(f"language {language!r} has no {shift}-shift configuration")
    return (table[language],)


def choose(
    text: str,
    language_code: str | None = None,
    transliteration: str | None = None,
    *,
    shift: str | None = None,
) -> tuple[str, Config]:
    """Validate the options and pick (transliterated text, configuration).

    * no language: the default alphabet, else UCS-2;
    * TR/ES/PT: the NLI IE is always sent: single shift (Infobip's NLI, 155/149), or if that cannot
      encode the text locking shift, then both; ``shift`` forces one; UCS-2 if none can encode the text;
    * AUTODETECT: no IE when the default alphabet suffices, else the cheapest TR/ES/PT single shift
      (fewest parts, then most characters remaining; ties TR, ES, PT), else UCS-2.

    Transliteration applies only to the characters the candidate configuration cannot encode.
    """
    if language_code is None and transliteration is None and shift is None:
        return text, (DEFAULT if DEFAULT.invalid.search(text) is None else UCS2_CONFIG)
    _check(language_code, LANGUAGE_CODES, "languageCode")
    _check(transliteration, TRANSLITERATIONS, "transliteration")
    _check(shift, SHIFTS, "shift")
    language = None if language_code in (None, "NONE") else language_code
    if language == AUTODETECT:
        if shift is not None:
            raise ValueError("shift cannot be forced with languageCode AUTODETECT")
        return _autodetect(text, transliteration)
    candidates = _candidates(language, shift)
    for config in candidates:
        converted = transliterate(text, transliteration, config)
        if config.invalid.search(converted) is None:
            return converted, config
    return transliterate(text, transliteration, candidates[0]), UCS2_CONFIG


def _autodetect(text: str, transliteration: str | None) -> tuple[str, Config]:
    plain = transliterate(text, transliteration, DEFAULT)
    if DEFAULT.invalid.search(plain) is None:
        return plain, DEFAULT
    best: tuple[tuple[int, int], str, Config] | None = None
    for language in _AUTODETECT_ORDER:
        config = SINGLE[language]
        converted = transliterate(text, transliteration, config)
        if config.invalid.search(converted) is not None:
            continue
        count, used = measure(converted, config)
        cap = config.single_cap if count == 1 else config.multi_cap
        score = (count, used - cap)  # fewest parts, then most characters remaining
        if best is None or score < best[0]:
            best = (score, converted, config)
    if best is None:
        return plain, UCS2_CONFIG
    return best[1], best[2]


def analyse(
    text: str,
    language_code: str | None = None,
    transliteration: str | None = None,
    *,
    shift: str | None = None,
    grapheme_safe: bool = False,
) -> Analysis:
    """Transliterate, pick the cheapest encoding and split ``text`` into the parts a handset receives.

    ``shift`` ("single"/"locking"/"both") forces the NLI tables for a named language; ``grapheme_safe``
    also keeps grapheme clusters (flags, ZWJ emoji, combining accents) whole across parts.
    """
    converted, config = choose(text, language_code, transliteration, shift=shift)
    parts, last_units = segment(converted, config, grapheme_safe=grapheme_safe)
    count = len(parts)
    # Hot path: fill the frozen dataclass's __dict__ directly (its __init__ costs ~1.5 us per call in
    # object.__setattr__); equality, hashing and repr are unaffected.
    result = object.__new__(Analysis)
    vars(result).update(
        text=converted,
        encoding=config.encoding,
        language_code=config.language,
        single_shift=config.single_shift,
        locking_shift=config.locking_shift,
        segments=tuple(parts),
        message_count=count,
        characters_remaining=(config.single_cap if count == 1 else config.multi_cap) - last_units,
    )
    return result


def sms_count(
    text: str,
    language_code: str | None = None,
    transliteration: str | None = None,
    *,
    shift: str | None = None,
    grapheme_safe: bool = False,
) -> int:
    """Number of parts (same answer as ``analyse(...).message_count``), without building them."""
    if language_code is None and transliteration is None and shift is None and not grapheme_safe:
        return _default_count(text)
    if grapheme_safe:
        return analyse(text, language_code, transliteration, shift=shift, grapheme_safe=True).message_count
    converted, config = choose(text, language_code, transliteration, shift=shift)
    return measure(converted, config)[0]


def _default_count(text: str) -> int:
    """sms_count without options: ASCII through bytes.translate, the rest through one regex scan."""
    if text.isascii():
        rest = text.encode("ascii").translate(None, DEFAULT_ASCII_SINGLE)
        if not rest:  # every character is one septet
            n = len(text)
            return 1 if n <= DEFAULT.single_cap else -(-n // DEFAULT.multi_cap)
        config = UCS2_CONFIG if rest.translate(None, DEFAULT_ASCII_DOUBLE) else DEFAULT
        return measure(text, config)[0]
    return measure(text, UCS2_CONFIG if DEFAULT.invalid.search(text) else DEFAULT)[0]


def _preview(analysis: Analysis, configuration: dict[str, Any]) -> dict[str, Any]:
    return {
        "textPreview": analysis.text,
        "messageCount": analysis.message_count,
        "charactersRemaining": analysis.characters_remaining,
        "configuration": configuration,
    }


def preview_response(
    text: str, language_code: str | None = None, transliteration: str | None = None
) -> dict[str, Any]:
    """Body of Infobip's ``POST /sms/1/preview`` response: the plain preview, then the configured one."""
    configured = analyse(text, language_code, transliteration)  # validates first
    previews = [_preview(analyse(text), {})]
    if language_code is not None or transliteration is not None:
        configuration: dict[str, Any] = {}
        if language_code is not None:
            configuration["language"] = {"languageCode": language_code}
        if transliteration is not None:
            configuration["transliteration"] = transliteration
        previews.append(_preview(configured, configuration))
    return {"originalText": text, "previews": previews}
