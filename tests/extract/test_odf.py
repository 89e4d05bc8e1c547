"""OpenDocument extraction (odt/ods/odp) on real files, plus encrypted and corrupt packages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from scanner.errors import EncryptedError, ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.odf import odf_text
from scanner.limits import Limits

CORPUS = [
    ("textract_odt_raw_text.odt", "Sample OppenOffice Writer file with"),
    ("textract_odt_raw_text.odt", "tabs and  multiple spaces"),  # text:s keeps the spaces
    ("tika_testOpenOffice2.odt", "This is a sample Open Office document"),
    ("tika_testODFwithOOo3.odt", "This is a rather1 difficult test document"),
    ("tika_testODFwithOOo3.odt", "This is of course a simple footnote"),
    ("tika_testODFwithOOo3.odt", "2\ttwo embedded"),  # table inside an embedded object
    ("tika_testFooter.odt", "Here is footer text"),  # styles.xml master page
    ("tika_testFooter.odt", "Here is some text on page 2"),
    ("textract_ods_raw_text.ods", "Returns the average for the cells specified by"),
    ("textract_ods_raw_text.ods", "Statistical\tAVERAGEIF"),
    ("tika_testMasterFooter.odp", "Master footer is here"),
]


@pytest.mark.parametrize(("filename", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, phrase: str) -> None:
    """Each real ODF file yields text containing a phrase seen in it by eye."""
    assert phrase in odf_text((corpus_dir / filename).read_bytes(), Budget(Limits()))


def test_every_corpus_odf_file_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every .odt/.ods/.odp in the corpus."""
    on_disk = {p.name for ext in ("odt", "ods", "odp") for p in corpus_dir.glob(f"*.{ext}")}
    assert on_disk == {name for name, _ in CORPUS}


def _package(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members.items():
            package.writestr(name, data)
    return buffer.getvalue()


_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
)


def test_mixed_content_spacing_and_repeated_cells() -> None:
    """Spans join, text:s/text:tab separate, and a cell repeated 16384 times is read once."""
    content = (
        f"<office:document-content {_NS}><office:body><office:text>"
        "<text:p>Pro<text:span>ject</text:span> Fal<text:s/>con<text:tab/>x</text:p>"
        "<table:table><table:table-row>"
        '<table:table-cell table:number-columns-repeated="16384"><text:p>secret</text:p>'
        "</table:table-cell></table:table-row></table:table>"
        "</office:text></office:body></office:document-content>"
    ).encode()
    text = odf_text(_package({"content.xml": content}), Budget(Limits()))
    assert "Project Fal con\tx" in text
    assert text.count("secret") == 1


def test_encrypted_package_is_reported_as_encrypted() -> None:
    """A manifest declaring encryption-data makes the package EncryptedError, not corrupt."""
    manifest = (
        b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/>'
        b"</manifest:file-entry></manifest:manifest>"
    )
    data = _package({"META-INF/manifest.xml": manifest, "content.xml": b"\x8f\x01binary"})
    with pytest.raises(EncryptedError):
        odf_text(data, Budget(Limits()))


@pytest.mark.parametrize(
    "data",
    [b"not a zip at all", _package({"content.xml": b"<office:document-content><broken"})],
    ids=["not-zip", "broken-xml"],
)
def test_corrupt_input_is_reported_as_corrupt(data: bytes) -> None:
    """Garbage and malformed XML raise ExtractionError("corrupt")."""
    with pytest.raises(ExtractionError) as caught:
        odf_text(data, Budget(Limits()))
    assert caught.value.reason == "corrupt"
