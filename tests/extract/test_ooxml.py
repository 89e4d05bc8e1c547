"""OOXML extraction (docx/xlsx/pptx) on real Office files, and its defences against hostile zips."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import msoffcrypto.format.ooxml
import pytest

from scanner.errors import EncryptedError, ExtractionError, LimitExceeded
from scanner.extract import ooxml
from scanner.extract.budget import Budget
from scanner.extract.ooxml import docx_text, pptx_text, xlsx_text
from scanner.limits import Limits

EXTRACTORS: dict[str, Callable[[bytes, Budget], str]] = {
    "docx": docx_text,
    "xlsx": xlsx_text,
    "pptx": pptx_text,
}

CORPUS = [
    ("poi_IllustrativeCases.docx", "Siobhan is single and employed as a shop assistant"),
    ("poi_IllustrativeCases.docx", "Net Cash Income"),  # inside a table
    ("poi_TestDocument.docx", "This contains BOLD, ITALIC and BOTH"),
    ("textract_docx_paragraphs_and_tables.docx", "Row 2, Column 1\tRow 2, Column 2"),
    ("textract_docx_paragraphs_and_tables.docx", "Inner 2,1"),  # nested table
    ("textract_docx_raw_text.docx", "I love word documents"),
    ("tika_testWORD.docx", "This is the header for our document"),
    ("tika_testWORD.docx", "This is the footer for our document"),
    ("tika_testWORD.docx", "More of our nested table"),
    ("tika_testWORD_text_box.docx", "This text is inside of a text box in the body"),
    ("tika_testWORD_text_box.docx", "This text is inside of a text box in the footer"),
    ("tika_testWORD_various.docx", "ゾルゲと尾崎、淡々と最期"),
    ("tika_testWORD_various.docx", "This is a footnote."),
    ("tika_testWORD_various.docx", "Row 1 Col 1\tRow 1 Col 2\tRow 1 Col 3"),
    ("poi_AverageTaxRates.xlsx", "AVERAGE TAX RATES ON ANNUAL EARNINGS"),
    ("poi_SampleSS.xlsx", "I'm in bold blue, on a yellow background"),
    ("poi_SampleSS.xlsx", "cb=1\tcb=10\tcb=2\tcb=sum"),
    ("textract_xlsx_raw_text.xlsx", "Returns the average for the cells specified by"),
    ("textract_xlsx_raw_text.xlsx", "Clicking a link in this column takes you"),  # a comment
    ("tika_testEXCEL.xlsx", "Sample Excel Worksheet - Numbers and their Squares"),
    ("tika_testEXCEL_headers_footers.xlsx", "Header - For Internal Use Only"),
    ("tika_testEXCEL_headers_footers.xlsx", "Footer - Author: John Smith"),
    ("tika_testEXCEL_phonetic.xlsx", "本田車株式会社"),
    ("tika_testEXCEL_phonetic.xlsx", "大型で強い台風26号"),
    ("poi_sample.pptx", "Nunc at risus vel erat tempus posuere"),
    ("textract_pptx_raw_text.pptx", "I love PowerPoint"),
    ("textract_pptx_standardized_text.pptx", "jumps over the lazy dog"),
    ("tika_testPPT.pptx", "Rajiv Kumar Nistala"),
    ("tika_testPPT_various.pptx", "ゾルゲと尾崎、淡々と最期"),
    ("tika_testPPT_various.pptx", "Row 2 Col 1\tRow 2 Col 2"),
    ("tika_testPPT_various.pptx", "This is the footer text."),  # speaker notes
    ("tika_testWordArt.pptx", "Here is some red word Art"),
]


def _extract(path: Path, budget: Budget | None = None) -> str:
    return EXTRACTORS[path.suffix[1:]](path.read_bytes(), budget or Budget(Limits()))


@pytest.mark.parametrize(("filename", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, phrase: str) -> None:
    """Each real Office file yields text containing a phrase seen in it by eye."""
    assert phrase in _extract(corpus_dir / filename)


def test_every_corpus_ooxml_file_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every docx/xlsx/pptx in the corpus, so none goes untested."""
    on_disk = {p.name for ext in EXTRACTORS for p in corpus_dir.glob(f"*.{ext}")}
    assert on_disk == {name for name, _ in CORPUS}


def test_phonetic_guides_are_not_mixed_into_cells(corpus_dir: Path) -> None:
    """Furigana (rPh) runs are left out, so the written form of a cell stays contiguous."""
    text = _extract(corpus_dir / "tika_testEXCEL_phonetic.xlsx")
    assert "\t豊田車会社\t" in text
    assert "トヨクルマ" not in text
    assert "ニホンカイシャ" not in text


