"""Text normalization for matching, with a way back to original offsets.

Owns the one definition of "normalized" shared by terms (``normalize_term``) and message text
(``normalize``), in this order:

1. format characters (general category Cf: soft hyphen, zero-width space/joiners, bidi controls,
   BOM, tag characters) are removed — they are invisible, so a sender could hide a term with them;
   removing them *before* NFKC keeps the result idempotent ("e" ZWSP U+0301 composes afterwards);
2. NFKC, then ``str.casefold`` (both may change length: 'ﾊﾟ'→'パ', 'ß'→'ss', '㍿'→'株式会社'),
   then NFKC again where casefolding un-normalized the text ('ß' + U+0301 → 'ss' + U+0301 → 'sś';
   'İ' + ﾞ leaves two combining marks out of canonical order) — without it normalization would
   not be idempotent;
3. every run of whitespace (``str.isspace``: includes U+3000 and NBSP) becomes one space, except
   that a run containing a line break (``str.splitlines`` breaks: \\n, \\r, \\r\\n, \\v, \\f,
   U+001C-1E, U+0085, U+2028, U+2029) between two CJK characters is removed, so that wrapped
   Japanese joins ("ファル\\nコン" → "ファルコン"); leading and trailing whitespace is dropped.

CJK (``is_cjk``) = Han (URO, extensions A-G, compatibility ideographs, radicals, strokes,
description characters, kanbun), Hiragana, Katakana (with phonetic extensions, kana supplements
and halfwidth forms), CJK symbols and punctuation (U+3001-303F), enclosed CJK and CJK
compatibility blocks, CJK vertical/compatibility forms, and Hangul (syllables, compatibility jamo,
leading jamo, halfwidth forms). Combining marks (U+3099/309A, U+302A-302F) and Hangul medial and
final jamo are excluded: joining a line onto them would let NFKC compose across the removed break,
and normalization would no longer be idempotent.

Speed is the point of the design: the text is processed in blocks of whole lines (~2 KB) with
C-level string operations. Most characters are *inert* (``scanner/_unicode_tables.py``: printable,
NFKC-stable, a normalization boundary, with a ``casefold`` that is their ``lower()`` and inert
too), so a block needs NFKC only in the runs of the other characters: these are normalized and
casefolded with one call each per block and spliced back in, which is exact because NFKC can
split a text before every inert character; the block then goes through ``lower()`` (cheaper than
``casefold``). A block where that is not exact (a run starting with a combining mark, NFKC making
spaces), or with tabs, CRLF, NBSP or format characters, falls back to slower paths, down to line
by line (ASCII line → ``lower``; NFKC-normalized line → ``casefold``; only the rest pays for
NFKC). The offset map is one record per run of lines whose offsets shift linearly. Blocks and
lines that NFKC or whitespace collapsing changed are kept as opaque records; their exact
character mapping is computed lazily, cluster by cluster, only when ``original_span`` lands in
them.

Must not do: I/O, logging, clock or environment reads. Hazards: the fast path and the exact
(lazy) path are two implementations of the same rules; ``tests/test_normalize.py`` checks them
against each other with Hypothesis, and ``original_span`` falls back to whole-line spans rather
than return a wrong offset if they ever disagree. The generated Unicode tables must match the
running ``unicodedata`` (``tests/test_unicode_tables.py`` checks it and regenerates them).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

from scanner._unicode_tables import NO_BOUNDARY_RANGES, SPLICE_RANGES

__all__ = ["Normalized", "is_cjk", "normalize", "normalize_term"]

# Inclusive code point ranges of CJK characters, sorted; see the module docstring.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x1100, 0x115F),  # Hangul leading jamo (medial/final jamo compose: excluded)
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x2FF0, 0x2FFF),  # ideographic description characters
    (0x3001, 0x3029),  # CJK symbols and punctuation (U+3000 is whitespace)
    (0x3030, 0x303F),  # (U+302A-302F are combining tone marks: excluded)
    (0x3041, 0x3098),  # Hiragana (U+3099/309A are combining voiced marks: excluded)
    (0x309B, 0x30FF),  # Hiragana/Katakana
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x3190, 0x319F),  # Kanbun
    (0x31C0, 0x31FF),  # CJK strokes, Katakana phonetic extensions
    (0x3200, 0x33FF),  # enclosed CJK letters, CJK compatibility (㍿)
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul jamo extended-A (leading consonants)
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility (vertical) forms
    (0xFF61, 0xFF9D),  # halfwidth CJK punctuation and Katakana (not the voiced marks)
    (0xFFA0, 0xFFDC),  # halfwidth Hangul
    (0x1AFF0, 0x1B16F),  # Kana extended-B, supplement, extended-A, small kana extension
    (0x20000, 0x3134F),  # CJK extensions B-G, compatibility supplement
)
# Flattened [start, end+1, start, end+1, ...]: an odd bisect index means "inside a range".
_CJK_BOUNDS: tuple[int, ...] = tuple(b for lo, hi in _CJK_RANGES for b in (lo, hi + 1))

# General category Cf as of Unicode 14 (Python 3.11); tests/test_normalize.py checks it against
# the running unicodedata so that an upgrade cannot silently change it.
_CF_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_CF_RE = re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CF_RANGES) + "]+")

# The line breaks of str.splitlines; "\n" itself is the line separator of the fast loop.
_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_WS_RUN = re.compile(r"\s+")
_find_space_runs = re.compile("  +").finditer
_CJK_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES)
# A run of "\n" between two CJK characters; starts with a literal so re scans at memchr speed.
_JOIN_RE = re.compile(f"\\n(?<=[{_CJK_CLASS}]\\n)(?=[{_CJK_CLASS}])")
_nfkc_ok = unicodedata.is_normalized
_nfkc = unicodedata.normalize

# A run of characters that are not inert (see scanner/_unicode_tables.py): the table's BMP
# ranges and every character outside the BMP. Written as the complement of the inert BMP
# ranges, which re tests with one bitmap lookup; "[c][c]*" rather than "[c]+" lets re skip to
# a run's first character at that speed.
_INERT_BOUNDS = (0, *(b for lo, hi in SPLICE_RANGES for b in (lo, hi + 1)), 0x10000)
_SPLICE_CLASS = "^" + "".join(
    f"\\u{lo:04x}-\\u{hi - 1:04x}"
    for lo, hi in zip(_INERT_BOUNDS[::2], _INERT_BOUNDS[1::2], strict=True)
    if lo < hi
)
_splice_split = re.compile(f"([{_SPLICE_CLASS}][{_SPLICE_CLASS}]*)").split
# A space before a character that NFKC may combine with what precedes it.
_NO_BOUNDARY_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in NO_BOUNDARY_RANGES)
_no_boundary_after_space = re.compile(f" [{_NO_BOUNDARY_CLASS}]").search


def is_cjk(ch: str) -> bool:
    """Whether the single character ``ch`` is CJK as defined in the module docstring."""
    return bisect_right(_CJK_BOUNDS, ord(ch)) & 1 == 1


def _fold(s: str) -> tuple[str, bool]:
    """Steps 1-2 of one non-ASCII line, the cheapest exact way; and whether it maps 1:1."""
    linear = s.isprintable()  # every Cf character is non-printable; most lines are printable
    if not linear:
        s = _CF_RE.sub("", s)
    if not _nfkc_ok("NFKC", s):
        s = _nfkc("NFKC", s)
        linear = False
    folded = s.casefold()
    if not _nfkc_ok("NFKC", folded):
        folded = _nfkc("NFKC", folded)
        linear = False
    # casefold only ever expands, so the same length means one to one.
    return folded, linear and len(folded) == len(s)


def _refold(s: str) -> str:
    """NFKC again after casefold where casefold broke it ("ß\u0301" → "ss\u0301" → "sś")."""
    return s if _nfkc_ok("NFKC", s) else _nfkc("NFKC", s)


def _refold_lines(stable: str, cased: str) -> str:
    """``cased`` (= ``stable.casefold()``) with NFKC re-applied to the lines casefold broke.

    ``stable`` is NFKC-normalized and "\n" blocks composition, so only lines that casefold
    changed can have left the normal form. Checking just those matters for speed:
    ``is_normalized`` on a block holding any "maybe" character (a lone halfwidth dakuten
    becomes U+3099) falls back to normalizing the whole block. Returns ``cased`` itself (the
    same object) when nothing needed re-normalizing.
    """
    if cased is stable or cased == stable or cased.isascii():
        return cased
    lines = cased.split("\n")
    changed = False
    for index, (before, after) in enumerate(zip(stable.split("\n"), lines, strict=True)):
        if after != before and not after.isascii() and not _nfkc_ok("NFKC", after):
            lines[index] = _nfkc("NFKC", after)
            changed = True
    return "\n".join(lines) if changed else cased


def _collapse(s: str) -> str:
    """Step 3 inside one folded chunk that may still contain line breaks other than \\n."""

    def repl(m: re.Match[str]) -> str:
        start, end = m.span()
        if (
            start > 0
            and end < len(s)
            and not _BREAKS.isdisjoint(m.group())
            and is_cjk(s[start - 1])
            and is_cjk(s[end])
        ):
            return ""
        return " "

    return _WS_RUN.sub(repl, s).strip(" ")


def _is_regular(s: str) -> bool:
    """Whether a folded line needs no whitespace work: only single inner ' ' as whitespace."""
    # isprintable() is False for every whitespace character except ' ' (and for Cf), so this is
    # an exact C-speed test for the common line.
    return s.isprintable() and "  " not in s and s[:1] != " " and s[-1:] != " "


def normalize_term(term: str) -> str:
    """A term normalized exactly as ``normalize`` normalizes text (so it can occur in it)."""
    return normalize(term).text


@dataclass(frozen=True)
class Normalized:
    """Normalized text plus a compact map back to the original.

    The map is a list of records, each a run of normalized text ``[n0, n1)`` produced by the
    original ``[o0, o1)``: linear records shift offsets by a constant; opaque records (a line
    changed by NFKC/casefold length changes or whitespace collapsing) are mapped exactly on
    demand. Between two records lies a gap: one space or nothing, produced by the whitespace
    between them.
    """

    text: str
    source: str = field(repr=False)
    _n0: array[int] = field(repr=False, compare=False)
    _n1: array[int] = field(repr=False, compare=False)
    _o0: array[int] = field(repr=False, compare=False)
    _o1: array[int] = field(repr=False, compare=False)
    _opaque: bytearray = field(repr=False, compare=False)
    # Lazily computed exact maps of opaque records, keyed by record index.
    _exact: dict[int, _LineMap | None] = field(default_factory=dict, repr=False, compare=False)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The smallest span of ``source`` whose characters produced ``text[start:end]``."""
        if not 0 <= start <= end <= len(self.text):
            raise ValueError("span outside the normalized text")
        if start == end:
            pos = self._map(start, is_start=True)
            return pos, pos
        return self._map(start, is_start=True), self._map(end, is_start=False)

    def _map(self, p: int, *, is_start: bool) -> int:
        # For a start we want the record whose run contains p (n0 <= p); for an end the one whose
        # run contains the character before p (n0 < p).
        i = (bisect_right(self._n0, p) if is_start else bisect_left(self._n0, p)) - 1
        if i < 0:
            return 0 if not self._n0 else self._o0[0]
        n0, n1, o0, o1 = self._n0[i], self._n1[i], self._o0[i], self._o1[i]
        if (is_start and p < n1) or (not is_start and p <= n1):
            if not self._opaque[i]:
                return o0 + (p - n0)
            return self._map_opaque(i, p - n0, is_start=is_start)
        # p lies in (or at the edge of) the gap after record i.
        if is_start:
            return o1
        return self._o0[i + 1] if i + 1 < len(self._o0) else len(self.source)

    def _map_opaque(self, i: int, q: int, *, is_start: bool) -> int:
        if i not in self._exact:
            self._exact[i] = _LineMap.build(
                self.source[self._o0[i] : self._o1[i]], self.text[self._n0[i] : self._n1[i]]
            )
        line = self._exact[i]
        if line is None:  # the exact path disagreed with the fast one: cover the whole line
            return self._o0[i] if is_start else self._o1[i]
        return self._o0[i] + line.map(q, is_start=is_start)


