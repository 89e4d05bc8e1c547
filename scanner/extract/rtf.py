"""Text of RTF documents, decoded with the code page each run of text was written in.

Owns a small RTF reader: a tokenizer over the raw bytes, a group stack (font, ``\\uc`` skip
count, whether the group is a destination to ignore), and the font table's ``\\fcharset`` /
``\\cpg`` per font. It exists because striprtf decodes every ``\\'xx`` byte on its own with one
fixed code page, which turns Shift_JIS (``\\ansicpg932`` or a ``\\fcharset128`` font) into
mojibake: here consecutive bytes are buffered and decoded together with the code page of the
current font, falling back to the document's ``\\ansicpgN``; ``\\uN`` escapes are honoured with
their ``\\ucN`` fallback skipped. It must not touch files or log.
Hazard: hostile nesting depth and ``\\binN`` lengths are bounded; unknown ``\\*`` destinations
(pictures, embedded object data, themes) are skipped, so their hex never reaches the matcher.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace

from scanner.errors import ExtractionError
from scanner.extract.budget import Budget

# Windows character sets (\fcharsetN) and the code pages that encode them.
_CHARSET_CODEPAGE = {
    77: "mac_roman",
    128: "cp932",  # Shift_JIS as Windows writes it
    129: "cp949",
    130: "johab",
    134: "gbk",
    136: "big5",
    161: "cp1253",
    162: "cp1254",
    163: "cp1258",
    177: "cp1255",
    178: "cp1256",
    186: "cp1257",
    204: "cp1251",
    222: "cp874",
    238: "cp1250",
    255: "cp437",
}
# Groups whose content is never document text (besides every unknown "\*" destination).
_SKIP_DESTINATIONS = frozenset(
    {
        "fonttbl", "colortbl", "stylesheet", "listtable", "listoverridetable", "revtbl",
        "rsidtbl", "generator", "pict", "objdata", "objclass", "themedata",
        "colorschememapping", "datastore", "latentstyles", "xmlnstbl", "fldinst", "pgdsctbl",
        "filetbl", "bkmkstart", "bkmkend", "sp", "nonshppict", "shppict", "userprops",
        "operator", "creatim", "revtim", "printim", "buptim", "bin", "xe", "tc", "template",
        "mmathPr", "wgrffmtfilter", "pnseclvl", "listpicture", "blipuid", "passwordhash",
        "atnid", "atnauthor", "atntime", "atnref", "atndate", "hlinkbase", "docvar",
    }
)  # fmt: skip
# "\*" destinations that hold visible text and must not be skipped with the other unknowns.
_KEEP_STARRED = frozenset({"shpinst", "shptxt", "annotation", "footnote", "atrfstart"})
# Document-information destinations: their text ends with a line break of its own.
_INFO_TEXT = frozenset(
    {"title", "subject", "author", "manager", "company", "category", "keywords", "doccomm"}
)
_SYMBOLS = {
    "par": "\n", "line": "\n", "sect": "\n", "page": "\n", "row": "\n", "nestrow": "\n",
    "tab": "\t", "cell": "\t", "nestcell": "\t", "emdash": "\u2014", "endash": "\u2013",
    "bullet": "\u2022", "lquote": "\u2018", "rquote": "\u2019", "ldblquote": "\u201c",
    "rdblquote": "\u201d", "emspace": " ", "enspace": " ", "qmspace": " ",
}  # fmt: skip
_CONTROL_SYMBOLS = {b"~": "\u00a0", b"_": "-", b"\\": "\\", b"{": "{", b"}": "}"}

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word with optional numeric parameter
    rb"|\\'([0-9a-fA-F]{2})"  # one byte in the current code page
    rb"|\\([^a-zA-Z'])"  # control symbol
    rb"|([{}])"
    rb"|[\r\n]+"  # raw line ends carry no meaning in RTF
    rb"|([^\\{}\r\n]+)"  # literal text
)
_MAX_DEPTH = 1000  # real documents nest a few dozen groups; deeper is an attack on the stack


@dataclass(frozen=True)
class _State:
    """What a group inherits from its parent and may change for itself."""

    font: int | None = None
    uc: int = 1
    skip: bool = False
    destination: str = ""


class _Reader:
    """One pass over the token stream, collecting text."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.out: list[str] = []
        self.pending = bytearray()  # bytes awaiting decoding, all in one code page
        self.pending_codepage = "cp1252"
        self.default_codepage = "cp1252"
        self.default_font: int | None = None
        self.font_codepages: dict[int, str] = {}
        self.font_being_defined: int | None = None
        self.skip_fallback = 0  # characters still to skip after a \uN

    def codepage(self, state: _State) -> str:
        font = state.font if state.font is not None else self.default_font
        if font is not None and font in self.font_codepages:
            return self.font_codepages[font]
        return self.default_codepage

    def add_bytes(self, data: bytes, state: _State) -> None:
        if self.skip_fallback:
            dropped = min(self.skip_fallback, len(data))
            self.skip_fallback -= dropped
            data = data[dropped:]
            if not data:
                return
        codepage = self.codepage(state)
        if codepage != self.pending_codepage:
            self.flush()
            self.pending_codepage = codepage
        self.pending += data

    def add_text(self, text: str) -> None:
        self.flush()
        self.out.append(text)

    def flush(self) -> None:
        if self.pending:
            self.out.append(bytes(self.pending).decode(self.pending_codepage, errors="replace"))
            self.pending.clear()

    def font_table_word(self, word: str, param: int | None) -> None:
        """Record the code page of each font as the font table defines it."""
        if word == "f" and param is not None:
            self.font_being_defined = param
        elif self.font_being_defined is None or param is None:
            return
        elif word == "fcharset" and param in _CHARSET_CODEPAGE:
            self.font_codepages.setdefault(self.font_being_defined, _CHARSET_CODEPAGE[param])
        elif word == "cpg" and _known_codepage(f"cp{param}"):
            self.font_codepages[self.font_being_defined] = f"cp{param}"


