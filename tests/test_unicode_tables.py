"""The generated ``scanner/_unicode_tables.py`` against the running Python's ``unicodedata``.

Also its generator: ``.venv/bin/python tests/test_unicode_tables.py > scanner/_unicode_tables.py``
rewrites the module from the running Python (after a Unicode upgrade, when the test fails).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":  # run as the generator script: make ``scanner`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner import normalize as norm_mod
from scanner._unicode_tables import NO_BOUNDARY_RANGES, SPLICE_RANGES
from scanner.normalize import _COMPOSING_STARTERS

_TEMPLATE = '''\
"""Unicode tables of ``scanner.normalize``, generated from ``unicodedata``: do not edit.

Regenerate with ``.venv/bin/python tests/test_unicode_tables.py > scanner/_unicode_tables.py``;
``tests/test_unicode_tables.py`` fails when the running Python's Unicode data differs.
"""

UNIDATA_VERSION = "{version}"

# Inclusive ranges of the characters before which NFKC may not split a text: combining
# marks, characters that compose with a predecessor, and those whose NFKD starts with either.
NO_BOUNDARY_RANGES: tuple[tuple[int, int], ...] = (
{no_boundary}
)

# Inclusive ranges of the BMP characters that are not inert. Inert: "\\n", or a printable
# NFKC-stable character before which NFKC may split, other than "Σ", whose lower() is its
# casefold and made of such characters. A text of inert characters is its own NFKC, its
# casefold is its lower(), and that is NFKC-normalized too.
SPLICE_RANGES: tuple[tuple[int, int], ...] = (
{splice}
)
'''


def _boundary_before(ch: str) -> bool:
    """Whether NFKC can never combine ``ch`` with what precedes it (nor reorder across it)."""
    if unicodedata.combining(ch) or ch in _COMPOSING_STARTERS:
        return False
    first = unicodedata.normalize("NFKD", ch)[0]
    return not (unicodedata.combining(first) or first in _COMPOSING_STARTERS)


def _stable(ch: str) -> bool:
    """Whether ``ch`` is "\\n", or printable, NFKC-stable and has a boundary before it."""
    return ch == "\n" or (
        ch.isprintable() and _boundary_before(ch) and unicodedata.is_normalized("NFKC", ch)
    )


def _inert(ch: str) -> bool:
    """Whether ``ch`` is inert (see the template): "Σ" is not, as lower() maps it by context."""
    folded = ch.casefold()
    return (
        _stable(ch) and ch != "Σ" and ch.lower() == folded and all(_stable(c) for c in folded)
    )


def _ranges(keep: Callable[[str], bool], end: int) -> tuple[tuple[int, int], ...]:
    """Inclusive ranges of the characters below ``end`` for which ``keep`` is false."""
    ranges: list[tuple[int, int]] = []
    for cp in range(end):
        if keep(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return tuple(ranges)


def _rows(ranges: tuple[tuple[int, int], ...]) -> str:
    return "\n".join(
        "    " + " ".join(f"(0x{lo:04X}, 0x{hi:04X})," for lo, hi in ranges[i : i + 4])
        for i in range(0, len(ranges), 4)
    )


def render() -> str:
    """The source of ``scanner/_unicode_tables.py`` for the running Python."""
    return _TEMPLATE.format(
        version=unicodedata.unidata_version,
        no_boundary=_rows(_ranges(_boundary_before, 0x110000)),
        splice=_rows(_ranges(_inert, 0x10000)),
    )


def test_tables_match_unicodedata() -> None:
    """The generated tables are what the running Python's Unicode data gives."""
    from scanner import _unicode_tables as tables

    assert unicodedata.unidata_version == tables.UNIDATA_VERSION
    assert _ranges(_boundary_before, 0x110000) == tables.NO_BOUNDARY_RANGES
    assert _ranges(_inert, 0x10000) == tables.SPLICE_RANGES


def test_casefold_never_makes_or_removes_spaces() -> None:
    """``normalize`` finds its spliced runs again by counting spaces after casefold."""
    for cp in range(0x110000):
        folded = chr(cp).casefold()
        assert folded.count(" ") == (cp == 0x20), hex(cp)


# Text made to exercise the fast path's spliced runs: inert characters, CJK and line breaks
# around printable non-inert ones and characters before which NFKC cannot split.
_NON_INERT = sorted(
    {chr(c) for lo, hi in SPLICE_RANGES for c in range(lo, hi + 1) if chr(c).isprintable()}
)
_NO_BOUNDARY = [chr(c) for lo, hi in NO_BOUNDARY_RANGES for c in range(lo, hi + 1)]
_spliced_texts = st.lists(
    st.one_of(
        st.sampled_from([*"aZ 日アｶﾞ가Σßİ", "\n"]),
        st.sampled_from(_NON_INERT),
        st.sampled_from(_NO_BOUNDARY),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spliced_texts)
def test_spliced_runs_agree_with_exact_path(text: str) -> None:
    """The block fast path with spliced runs gives the exact path's text, idempotently."""
    once = norm_mod.normalize(text).text
    assert norm_mod._LineMap.build(text, once) is not None
    assert norm_mod.normalize(once).text == once


if __name__ == "__main__":
    sys.stdout.write(render())