def _fold_group(g: str) -> tuple[str, bool] | None:
    """Fold and collapse a block of whole lines with C-level string operations, or None.

    Handles the common block: whitespace is single spaces inside lines and "\n" runs between
    them. Returns the normalized block and whether it maps one to one onto ``g``; None sends
    the block to the line-by-line path (tabs, CRLF, indentation, NBSP, format characters).
    """
    # Tabs (spreadsheet cells, tables) and the CR of CRLF (mail bodies) are whitespace runs
    # like spaces; replacing them one for one keeps the block on this fast path, and the map
    # stays one to one until a run is collapsed below. A lone CR is a line break of its own
    # (it may join CJK) and still takes the slow path.
    if "\t" in g:
        g = g.replace("\t", " ")
    if "\r\n" in g:
        g = g.replace("\r\n", " \n")
    flat = g.replace("\n", " ")
    linear = True
    # One search finds double spaces, spaces next to line breaks and blank lines.
    if "  " in flat or flat[0] == " " or flat[-1] == " ":
        # A longer run of spaces and line breaks (in flat: of spaces) becomes one line break if
        # it holds one (it joins or becomes one space exactly as a single break does), else one
        # space; runs at either end go.
        pieces: list[str] = []
        prev = 0
        for m in _find_space_runs(flat):
            start, end = m.span()
            pieces.append(g[prev:start])
            pieces.append("\n" if g.find("\n", start, end) >= 0 else " ")
            prev = end
        pieces.append(g[prev:])
        g = "".join(pieces).strip(" \n")
        linear = False
        if not g:
            return None
    if g.isascii():
        if not flat.isprintable():  # tabs, \r, other controls
            return None
        folded = g.lower()
    else:
        # Inert text (see scanner/_unicode_tables.py) is its own NFKC, and its casefold is its
        # lower(), which is cheaper; the runs of other characters between it (fullwidth and
        # halfwidth forms, marks, "ß", but also tabs, NBSP, format characters) are folded all
        # at once and spliced back in where that is exact, else the block takes the slow path.
        parts = _splice_split(g)
        if len(parts) > 1:
            spliced = _fold_runs(parts[1::2])
            if spliced is None:
                if not flat.isprintable():  # tabs, \r, NBSP, U+3000, format characters, …
                    return None
                # Decomposed text ("か" + U+3099): each run takes the character before it.
                _absorb_preceding(parts)
                spliced = _fold_runs(parts[1::2])
                if spliced is None:
                    return _fold_group_slow(g, linear=linear)
            parts[1::2], one_to_one = spliced
            linear = linear and one_to_one
            g = "".join(parts)
        folded = g.lower()
        # lower() maps inert characters one to one; the same length means just that.
        linear = linear and len(folded) == len(g)
    joined = _JOIN_RE.sub("", folded)
    return joined.replace("\n", " "), linear and len(joined) == len(folded)


