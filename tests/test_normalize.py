"""Normalization rules, the fast path against the exact one, and the map back to originals."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scanner import normalize as norm_mod
from scanner.normalize import is_cjk, normalize, normalize_term

# Characters that exercise every rule: CJK, full/halfwidth, voiced marks, combining marks, ß,
# ligatures, ㍿, every kind of whitespace and line break, format characters, Hangul jamo.
SPECIAL = [
    *"aZ é\u0301ßẞﬁ㍿ｶﾞﾊﾟｱＡ１（）日本語ファル\u3099\u309aコン計画。、가\u1100\u1161\u11a8"
    " \t\n\r\x0b\x0c\x1c\x85\u2028\u2029\u3000\u00a0\u200b\u00ad\ufeff\u202e¨´Ǆǰİ\ud800",
    "\r\n",
]
texts = st.lists(st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=60).map("".join)

PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﾊﾟｿｺﾝ", "パソコン"),
        ("Straße", "strasse"),
        ("㍿ファルコン", "株式会社ファルコン"),
        ("ﬁle", "file"),
        ("ＡＢＣ１２３", "abc123"),
        ("ファル\nコン", "ファルコン"),
        ("ファル \r\n\t コン", "ファルコン"),
        ("ファル\u2028コン", "ファルコン"),
        ("ファル\n\n\nコン", "ファルコン"),
        ("ファル コン", "ファル コン"),
        ("project\nfalcon", "project falcon"),
        ("project \r\n  falcon", "project falcon"),
        ("ファル\nfalcon", "ファル falcon"),
        ("a\u3000\u00a0\tb", "a b"),
        ("  leading and trailing \n", "leading and trailing"),
        ("Fal\u200bcon\u00ad", "falcon"),
        ("e\u200b\u0301", "é"),
        ("ｶ\nﾞ", "カ \u3099"),
        ("", ""),
        (" \n\t", ""),
    ],
)
def test_rules(raw: str, expected: str) -> None:
    """Each documented rule, on its own, gives the documented result."""
    assert normalize(raw).text == expected
    assert normalize_term(raw) == expected


@pytest.mark.parametrize(
    ("raw", "needle", "original"),
    [
        ("Hello ﾌｧﾙ\nｺﾝ計画", "ファルコン", "ﾌｧﾙ\nｺﾝ"),
        ("x Straße y", "ss", "ß"),
        ("x ßa y", "s", "ß"),
        ("㍿ファルコン", "会社", "㍿"),
        ("a\r\n\r\nb", "a b", "a\r\n\r\nb"),
        ("ＡＢＣ  def", "c d", "Ｃ  d"),
        ("line one\nLine two\nﾃｽﾄ", "line two", "Line two"),
    ],
)
def test_original_span_examples(raw: str, needle: str, original: str) -> None:
    """A normalized hit maps back to exactly the original characters that produced it."""
    n = normalize(raw)
    start = n.text.index(needle)
    s, e = n.original_span(start, start + len(needle))
    assert raw[s:e] == original


def test_original_span_rejects_out_of_range() -> None:
    """A span outside the normalized text is a caller bug."""
    with pytest.raises(ValueError, match="outside"):
        normalize("abc").original_span(2, 9)


def test_large_text_maps_through_fast_blocks() -> None:
    """Hits deep inside a many-block text map back exactly, linear or opaque block alike."""
    lines = [f"line {i} ﾃｽﾄ" if i % 7 == 0 else f"Line {i} 日本語の\n文章" for i in range(5000)]
    raw = "\n".join(lines)
    n = normalize(raw)
    for needle in ("line 4999 ", "line 3500 テスト", "日本語の文章 line 12"):
        start = n.text.index(needle)
        s, e = n.original_span(start, start + len(needle))
        assert needle.strip() in normalize_term(raw[s:e])
        assert len(raw[s:e]) <= len(needle) + 3


@PROPS
@given(texts)
def test_idempotent(text: str) -> None:
    """Normalizing normalized text changes nothing."""
    once = normalize(text).text
    assert normalize(once).text == once


@PROPS
@given(texts)
def test_fast_path_agrees_with_exact_path(text: str) -> None:
    """The C-speed path and the cluster-by-cluster exact path produce the same text."""
    assert norm_mod._LineMap.build(text, normalize(text).text) is not None


@PROPS
@given(texts, texts, texts)
def test_term_occurs_in_context(before: str, term: str, after: str) -> None:
    """A normalized term occurs in any normalized text that contains it between spaces."""
    t = normalize_term(term)
    assume(t)
    assert t in normalize(before + " " + term + " " + after).text


@PROPS
@given(texts, st.data())
def test_original_span_covers_the_match(text: str, data: st.DataObject) -> None:
    """Any span of the normalized text maps to original characters that normalize to it."""
    n = normalize(text)
    assume(n.text)
    start = data.draw(st.integers(0, len(n.text) - 1))
    end = data.draw(st.integers(start + 1, len(n.text)))
    s, e = n.original_span(start, end)
    assert 0 <= s <= e <= len(text)
    assert normalize_term(n.text[start:end]) in normalize_term(text[s:e])


def test_cf_table_matches_unicodedata() -> None:
    """The hard-coded format-character table is the running Python's category Cf."""
    live = {c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
    table = {c for lo, hi in norm_mod._CF_RANGES for c in range(lo, hi + 1)}
    assert table == live


def test_composing_starters_match_unicodedata() -> None:
    """The hard-coded list of ccc=0 characters that compose with a predecessor is complete."""
    live = set()
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2 and not unicodedata.combining(chr(int(parts[1], 16))):
                live.add(chr(int(parts[1], 16)))
    assert live <= norm_mod._COMPOSING_STARTERS


@pytest.mark.parametrize(
    ("ch", "expected"),
    [
        ("日", True),
        ("か", True),
        ("カ", True),
        ("ｶ", True),
        ("。", True),
        ("한", True),
        ("𠮷", True),
        ("a", False),
        ("é", False),
        (" ", False),
        ("\u3000", False),
        ("\u3099", False),
        ("\u1161", False),
    ],
)
def test_cjk_class(ch: str, expected: bool) -> None:
    """CJK covers Han, kana, CJK punctuation and Hangul, but not combining marks or spaces."""
    assert is_cjk(ch) is expected
