"""PDF text-layer extraction on real PDFs (Latin, Japanese, Chinese, Korean), plus encryption."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from scanner.errors import EncryptedError, ExtractionError, LimitExceeded
from scanner.extract.budget import Budget
from scanner.extract.pdf import pdf_text
from scanner.limits import Limits

CORPUS = [
    ("itext_japanese_text.pdf", "配当貴族指数のパフォーマンス"),
    ("pdftools_chinese.pdf", "本集團現金客戶須於交易日後"),
    ("pdftools_gangnam.pdf", "오빤 강남스타일"),
    ("pypdf_crazyones.pdf", "The round pegs in the square holes"),
    ("samplefiles_multicolumn.pdf", "Two-Column Document with Lorem Ipsum"),
    ("samplefiles_multicolumn.pdf", "adipiscing elit"),  # hyphenated across a line: rejoined
    ("textract_pdf_raw_text.pdf", "Sample text is hard"),
    ("tika_testPDF.pdf", "Apache Tika is a toolkit for detecting and extracting metadata"),
    ("tika_testPDFTwoTextBoxes.pdf", "Right column line 2"),
]


@pytest.mark.parametrize(("filename", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, phrase: str) -> None:
    """Each real PDF yields text containing a phrase seen in it by eye."""
    assert phrase in pdf_text((corpus_dir / filename).read_bytes(), Budget(Limits()))


def test_every_corpus_pdf_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every PDF in the corpus."""
    assert {p.name for p in corpus_dir.glob("*.pdf")} == {name for name, _ in CORPUS}


def _encrypted(corpus_dir: Path, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(corpus_dir / "pypdf_crazyones.pdf"))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_password_protected_pdf_is_encrypted(corpus_dir: Path) -> None:
    """A PDF that needs a password to open raises EncryptedError."""
    with pytest.raises(EncryptedError):
        pdf_text(_encrypted(corpus_dir, "open-sesame"), Budget(Limits()))


def test_owner_password_only_pdf_is_read(corpus_dir: Path) -> None:
    """A PDF with only permissions (empty user password) opens for anyone, so it is read."""
    assert "The round pegs" in pdf_text(_encrypted(corpus_dir, ""), Budget(Limits()))


@pytest.mark.parametrize("data", [b"%PDF-1.4\n garbage", b"", b"GIF89a not a pdf"])
def test_corrupt_pdf_is_corrupt(data: bytes) -> None:
    """Bytes PDFium cannot open raise ExtractionError("corrupt")."""
    with pytest.raises(ExtractionError) as caught:
        pdf_text(data, Budget(Limits()))
    assert caught.value.reason == "corrupt"


def test_text_is_bounded_by_the_character_limit(corpus_dir: Path) -> None:
    """A PDF whose text exceeds what the budget allows raises the character limit."""
    data = (corpus_dir / "samplefiles_multicolumn.pdf").read_bytes()
    with pytest.raises(LimitExceeded) as caught:
        pdf_text(data, Budget(Limits(max_extracted_chars=1000)))
    assert caught.value.reason == "max_extracted_chars"