def _fold_runs(runs: list[str]) -> tuple[list[str], bool] | None:
    """NFKC + casefold of each run of non-inert characters of a block, and whether 1:1.

    Returns None if the results cannot simply be spliced into the block. The runs lie between
    inert text, which has a normalization boundary before every character, so the NFKC of the
    block is the runs' NFKC spliced in if each run starts at a boundary too; the same holds
    for the casefold when each casefolded run is NFKC-normalized and starts at a boundary (no
    NFKC again needed). The result must also stay fast-path text: printable (so no format
    characters to remove first, no tabs or NBSP), no new space (NFKC "¨" → " ̈"), and kept
    by the ``lower()`` the block goes through. Runs never hold a space, and the space that
    joins them here for one call of each function is a boundary that NFKC and casefold keep.
    """
    joined = " ".join(runs)
    stable = _nfkc("NFKC", joined)
    folded = stable.casefold()
    if (
        folded.count(" ") != len(runs) - 1  # casefold neither makes nor removes spaces
        or not joined.isprintable()
        or not stable.isprintable()
        or not folded.isprintable()
        or _no_boundary_after_space(" " + joined)
        or _no_boundary_after_space(" " + folded)
        or not _nfkc_ok("NFKC", folded)
        or folded.lower() != folded  # (casefold makes Cherokee uppercase)
    ):
        return None
    # casefold only ever expands, so the same length means one to one.
    return folded.split(" "), stable == joined and len(folded) == len(joined)


