"""Text of OOXML packages (.docx/.docm/.dotx, .xlsx/.xlsm, .pptx/.pptm) from their zip parts.

Owns the reading of an Office Open XML zip: which parts carry visible text (found by content
type in ``[Content_Types].xml``, so macro-enabled and template variants work alike), and one
pass over each part's XML with lxml, filtering the few elements that matter inside libxml2. It
also owns ``open_package``/``read_member``/``XmlPart``, the budget-charged zip and XML access
that ``odf`` reuses. It must not use python-docx/openpyxl (5x slower: full object models),
touch files, or log.
Hazard: a package is attacker-controlled zip + XML. Every member is charged to the budget
(entries, ratio, declared size) before a byte is inflated, and zipfile never yields more than the
declared size (it fails the CRC instead), so the charge is a real bound; entities are never
expanded and no DTD or network is read; parts over 8 MiB are streamed and freed as they go.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence

from lxml import etree

from scanner.errors import EncryptedError, ExtractionError, LimitExceeded
from scanner.extract.budget import Budget
from scanner.extract.encryption import raise_if_encrypted_ole

_CHUNK = 64 * 1024

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"

# --------------------------------------------------------------------------------------------
# Budget-charged zip access (shared with odf)


def open_package(data: bytes, budget: Budget) -> zipfile.ZipFile:
    """Open a zip package from memory after checking it is not an encrypted Office file."""
    # Encrypted OOXML is not a zip at all but an OLE container (EncryptionInfo/EncryptedPackage).
    raise_if_encrypted_ole(data)
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError("corrupt") from exc
    budget.check_entries(len(package.infolist()))
    return package


def _iter_member(
    package: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget
) -> Iterator[bytes]:
    """Inflate one member chunk by chunk, charged to the budget before anything is inflated."""
    budget.check_time()
    budget.check_ratio(info.compress_size, info.file_size)
    budget.charge_decompressed(info.file_size)
    try:
        with package.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk
    except RuntimeError as exc:  # zipfile's way of saying "encrypted member"
        raise EncryptedError() from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        raise ExtractionError("corrupt") from exc


def read_member(package: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> bytes:
    """Inflate one (small) member whole; the budget charge bounds its size."""
    return b"".join(_iter_member(package, info, budget))


def member(package: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    """The member called ``name``, or None; never raises for a missing name."""
    try:
        return package.getinfo(name)
    except KeyError:
        return None


# Parts up to this size are parsed whole and walked in C (twice as fast as streaming; a tree
# costs about 7x the XML size, so at most ~60 MB); larger parts are streamed with flat memory.
_TREE_MAX = 8 * 1024 * 1024


class XmlPart:
    """The elements named in ``tags`` of one XML member, in the order of their *end* tags.

    Filtering happens inside libxml2, so Python sees only the few elements that matter (a
    paragraph, a run's text, a cell) and never the formatting properties around them: this is
    where the speed over python-docx/openpyxl comes from. Iterate it once; hand each fully used
    element to ``release`` so that a streamed part frees memory as it goes.
    """

    def __init__(
        self,
        package: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        budget: Budget,
        tags: Sequence[str],
    ) -> None:
        budget.check_time()
        budget.check_ratio(info.compress_size, info.file_size)
        budget.charge_decompressed(info.file_size)
        self._package = package
        self._info = info
        self._tags = tags
        self.streamed = info.file_size > _TREE_MAX

    def __iter__(self) -> Iterator[etree._Element]:
        try:
            if self.streamed:
                with self._package.open(self._info) as stream:
                    for _event, element in etree.iterparse(
                        stream,
                        events=("end",),
                        tag=self._tags,
                        resolve_entities=False,
                        no_network=True,
                        load_dtd=False,
                        huge_tree=False,
                    ):
                        yield element
            else:
                with self._package.open(self._info) as stream:
                    data = stream.read()
                parser = etree.XMLParser(
                    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
                )
                root = etree.fromstring(data, parser)
                for _event, element in etree.iterwalk(root, events=("end",), tag=self._tags):
                    yield element
        except RuntimeError as exc:  # zipfile's way of saying "this member is encrypted"
            raise EncryptedError() from exc
        except (
            etree.LxmlError,
            zipfile.BadZipFile,
            OSError,
            ValueError,
            EOFError,
            zlib.error,
        ) as exc:
            raise ExtractionError("corrupt") from exc

    def release(self, element: etree._Element) -> None:
        """Free a fully read element and its already-read preceding siblings (streamed parts
        only: a whole tree is freed at once when the part is done)."""
        if not self.streamed:
            return
        element.clear(keep_tail=True)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key putting slide2 before slide10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


# --------------------------------------------------------------------------------------------
# Parts by content type


ContentTypes = Callable[[zipfile.ZipInfo], str]
_CT_TAGS = (f"{_CT}Override", f"{_CT}Default")


def _content_types(package: zipfile.ZipFile, budget: Budget) -> ContentTypes:
    """The content type of each part, from ``[Content_Types].xml`` (overrides, then defaults
    by extension). Content types, not names, say what a part is; a package without that member
    is not OOXML and is reported corrupt."""
    types_info = member(package, "[Content_Types].xml")
    if types_info is None:
        raise ExtractionError("corrupt")
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for element in XmlPart(package, types_info, budget, _CT_TAGS):
        if element.tag == f"{_CT}Override":
            overrides[element.get("PartName", "").lstrip("/")] = element.get("ContentType", "")
        elif element.tag == f"{_CT}Default":
            defaults[element.get("Extension", "").lower()] = element.get("ContentType", "")

    def content_type(info: zipfile.ZipInfo) -> str:
        found = overrides.get(info.filename)
        if found is None:
            found = defaults.get(info.filename.rpartition(".")[2].lower(), "")
        return found.partition(";")[0].strip()

    return content_type


def _parts_by_type(
    package: zipfile.ZipFile, types: ContentTypes, wanted: Callable[[str], int | None]
) -> list[zipfile.ZipInfo]:
    """Members whose content type ``wanted`` ranks, lower rank first, then in natural name
    order (slide2 before slide10)."""
    ranked: list[tuple[int, tuple[str | int, ...], zipfile.ZipInfo]] = []
    for info in package.infolist():
        if info.is_dir():
            continue
        rank = wanted(types(info))
        if rank is not None:
            ranked.append((rank, natural_key(info.filename), info))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [info for _rank, _key, info in ranked]


def _ranker(order: list[str]) -> Callable[[str], int | None]:
    """Rank a content type by the first suffix in ``order`` it ends with."""

    def rank(content_type: str) -> int | None:
        for index, suffix in enumerate(order):
            if content_type.endswith(suffix):
                return index
        return None

    return rank


# --------------------------------------------------------------------------------------------
# WordprocessingML and DrawingML text (docx, pptx, charts, sheet drawings)

# Runs of text; deleted text is still in the file and still leaks, so it is read too.
_TEXT_TAGS = frozenset({f"{_W}t", f"{_W}delText", f"{_A}t", f"{_P}text", f"{_C}v", f"{_S}t"})
_TAB_TAGS = frozenset({f"{_W}tab", f"{_A}tab"})
_CELL_TAGS = frozenset({f"{_W}tc", f"{_A}tc"})
_ROW_TAGS = frozenset({f"{_W}tr", f"{_A}tr"})
# Paragraph and row ends, line breaks; a tab stop definition (w:tabs/w:tab) is harmless noise.
_NEWLINE_TAGS = frozenset(
    {f"{_W}p", f"{_W}br", f"{_W}cr", f"{_A}p", f"{_A}br", f"{_P}cm", f"{_S}comment"}
)
# Once a paragraph, cell or row has ended, nothing in it is needed again.
_FREE_TAGS = frozenset({f"{_W}p", f"{_A}p"}) | _CELL_TAGS | _ROW_TAGS
_MARKUP_TAGS = tuple(_TEXT_TAGS | _TAB_TAGS | _CELL_TAGS | _ROW_TAGS | _NEWLINE_TAGS)


def _markup_text(package: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> str:
    """Visible text of one WordprocessingML/DrawingML part: tabs between cells, newlines
    between paragraphs and rows.

    Text boxes (``w:txbxContent``) come out where they are anchored; Word also writes a VML
    copy (``mc:Fallback``) of each, so text-box text may appear twice, which matching tolerates.
    """
    out: list[str] = []
    append = out.append
    part = XmlPart(package, info, budget, _MARKUP_TAGS)
    for element in part:
        tag = element.tag
        if tag in _TEXT_TAGS:
            if element.text:
                append(element.text)
        elif tag in _CELL_TAGS:
            # A cell's last paragraph break becomes the cell separator, a row's last cell
            # separator the row break, so a table reads "a<TAB>b<NL>" and cells never run together.
            if out and out[-1] == "\n":
                out[-1] = "\t"
            else:
                append("\t")
        elif tag in _ROW_TAGS:
            if out and out[-1] == "\t":
                out[-1] = "\n"
            else:
                append("\n")
        elif tag in _TAB_TAGS:
            append("\t")
        elif tag in _NEWLINE_TAGS:
            append("\n")
        if tag in _FREE_TAGS:
            part.release(element)
    return "".join(out)


_DOCX_PARTS = _ranker(
    [
        ".header+xml",
        ".document.main+xml",
        ".document.macroEnabled.main+xml",
        ".template.main+xml",
        ".template.macroEnabledTemplate.main+xml",
        ".footnotes+xml",
        ".endnotes+xml",
        ".footer+xml",
        "wordprocessingml.comments+xml",
        "drawingml.chart+xml",
        "drawingml.diagramData+xml",
    ]
)


def docx_text(data: bytes, budget: Budget) -> str:
    """Text of a Word package: headers, body (tables, text boxes), notes, footers, comments."""
    with open_package(data, budget) as package:
        parts = _parts_by_type(package, _content_types(package, budget), _DOCX_PARTS)
        return "\n".join(_markup_text(package, info, budget) for info in parts)


_PPTX_PARTS = _ranker(
    [
        "presentationml.slide+xml",
        "presentationml.notesSlide+xml",
        "presentationml.comments+xml",
        "powerpoint.comments+xml",  # modern threaded comments
        "drawingml.chart+xml",
        "drawingml.diagramData+xml",
    ]
)


def pptx_text(data: bytes, budget: Budget) -> str:
    """Text of a PowerPoint package: every slide in order, then speaker notes, then comments."""
    with open_package(data, budget) as package:
        parts = _parts_by_type(package, _content_types(package, budget), _PPTX_PARTS)
        return "\n".join(_markup_text(package, info, budget) for info in parts)


# --------------------------------------------------------------------------------------------
# SpreadsheetML

# Header/footer codes: &L &C &R sections, &P page, &"Font,Style", &12 size, &K colour, &&.
_HEADER_CODE = re.compile(r'&(?:"[^"]*"|K[0-9A-Fa-f]{6}|K\d\d[+-]\d{3}|\d+|[A-Za-z])')
_HEADER_FOOTER_TAGS = frozenset(
    f"{_S}{name}"
    for name in ("oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter")
)


def _header_footer_text(raw: str) -> str:
    return _HEADER_CODE.sub(" ", raw).replace("&&", "&").strip()


def _shared_strings(
    package: zipfile.ZipFile, info: zipfile.ZipInfo | None, budget: Budget
) -> list[str]:
    """The workbook's shared string table; phonetic guides (``rPh``, furigana) are left out so
    that a reading never splits the written term."""
    strings: list[str] = []
    if info is None:
        return strings
    si_tag, t_tag, r_tag = f"{_S}si", f"{_S}t", f"{_S}r"
    part = XmlPart(package, info, budget, (si_tag,))
    for element in part:
        pieces: list[str] = []
        for child in element:
            if child.tag == t_tag:
                pieces.append(child.text or "")
            elif child.tag == r_tag:
                pieces.extend(t.text or "" for t in child.iter(t_tag))
        strings.append("".join(pieces))
        part.release(element)
    return strings


def _sheet_text(
    package: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    budget: Budget,
    strings: list[str],
    room: int,
) -> str:
    """One worksheet: cells tab-separated, rows newline-separated, then headers/footers.

    ``room`` is how many characters the budget still allows: a sheet can reference one huge
    shared string a million times, so output size is not bounded by the inflated size.
    """
    out: list[str] = []
    append = out.append
    size = 0
    v_tag, is_tag, row_tag = f"{_S}v", f"{_S}is", f"{_S}row"
    rows = 0
    # A cell's text is its <v> (a value, or an index into the shared strings when the cell's
    # type is "s") or its inline <is>; reacting to those rather than to <c> saves a lookup per
    # cell, and a cell with neither is empty anyway.
    part = XmlPart(package, info, budget, (v_tag, is_tag, row_tag, *_HEADER_FOOTER_TAGS))
    for element in part:
        tag = element.tag
        if tag == v_tag:
            text = element.text or ""
            cell = element.getparent()
            if cell is not None and cell.get("t") == "s":
                try:
                    text = strings[int(text)]
                except (ValueError, IndexError):
                    text = ""  # a dangling index is a broken cell, not a broken sheet
        elif tag == is_tag:
            text = "".join(element.itertext())
        elif tag == row_tag:
            append("\n")
            part.release(element)  # frees the row's cells too
            rows += 1
            if rows % 4096 == 0:
                budget.check_time()
            continue
        else:
            if element.text:
                append(_header_footer_text(element.text))
                append("\n")
            continue
        if text:
            append(text)
            append("\t")
            size += len(text) + 1
            if size > room:
                raise LimitExceeded("max_extracted_chars")
    return "".join(out)


_XLSX_PARTS = _ranker(
    [
        "spreadsheetml.worksheet+xml",
        "spreadsheetml.comments+xml",
        "drawing+xml",  # text boxes and shapes drawn over a sheet
        "drawingml.chart+xml",
    ]
)
_WORKSHEET = _ranker(["spreadsheetml.worksheet+xml"])
_SHARED_STRINGS = _ranker(["spreadsheetml.sharedStrings+xml"])
_WORKBOOK = _ranker(
    [
        "spreadsheetml.sheet.main+xml",
        "sheet.macroEnabled.main+xml",
        "spreadsheetml.template.main+xml",
        "template.macroEnabled.main+xml",
    ]
)


def xlsx_text(data: bytes, budget: Budget) -> str:
    """Text of an Excel package: sheet names, every sheet's cells, headers/footers, comments,
    and text boxes/charts drawn on sheets."""
    with open_package(data, budget) as package:
        types = _content_types(package, budget)
        string_parts = _parts_by_type(package, types, _SHARED_STRINGS)
        strings = _shared_strings(package, string_parts[0] if string_parts else None, budget)
        out: list[str] = []
        for workbook in _parts_by_type(package, types, _WORKBOOK):
            # Sheet names are chosen by the author and may name the customer or the deal.
            names = [
                element.get("name", "")
                for element in XmlPart(package, workbook, budget, (f"{_S}sheet",))
            ]
            out.append("\t".join(names))
        room = budget.limits.max_extracted_chars - budget.extracted_chars
        for info in _parts_by_type(package, types, _XLSX_PARTS):
            if _WORKSHEET(types(info)) is not None:
                out.append(_sheet_text(package, info, budget, strings, room))
            else:
                out.append(_markup_text(package, info, budget))
            room -= len(out[-1])
        return "\n".join(out)
