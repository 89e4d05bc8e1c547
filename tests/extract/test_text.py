"""Charset decoding of text parts: labels, BOMs, wrong labels, missing labels."""

from __future__ import annotations

import codecs

import pytest

from scanner.extract.text import decode_text, looks_textual

JA = "ファルコン計画の価格は①１２０万円です。㈱テスト"


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (JA.encode("cp932"), "shift_jis"),
        (JA.encode("cp932"), "Shift_JIS"),
        (JA.encode("cp932"), "windows-31j"),
        (JA.encode("cp932"), None),
        (JA.replace("㈱", "(株)").encode("iso2022_jp_2004"), "iso-2022-jp"),
        (JA.replace("①", "1").replace("㈱", "(株)").encode("iso2022_jp"), "ISO-2022-JP"),
        (JA.replace("①", "1").replace("㈱", "(株)").encode("euc_jp"), "euc-jp"),
        (JA.encode("utf-8"), "utf-8"),
        (JA.encode("utf-8"), None),
        (codecs.BOM_UTF8 + JA.encode("utf-8"), None),
        (JA.encode("utf-16"), None),
        (codecs.BOM_UTF16_BE + JA.encode("utf-16-be"), "utf-16"),
        (JA.encode("utf-8"), "iso-8859-1"),
        (JA.encode("cp932"), "us-ascii"),
        (JA.encode("utf-8"), "x-unknown-charset"),
    ],
)
def test_decodes_japanese_whatever_the_label(data: bytes, label: str | None) -> None:
    """Japanese text is recovered from every common encoding, even with a wrong or no label."""
    text = decode_text(data, label)
    assert "ファルコン計画" in text


def test_iso2022_jp_without_label_is_recognised() -> None:
    """7-bit ISO-2022-JP with no label is decoded by its escape sequences."""
    assert decode_text("ファルコン".encode("iso2022_jp"), None) == "ファルコン"


def test_latin1_label_respected_for_real_latin1() -> None:
    """A correct single-byte label keeps Western text intact."""
    assert decode_text("Café Falcon".encode("latin-1"), "iso-8859-1") == "Café Falcon"


def test_never_raises_on_garbage() -> None:
    """Random bytes with a bogus label still decode to some string without raising."""
    assert isinstance(decode_text(bytes(range(256)) * 4, "utf-8"), str)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii text\n", True),
        ("日本語のテキスト".encode(), True),
        ("日本語のテキスト".encode("utf-16"), True),
        (b"\x00\x01\x02\x03binary\x00\xff" * 100, False),
        (b"", True),
    ],
)
def test_looks_textual(data: bytes, expected: bool) -> None:
    """Unlabelled blobs are classified as text only when they plausibly are."""
    assert looks_textual(data) is expected


@pytest.mark.parametrize("codec", ["cp932", "euc_jp"])
def test_unlabelled_fullwidth_latin(codec: str) -> None:
    """Unlabelled Japanese-encoded fullwidth Latin (no kana at all) is still recognised."""
    text = " Ｐｒｏｊｅｃｔ Ｆａｌｃｏｎ "
    assert decode_text(text.encode(codec), None) == text


@pytest.mark.parametrize("text", ["Café déjà vu à Zürich", "Ærø Ásgeir Ðóra"])
def test_unlabelled_latin1_is_not_misread_as_japanese(text: str) -> None:
    """Accented Western text is not mistaken for cp932 (its mojibake would be kanji)."""
    assert "�" not in decode_text(text.encode("latin-1"), None)
    assert not any("\u3000" <= c <= "\u9fff" for c in decode_text(text.encode("latin-1"), None))


@pytest.mark.parametrize("codec", ["cp932", "euc_jp"])
@pytest.mark.parametrize("text", ["ＡＢＣ１２３", "日本語の文章です。", "ﾌｧﾙｺﾝ計画の件"])
def test_unlabelled_japanese_codec_choice(codec: str, text: str) -> None:
    """Between cp932 and EUC-JP, the decoding that reads as Japanese is chosen."""
    assert decode_text(text.encode(codec), None) == text
