"""The ahocorasick-rs engine (optional, ``[fast]`` extra): Rust aho-corasick over UTF-8 bytes.

Owns one ``ahocorasick_rs.BytesAhoCorasick`` in standard (overlapping) match kind, so that every
occurrence of every pattern is reported. Must not do: I/O, logging. Hazard: it returns all
matches as one list, so memory grows with the number of raw hits (short Latin patterns inside
longer words are rejected by the boundary check only afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import ahocorasick_rs

from scanner.match.boundary import PatternSet, encode, resolve

ENGINE = "ahocorasick-rs"


class AhoCorasickRsMatcher:
    """Aho-Corasick over UTF-8 bytes with the Rust ``aho-corasick`` crate."""

    engine = ENGINE

    def __init__(self, patterns: Sequence[str]) -> None:
        self._pset = PatternSet.of(patterns)
        self._auto: ahocorasick_rs.BytesAhoCorasick | None = None
        if self._pset.keys:
            self._auto = ahocorasick_rs.BytesAhoCorasick(
                list(self._pset.keys), matchkind=ahocorasick_rs.MATCHKIND_STANDARD
            )

    def __reduce__(self) -> tuple[type[AhoCorasickRsMatcher], tuple[tuple[str, ...]]]:
        return (AhoCorasickRsMatcher, (self._pset.patterns,))

    def find(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Every boundary-respecting occurrence as (pattern index, start, end) in ``text``."""
        if self._auto is None or not text:
            return iter(())
        buf = encode(text)
        found = self._auto.find_matches_as_indexes(buf, overlapping=True)
        return resolve(self._pset, text, buf, ((k, end) for k, _start, end in found))


def build(patterns: Sequence[str]) -> AhoCorasickRsMatcher:
    """Compile ``patterns`` (already normalized) into an ahocorasick-rs matcher."""
    return AhoCorasickRsMatcher(patterns)
