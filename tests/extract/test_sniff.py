"""Type sniffing: magic bytes beat labels, labels decide only between text formats."""

from __future__ import annotations

import io
import zipfile

import pytest

from scanner.extract.sniff import Kind, sniff


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name.replace("__", "/"), data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "ctype", "kind"),
    [
        (_zip(a=b"x"), "a.bin", "application/octet-stream", Kind.ZIP),
        (_zip(a=b"x"), "report.txt", "text/plain", Kind.ZIP),
        (b"%PDF-1.7\n...", "x", "application/octet-stream", Kind.PDF),
        (b"{\\rtf1\\ansi hello}", "x.doc", None, Kind.RTF),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "x.txt", "text/plain", Kind.MEDIA),
        (b"\xff\xd8\xff\xe0", "photo", None, Kind.MEDIA),
        (b"anything", "clip.mp4", None, Kind.MEDIA),
        (b"From: a@b\nTo: c@d\nSubject: s\n\nbody", "fwd", "application/octet-stream", Kind.EML),
        (b"Received: x\nFrom: a@b\n\nbody", "x.bin", None, Kind.EML),
        (b"<html><body>x</body></html>", "x", "application/octet-stream", Kind.HTML),
        (b"hello world", "notes", None, Kind.TEXT),
        (b"a,b\n1,2\n", "x.csv", "application/vnd.ms-excel", Kind.TEXT),
        (b"\x78\x9f\x3e\x22\x00\x00", "winmail.dat", "application/ms-tnef", Kind.TNEF),
        (bytes(range(256)) * 64, "blob", "application/octet-stream", Kind.UNKNOWN),
    ],
)
def test_sniff(data: bytes, name: str, ctype: str | None, kind: Kind) -> None:
    """Each sample is classified by content first, name and label second."""
    assert sniff(data, name, ctype) is kind


def test_ooxml_and_odf_recognised_inside_zip() -> None:
    """Office zips are told apart by their member names and mimetype entry."""
    docx = _zip(**{"[Content_Types].xml": b"<x/>", "word__document.xml": b"<x/>"})
    xlsx = _zip(**{"[Content_Types].xml": b"<x/>", "xl__workbook.xml": b"<x/>"})
    pptx = _zip(**{"[Content_Types].xml": b"<x/>", "ppt__presentation.xml": b"<x/>"})
    odt = _zip(mimetype=b"application/vnd.oasis.opendocument.text", **{"content.xml": b"<x/>"})
    assert [sniff(d, "f", None) for d in (docx, xlsx, pptx, odt)] == [
        Kind.DOCX,
        Kind.XLSX,
        Kind.PPTX,
        Kind.ODF,
    ]
