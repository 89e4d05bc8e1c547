"""One contract for every installed matcher engine: boundaries, overlaps, offsets, duplicates."""

from __future__ import annotations

import pickle
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.match import available_engines, build_matcher
from scanner.match.boundary import is_word_char
from scanner.match.engine import Matcher

ENGINES = available_engines()


def hits(matcher: Matcher, text: str) -> set[tuple[int, int, int]]:
    return set(matcher.find(text))


def reference(patterns: list[str], text: str) -> set[tuple[int, int, int]]:
    """Brute force: every occurrence of every pattern that satisfies the boundary rule."""
    found: set[tuple[int, int, int]] = set()
    for i, p in enumerate(patterns):
        for m in re.finditer(f"(?={re.escape(p)})", text):
            s, e = m.start(), m.start() + len(p)
            if is_word_char(p[0]) and s > 0 and is_word_char(text[s - 1]):
                continue
            if is_word_char(p[-1]) and e < len(text) and is_word_char(text[e]):
                continue
            found.add((i, s, e))
    return found


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each installed engine name in turn."""
    return str(request.param)


def test_pyahocorasick_is_always_available() -> None:
    """The design's default engine is installed wherever Maruhi is."""
    assert "pyahocorasick" in ENGINES


def test_default_is_first_available() -> None:
    """Without a name, build_matcher picks the fastest installed engine."""
    assert build_matcher(["x"]).engine == ENGINES[0]


def test_unknown_engine_is_rejected() -> None:
    """A typo in the engine name is an error, not a silent fallback."""
    with pytest.raises(ValueError, match="unknown"):
        build_matcher(["x"], "grep")


def test_empty_pattern_is_rejected(engine: str) -> None:
    """An empty pattern would match everywhere; the ruleset compiler must never send one."""
    with pytest.raises(ValueError, match="empty"):
        build_matcher(["ok", ""], engine)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("falcon", "project falcon.", [(8, 14)]),
        ("falcon", "falconry", []),
        ("falcon", "the falcons", []),
        ("falcon", "xfalcon", []),
        ("falcon", "falcon", [(0, 6)]),
        ("falcon", "(falcon)", [(1, 7)]),
        ("falcon", "café falcon_x", [(5, 11)]),
        ("falcon", "éfalcon", []),
        ("falcon", "falconé", []),
        ("1234", "12345", []),
        ("1234", "01234", []),
        ("1234", "no. 1234-5", [(4, 8)]),
        ("ファルコン", "プロジェクトファルコン計画", [(6, 11)]),
        ("ファルコン", "xファルコンy", [(1, 6)]),
        ("abc株式会社", "xabc株式会社", []),
        ("abc株式会社", "新abc株式会社です", [(1, 8)]),
        ("株式会社abc", "株式会社abcd", []),
        ("$100", "x$100", [(1, 5)]),
        ("falcon", "ファルコンfalcon計画", [(5, 11)]),
    ],
)
def test_word_boundaries(
    engine: str, pattern: str, text: str, expected: list[tuple[int, int]]
) -> None:
    """Latin-alphanumeric edges need a boundary; CJK and punctuation edges match anywhere."""
    assert sorted((s, e) for _, s, e in build_matcher([pattern], engine).find(text)) == expected


def test_overlapping_patterns_all_found(engine: str) -> None:
    """Nested and overlapping occurrences of different patterns are all reported."""
    patterns = ["falcon", "project falcon", "ファルコン", "ファルコン計画", "計画"]
    text = "project falcon = ファルコン計画"
    assert hits(build_matcher(patterns, engine), text) == {
        (0, 8, 14),
        (1, 0, 14),
        (2, 17, 22),
        (3, 17, 24),
        (4, 22, 24),
    }


def test_shared_prefix_and_suffix(engine: str) -> None:
    """Patterns sharing prefixes and suffixes do not hide one another."""
    patterns = ["abc def", "abc", "def", "c def", "東京", "東京都", "京都"]
    text = "abc def 東京都"
    assert hits(build_matcher(patterns, engine), text) == reference(patterns, text)


