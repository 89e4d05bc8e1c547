"""RTF extraction: code pages (Shift_JIS, cp1250), Unicode escapes, and skipped destinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.rtf import rtf_text
from scanner.limits import Limits

CORPUS = [
    ("textract_rtf_raw_text.rtf", "I love word documents"),
    ("tika_testRTF.rtf", "Test d’indexation Word"),
    ("tika_testRTF-ms932.rtf", "こんにちは"),  # \ansicpg932 with \'82\'b1 ... pairs
    ("tika_testRTF-ms932.rtf", "テスト"),
    ("tika_testRTFJapanese.rtf", "ゾルゲの処刑記録"),  # \fcharset128 font, no \ansicpg
    ("tika_testRTFJapanese.rtf", "南無阿弥陀仏ヲ二唱シ"),
    ("tika_testRTFVarious.rtf", "This is the header text."),
    ("tika_testRTFVarious.rtf", "Row 2 Col 1\tRow 2 Col 2"),
    ("tika_testRTFVarious.rtf", "ゾルゲと尾崎、淡々と最期"),  # \uN escapes
    ("tika_testRTFVarious.rtf", "𐌲𐌿𐍄𐌹𐍃𐌺"),  # surrogate pairs joined
    ("tika_testRTFVarious.rtf", "This is a footnote."),
    ("tika_testRTFWindowsCodepage1250.rtf", "zażółć gęślą jaźń"),
    ("tika_testRTFWindowsCodepage1250.rtf", "ZAŻÓŁĆ GĘŚLĄ JAŹŃ"),
    ("tika_testRTFWord2010CzechCharacters.rtf", "Svitky od Mrtvého moře"),
]


def _text(source: bytes | str) -> str:
    data = source.encode("latin-1") if isinstance(source, str) else source
    return rtf_text(data, Budget(Limits()))


@pytest.mark.parametrize(("filename", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, phrase: str) -> None:
    """Each real RTF file yields readable text containing a phrase seen in it by eye."""
    assert phrase in _text((corpus_dir / filename).read_bytes())


def test_every_corpus_rtf_file_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every RTF file in the corpus."""
    assert {p.name for p in corpus_dir.glob("*.rtf")} == {name for name, _ in CORPUS}


def test_no_mojibake_in_japanese_files(corpus_dir: Path) -> None:
    """Shift_JIS bytes are decoded as pairs, so no Latin-1 mojibake or U+FFFD appears."""
    for name in ("tika_testRTF-ms932.rtf", "tika_testRTFJapanese.rtf"):
        text = _text((corpus_dir / name).read_bytes())
        assert "\ufffd" not in text
        assert "\u0082" not in text
        assert "ƒ" not in text


def test_dbcs_trail_byte_written_as_a_plain_character() -> None:
    """A Shift_JIS pair whose trail byte is ASCII ("\\'83e" = テ) is still decoded as a pair."""
    assert _text(r"{\rtf1\ansi\ansicpg932 \'83e\'83X\'83g}") == "テスト"


def test_unicode_escape_skips_its_fallback() -> None:
    """\\uN emits the character and drops the \\ucN fallback characters after it."""
    assert _text(r"{\rtf1\uc1 Fal\u12501?con}") == "Falフcon"
    assert _text(r"{\rtf1{\uc2 \u26696\'88\'c4}\u20214?}") == "案件"


def test_non_text_destinations_are_skipped() -> None:
    """Font tables, pictures, unknown \\* destinations and \\bin data never reach the text."""
    source = (
        r"{\rtf1{\fonttbl{\f0 Arial;}}{\*\generator Secret Writer;}"
        r"{\pict\pngblip 89504e47}{\*\unknownthing hidden}"
        r"{\field{\*\fldinst HYPERLINK x}{\fldrslt shown}} \bin4 ABCDafter\par}"
    )
    assert _text(source) == "shown after\n"


def test_info_title_is_kept() -> None:
    """Document information a user typed (title, subject, keywords) is scanned too."""
    assert "Project Falcon\n" in _text(r"{\rtf1{\info{\title Project Falcon}}body}")


@pytest.mark.parametrize(
    "data",
    [b"plain text, not rtf", b"{\\rtf1" + b"{" * 5000 + b"}"],
    ids=["not-rtf", "deep-nesting"],
)
def test_corrupt_input_is_corrupt(data: bytes) -> None:
    """Non-RTF input and hostile nesting depth raise ExtractionError("corrupt")."""
    with pytest.raises(ExtractionError) as caught:
        rtf_text(data, Budget(Limits()))
    assert caught.value.reason == "corrupt"
