"""Every vector in tests/data/sms-vectors.json (copied from the shared reference) passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.sms import analyse, preview_response, sms_count
from gateway.sms.preview import choose
from gateway.sms.segmentation import part_units

VECTORS = json.loads((Path(__file__).parent / "data" / "sms-vectors.json").read_text(encoding="utf-8"))


def _options(vector: dict) -> tuple[tuple, dict]:
    args = (vector["text"], vector["languageCode"], vector.get("transliteration"))
    return args, {"shift": vector.get("shift"), "grapheme_safe": vector.get("graphemeSafe", False)}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(vector: dict) -> None:
    args, kwargs = _options(vector)
    result = analyse(*args, **kwargs)
    _, config = choose(*args, shift=kwargs["shift"])
    assert result.encoding == vector["encoding"]
    assert result.message_count == vector["messageCount"]
    assert result.characters_remaining == vector["charactersRemaining"]
    assert [part_units(p, config) for p in result.segments] == vector["segmentUnits"]
    assert "".join(result.segments) == result.text
    if "textPreview" in vector:
        assert result.text == vector["textPreview"]
    if "resolvedLanguageCode" in vector:
        assert result.language_code == vector["resolvedLanguageCode"]
    if vector.get("shift") in ("locking", "both"):
        assert result.locking_shift
        assert result.single_shift == (vector["shift"] == "both")
    assert sms_count(*args, **kwargs) == vector["messageCount"]


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if not v.get("shift") and not v.get("graphemeSafe")], ids=lambda v: v["id"]
)
def test_vector_through_preview_response(vector: dict) -> None:
    body = preview_response(vector["text"], vector["languageCode"], vector.get("transliteration"))
    configured = body["previews"][-1]
    assert configured["messageCount"] == vector["messageCount"]
    assert configured["charactersRemaining"] == vector["charactersRemaining"]
    if "textPreview" in vector:
        assert configured["textPreview"] == vector["textPreview"]


def test_flag_boundary_code_point_mode() -> None:
    """The graphemeSafe twin without grapheme safety: the flag's two code points may be split."""
    vector = next(v for v in VECTORS if v["id"] == "ucs2-flag-boundary-grapheme")
    result = analyse(vector["text"])
    assert (result.message_count, result.characters_remaining) == (2, 1)
    assert "".join(result.segments) == vector["text"]