def test_streamed_parts_read_like_whole_parts(
    corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streaming path used for huge parts gives the same text as the in-memory path."""
    files = sorted(p for ext in EXTRACTORS for p in corpus_dir.glob(f"*.{ext}"))
    whole = [_extract(p) for p in files]
    monkeypatch.setattr(ooxml, "_TREE_MAX", 0)
    assert [_extract(p) for p in files] == whole


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members.items():
            package.writestr(name, data)
    return buffer.getvalue()


_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def _docx(document_xml: bytes) -> bytes:
    return _zip({"[Content_Types].xml": _CONTENT_TYPES, "word/document.xml": document_xml})


def _document(body: str) -> bytes:
    return f'<w:document xmlns:w="{_W_NS}"><w:body>{body}</w:body></w:document>'.encode()


def test_minimal_docx_paragraphs_tabs_and_breaks() -> None:
    """Paragraphs become lines and w:tab / w:br become whitespace, so words never run together."""
    body = (
        "<w:p><w:r><w:t>Project</w:t></w:r><w:r><w:t xml:space='preserve'> Falcon</w:t></w:r>"
        "</w:p><w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t></w:r></w:p>"
        "<w:p><w:del><w:r><w:delText>deleted secret</w:delText></w:r></w:del></w:p>"
    )
    assert docx_text(_docx(_document(body)), Budget(Limits())).split("\n")[:4] == [
        "Project Falcon",
        "a\tb",
        "c",
        "deleted secret",
    ]


def test_zip_bomb_in_docx_hits_the_ratio_limit() -> None:
    """A document.xml that inflates 1000-fold is refused by ratio before it is inflated."""
    bomb = _document("<w:p><w:r><w:t>" + "A" * (20 * 1024 * 1024) + "</w:t></w:r></w:p>")
    data = _docx(bomb)
    assert len(data) < 100 * 1024
    with pytest.raises(LimitExceeded) as caught:
        docx_text(data, Budget(Limits()))
    assert caught.value.reason == "max_compression_ratio"


def test_decompressed_total_is_bounded() -> None:
    """Members are charged at their declared size, so the total inflation limit trips first."""
    data = _docx(_document("<w:p><w:r><w:t>" + "word " * 20_000 + "</w:t></w:r></w:p>"))
    with pytest.raises(LimitExceeded) as caught:
        docx_text(data, Budget(Limits(max_decompressed_bytes=50_000)))
    assert caught.value.reason == "max_decompressed_bytes"


def test_too_many_entries_is_refused() -> None:
    """A package with more members than allowed is refused before any member is read."""
    members = {f"junk/{i}.xml": b"<x/>" for i in range(20)}
    data = _zip({"[Content_Types].xml": _CONTENT_TYPES, **members})
    with pytest.raises(LimitExceeded) as caught:
        docx_text(data, Budget(Limits(max_archive_entries=10)))
    assert caught.value.reason == "max_archive_entries"


def test_shared_string_amplification_is_bounded() -> None:
    """A sheet repeating one long shared string in many cells stops at the character limit."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    types = (
        b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
        b'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        b'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    )
    strings = f'<sst xmlns="{ns}"><si><t>{"x" * 10_000}</t></si></sst>'.encode()
    cells = "".join('<c t="s"><v>0</v></c>' for _ in range(1000))
    sheet = f'<worksheet xmlns="{ns}"><sheetData><row>{cells}</row></sheetData></worksheet>'
    data = _zip(
        {
            "[Content_Types].xml": types,
            "xl/sharedStrings.xml": strings,
            "xl/worksheets/sheet1.xml": sheet.encode(),
        }
    )
    with pytest.raises(LimitExceeded) as caught:
        xlsx_text(data, Budget(Limits(max_extracted_chars=1_000_000)))
    assert caught.value.reason == "max_extracted_chars"


def test_entities_are_not_expanded() -> None:
    """A billion-laughs DTD in a part is not expanded (no memory blow-up, no fake text)."""
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "lollollollollollollollollollol">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    )
    document = laughs + _document("<w:p><w:r><w:t>&d;&d;&d;&d;</w:t></w:r></w:p>")
    assert "lol" not in docx_text(_docx(document), Budget(Limits()))


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04 this is not really a zip",
        b"\x00" * 100,
        _zip({"word/document.xml": b"<w:document/>"}),  # no [Content_Types].xml
        _docx(b"<w:document><unclosed>"),
    ],
    ids=["truncated-zip", "zeros", "no-content-types", "broken-xml"],
)
def test_corrupt_input_is_reported_as_corrupt(data: bytes) -> None:
    """Garbage, truncated zips, non-OOXML zips and malformed XML raise ExtractionError."""
    with pytest.raises(ExtractionError) as caught:
        docx_text(data, Budget(Limits()))
    assert caught.value.reason == "corrupt"


def test_encrypted_docx_is_reported_as_encrypted(corpus_dir: Path) -> None:
    """A password-protected docx (an OLE wrapper, not a zip) raises EncryptedError."""
    plain = (corpus_dir / "poi_TestDocument.docx").read_bytes()
    encrypted = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(plain)).encrypt("secret", encrypted)
    for extract in EXTRACTORS.values():
        with pytest.raises(EncryptedError):
            extract(encrypted.getvalue(), Budget(Limits()))
