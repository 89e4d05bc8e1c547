"""Text of legacy binary Office files (.doc, .xls, .ppt): OLE2 compound files.

Owns three readers: .xls through xlrd; .doc through a compact [MS-DOC] piece-table reader and
.ppt through a compact [MS-PPT] record walk, both written here on top of olefile because no
maintained Python library reads them. They read from memory, never log (xlrd's chatter goes to
a throwaway buffer), and refuse encrypted files before parsing them.
Hazard: every offset and length comes from a hostile file, so each one is checked against the
stream it points into, record walks always advance, and text is bounded by the budget's room
because a spreadsheet can repeat one long shared string in a million cells.
"""

from __future__ import annotations

import io
import re
import struct

import olefile
import xlrd

from scanner.errors import EncryptedError, ExtractionError, LimitExceeded
from scanner.extract.budget import Budget
from scanner.extract.encryption import is_ole, raise_if_encrypted_legacy


def _open_ole(data: bytes) -> olefile.OleFileIO:
    if not is_ole(data):
        raise ExtractionError("corrupt")
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises OSError, ValueError, struct.error on junk
        raise ExtractionError("corrupt") from exc


def _read_stream(ole: olefile.OleFileIO, name: str, budget: Budget) -> bytes:
    """One whole stream; streams live inside ``data`` (nothing is inflated), but their size
    is still charged so that a message full of OLE parts is bounded like one full of zips."""
    try:
        size = ole.get_size(name)
        budget.charge_decompressed(size)
        with ole.openstream(name) as stream:
            return bytes(stream.read())
    except (OSError, ValueError, struct.error) as exc:
        raise ExtractionError("corrupt") from exc


def sniff_ole(data: bytes) -> str | None:
    """Which OLE-based format ``data`` is: "doc", "xls", "ppt", "msg", "ooxml-encrypted", or
    None when it is not OLE or not one of these (for the dispatcher)."""
    if not is_ole(data):
        return None
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if ole.exists("EncryptedPackage"):
                return "ooxml-encrypted"
            if ole.exists("WordDocument"):
                return "doc"
            if ole.exists("Workbook") or ole.exists("Book"):
                return "xls"
            if ole.exists("PowerPoint Document"):
                return "ppt"
            if ole.exists("__properties_version1.0") or any(
                entry[0].startswith("__substg1.0_") for entry in ole.listdir()
            ):
                return "msg"
    except Exception:  # a damaged container is simply not recognised
        return None
    return None


# --------------------------------------------------------------------------------------------
# .doc — [MS-DOC]

_FIB_MAGIC_97 = 0xA5EC  # Word 97 and later
_FIB_MAGIC_6 = 0xA5DC  # Word 6.0 / Word 95
_F_COMPLEX = 0x0004
_F_ENCRYPTED = 0x0100
_F_WHICH_TABLE = 0x0200
_F_OBFUSCATED = 0x8000
# Languages of the Far East versions of Word 6/95, whose 8-bit text is a double-byte code page.
_LID_CODEPAGE = {0x0411: "cp932", 0x0412: "cp949", 0x0404: "cp950", 0x0804: "gbk"}

# Word's in-text control characters: paragraph/cell/line/page marks become whitespace, field
# marks are handled separately, and anchors for pictures, notes and objects disappear.
_DOC_CONTROL = str.maketrans(
    {
        "\r": "\n",
        "\x07": "\t",  # end of cell or row
        "\x0b": "\n",  # line break
        "\x0c": "\n",  # page or section break
        "\x1e": "-",  # non-breaking hyphen
        "\x1f": None,  # optional hyphen
        "\x01": None,
        "\x02": None,
        "\x03": None,
        "\x04": None,
        "\x05": None,
        "\x08": None,
        "\x00": None,
    }
)
_FIELD_MARK = re.compile("([\x13\x14\x15])")


def _drop_field_codes(text: str) -> str:
    """Keep each field's result (after 0x14) and drop its instruction (0x13..0x14), such as
    ``PAGE`` or ``HYPERLINK "..."``; fields nest."""
    out: list[str] = []
    stack: list[bool] = []  # per open field: still in its instruction part
    hidden = 0
    for token in _FIELD_MARK.split(text):
        if token == "\x13":
            stack.append(True)
            hidden += 1
        elif token == "\x14":
            if stack and stack[-1]:
                stack[-1] = False
                hidden -= 1
        elif token == "\x15":
            if stack and stack.pop():
                hidden -= 1
        elif hidden == 0:
            out.append(token)
    return "".join(out)