def _known_codepage(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def rtf_text(data: bytes, budget: Budget) -> str:
    """Visible text of an RTF document: body, tables, headers/footers, notes, comments, text
    boxes and its title/subject/keywords."""
    if not data.lstrip()[:5] == b"{\\rtf":
        raise ExtractionError("corrupt")
    reader = _Reader(budget)
    stack: list[_State] = []
    state = _State()
    position = 0
    count = 0
    # The first word of a group decides whether it is a destination.
    group_start = False
    starred = False
    length = len(data)
    while position < length:
        match = _TOKEN.match(data, position)
        if match is None:  # a lone backslash at the very end
            break
        position = match.end()
        count += 1
        if count % 65536 == 0:
            budget.check_time()
        word_b, param_b, hex_b, symbol, brace, text = match.groups()
        if brace is not None:
            reader.skip_fallback = 0
            if brace == b"{":
                if len(stack) >= _MAX_DEPTH:
                    raise ExtractionError("corrupt")
                stack.append(state)
                group_start, starred = True, False
            else:
                if state.destination in _INFO_TEXT and not state.skip:
                    reader.add_text("\n")
                if state.destination == "fonttbl" or (stack and stack[-1].destination == "fonttbl"):
                    reader.font_being_defined = None
                if stack:
                    state = stack.pop()
                group_start = False
            continue
        if symbol is not None:
            if symbol == b"*" and group_start:
                starred = True
                continue
            group_start = False
            if not state.skip and symbol in _CONTROL_SYMBOLS:
                reader.add_text(_CONTROL_SYMBOLS[symbol])
            continue
        if hex_b is not None:
            group_start = False
            if not state.skip:
                reader.add_bytes(bytes.fromhex(hex_b.decode("ascii")), state)
            elif state.destination == "fonttbl":
                pass  # font names in local code pages are not document text
            continue
        if text is not None:
            group_start = False
            if not state.skip:
                reader.add_bytes(text, state)
            continue
        if word_b is None:
            continue  # raw line end
        word = word_b.decode("ascii")
        param = int(param_b) if param_b is not None else None
        if group_start:
            group_start = False
            if (starred and word not in _KEEP_STARRED) or word in _SKIP_DESTINATIONS:
                state = replace(state, skip=True, destination=word)
            else:
                state = replace(state, destination=word)
            if word == "fonttbl":
                # Its words are read (for code pages) although its text is not kept.
                state = replace(state, skip=True, destination="fonttbl")
        if word == "bin" and param is not None and param > 0:
            position += param  # raw binary data; never text
            continue
        if state.destination == "fonttbl" or (stack and stack[-1].destination == "fonttbl"):
            reader.font_table_word(word, param)
            continue
        if word == "ansicpg" and param is not None and _known_codepage(f"cp{param}"):
            reader.default_codepage = f"cp{param}"
        elif word == "mac":
            reader.default_codepage = "mac_roman"
        elif word in ("pc", "pca"):
            reader.default_codepage = "cp437" if word == "pc" else "cp850"
        elif word == "deff" and param is not None:
            reader.default_font = param
        elif word == "f" and param is not None:
            state = replace(state, font=param)
        elif word == "uc" and param is not None:
            state = replace(state, uc=max(param, 0))
        elif word == "u" and param is not None:
            if not state.skip:
                reader.add_text(chr(param % 65536))
            reader.skip_fallback = state.uc
        elif word == "plain":
            state = replace(state, font=None)
        elif not state.skip and word in _SYMBOLS:
            reader.add_text(_SYMBOLS[word])
    reader.flush()
    text_out = "".join(reader.out)
    # \uN escapes write astral characters as UTF-16 surrogate pairs; join them.
    return text_out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