def _absorb_preceding(parts: list[str]) -> None:
    """Move into each run of ``parts`` (odd items) the character before it, unless a space.

    That character is inert, so NFKC may still split the text before it, and a run starting
    with a combining mark can then be normalized on its own. (Runs must not hold spaces or
    line breaks; a mark after one still sends the block to the slow path.)
    """
    for i in range(1, len(parts), 2):
        before = parts[i - 1]
        if before and before[-1] not in " \n":
            parts[i - 1] = before[:-1]
            parts[i] = before[-1] + parts[i]


def _fold_group_slow(g: str, *, linear: bool) -> tuple[str, bool] | None:
    """``_fold_group`` for a printable non-ASCII block whose runs cannot be spliced."""
    if _nfkc_ok("NFKC", g):
        cased = g.casefold()
        linear = linear and len(cased) == len(g)
        folded = _refold_lines(g, cased)
        if folded is not cased:
            linear = False
    else:
        # Only the lines that need it pay for NFKC (about 0.05 µs/char on the slow path).
        stable = "\n".join(
            [line if _nfkc_ok("NFKC", line) else _nfkc("NFKC", line) for line in g.split("\n")]
        )
        folded = _refold_lines(stable, stable.casefold())
        linear = False
        # NFKC can turn a printable character into spaces ("¨" → " ̈", "￣" → " ̄").
        if (
            "  " in folded
            or " \n" in folded
            or "\n " in folded
            or folded[0] == " "
            or (folded[-1] == " ")
        ):
            return None
    joined = _JOIN_RE.sub("", folded)
    return joined.replace("\n", " "), linear and len(joined) == len(folded)


