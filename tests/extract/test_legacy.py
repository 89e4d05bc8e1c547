"""Legacy Office extraction (.doc piece tables, .ppt records, .xls via xlrd) on real files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.errors import EncryptedError, ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.legacy import doc_text, ppt_text, sniff_ole, xls_text
from scanner.limits import Limits

EXTRACTORS: dict[str, Callable[[bytes, Budget], str]] = {
    "doc": doc_text,
    "xls": xls_text,
    "ppt": ppt_text,
}

CORPUS = [
    ("poi_Bug34898.doc", "ディレクトリ"),  # UTF-16 piece
    ("textract_doc_raw_text.doc", "I love word documents"),  # cp1252 ("compressed") piece
    ("tika_testWORD.doc", "This is the header for our document"),
    ("tika_testWORD.doc", "This document includes text that is BOLD and ITALIC."),
    ("tika_testWORD6.doc", "The quick brown fox jumps over the lazy dog"),  # Word 6.0
    ("tika_testWORD_various.doc", "ゾルゲと尾崎、淡々と最期"),
    ("tika_testWORD_various.doc", "Row 1 Col 1\tRow 1 Col 2\tRow 1 Col 3"),
    ("tika_testWORD_various.doc", "This is a hyperlink"),  # field result kept
    ("poi_61287.xls", "上海大众汽车石汇销售服务有限公司"),
    ("poi_SampleSS.xls", "I'm in bold blue, on a yellow background"),
    ("textract_xls_raw_text.xls", "Returns the average for the cells specified by"),
    ("tika_testEXCEL.xls", "Sample Excel Worksheet - Numbers and their Squares"),
    ("tika_testEXCEL.xls", "15\t225"),  # integral numbers without ".0"
    ("tika_testEXCEL_phonetic.xls", "本田車株式会社"),
    ("poi_basic_test_ppt_file.ppt", "These are the notes on page two"),  # speaker notes
    ("poi_basic_test_ppt_file.ppt", "It has several blocks of text"),
    ("tika_testPPT.ppt", "Sample Powerpoint Slide"),
    ("tika_testPPT_various.ppt", "ゾルゲと尾崎、淡々と最期"),
    ("tika_testPPT_various.ppt", "Row 2 Col 3"),
]


def _extract(path: Path) -> str:
    return EXTRACTORS[path.suffix[1:]](path.read_bytes(), Budget(Limits()))


@pytest.mark.parametrize(("filename", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, phrase: str) -> None:
    """Each real legacy Office file yields text containing a phrase seen in it by eye."""
    assert phrase in _extract(corpus_dir / filename)


def test_every_corpus_legacy_file_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every .doc/.xls/.ppt in the corpus (Word 6 included)."""
    on_disk = {p.name for ext in EXTRACTORS for p in corpus_dir.glob(f"*.{ext}")}
    assert on_disk == {name for name, _ in CORPUS}


def test_field_instructions_are_dropped(corpus_dir: Path) -> None:
    """Field codes (HYPERLINK "...", PAGE) are not text; their displayed results are."""
    text = _extract(corpus_dir / "tika_testWORD_various.doc")
    assert "HYPERLINK" not in text
    assert "\x13" not in text
    assert "\x14" not in text
    assert "\x15" not in text


def test_ppt_tag_names_are_not_text(corpus_dir: Path) -> None:
    """PowerPoint's own programmable-tag names (___PPT10) are not reported as slide text."""
    assert "___PPT" not in _extract(corpus_dir / "poi_basic_test_ppt_file.ppt")


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("tika_testWORD.doc", "doc"),
        ("tika_testEXCEL.xls", "xls"),
        ("tika_testPPT.ppt", "ppt"),
        ("tika_test-outlook2003.msg", "msg"),
        ("tika_testWORD.docx", None),
    ],
)
def test_sniff_ole(corpus_dir: Path, filename: str, kind: str | None) -> None:
    """sniff_ole tells the OLE formats apart by their streams, and ignores non-OLE files."""
    assert sniff_ole((corpus_dir / filename).read_bytes()) == kind


def _with_encrypted_flag(doc: bytes) -> bytes:
    """The .doc with fEncrypted set in its FIB (the WordDocument stream starts on a sector)."""
    data = bytearray(doc)
    for offset in range(512, len(data), 512):
        if data[offset : offset + 2] == b"\xec\xa5":
            data[offset + 0x0B] |= 0x01  # fEncrypted is bit 8 of the flags word at 0x0A
            return bytes(data)
    raise AssertionError("no FIB found")


def test_encrypted_doc_is_encrypted(corpus_dir: Path) -> None:
    """A .doc whose FIB says it is encrypted raises EncryptedError instead of showing noise."""
    data = _with_encrypted_flag((corpus_dir / "tika_testWORD.doc").read_bytes())
    with pytest.raises(EncryptedError):
        doc_text(data, Budget(Limits()))


@pytest.mark.parametrize("extract", list(EXTRACTORS.values()), ids=list(EXTRACTORS))
@pytest.mark.parametrize(
    "data",
    [b"not an OLE file", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600],
    ids=["not-ole", "broken-ole"],
)
def test_corrupt_input_is_corrupt(extract: Callable[[bytes, Budget], str], data: bytes) -> None:
    """Garbage and broken OLE containers raise ExtractionError("corrupt")."""
    with pytest.raises(ExtractionError) as caught:
        extract(data, Budget(Limits()))
    assert caught.value.reason == "corrupt"


def test_wrong_ole_format_is_corrupt(corpus_dir: Path) -> None:
    """A .xls handed to the .doc reader (no WordDocument stream) is corrupt, not a crash."""
    with pytest.raises(ExtractionError):
        doc_text((corpus_dir / "tika_testEXCEL.xls").read_bytes(), Budget(Limits()))
    with pytest.raises(ExtractionError):
        ppt_text((corpus_dir / "tika_testWORD.doc").read_bytes(), Budget(Limits()))
