"""SMS encoding engine (placeholder until the full engine lands)."""


def sms_count(text: str, language_code: str | None = None, transliteration: str | None = None) -> int:
    n = len(text)
    return 1 if n <= 160 else -(-n // 153)