def test_every_occurrence_of_the_same_pattern(engine: str) -> None:
    """Repeated and self-overlapping occurrences are each reported (callers dedupe)."""
    assert hits(build_matcher(["ああ", "ab ab"], engine), "あああ ab ab ab") == {
        (0, 0, 2),
        (0, 1, 3),
        (1, 4, 9),
        (1, 7, 12),
    }


def test_duplicate_patterns_report_each_index(engine: str) -> None:
    """Two rules with the same term both hit."""
    assert hits(build_matcher(["secret", "x", "secret"], engine), "a secret") == {
        (0, 2, 8),
        (2, 2, 8),
    }


def test_offsets_after_multibyte_characters(engine: str) -> None:
    """Offsets are str offsets even after 2-, 3- and 4-byte UTF-8 characters."""
    text = "é日𠮷😀 falcon 𠮷ファルコン"
    found = hits(build_matcher(["falcon", "ファルコン", "𠮷"], engine), text)
    assert found == {(0, 5, 11), (1, 13, 18), (2, 2, 3), (2, 12, 13)}
    for i, s, e in found:
        assert text[s:e] == ["falcon", "ファルコン", "𠮷"][i]


def test_lone_surrogates_do_not_break_matching(engine: str) -> None:
    """Any str can be scanned, even one carrying a lone surrogate from a broken decoder."""
    assert hits(build_matcher(["falcon"], engine), "\ud800 falcon") == {(0, 2, 8)}


@pytest.mark.parametrize("text", ["", "ファルコン計画の件", "   ", "falcon" * 1000])
def test_edge_texts(engine: str, text: str) -> None:
    """Empty, CJK-only, space-only and long repetitive texts agree with the reference."""
    patterns = ["falcon", "計画", "ファルコン計画の件", "falconfalcon"]
    assert hits(build_matcher(patterns, engine), text) == reference(patterns, text)


def test_no_patterns(engine: str) -> None:
    """A ruleset without terms finds nothing."""
    assert hits(build_matcher([], engine), "anything") == set()


def test_matcher_survives_pickling(engine: str) -> None:
    """Matchers cross into scan worker processes."""
    matcher = build_matcher(["falcon", "ファルコン"], engine)
    clone = pickle.loads(pickle.dumps(matcher))
    assert hits(clone, "falcon ファルコン") == hits(matcher, "falcon ファルコン")


ALPHABET = "ab ア計é.1"


def _random_patterns(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        p = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6))).strip()
        out.append(p or "a")
    return out


PATTERNS_10K = _random_patterns(10_000, 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=ALPHABET, max_size=80))
def test_10k_random_patterns_match_brute_force(text: str) -> None:
    """10k random patterns (with duplicates) agree with a brute-force search on random texts."""
    expected = reference(PATTERNS_10K, text)
    for engine in ENGINES:
        assert hits(_matcher_10k(engine), text) == expected, engine


_CACHE: dict[str, Matcher] = {}


def _matcher_10k(engine: str) -> Matcher:
    if engine not in _CACHE:
        _CACHE[engine] = build_matcher(PATTERNS_10K, engine)
    return _CACHE[engine]


def test_one_matcher_shared_by_threads(engine: str) -> None:
    """Threads sharing one matcher (poller, web server) all get complete, correct results."""
    import threading

    matcher = build_matcher(["falcon", "ファルコン計画", "project falcon"], engine)
    text = "re: project falcon と ファルコン計画 " * 50
    expected = sorted(matcher.find(text))
    failures: list[object] = []

    def work() -> None:
        try:
            for _ in range(200):
                if sorted(matcher.find(text)) != expected:
                    failures.append("mismatch")
        except Exception as exc:  # the assertion below reports it
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(expected) == 150
