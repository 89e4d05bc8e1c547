"""What a reviewer sees of one held message: headers, hit contexts, attachments, a safe body.

Owns turning the stored raw bytes and the stored hits back into reviewer-facing values. The hit
spans are offsets into the *original* extracted text of a location, so the text is rebuilt with
the very extraction and per-location merge that ``scan`` used (``extract_message`` +
``merge_by_location``); a window is then cut around each span. It must not log anything it
computes, and it returns plain strings: the templates escape them and add the ``<mark>``.

Hazard: the HTML body is hostile input. ``safe_body_html`` keeps formatting tags only (no
script, style, form, img, iframe, link, no ``href``/``src``/``style`` attributes), and the
route serving it adds a ``sandbox`` CSP that forbids scripts and every remote load — two
independent barriers, so a bug in one does not execute or fetch anything.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from email.message import Message

import nh3

from scanner.extract.mime import decode_header_value, extract_message, parse_message
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.model import Hit
from scanner.scan import merge_by_location

CONTEXT_CHARS = 80  # characters shown before and after an occurrence
MAX_SNIPPETS = 5  # occurrences shown per hit: enough to judge, not a copy of the document
PREVIEW_CHARS = 600  # extracted text shown per attachment
SHOWN_HEADERS = ("from", "to", "cc", "reply-to", "subject", "date", "message-id")

_SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "div", "dl", "dt", "em",
    "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "u", "ul",
}
_SAFE_ATTRIBUTES = {"td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


@dataclass(frozen=True)
class Snippet:
    before: str
    match: str
    after: str


@dataclass(frozen=True)
class HitView:
    rule_id: str
    location: str
    out_of_scope: tuple[str, ...]
    snippets: tuple[Snippet, ...] = ()
    more: int = 0  # occurrences not shown


@dataclass(frozen=True)
class AttachmentView:
    name: str
    content_type: str
    size: int
    preview: str = ""


@dataclass
class MessageView:
    headers: list[tuple[str, str]] = field(default_factory=list)
    hits: list[HitView] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    body_html: str = ""


def _snippets(text: str, hit: Hit) -> tuple[tuple[Snippet, ...], int]:
    out = []
    for span in hit.spans[:MAX_SNIPPETS]:
        start, end = max(0, span.start), min(len(text), span.end)
        if start >= end:
            continue
        lo, hi = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
        out.append(
            Snippet(
                ("…" if lo else "") + text[lo:start],
                text[start:end],
                text[end:hi] + ("…" if hi < len(text) else ""),
            )
        )
    return tuple(out), max(0, len(hit.spans) - MAX_SNIPPETS)


def _header_list(msg: Message) -> list[tuple[str, str]]:
    out = []
    for key, value in msg.raw_items():
        if key.lower() in SHOWN_HEADERS:
            out.append((key, decode_header_value(str(value))))
    return out


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def safe_body_html(html_text: str) -> str:
    """Formatting only: no active content, no attribute that loads or links anywhere."""
    return nh3.clean(
        html_text,
        tags=_SAFE_TAGS,
        attributes=_SAFE_ATTRIBUTES,
        url_schemes=set(),
        strip_comments=True,
        link_rel=None,
    )


def _body(msg: Message) -> str:
    plain: str | None = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_filename():
            continue
        ctype = part.get_content_type()
        if ctype == "text/html":
            return safe_body_html(_part_text(part))
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part)
    return f"<pre>{html.escape(plain or '')}</pre>"


def _attachments(msg: Message, texts: dict[str, str], with_preview: bool) -> list[AttachmentView]:
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name is None and part.get_content_disposition() != "attachment":
            continue
        shown = decode_header_value(str(name)) if name else "(unnamed)"
        payload = part.get_payload(decode=True)
        preview = ""
        if with_preview:
            preview = texts.get(f"attachment:{shown}", "")[:PREVIEW_CHARS]
        out.append(
            AttachmentView(
                name=shown,
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else 0,
                preview=preview,
            )
        )
    return out


def build_view(
    raw: bytes, hits: tuple[Hit, ...], *, with_content: bool, limits: Limits = DEFAULT_LIMITS
) -> MessageView:
    """The reviewer's view; ``with_content`` False leaves out contexts, previews and the body."""
    view = MessageView()
    try:
        msg = parse_message(raw)
    except Exception:  # hostile structure: show what scan saw (hits), nothing parsed
        msg = None
    if msg is not None:
        view.headers = _header_list(msg)
    texts: dict[str, str] = {}
    if with_content:
        extraction = extract_message(raw, limits)
        texts = dict(merge_by_location(extraction.segments))
    for hit in hits:
        snippets: tuple[Snippet, ...] = ()
        more = 0
        if with_content and hit.location in texts:
            snippets, more = _snippets(texts[hit.location], hit)
        view.hits.append(HitView(hit.rule_id, hit.location, hit.out_of_scope, snippets, more))
    if msg is not None:
        view.attachments = _attachments(msg, texts, with_content)
        if with_content:
            view.body_html = _body(msg)
    return view
