"""The matcher interface every engine implements, and the choice of engine.

Patterns and text are both already normalized (see ``scanner.normalize``). ``find`` yields each
occurrence as ``(pattern_index, start, end)`` in the normalized text, after applying the word
boundary rule: a pattern whose first (last) character is Latin-alphanumeric must not be preceded
(followed) by a Latin-alphanumeric character; CJK edges match anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class Matcher(Protocol):
    """An immutable automaton over a fixed list of normalized patterns."""

    engine: str

    def find(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Every boundary-respecting occurrence as (pattern index, start, end) in ``text``."""
        ...


def build_matcher(patterns: Sequence[str], engine: str | None = None) -> Matcher:
    """Build the fastest installed engine (or the named one) over normalized ``patterns``."""
    raise NotImplementedError("filled in by scanner.match")
