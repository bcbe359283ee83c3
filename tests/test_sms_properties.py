"""Property tests (hypothesis) for the segmentation invariants of gateway.sms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sms import analyse, sms_count
from gateway.sms.charsets import UCS2
from gateway.sms.gsm_tables import DEFAULT_ALPHABET, ESC
from gateway.sms.preview import choose
from gateway.sms.segmentation import part_units

BASIC = [c for c in DEFAULT_ALPHABET if c != ESC]
EXTENSION = list("\f^{}\\[~]|€")
NATIONAL = list("ĞİŞçğışÁÍÓÚáíóúêÔôÃÕâÂªº∞`")
OTHER = ["ж", "Ω", "’", "\t", "😀", "🇮🇹", "\U0001f468\u200d\U0001f469", "e\u0301", "\U0001d538"]

alphabet = st.sampled_from(BASIC + EXTENSION * 3 + NATIONAL + OTHER)
texts = st.lists(alphabet, max_size=420).map("".join)
gsm_texts = st.lists(st.sampled_from(BASIC + EXTENSION * 5), max_size=420).map("".join)
languages = st.sampled_from([None, "TR", "ES", "PT", "AUTODETECT"])
shifts = st.sampled_from([None, "single", "locking", "both"])


def _config(text: str, language: str | None, shift: str | None = None):
    return choose(text, language, shift=shift)[1]


def _capacity(result, config) -> int:
    return config.single_cap if result.message_count == 1 else config.multi_cap


@settings(max_examples=300, deadline=None)
@given(texts, languages, st.booleans())
def test_segments_join_back_and_fit(text: str, language: str | None, grapheme_safe: bool) -> None:
    result = analyse(text, language, grapheme_safe=grapheme_safe)
    config = _config(text, language)
    assert "".join(result.segments) == result.text == text
    assert result.message_count == len(result.segments) >= 1
    cap = _capacity(result, config)
    assert all(part_units(part, config) <= cap for part in result.segments)
    assert result.characters_remaining == cap - part_units(result.segments[-1], config)
    assert sms_count(text, language, grapheme_safe=grapheme_safe) == result.message_count


@settings(max_examples=300, deadline=None)
@given(texts, languages)
def test_pairs_are_never_split(text: str, language: str | None) -> None:
    """No part starts inside an escape pair or a surrogate pair: unit totals are conserved and every
    part is valid on its own (ESC pairs / surrogate pairs are whole code points of the part)."""
    result = analyse(text, language)
    config = _config(text, language)
    assert sum(part_units(p, config) for p in result.segments) == part_units(text, config)
    for part in result.segments:
        assert ESC not in part
        data = part.encode("utf-16-le")  # raises on a lone surrogate
        assert data.decode("utf-16-le") == part
    if config.encoding == UCS2:
        # a part ends one unit short only when the next character is a surrogate pair
        for part, nxt in zip(result.segments, result.segments[1:], strict=False):
            if part_units(part, config) < config.multi_cap and nxt:
                assert ord(nxt[0]) > 0xFFFF or len(result.segments) == 1
    else:
        for part, nxt in zip(result.segments, result.segments[1:], strict=False):
            if part_units(part, config) < config.multi_cap:
                assert nxt[0] in config.double


def _greedy_reference(text: str, config) -> list[str]:
    """Obvious per-character greedy split, the oracle for the fast splitter."""
    cost = {c: (2 if (c in config.double or (config.encoding == UCS2 and ord(c) > 0xFFFF)) else 1) for c in text}
    if sum(cost[c] for c in text) <= config.single_cap:
        return [text]
    parts, current, used = [], "", 0
    for c in text:
        if used + cost[c] > config.multi_cap:
            parts.append(current)
            current, used = "", 0
        current += c
        used += cost[c]
    return [*parts, current] if current else parts


@settings(max_examples=300, deadline=None)
@given(texts, languages, shifts)
def test_split_matches_greedy_reference(text: str, language: str | None, shift: str | None) -> None:
    if language in (None, "AUTODETECT", "ES") and shift is not None:
        shift = None
    result = analyse(text, language, shift=shift)
    assert list(result.segments) == _greedy_reference(result.text, _config(text, language, shift))


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from([None, "TR", "ES", "PT"]))
def test_zero_remaining_iff_one_more_unit_adds_a_part(text: str, language: str | None) -> None:
    """charactersRemaining == 0 exactly when one more 1-unit character ('a': one septet in every GSM
    table, one unit in UCS-2) would add a part."""
    result = analyse(text, language)
    longer = analyse(text + "a", language)
    assert longer.encoding == result.encoding
    assert (result.characters_remaining == 0) == (longer.message_count > result.message_count)


@settings(max_examples=200, deadline=None)
@given(gsm_texts)
def test_remaining_one_then_escape_char_adds_a_part(text: str) -> None:
    result = analyse(text)
    assert result.encoding == "GSM7"
    if result.characters_remaining == 1:
        assert analyse(text + "€").message_count == result.message_count + 1
    if result.characters_remaining >= 2:
        assert analyse(text + "€").message_count == result.message_count


@settings(max_examples=300, deadline=None)
@given(
    texts | st.text(max_size=300),
    st.sampled_from([None, "NONE", "TR", "ES", "PT", "AUTODETECT"]),
    st.sampled_from([None, "NONE", "TURKISH", "GREEK", "CYRILLIC", "NON_UNICODE", "ALL", "PORTUGUESE"]),
)
def test_sms_count_matches_analyse(text: str, language: str | None, translit: str | None) -> None:
    result = analyse(text, language, translit)
    assert sms_count(text, language, translit) == result.message_count
    assert "".join(result.segments) == result.text