def _pieces(clx: bytes) -> list[tuple[int, int, int, bool]]:
    """The piece table in a Clx: (first cp, last cp, fc, compressed) per piece.

    A Clx is any number of Prc records (0x01, int16 size, property bytes) followed by one Pcdt
    (0x02, uint32 size, PlcPcd); a PlcPcd is n+1 character positions then n 8-byte Pcds, whose
    bytes 2..5 hold the piece's file offset with bit 30 meaning "8-bit cp1252 at fc/2".
    """
    offset = 0
    while offset < len(clx) and clx[offset] == 0x01:
        if offset + 3 > len(clx):
            raise ExtractionError("corrupt")
        (size,) = struct.unpack_from("<h", clx, offset + 1)
        offset += 3 + max(size, 0)
    if offset + 5 > len(clx) or clx[offset] != 0x02:
        raise ExtractionError("corrupt")
    (size,) = struct.unpack_from("<I", clx, offset + 1)
    plc = clx[offset + 5 : offset + 5 + size]
    count = (len(plc) - 4) // 12
    if count <= 0:
        return []
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    pieces = []
    for index in range(count):
        (fc_raw,) = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * index + 2)
        compressed = bool(fc_raw & 0x40000000)
        fc = fc_raw & 0x3FFFFFFF
        pieces.append((cps[index], cps[index + 1], fc // 2 if compressed else fc, compressed))
    return pieces


def _word97_text(ole: olefile.OleFileIO, word: bytes, flags: int, budget: Budget) -> str:
    table_name = "1Table" if flags & _F_WHICH_TABLE else "0Table"
    if not ole.exists(table_name):
        raise ExtractionError("corrupt")
    table = _read_stream(ole, table_name, budget)
    # FibBase (32 bytes), then counted arrays of 16-bit, 32-bit and 64-bit (fc, lcb) values.
    (csw,) = struct.unpack_from("<H", word, 32)
    lw_at = 34 + 2 * csw
    (cslw,) = struct.unpack_from("<H", word, lw_at)
    fclcb_at = lw_at + 2 + 4 * cslw + 2
    fc_clx, lcb_clx = struct.unpack_from("<II", word, fclcb_at + 33 * 8)  # fcClx is pair 33
    if fc_clx + lcb_clx > len(table) or lcb_clx == 0:
        raise ExtractionError("corrupt")
    out: list[str] = []
    for first, last, fc, compressed in _pieces(table[fc_clx : fc_clx + lcb_clx]):
        chars = max(last - first, 0)
        if compressed:
            raw = word[fc : fc + chars]
            out.append(raw.decode("cp1252", errors="replace"))
        else:
            raw = word[fc : fc + 2 * chars]
            out.append(raw.decode("utf-16-le", errors="replace"))
    return "".join(out)


def _word6_text(word: bytes, flags: int) -> str:
    """Word 6/95: 8-bit text in the language's code page, contiguous from fcMin unless the file
    was fast-saved (complex), in which case a piece table at 0x160 orders it."""
    (lid,) = struct.unpack_from("<H", word, 6)
    codepage = _LID_CODEPAGE.get(lid, "cp1252")
    if flags & _F_COMPLEX:
        fc_clx, lcb_clx = struct.unpack_from("<II", word, 0x160)
        if fc_clx + lcb_clx > len(word) or lcb_clx == 0:
            raise ExtractionError("corrupt")
        parts = [
            word[fc : fc + max(last - first, 0)]
            for first, last, fc, _ in _pieces(word[fc_clx : fc_clx + lcb_clx])
        ]
        return b"".join(parts).decode(codepage, errors="replace")
    fc_min, fc_mac = struct.unpack_from("<II", word, 0x18)
    return word[fc_min:fc_mac].decode(codepage, errors="replace")


def doc_text(data: bytes, budget: Budget) -> str:
    """Text of a Word 97–2003 (or Word 6/95) document: body, notes, headers, comments and
    text boxes, in the order Word stores them."""
    raise_if_encrypted_legacy(data)
    with _open_ole(data) as ole:
        if not ole.exists("WordDocument"):
            raise ExtractionError("corrupt")
        word = _read_stream(ole, "WordDocument", budget)
        if len(word) < 0x1A2 + 8:
            raise ExtractionError("corrupt")
        magic, nfib = struct.unpack_from("<HH", word, 0)
        (flags,) = struct.unpack_from("<H", word, 0x0A)
        if flags & (_F_ENCRYPTED | _F_OBFUSCATED):
            raise EncryptedError()
        try:
            if magic == _FIB_MAGIC_97 and nfib >= 0xC1:
                text = _word97_text(ole, word, flags, budget)
            elif magic in (_FIB_MAGIC_97, _FIB_MAGIC_6) and nfib >= 101:
                text = _word6_text(word, flags)
            else:
                raise ExtractionError("unsupported-format")  # Word 2 and older
        except struct.error as exc:
            raise ExtractionError("corrupt") from exc
    return _drop_field_codes(text).translate(_DOC_CONTROL)


# --------------------------------------------------------------------------------------------
# .ppt — [MS-PPT]

_TEXT_CHARS_ATOM = 0x0FA0  # UTF-16LE
_TEXT_BYTES_ATOM = 0x0FA8  # the low bytes of UTF-16 code units, i.e. Latin-1
_CSTRING = 0x0FBA  # UTF-16LE: comments, hyperlinks, slide and show names
_PPT_TEXT = str.maketrans({"\r": "\n", "\x0b": "\n", "\x00": None})


def ppt_text(data: bytes, budget: Budget) -> str:
    """Text of a PowerPoint 97–2003 file: slides, notes, masters, comments, in stream order.

    Every record header is 8 bytes (version:4 instance:12, type:16, length:32); a version of
    0xF marks a container whose body is more records, so one flat walk that steps into
    containers and over atoms visits every text atom, including those in drawings.
    """
    raise_if_encrypted_legacy(data)
    with _open_ole(data) as ole:
        if not ole.exists("PowerPoint Document"):
            raise ExtractionError("corrupt")
        stream = _read_stream(ole, "PowerPoint Document", budget)
    out: list[str] = []
    offset = 0
    end = len(stream)
    records = 0
    while offset + 8 <= end:
        ver_instance, rec_type, length = struct.unpack_from("<HHI", stream, offset)
        body = offset + 8
        records += 1
        if records % 65536 == 0:
            budget.check_time()
        if ver_instance & 0x000F == 0x000F:
            offset = body  # step into the container
            continue
        if body + length > end:
            break  # a truncated last record: keep what was read
        if rec_type == _CSTRING and stream[body : body + 12] == "___PPT".encode("utf-16-le"):
            pass  # programmable-tag names ("___PPT10"), written by PowerPoint itself
        elif rec_type in (_TEXT_CHARS_ATOM, _CSTRING):
            out.append(stream[body : body + length].decode("utf-16-le", errors="replace"))
            out.append("\n")
        elif rec_type == _TEXT_BYTES_ATOM:
            out.append(stream[body : body + length].decode("latin-1"))
            out.append("\n")
        offset = body + length
    return "".join(out).translate(_PPT_TEXT)


# --------------------------------------------------------------------------------------------
# .xls — xlrd


def _cell_text(cell: xlrd.sheet.Cell) -> str:
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        value = float(cell.value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return ""
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    return str(cell.value)


def xls_text(data: bytes, budget: Budget) -> str:
    """Text of an Excel 97–2003 workbook: sheet names, cells (tab-separated, one row per
    line) and cell comments."""
    raise_if_encrypted_legacy(data)
    budget.charge_decompressed(len(data))
    sink = io.StringIO()  # xlrd prints warnings; they must not reach any log
    try:
        book = xlrd.open_workbook(file_contents=data, logfile=sink, verbosity=0, on_demand=True)
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise EncryptedError() from exc
        raise ExtractionError("corrupt") from exc
    except Exception as exc:  # xlrd surfaces struct/index/assertion errors on damaged files
        raise ExtractionError("corrupt") from exc
    room = budget.limits.max_extracted_chars - budget.extracted_chars
    out: list[str] = ["\t".join(book.sheet_names()), "\n"]
    size = 0
    try:
        for index in range(book.nsheets):
            budget.check_time()
            sheet = book.sheet_by_index(index)
            for row in range(sheet.nrows):
                line = "\t".join(_cell_text(cell) for cell in sheet.row(row)).rstrip("\t")
                size += len(line) + 1
                if size > room:
                    raise LimitExceeded("max_extracted_chars")
                out.append(line)
                out.append("\n")
            for note in sheet.cell_note_map.values():
                out.append(str(note.text))
                out.append("\n")
            book.unload_sheet(index)
    except (LimitExceeded, ExtractionError):
        raise
    except Exception as exc:
        raise ExtractionError("corrupt") from exc
    finally:
        book.release_resources()
    return "".join(out)
