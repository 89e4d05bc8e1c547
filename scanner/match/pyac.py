"""The pyahocorasick engine (always installed; the reference the others are tested against).

Owns one ``ahocorasick.Automaton`` over the UTF-8 bytes of the patterns, each presented as a
latin-1 ``str`` (one character per byte). Must not do: I/O, logging. Hazard: pyahocorasick's
trie nodes search their children linearly, so over a CJK ``str`` (thousands of children at the
root) it runs at ~6.5 MB/s; over the same text as UTF-8 bytes-as-latin-1 each node has at most
256 children and it runs ~2.5x faster. Offsets are byte offsets, mapped back by ``resolve``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import ahocorasick

from scanner.match.boundary import PatternSet, encode, resolve

ENGINE = "pyahocorasick"


class PyAhoCorasickMatcher:
    """Aho-Corasick over UTF-8 bytes with pyahocorasick."""

    engine = ENGINE

    def __init__(self, patterns: Sequence[str]) -> None:
        self._pset = PatternSet.of(patterns)
        self._auto: ahocorasick.Automaton | None = None
        if self._pset.keys:
            auto = ahocorasick.Automaton()
            for k, key in enumerate(self._pset.keys):
                auto.add_word(key.decode("latin-1"), k)
            auto.make_automaton()
            self._auto = auto

    def __reduce__(self) -> tuple[type[PyAhoCorasickMatcher], tuple[tuple[str, ...]]]:
        # Rebuilt in the receiving process (e.g. a scan worker) rather than pickling the trie.
        return (PyAhoCorasickMatcher, (self._pset.patterns,))

    def find(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Every boundary-respecting occurrence as (pattern index, start, end) in ``text``."""
        if self._auto is None or not text:
            return iter(())
        buf = encode(text)
        # iter() yields the inclusive end index; resolve wants the exclusive byte end.
        raw = ((k, end + 1) for end, k in self._auto.iter(buf.decode("latin-1")))
        return resolve(self._pset, text, buf, raw)


def build(patterns: Sequence[str]) -> PyAhoCorasickMatcher:
    """Compile ``patterns`` (already normalized) into a pyahocorasick matcher."""
    return PyAhoCorasickMatcher(patterns)
