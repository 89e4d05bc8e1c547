"""The MIME walk: a message (top level or forwarded) → header text, body text and attachments.

Parsing is the standard library's (``email`` with ``policy.default``); what this module adds is
robustness against what real and hostile mail does: header text is decoded from the *raw* header
with our charset logic (raw 8-bit Shift_JIS subjects, wrong RFC 2047 labels), every part's
decoding failure stays local to the part, MIME nesting is bounded by ``max_mime_depth``, and a
message the parser cannot handle at all is still scanned as raw text. Locations follow DESIGN.md:
``header:subject``, ``body``, ``attachment:NAME`` and ``attachment:fwd.eml/...`` below.
"""

from __future__ import annotations

import binascii
import email.header
import email.utils
import mimetypes
import re
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesParser

from scanner.errors import ExtractionError, LimitExceeded
from scanner.extract.budget import Budget
from scanner.extract.dispatch import dispatch
from scanner.extract.html import html_text
from scanner.extract.text import decode_text
from scanner.extract.walk import Collector, Walk
from scanner.limits import Limits

# Headers whose text leaves the company with the message and may carry a secret.
_TEXT_HEADERS = ("subject",)
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
_PARSER = BytesParser(policy=policy.default)


def _decode_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        if any("\udc80" <= c <= "\udcff" for c in chunk):
            # Raw 8-bit header bytes smuggled through as surrogates by the parser.
            return decode_text(chunk.encode("ascii", "surrogateescape"), charset)
        return chunk
    return decode_text(chunk, charset)


def decode_header_value(raw: str) -> str:
    """Text of a raw header value: RFC 2047 words and raw 8-bit bytes both decoded."""
    unfolded = raw.replace("\r\n", "").replace("\n", "")
    try:
        chunks = email.header.decode_header(unfolded)
    except Exception:
        # decode_header raises on some malformed encoded words; fall back to the raw text.
        return _decode_chunk(unfolded, None)
    return "".join(_decode_chunk(chunk, charset) for chunk, charset in chunks)


def _raw_headers(msg: Message, name: str) -> list[str]:
    return [value for key, value in msg.raw_items() if key.lower() == name]


def _display_names(decoded: str) -> str:
    try:
        pairs = email.utils.getaddresses([decoded])
    except Exception:
        return decoded
    return "\n".join(display for display, _ in pairs if display)


def _walk_headers(walk: Walk, msg: Message) -> None:
    for name in _TEXT_HEADERS:
        for raw in _raw_headers(msg, name):
            walk.text(decode_header_value(raw), sub=f"header:{name}")
    for name in _ADDRESS_HEADERS:
        for raw in _raw_headers(msg, name):
            walk.text(_display_names(decode_header_value(raw)), sub=f"header:{name}")


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if name is None:
        return None
    return decode_header_value(str(name)) if "=?" in name else str(name)


_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")


def _lenient_base64(encoded: bytes) -> bytes:
    """Decode what can be decoded of damaged base64 (bad characters, lost padding, truncation).

    The stdlib hands back the *encoded* bytes when base64 is broken beyond its own repairs,
    which would make a truncated PDF look like a line of text; decoding the longest valid
    prefix lets the format extractor see the real (truncated) file and report it ``corrupt``.
    """
    clean = _BASE64_ALPHABET.sub(b"", encoded.split(b"=", 1)[0])
    clean = clean[: len(clean) - len(clean) % 4]
    return binascii.a2b_base64(clean)


def _payload_bytes(part: Message) -> bytes:
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64" and not part.is_multipart():
        raw = part.get_payload()
        if isinstance(raw, str):
            encoded = raw.encode("ascii", "surrogateescape")
            try:
                return binascii.a2b_base64(encoded, strict_mode=False)
            except binascii.Error:
                return _lenient_base64(encoded)
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:
        raise ExtractionError("corrupt") from exc
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


