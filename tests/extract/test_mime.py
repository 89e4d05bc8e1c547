"""The MIME walk: headers, bodies, attachments, nested messages, and hostile structure."""

from __future__ import annotations

import base64
import os
import time

import pytest

from scanner.extract.mime import decode_header_value, extract_message
from scanner.limits import Limits
from tests.extract.factories import make_message


def _texts(raw: bytes, limits: Limits | None = None) -> dict[str, str]:
    out = extract_message(raw, limits or Limits())
    texts: dict[str, str] = {}
    for seg in out.segments:
        texts[seg.location] = texts[seg.location] + "\n" + seg.text if seg.location in texts \
            else seg.text
    return texts


def _reasons(raw: bytes, limits: Limits | None = None) -> list[tuple[str, str]]:
    return [(u.location, u.reason) for u in extract_message(raw, limits or Limits()).unscannable]


@pytest.mark.parametrize(
    ("raw_value", "expected"),
    [
        ("=?UTF-8?B?44OV44Kh44Or44Kz44Oz6KiI55S7?=", "ファルコン計画"),
        ("=?ISO-2022-JP?B?GyRCJVUlISVrJTMlcxsoQg==?=", "ファルコン"),
        ("=?shift_jis?B?g3SDQIOLg1KDkw==?=", "ファルコン"),
        ("=?utf-8?q?Project_Falcon?=", "Project Falcon"),
        ("=?utf-8?B?UHJvamVj?= =?utf-8?B?dCBGYWxjb24=?=", "Project Falcon"),
        ("Re: =?utf-8?q?Fal?= =?utf-8?q?con?= plans", "Re: Falcon plans"),
        ("=?broken?Q?x", "=?broken?Q?x"),
    ],
)
def test_header_decoding(raw_value: str, expected: str) -> None:
    """RFC 2047 words decode across charsets and split words rejoin (encoded-word evasion)."""
    assert decode_header_value(raw_value) == expected


def test_locations_of_headers_body_and_attachment() -> None:
    """Subject, display names, body and a named attachment land at their contract locations."""
    raw = make_message(
        subject="Project Falcon",
        sender='"Falcon Team" <t@example.co.jp>',
        body="the body",
        attachments=(("notes.txt", b"attached text", "text/plain"),),
    )
    texts = _texts(raw)
    assert texts["header:subject"] == "Project Falcon"
    assert texts["header:from"] == "Falcon Team"
    assert texts["body"].strip() == "the body"
    assert texts["attachment:notes.txt"] == "notes.txt\nattached text"  # name, then content


def test_raw_8bit_shift_jis_subject() -> None:
    """A raw (unencoded) Shift_JIS subject, as old Japanese mailers send, is decoded."""
    raw = (
        b"From: a@example.co.jp\r\nTo: b@acme.example\r\nSubject: "
        + "ファルコン計画".encode("cp932")
        + b"\r\n\r\nbody\r\n"
    )
    assert _texts(raw)["header:subject"] == "ファルコン計画"


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp", "shift_jis", "euc-jp"])
def test_body_transfer_encodings_and_charsets(cte: str, charset: str) -> None:
    """Japanese bodies decode under every transfer encoding and Japanese charset."""
    if charset == "iso-2022-jp" and cte == "8bit":
        cte = "7bit"
    raw = make_message(body="極秘：ファルコン計画\n", charset=charset, cte=cte)
    assert "ファルコン計画" in _texts(raw)["body"]


def test_html_body_is_reduced_to_text() -> None:
    """An HTML alternative contributes its visible text to the body location."""
    raw = make_message(body=None, html="<p>Project <b>Fal</b>con</p><script>x</script>")
    assert "Project Falcon" in _texts(raw)["body"]


def test_rfc2231_filename() -> None:
    """An RFC 2231 encoded Japanese attachment name is decoded into the location."""
    raw = (
        b"From: a@b.example\r\nTo: c@d.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nbody\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%E8%B3%87%E6%96%99.txt\r\n\r\n"
        b"secret\r\n--b--\r\n"
    )
    assert _texts(raw)["attachment:資料.txt"].strip() == "資料.txt\nsecret"


