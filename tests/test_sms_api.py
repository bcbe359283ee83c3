"""Public API of gateway.sms: preview_response shape, validation, transliteration, shift tables."""

from __future__ import annotations

import pytest

from gateway.sms import LANGUAGE_CODES, TRANSLITERATIONS, Analysis, analyse, preview_response, sms_count
from gateway.sms.transliteration_tables import TABLES

SEED = "Let's see how many characters will remain unused in this message."


def test_seed_example() -> None:
    result = analyse(SEED)
    assert (result.message_count, result.characters_remaining) == (1, 95)
    assert preview_response(SEED) == {
        "originalText": SEED,
        "previews": [{"textPreview": SEED, "messageCount": 1, "charactersRemaining": 95, "configuration": {}}],
    }


def test_preview_response_with_configuration() -> None:
    body = preview_response("Hello", "TR", "TURKISH")
    assert [p["configuration"] for p in body["previews"]] == [
        {},
        {"language": {"languageCode": "TR"}, "transliteration": "TURKISH"},
    ]
    assert [p["charactersRemaining"] for p in body["previews"]] == [155, 150]
    only_translit = preview_response("ΑΒΓ", transliteration="GREEK")
    assert only_translit["previews"][1] == {
        "textPreview": "ABΓ",
        "messageCount": 1,
        "charactersRemaining": 157,
        "configuration": {"transliteration": "GREEK"},
    }
    assert only_translit["previews"][0]["textPreview"] == "ΑΒΓ"
    only_language = preview_response("Hello", "ES")
    assert only_language["previews"][1]["configuration"] == {"language": {"languageCode": "ES"}}


def test_valid_values() -> None:
    assert frozenset({"NONE", "TR", "ES", "PT", "AUTODETECT"}) == LANGUAGE_CODES
    assert frozenset(TABLES) == TRANSLITERATIONS
    assert {"NONE", "ALL", "NON_UNICODE", "GREEK", "BULGARIAN_CYRILLIC"} <= TRANSLITERATIONS


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [({"language_code": "DE"}, "DE"), ({"language_code": "tr"}, "tr"), ({"transliteration": "KLINGON"}, "KLINGON")],
)
def test_invalid_values_raise(kwargs: dict, bad: str) -> None:
    for func in (analyse, sms_count, preview_response):
        with pytest.raises(ValueError, match=bad) as info:
            func("x", **kwargs)
        assert "TR" in str(info.value) or "TURKISH" in str(info.value)


def test_spanish_has_no_locking_shift() -> None:
    with pytest.raises(ValueError, match="ES"):
        analyse("x", "ES", shift="locking")


def test_none_values_are_no_ops() -> None:
    assert analyse("ça va", "NONE", "NONE") == analyse("ça va")
    assert analyse("ça va").encoding == "UCS2"


def test_analysis_is_frozen() -> None:
    result = analyse("Hello")
    assert isinstance(result, Analysis)
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]


def test_greek_infobip_fixture_fragment() -> None:
    result = analyse("Ως Μεγαρικό ψήφισμα", transliteration="GREEK")
    assert result.text == "ΩΣ MEΓAPIKO ΨHΦIΣMA"
    assert result.encoding == "GSM7"


@pytest.mark.parametrize(
    ("text", "translit", "expected"),
    [
        ("“Quote” – it’s… done", "NON_UNICODE", "\"Quote\" - it's... done"),
        ("a\tb\u00a0c\u200bd", "NON_UNICODE", "a b cd"),
        ("Łódź, Kraków", "CENTRAL_EUROPEAN", "Lodz, Krakow"),
        ("Győr Szőke", "CENTRAL_EUROPEAN", "Györ Szöke"),
        ("Rīga, Šiauliai, Tõnu", "BALTIC", "Riga, Siauliai, Tonu"),
        ("Ђорђе Жељко", "SERBIAN_CYRILLIC", "Djordje Zeljko"),
        ("Щастие", "BULGARIAN_CYRILLIC", "Shtastie"),
        ("Щука", "CYRILLIC", "Shchuka"),
        ("São João, ação", "PORTUGUESE", "Sao Joao, acao"),
        ("Bogotá, Medellín", "COLOMBIAN", "Bogota, Medellin"),
        ("Ελλάδα Привет Şişli “x” ﬁ", "ALL", "EΛΛAΔA Privet Sisli \"x\" fi"),
        ("plain € text", "ALL", "plain € text"),
    ],
)
def test_transliteration_tables(text: str, translit: str, expected: str) -> None:
    result = analyse(text, transliteration=translit)
    assert result.text == expected
    assert result.encoding == "GSM7"


def test_transliteration_keeps_what_the_active_alphabet_encodes() -> None:
    assert analyse("Şişli ü", "TR", "TURKISH").text == "Şişli ü"
    assert analyse("Şişli ü", None, "TURKISH").text == "Sisli ü"
    assert analyse("Ação", "PT", "PORTUGUESE").text == "Ação"


def test_language_tables() -> None:
    pt = analyse("ª∞º", "PT")  # only the Portuguese locking table has these
    assert (pt.encoding, pt.locking_shift, pt.single_shift) == ("GSM7", True, False)
    assert analyse("ç", "ES").single_shift
    tr = analyse("Ğ€", "TR", shift="locking")
    assert tr.characters_remaining == 155 - 2  # € is 1 septet in the Turkish locking table
    assert analyse("€", "TR").characters_remaining == 155 - 2
    auto = analyse("Ação", "AUTODETECT")
    assert (auto.language_code, auto.encoding) == ("PT", "GSM7")
    assert analyse("ª", "AUTODETECT").encoding == "UCS2"  # AUTODETECT tries single shift only


def test_literal_escape_and_nul_are_not_gsm() -> None:
    assert analyse("a\x1bb").encoding == "UCS2"
    assert analyse("a\x00b").encoding == "UCS2"
    assert analyse("a\u00a0b").encoding == "UCS2"


def test_grapheme_safe_keeps_zwj_sequence_whole() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    text = "a" * 64 + family + "b" * 10
    safe = analyse(text, grapheme_safe=True)
    assert family in safe.segments[1]
    assert sms_count(text, grapheme_safe=True) == safe.message_count
