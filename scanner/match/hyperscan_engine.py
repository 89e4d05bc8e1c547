"""The Hyperscan engine (optional, ``[fast]`` extra; x86-64 only): SIMD literal matching.

Owns one block-mode ``hyperscan.Database`` compiled with the pure-literal compiler
(``hs_compile_lit_multi``, ``literal=True``) over the patterns' UTF-8 bytes, one id per unique
key. Literals have a fixed length, so the start is ``end - len(key)`` and no start-of-match
tracking (HS_FLAG_SOM_LEFTMOST, which is costly) is needed. Must not do: I/O, logging. Hazard:
the match callback runs in Python for every raw hit, and a Database is not picklable: a matcher
crosses process boundaries as ``hyperscan.dumpb`` bytes (``serialize``/``load``), which also
serves as a build cache when compiling a large pattern set is too slow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import hyperscan

from scanner.match.boundary import PatternSet, encode, resolve

ENGINE = "hyperscan"


class HyperscanMatcher:
    """Literal multi-pattern matching with Hyperscan."""

    engine = ENGINE

    def __init__(self, patterns: Sequence[str], blob: bytes | None = None) -> None:
        self._pset = PatternSet.of(patterns)
        self._db: Any = None
        if not self._pset.keys:
            return
        if blob is not None:
            self._db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            self._db.scratch = hyperscan.Scratch(self._db)
            return
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        keys = list(self._pset.keys)
        db.compile(
            expressions=keys,
            ids=list(range(len(keys))),
            elements=len(keys),
            flags=0,
            literal=True,
        )
        self._db = db

    def _scratch(self) -> Any:
        """This thread's scratch space: Hyperscan allows one scan per scratch at a time, so
        threads sharing a matcher (the poller's, a web server's) each get their own."""
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__["_local"] = threading.local()
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = hyperscan.Scratch(self._db)
        return scratch

    def serialize(self) -> bytes:
        """The compiled database as bytes, for ``load`` in another process or from a cache."""
        return b"" if self._db is None else bytes(hyperscan.dumpb(self._db))

    @classmethod
    def load(cls, patterns: Sequence[str], blob: bytes) -> HyperscanMatcher:
        """A matcher from ``serialize()`` output and the same patterns, without compiling."""
        return cls(patterns, blob or None)

    @classmethod
    def _restore(cls, pset: PatternSet, blob: bytes) -> HyperscanMatcher:
        """Unpickle without recomputing the pattern tables (100k patterns: ~0.1 s saved)."""
        matcher = cls.__new__(cls)
        matcher._pset = pset
        matcher._db = None
        if blob:
            matcher._db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            matcher._db.scratch = hyperscan.Scratch(matcher._db)
        return matcher

    def __reduce__(self) -> tuple[Any, tuple[PatternSet, bytes]]:
        return (HyperscanMatcher._restore, (self._pset, self.serialize()))

    def find(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Every boundary-respecting occurrence as (pattern index, start, end) in ``text``."""
        if self._db is None or not text:
            return iter(())
        buf = encode(text)
        raw: list[tuple[int, int]] = []
        add = raw.append

        def on_match(key: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            add((key, end))

        self._db.scan(buf, match_event_handler=on_match, scratch=self._scratch())
        # Hyperscan reports in end order per pattern but may interleave; sorting keeps the
        # incremental offset mapping in resolve a single forward pass.
        raw.sort(key=lambda h: h[1])
        return resolve(self._pset, text, buf, raw)


def build(patterns: Sequence[str]) -> HyperscanMatcher:
    """Compile ``patterns`` (already normalized) into a Hyperscan matcher."""
    return HyperscanMatcher(patterns)