class _Counter:
    """Numbers unnamed parts so that their locations are distinct and stable."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _unnamed(counter: _Counter, content_type: str) -> str:
    ext = mimetypes.guess_extension(content_type) or ".bin"
    return f"part{counter.next()}{ext}"


def walk_message(walk: Walk, msg: Message) -> None:
    """Headers, bodies and attachments of a parsed message, located below ``walk``."""
    _walk_headers(walk, msg)
    _walk_entity(walk, msg, 0, _Counter())


def _walk_entity(walk: Walk, part: Message, depth: int, counter: _Counter) -> None:
    limits = walk.budget.limits
    if walk.mime_depth + depth > limits.max_mime_depth:
        walk.unscannable("max_mime_depth", sub=None if walk.location else "body")
        return
    walk.budget.check_time()
    content_type = part.get_content_type()
    if part.is_multipart():
        payload = part.get_payload()
        if content_type in ("message/rfc822", "message/global") and isinstance(payload, list):
            for inner in payload:
                if not isinstance(inner, Message):
                    continue
                name = _filename(part) or f"forwarded{counter.next()}.eml"
                nested = walk.below(name, archive=False, mime=True)
                nested.mime_depth += depth
                walk_message(nested, inner)
            return
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _walk_entity(walk, sub, depth + 1, counter)
        return
    filename = _filename(part)
    disposition = part.get_content_disposition()
    charset = part.get_content_charset()
    is_body = (
        filename is None
        and disposition != "attachment"
        and content_type in ("text/plain", "text/html", "text/enriched", "text/markdown")
    )
    if is_body:
        try:
            data = _payload_bytes(part)
        except ExtractionError as exc:
            walk.unscannable(exc.reason, sub="body")
            return
        text = decode_text(data, charset)
        walk.text(html_text(text) if content_type == "text/html" else text, sub="body")
        return
    member = filename or _unnamed(counter, content_type)
    child = walk.below(member, archive=False)
    child.mime_depth += depth
    try:
        data = _payload_bytes(part)
    except ExtractionError as exc:
        child.unscannable(exc.reason)
        return
    label = content_type + (f"; charset={charset}" if charset else "")
    dispatch(child, data, member, label)


def parse_message(raw: bytes) -> Message:
    """The stdlib parse of ``raw``; lenient, but may raise on pathological input."""
    return _PARSER.parsebytes(raw)


def walk_eml(walk: Walk, data: bytes) -> None:
    """Container entry point for a message found as bytes (an .eml attachment, a zip member)."""
    if walk.mime_depth > walk.budget.limits.max_mime_depth:
        raise LimitExceeded("max_mime_depth")
    try:
        msg = parse_message(data)
    except RecursionError as exc:
        raise LimitExceeded("max_mime_depth") from exc
    walk.mime_depth += 1
    walk_message(walk, msg)


def extract_message(
    raw: bytes, limits: Limits, clock: Callable[[], float] | None = None
) -> Collector:
    """Every text segment and unscannable part of the message ``raw``; never raises."""
    out = Collector()
    walk = Walk(location="", archive_depth=0, budget=Budget(limits, clock), out=out,
                dispatch=dispatch)
    if len(raw) > limits.max_message_bytes:
        walk.unscannable("max_message_bytes", sub="body")
        return out
    try:
        msg = parse_message(raw)
        walk_message(walk, msg)
    except LimitExceeded as exc:
        walk.unscannable(exc.reason, sub="body")
    except RecursionError:
        _fallback_raw(walk, raw, "max_mime_depth")
    except Exception:
        # The parser or a header class failed on hostile input: scan the raw bytes as text so
        # that a plain-text secret is still found, and say the structure was unreadable.
        _fallback_raw(walk, raw, "malformed-mime")
    return out


def _fallback_raw(walk: Walk, raw: bytes, reason: str) -> None:
    walk.unscannable(reason, sub="body")
    try:
        walk.text(decode_text(raw), sub="body")
    except LimitExceeded as exc:
        walk.unscannable(exc.reason, sub="body")
