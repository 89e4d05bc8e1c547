"""HTML → the text a recipient would read: tags removed, entities decoded, scripts dropped.

Block-level tags become line breaks so that words in adjacent paragraphs or cells never run
together (which would both hide a term and invent false word boundaries), while inline tags
(``Fal<b>con</b>``) join without a break so a term split by markup is still found. Text hidden by
CSS is kept on purpose: it still leaves the company inside the message.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

_BLOCK_TAG = re.compile(
    rb"<(/?)(p|div|br|li|ul|ol|dl|dt|dd|tr|td|th|table|thead|tbody|tfoot|caption|h[1-6]|"
    rb"blockquote|section|article|header|footer|nav|aside|main|pre|hr|title|address|"
    rb"figure|figcaption|form|fieldset|legend|option|center)\b",
    re.IGNORECASE,
)
_BLOCK_TAG_STR = re.compile(_BLOCK_TAG.pattern.decode(), re.IGNORECASE)
_DROP = "script, style, noscript, template"


def html_text(html: str) -> str:
    """Visible text of an HTML document or fragment."""
    marked = _BLOCK_TAG_STR.sub(lambda m: "\n<" + m.group(1) + m.group(2), html)
    tree = LexborHTMLParser(marked)
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.root
    if root is None:
        return ""
    return root.text(deep=True, separator="", strip=False)


def html_bytes_text(data: bytes, charset: str | None) -> str:
    """Visible text of HTML bytes, honouring a declared or ``<meta>`` charset."""
    from scanner.extract.text import decode_text

    if charset is None:
        meta = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", data[:4096], re.I)
        if meta:
            charset = meta.group(1).decode("ascii")
    return html_text(decode_text(data, charset))
