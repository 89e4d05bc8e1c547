"""The word-boundary rule and the byte→str offset mapping shared by every engine.

Owns: which characters are Latin-alphanumeric (``is_word_char``), the compiled form of a pattern
list (``PatternSet``: unique UTF-8 keys, the indices of duplicates, which edges need a
boundary), and ``resolve``, which turns raw byte-level hits of any engine into boundary-checked
``(pattern_index, start, end)`` str offsets. Must not do: I/O, logging, clock. Hazard: engines
match UTF-8 bytes, callers want ``str`` offsets; a match of valid UTF-8 in valid UTF-8 always
starts and ends on a character boundary, which is what makes the mapping exact.

Latin-alphanumeric = ASCII letters and digits, every letter whose Unicode name starts with
"LATIN" (é, ß, ł, ǆ …; casefolded text has no uppercase but both cases are listed), and the
combining diacritical marks U+0300-U+036F (in normalized text they extend the Latin letter before
them). A pattern whose first (last) character is Latin-alphanumeric needs a character that is
not, or the text edge, before (after) it; any other edge (CJK, punctuation, space) matches
anywhere.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_LATIN_BLOCKS = (
    (0x00C0, 0x024F),  # Latin-1 supplement letters, extended-A and -B
    (0x0250, 0x02AF),  # IPA extensions
    (0x1D00, 0x1DBF),  # phonetic extensions
    (0x1E00, 0x1EFF),  # Latin extended additional (Vietnamese)
    (0x2C60, 0x2C7F),  # Latin extended-C
    (0xA720, 0xA7FF),  # Latin extended-D
    (0xAB30, 0xAB6F),  # Latin extended-E
    (0xFB00, 0xFB06),  # Latin ligatures (NFKC removes them; listed for unnormalized text)
)
# Built once at import from unicodedata (about 3,000 names), not from a hand-kept list.
_WORD_NONASCII = frozenset(
    [
        chr(c)
        for lo, hi in _LATIN_BLOCKS
        for c in range(lo, hi + 1)
        if chr(c).isalpha() and unicodedata.name(chr(c), "").startswith("LATIN")
    ]
    + [chr(c) for c in range(0x0300, 0x0370)]
)
_WORD_ASCII = bytes(1 if chr(b).isascii() and chr(b).isalnum() else 0 for b in range(128))


def is_word_char(ch: str) -> bool:
    """Whether ``ch`` is Latin-alphanumeric, i.e. a pattern edge next to it is not a boundary."""
    if ch.isascii():
        return _WORD_ASCII[ord(ch)] == 1
    return ch in _WORD_NONASCII


def _left_ok(buf: bytes, s: int) -> bool:
    """Whether the character ending at byte ``s`` of UTF-8 ``buf`` is a boundary (or none)."""
    if s == 0:
        return True
    c = buf[s - 1]
    if c < 0x80:
        return not _WORD_ASCII[c]
    j = s - 1
    while j > 0 and buf[j] & 0xC0 == 0x80:  # back to the lead byte
        j -= 1
    return buf[j:s].decode("utf-8", "surrogatepass") not in _WORD_NONASCII


def _right_ok(buf: bytes, e: int) -> bool:
    """Whether the character starting at byte ``e`` of UTF-8 ``buf`` is a boundary (or none)."""
    if e >= len(buf):
        return True
    c = buf[e]
    if c < 0x80:
        return not _WORD_ASCII[c]
    n = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
    return buf[e : e + n].decode("utf-8", "surrogatepass") not in _WORD_NONASCII


def encode(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates pass through so that any str can be scanned."""
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class PatternSet:
    """A pattern list compiled for byte-level engines: unique keys, duplicates, edge rules."""

    patterns: tuple[str, ...]
    keys: tuple[bytes, ...]  # unique UTF-8 encodings, in first-occurrence order
    indices: tuple[tuple[int, ...], ...]  # per key: every pattern index that has this text
    char_len: tuple[int, ...]  # per key: length in characters
    left: bytes  # per key: 1 if its first character needs a boundary before it
    right: bytes  # per key: 1 if its last character needs a boundary after it

    @classmethod
    def of(cls, patterns: Sequence[str]) -> PatternSet:
        """Compile ``patterns``; an empty pattern is a caller bug and raises ValueError."""
        by_key: dict[bytes, list[int]] = {}
        for i, pattern in enumerate(patterns):
            if not pattern:
                raise ValueError(f"pattern {i} is empty")
            by_key.setdefault(encode(pattern), []).append(i)
        keys = tuple(by_key)
        firsts = [patterns[by_key[k][0]] for k in keys]
        return cls(
            patterns=tuple(patterns),
            keys=keys,
            indices=tuple(tuple(v) for v in by_key.values()),
            char_len=tuple(len(p) for p in firsts),
            left=bytes(is_word_char(p[0]) for p in firsts),
            right=bytes(is_word_char(p[-1]) for p in firsts),
        )


# Maps every UTF-8 continuation byte to 0 and every other byte to 1: counting the 1s of a byte
# range counts the characters that start in it, with bytes.count (C, no allocation).
_LEADS = bytes(0 if 0x80 <= b < 0xC0 else 1 for b in range(256))


def resolve(
    pset: PatternSet, text: str, buf: bytes, hits: Iterable[tuple[int, int]]
) -> Iterator[tuple[int, int, int]]:
    """Boundary-checked ``(pattern_index, start, end)`` str offsets of raw ``(key, byte_end)``.

    Byte offsets become str offsets by counting character-starting bytes since the previous hit
    (in either direction), so the total cost is one pass over the text however many hits there
    are.
    """
    keys, left, right, char_len, indices = (
        pset.keys,
        pset.left,
        pset.right,
        pset.char_len,
        pset.indices,
    )
    leads = None if len(buf) == len(text) else buf.translate(_LEADS)
    bpos = cpos = 0
    for k, be in hits:
        if (left[k] and not _left_ok(buf, be - len(keys[k]))) or (
            right[k] and not _right_ok(buf, be)
        ):
            continue
        if leads is None:  # ASCII: byte and str offsets agree
            ce = be
        else:
            if be >= bpos:
                cpos += leads.count(1, bpos, be)
            else:
                cpos -= leads.count(1, be, bpos)
            bpos = be
            ce = cpos
        cs = ce - char_len[k]
        for index in indices[k]:
            yield index, cs, ce
