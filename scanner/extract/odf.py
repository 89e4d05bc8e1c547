"""Text of OpenDocument packages (.odt text, .ods spreadsheets, .odp presentations).

Owns which parts of an ODF zip hold text (``content.xml`` and the master pages in
``styles.xml``, for the document and for each embedded object such as a chart) and how ODF's
mixed content (text interleaved with spans, spaces, tabs, notes) becomes plain text. It reads
through ``ooxml``'s budget-charged zip access and must not touch files or log.
Hazard: repeated cells (``table:number-columns-repeated="16384"``) are emitted once, not
multiplied, so a tiny sheet cannot expand into gigabytes of text; an encrypted package is
reported as such instead of failing to parse.
"""

from __future__ import annotations

import zipfile

from scanner.errors import EncryptedError
from scanner.extract.budget import Budget
from scanner.extract.ooxml import XmlPart, member, natural_key, open_package, read_member

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_PRES = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"

# Block elements whose (mixed) content is one line of text.
_BLOCKS = frozenset({f"{_TEXT}p", f"{_TEXT}h", f"{_PRES}footer-decl", f"{_PRES}header-decl"})
_CELL = f"{_TABLE}table-cell"
_COVERED_CELL = f"{_TABLE}covered-table-cell"
_ROW = f"{_TABLE}table-row"
_TAGS = (*_BLOCKS, _CELL, _COVERED_CELL, _ROW)
# Empty elements that stand for whitespace inside a paragraph; without them words run together.
_SPACING = {f"{_TEXT}s": " ", f"{_TEXT}tab": "\t", f"{_TEXT}line-break": "\n"}
_SPACING_TAGS = tuple(_SPACING)


def _part_text(package: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> str:
    """Paragraphs on their own lines, table cells tab-separated and rows newline-separated.

    A note or comment is a paragraph inside a paragraph: it ends first, is read, and is then
    cleared from the tree so that the enclosing paragraph does not read it a second time.
    """
    out: list[str] = []
    append = out.append
    part = XmlPart(package, info, budget, _TAGS)
    for element in part:
        tag = element.tag
        if tag in _BLOCKS:
            for spacer in element.iter(*_SPACING_TAGS):
                spacer.text = _SPACING[str(spacer.tag)]
            append("".join(element.itertext()))
            append("\n")
            element.clear(keep_tail=True)
        elif tag in (_CELL, _COVERED_CELL):
            if out and out[-1] == "\n":
                out[-1] = "\t"
            else:
                append("\t")
        else:  # a row
            if out and out[-1] == "\t":
                out[-1] = "\n"
            else:
                append("\n")
            part.release(element)
    return "".join(out)


def _is_encrypted(package: zipfile.ZipFile, budget: Budget) -> bool:
    manifest = member(package, "META-INF/manifest.xml")
    if manifest is None:
        return False
    return b"encryption-data" in read_member(package, manifest, budget)


def odf_text(data: bytes, budget: Budget) -> str:
    """Text of an .odt/.ods/.odp (and their templates): body, headers/footers, notes,
    comments, and embedded objects."""
    with open_package(data, budget) as package:
        if _is_encrypted(package, budget):
            raise EncryptedError()
        parts = [
            info
            for info in package.infolist()
            if info.filename.rpartition("/")[2] in ("content.xml", "styles.xml")
        ]
        # The document's own parts first, content before styles, then embedded objects.
        parts.sort(
            key=lambda info: (
                "/" in info.filename,
                natural_key(info.filename.rpartition("/")[0]),
                info.filename.endswith("styles.xml"),
            )
        )
        return "\n".join(_part_text(package, info, budget) for info in parts)