# The block size of the fast path: big enough to amortize Python per block, small enough that
# one irregular line sends little text to the slower line-by-line path and that the lazy exact
# map of one opaque block stays cheap.
_GROUP = 2048


def normalize(text: str) -> Normalized:
    """Normalize ``text`` (see the module docstring) and keep the map back to its offsets."""
    n0: array[int] = array("q")
    n1: array[int] = array("q")
    o0: array[int] = array("q")
    o1: array[int] = array("q")
    opaque = bytearray()
    out: list[str] = []
    npos = 0  # length of the normalized text so far
    prev_cjk = False  # whether the normalized text so far ends with a CJK character
    last_linear = False  # whether the last record is linear (and may be extended)

    def emit(folded: str, start: int, end: int, linear: bool) -> None:
        """Append one record: ``folded`` (non-empty) was produced by ``text[start:end]``."""
        nonlocal npos, prev_cjk, last_linear
        first = folded[0]
        gap = "" if npos == 0 or (prev_cjk and first >= "\u1100" and is_cjk(first)) else " "
        last = folded[-1]
        prev_cjk = last >= "\u1100" and is_cjk(last)
        if gap:
            out.append(gap)
            npos += 1
        # A linear run after a linear record, joined by one space for one "\n", continues it.
        if linear and last_linear and gap and start - o1[-1] == 1:
            n1[-1] = npos + len(folded)
            o1[-1] = end
        else:
            n0.append(npos)
            n1.append(npos + len(folded))
            o0.append(start)
            o1.append(end)
            opaque.append(0 if linear else 1)
        last_linear = linear
        out.append(folded)
        npos += len(folded)

    pos = 0
    size = len(text)
    while pos < size:
        cut = text.find("\n", pos + _GROUP)
        end = size if cut < 0 else cut
        group = text[pos:end]
        fast = _fold_group(group) if group else None
        if fast is not None:
            emit(fast[0], pos, end, fast[1])
        else:
            opos = pos
            for raw in group.split("\n"):
                line_start = opos
                opos += len(raw) + 1
                if raw[-1:] == "\r":  # CRLF: the \r belongs to the line break, not the line
                    raw = raw[:-1]
                if not raw:
                    continue
                # Linear: every character maps to exactly one (ASCII lower; casefold of a
                # printable NFKC-stable line, which only expands, so same length is 1:1).
                if raw.isascii():
                    folded = raw.lower()
                    linear = True
                else:
                    folded, linear = _fold(raw)
                if not _is_regular(folded):
                    folded = _collapse(folded)
                    linear = False
                if folded:
                    emit(folded, line_start, line_start + len(raw), linear)
        pos = end + 1
    return Normalized("".join(out), text, n0, n1, o0, o1, opaque)


# --- the exact (slow, lazy) path -----------------------------------------------------------


