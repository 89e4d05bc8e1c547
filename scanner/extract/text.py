"""Bytes → str for text parts and text attachments, whatever the charset label says.

Japanese mail arrives labelled ``Shift_JIS`` (really cp932), ``ISO-2022-JP`` (often with
Microsoft extensions), ``EUC-JP``, UTF-8 or UTF-16 with a BOM, and sometimes with no label or a
wrong one. Order: BOM → declared label (mapped to the superset codec Windows really uses) →
UTF-8 → charset-normalizer detection → the label with replacement characters. Never raises.
Hazard: a wrong but "successful" single-byte decoding hides a secret as mojibake, so Western
single-byte labels on non-ASCII data are double-checked by detection.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

from charset_normalizer import from_bytes

# Labels seen in the wild mapped to the codec that decodes what senders actually produce.
# Shift_JIS mail is written by Windows (cp932: NEC/IBM extensions, ①, ㈱); ISO-2022-JP by
# Outlook may carry the same extensions, which only the _ext/_2004 codecs can decode.
_LABEL_CODECS: dict[str, tuple[str, ...]] = {
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932",),
    "x-sjis": ("cp932",),
    "ms_kanji": ("cp932",),
    "csshiftjis": ("cp932",),
    "windows-31j": ("cp932",),
    "cp932": ("cp932",),
    "ms932": ("cp932",),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_3"),
    "iso-2022-jp-2": ("iso2022_jp_2",),
    "csiso2022jp": ("iso2022_jp", "iso2022_jp_ext"),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "x-euc-jp": ("euc_jp", "euc_jis_2004"),
    "cseucpkdfmtjapanese": ("euc_jp",),
    "us-ascii": ("ascii",),
    "ascii": ("ascii",),
    "utf8": ("utf-8",),
    "unicode-1-1-utf-7": ("utf-7",),
}

# Single-byte labels that decode anything without error, so a wrong label is invisible.
_PERMISSIVE = {
    codecs.lookup(name).name for name in ("latin-1", "cp1252", "iso-8859-15", "ascii")
}
# Japanese codecs tried on unlabelled or mislabelled non-UTF-8 data before generic detection,
# which guesses poorly on short Japanese text; accepted only if the result reads as Japanese.
_JAPANESE_CODECS = ("cp932", "euc_jp", "euc_jis_2004")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Detection on huge inputs is slow; its verdict on the first part is as good as on all of it.
_DETECT_SAMPLE = 256 * 1024


@lru_cache(maxsize=256)
def _codecs_for(label: str | None) -> tuple[str, ...]:
    if not label:
        return ()
    key = label.strip().strip('"').lower()
    if key in _LABEL_CODECS:
        return _LABEL_CODECS[key]
    try:
        return (codecs.lookup(key).name,)
    except LookupError:
        return ()


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _japanese_score(text: str) -> float:
    """How Japanese a decoding looks: the share of its non-ASCII characters that only real
    Japanese yields when decoded as cp932/EUC-JP.

    Kana, CJK punctuation (、。「」) and fullwidth ASCII (Ｐｒｏｊｅｃｔ) come from lead bytes that
    Western single-byte text rarely contains, unlike the kanji that mojibake is made of;
    halfwidth katakana count half, since cp932 maps the Latin-1 capitals (0xA1-0xDF) to them.
    """
    wide = strong = weak = 0
    for char in text:
        if char < "\x80":
            continue
        wide += 1
        if "\u3000" <= char <= "\u30ff" or "\uff01" <= char <= "\uff5e":
            strong += 1
        elif "\uff66" <= char <= "\uff9d":
            weak += 1
    return (strong + weak / 2) / wide if wide else 0.0


def _japanese(data: bytes) -> str | None:
    """``data`` decoded by the Japanese codec under which it reads most like Japanese."""
    sample = data[:_DETECT_SAMPLE]
    best: tuple[float, str] | None = None
    for codec in _JAPANESE_CODECS:
        text = _strict(sample, codec)
        if text is None:
            continue
        score = _japanese_score(text)
        if score >= 0.25 and (best is None or score > best[0]):
            best = (score, codec)
    if best is None:
        return None
    return _strict(data, best[1])


def _detect(data: bytes) -> str | None:
    """Best guess from charset-normalizer, or None when it has no confident answer."""
    best = from_bytes(data[:_DETECT_SAMPLE]).best()
    if best is None or best.encoding is None:
        return None
    encoding: str = best.encoding
    return encoding


def decode_text(data: bytes, label: str | None = None) -> str:
    """Decode ``data`` as faithfully as possible; never raises."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _strict(data, codec)
            if text is not None:
                return text
    if data.isascii():
        # ISO-2022-JP is 7-bit: an ASCII-only body may still need the label's codec.
        candidates = _codecs_for(label)
        if candidates and candidates[0].startswith("iso2022"):
            for codec in candidates:
                text = _strict(data, codec)
                if text is not None:
                    return text
        if b"\x1b$" in data:
            text = _strict(data, "iso2022_jp_ext")
            if text is not None:
                return text
        return data.decode("ascii")
    candidates = _codecs_for(label)
    for codec in candidates:
        if codec in _PERMISSIVE:
            continue
        text = _strict(data, codec)
        if text is not None:
            return text
    text = _strict(data, "utf-8")
    if text is not None:
        return text
    text = _japanese(data)
    if text is not None:
        return text
    permissive = [c for c in candidates if c in _PERMISSIVE and c != "ascii"]
    if permissive:
        # A Western label with no evidence against it (not UTF-8, not Japanese) is believed.
        return data.decode(permissive[0])
    detected = _detect(data)
    if detected is not None:
        text = _strict(data, detected)
        if text is not None:
            return text
    for codec in candidates:
        text = _strict(data, codec)
        if text is not None:
            return text
    fallback = detected or (candidates[0] if candidates else "utf-8")
    return data.decode(fallback, errors="replace")


def looks_textual(data: bytes) -> bool:
    """True when an unlabelled blob is plausibly text (no NULs outside UTF-16, decodable)."""
    head = data[:8192]
    if not head:
        return True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8)):
        return True
    if b"\x00" in head:
        return False
    if _strict(head, "utf-8") is not None or head.isascii():
        return True
    # Partial trailing multibyte sequence at the cut is fine for UTF-8.
    if _strict(head[:-4], "utf-8") is not None:
        return True
    control = sum(1 for b in head if b < 0x09 or 0x0E <= b < 0x20)
    if control > len(head) // 100:
        return False
    best = from_bytes(head).best()
    return best is not None and best.chaos < 0.2
