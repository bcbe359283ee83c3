"""SMS preview engine: GSM 03.38 / UCS-2 encoding, NLI shift tables, segmentation, transliteration.

Pure library (no HTTP). Public API::

    analyse(text, language_code=None, transliteration=None) -> Analysis
    sms_count(text, language_code=None, transliteration=None) -> int
    preview_response(text, language_code=None, transliteration=None) -> dict  # POST /sms/1/preview body
    LANGUAGE_CODES, TRANSLITERATIONS  # valid option values
"""

from .preview import LANGUAGE_CODES, Analysis, analyse, preview_response, sms_count
from .transliteration import TRANSLITERATIONS

__all__ = ["LANGUAGE_CODES", "TRANSLITERATIONS", "Analysis", "analyse", "preview_response", "sms_count"]
