"""The matcher interface every engine implements, and the choice of engine.

Patterns and text are both already normalized (see ``scanner.normalize``). ``find`` yields each
occurrence as ``(pattern_index, start, end)`` in the normalized text, after applying the word
boundary rule: a pattern whose first (last) character is Latin-alphanumeric must not be preceded
(followed) by a Latin-alphanumeric character; CJK edges match anywhere.

Owns the engine registry. Must not do: I/O, logging, clock or environment reads (the engine is
chosen by an argument, never by the environment). Every engine matches UTF-8 bytes and shares
``scanner.match.boundary`` for the boundary rule and offsets, so all give identical results
(``tests/match/test_engines.py`` runs one contract over each).

Preference order, measured on this 2-core x86-64 box (10 MB mixed JA/EN text, 10k-100k terms,
``tests/bench/bench_match.py``), fastest first: hyperscan (literal mode; ~3 s build and
~130-190 MB RSS for 100k terms, so load a serialized one from a cache there), ahocorasick-rs,
pyahocorasick (always installed; the design's default when nothing faster is).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, cast


class Matcher(Protocol):
    """An immutable automaton over a fixed list of normalized patterns."""

    engine: str

    def find(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Every boundary-respecting occurrence as (pattern index, start, end) in ``text``."""
        ...


# name → module whose ``build(patterns)`` makes the matcher, in measured preference order.
_ENGINES: dict[str, str] = {
    "hyperscan": "scanner.match.hyperscan_engine",
    "ahocorasick-rs": "scanner.match.ahocorasick_rs_engine",
    "pyahocorasick": "scanner.match.pyac",
}
DEFAULT_ENGINE = "pyahocorasick"


def _builder(name: str) -> Callable[[Sequence[str]], Matcher] | None:
    try:
        module = importlib.import_module(_ENGINES[name])
    except ImportError:  # optional engine (the [fast] extra) not installed
        return None
    return cast(Callable[[Sequence[str]], Matcher], module.build)


def available_engines() -> list[str]:
    """Names of the installed engines, fastest first."""
    return [name for name in _ENGINES if _builder(name) is not None]


def build_matcher(patterns: Sequence[str], engine: str | None = None) -> Matcher:
    """Build the fastest installed engine (or the named one) over normalized ``patterns``.

    Raises ValueError for an unknown or uninstalled engine name, or an empty pattern.
    """
    names = available_engines() if engine is None else [engine]
    if engine is not None and engine not in _ENGINES:
        raise ValueError(f"unknown matcher engine {engine!r}; known: {', '.join(_ENGINES)}")
    build = _builder(names[0])
    if build is None:
        raise ValueError(f"matcher engine {names[0]!r} is not installed")
    return build(patterns)