# Characters of canonical combining class 0 that NFC composes with a preceding character:
# second halves of primary composites (Unicode 14, checked against unicodedata by the tests)
# and the Hangul medial vowels and final consonants that compose algorithmically.
_COMPOSING_STARTERS = frozenset(
    [
        chr(c)
        for c in (
            0x09BE,
            0x09D7,
            0x0B3E,
            0x0B56,
            0x0B57,
            0x0BBE,
            0x0BD7,
            0x0CC2,
            0x0CD5,
            0x0CD6,
            0x0D3E,
            0x0D57,
            0x0DCF,
            0x0DDF,
            0x0FB5,
            0x0FB7,
            0x102E,
            0x1B35,
            0x11127,
            0x1133E,
            0x11357,
            0x114B0,
            0x114BA,
            0x114BD,
            0x115AF,
            0x11930,
        )
    ]
    + [chr(c) for c in range(0x1161, 0x1176)]
    + [chr(c) for c in range(0x11A8, 0x11C3)]
)


@lru_cache(maxsize=8192)
def _starts_cluster(ch: str) -> bool:
    """Whether NFKC can never combine ``ch`` with what precedes it (a safe cut before it)."""
    if unicodedata.combining(ch) or ch in _COMPOSING_STARTERS:
        return False
    if unicodedata.category(ch) == "Cf":
        return False  # removed before NFKC, so its neighbours may compose: keep them together
    decomposed = _nfkc("NFKD", ch)
    # e.g. halfwidth ﾞ decomposes to the combining U+3099 and composes with the kana before it
    return not (
        decomposed
        and (unicodedata.combining(decomposed[0]) or decomposed[0] in _COMPOSING_STARTERS)
    )


@dataclass(frozen=True)
class _Edit:
    """Original ``[o0, o1)`` became ``[n0, n1)``; between edits offsets shift linearly."""

    o0: int
    o1: int
    n0: int
    n1: int


def _map_edits(edits: list[_Edit], keys: list[int], p: int, *, is_start: bool) -> int:
    i = (bisect_right(keys, p) if is_start else bisect_left(keys, p)) - 1
    if i < 0:
        return p
    e = edits[i]
    if (is_start and p < e.n1) or (not is_start and p <= e.n1):
        return e.o0 if is_start else e.o1
    return e.o1 + (p - e.n1)


@dataclass(frozen=True)
class _LineMap:
    """Exact map of one opaque line: fold edits (per NFKC cluster) then whitespace edits."""

    fold: list[_Edit]
    fold_keys: list[int]
    space: list[_Edit]
    space_keys: list[int]

    @classmethod
    def build(cls, raw: str, expected: str) -> _LineMap | None:
        """Re-normalize ``raw`` cluster by cluster; None if it does not give ``expected``."""
        fold: list[_Edit] = []
        pieces: list[str] = []
        npos = 0
        start = 0
        for i in range(1, len(raw) + 1):
            if i < len(raw) and not _starts_cluster(raw[i]):
                continue
            cluster = raw[start:i]
            done = _refold(_nfkc("NFKC", _CF_RE.sub("", cluster)).casefold())
            if len(done) != len(cluster) or (len(cluster) > 1 and done != cluster):
                fold.append(_Edit(start, i, npos, npos + len(done)))
            pieces.append(done)
            npos += len(done)
            start = i
        folded = "".join(pieces)
        space: list[_Edit] = []
        out: list[str] = []
        prev = 0
        npos_here = 0
        for m in _WS_RUN.finditer(folded):
            s, e = m.span()
            edge = s == 0 or e == len(folded)
            join = (
                not edge
                and not _BREAKS.isdisjoint(m.group())
                and is_cjk(folded[s - 1])
                and is_cjk(folded[e])
            )
            rep = "" if edge or join else " "
            out.append(folded[prev:s])
            npos_here += s - prev
            if rep != m.group():
                space.append(_Edit(s, e, npos_here, npos_here + len(rep)))
            out.append(rep)
            npos_here += len(rep)
            prev = e
        out.append(folded[prev:])
        if "".join(out) != expected:
            return None
        return cls(fold, [e.n0 for e in fold], space, [e.n0 for e in space])

    def map(self, q: int, *, is_start: bool) -> int:
        """Offset in the raw line of normalized offset ``q`` (a span start or end)."""
        mid = _map_edits(self.space, self.space_keys, q, is_start=is_start)
        return _map_edits(self.fold, self.fold_keys, mid, is_start=is_start)
