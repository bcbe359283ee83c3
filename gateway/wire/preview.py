"""Preview requests (Infobip ``POST /sms/1/preview`` shape) answered by the offline engine."""

from __future__ import annotations

from typing import Any

from ..model import ApiError
from ..sms import preview_response
from ..validate import LANGUAGE_CODES, TRANSLITERATIONS, Errors, parse_enum


def preview_body(body: Any) -> dict[str, Any]:
    """The preview response for a request body ``{text, languageCode?, transliteration?}``."""
    if not isinstance(body, dict):
        raise ApiError.bad_request("body", "must be a JSON object like {\"text\": \"...\"}")
    text = body.get("text")
    if not isinstance(text, str) or text == "":
        raise ApiError.bad_request("text", "is required and must be a non-empty string")
    errs = Errors()
    lang = parse_enum("languageCode", body.get("languageCode"), LANGUAGE_CODES, errs)
    translit = parse_enum("transliteration", body.get("transliteration"), TRANSLITERATIONS, errs)
    errs.raise_if_any()
    return preview_response(text, lang, translit)