def test_forwarded_message_locations() -> None:
    """A message/rfc822 attachment yields attachment:NAME/header:subject and /body."""
    inner = make_message(subject="Inner Falcon", body="inner body text")
    raw = make_message(attachments=(("fwd.eml", inner, "message/rfc822"),))
    texts = _texts(raw)
    assert texts["attachment:fwd.eml/header:subject"] == "Inner Falcon"
    assert "inner body text" in texts["attachment:fwd.eml/body"]


def test_eml_sent_as_octet_stream_is_opened() -> None:
    """An .eml attached as application/octet-stream is sniffed and walked as a message."""
    inner = make_message(subject="Hidden Falcon", body="inner")
    raw = make_message(attachments=(("mail.bin", inner, "application/octet-stream"),))
    assert _texts(raw)["attachment:mail.bin/header:subject"] == "Hidden Falcon"


def test_deep_mime_nest_is_bounded() -> None:
    """A 200-level multipart nest ends as max_mime_depth quickly, with a verdict possible."""
    part = b"Content-Type: text/plain\r\n\r\nFalcon deep\r\n"
    for i in range(200):
        part = (
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
            + part
            + b"\r\n--b%d--\r\n" % i
        )
    raw = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + part
    start = time.perf_counter()
    reasons = _reasons(raw)
    assert time.perf_counter() - start < 5
    assert ("body", "max_mime_depth") in reasons


def test_deep_forward_nest_is_bounded() -> None:
    """Forwards nested 200 deep become max_mime_depth instead of recursing without end."""
    msg = make_message(subject="leaf", body="Falcon")
    for _ in range(200):
        msg = make_message(attachments=(("f.eml", msg, "message/rfc822"),))
    reasons = _reasons(msg)
    assert any(r == "max_mime_depth" for _, r in reasons)


def test_random_blob_is_unscannable_not_a_hang() -> None:
    """A 20 MB random attachment finishes fast and is reported, not silently skipped."""
    blob = os.urandom(20 * 1024 * 1024)
    raw = make_message(attachments=(("blob.bin", blob, "application/octet-stream"),))
    start = time.perf_counter()
    reasons = _reasons(raw)
    assert time.perf_counter() - start < 30
    assert reasons == [("attachment:blob.bin", "unsupported-format")]


def test_image_is_not_unscannable() -> None:
    """Media without a text layer produce neither text nor an unscannable entry."""
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    raw = make_message(attachments=(("pic.png", png, "image/png"),))
    assert _reasons(raw) == []


def test_message_over_size_limit() -> None:
    """A message over max_message_bytes is unscannable by that limit's name."""
    raw = make_message(body="x" * 5000)
    assert _reasons(raw, Limits(max_message_bytes=1000)) == [("body", "max_message_bytes")]


def test_extracted_chars_limit() -> None:
    """Text beyond max_extracted_chars is reported by name instead of silently dropped."""
    raw = make_message(body="word " * 200, attachments=(("a.txt", b"y" * 5500, "text/plain"),))
    reasons = _reasons(raw, Limits(max_extracted_chars=6000))
    assert ("attachment:a.txt", "max_extracted_chars") in reasons


def test_scan_time_limit_uses_injected_clock() -> None:
    """With a clock past its deadline every part becomes max_scan_seconds, nothing hangs."""
    ticks = iter(range(0, 10_000, 100))
    raw = make_message(attachments=(("a.txt", b"text", "text/plain"),))
    out = extract_message(raw, Limits(max_scan_seconds=1), clock=lambda: float(next(ticks)))
    assert any(u.reason == "max_scan_seconds" for u in out.unscannable)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"Subject: only headers",
        b"From: <<<@@@>>>\r\nTo: ,,,;;;\r\nSubject: =?x?q?\r\n\r\nbody Falcon",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all Falcon",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 Falcon!!!\r\n",
        b"From: a\nTo: b\nSubject: bare LF\n\nFalcon with bare LF\n",
    ],
)
def test_malformed_messages_never_raise(raw: bytes) -> None:
    """Malformed input yields a Collector, never an exception."""
    out = extract_message(raw, Limits())
    assert isinstance(out.segments, list)
