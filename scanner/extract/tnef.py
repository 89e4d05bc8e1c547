"""TNEF (winmail.dat, application/ms-tnef): the body and attachments Outlook wraps in it.

Owns walking one TNEF stream with tnefparse: the subject, the plain, HTML or compressed-RTF
body as text, and each attachment (an embedded message is itself TNEF and comes back through
the dispatcher) as a child. It must not touch files or log; checksums are not verified, because
a bad checksum does not make the text any less present.
Hazard: tnefparse trusts lengths from the stream and fails with assorted exceptions on a
damaged one; all of them become ``ExtractionError("corrupt")``.
"""

from __future__ import annotations

from tnefparse import TNEF

from scanner.errors import ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.html import html_text
from scanner.extract.rtf import rtf_text
from scanner.extract.walk import Walk


def _decode(value: object, codepage: str | None) -> str:
    if isinstance(value, str):
        return value.rstrip("\x00")
    if isinstance(value, bytes):
        try:
            return value.decode(codepage or "utf-8").rstrip("\x00")
        except (LookupError, UnicodeDecodeError):
            return value.decode("cp1252", errors="replace").rstrip("\x00")
    return ""


def _body(tnef: TNEF, budget: Budget) -> str:
    """The plain body; else text of the HTML body; else of the (decompressed) RTF body."""
    codepage = tnef.codepage if isinstance(tnef.codepage, str) else None
    body = _decode(tnef.body, codepage)
    if body.strip():
        return body
    html = _decode(tnef.htmlbody, codepage)
    if html.strip():
        return html_text(html)
    rtf = tnef.rtfbody
    if isinstance(rtf, bytes) and rtf.lstrip().startswith(b"{\\rtf"):
        return rtf_text(rtf, budget)
    return ""


def walk_tnef(walk: Walk, data: bytes) -> None:
    """Emit a TNEF stream's subject and body as text and its attachments as children."""
    walk.budget.check_time()
    try:
        tnef = TNEF(data, do_checksum=False)
        subject = next(
            (_decode(prop.data, None) for prop in tnef.msgprops if prop.name == TNEF.ATTSUBJECT),
            "",
        )
        body = _body(tnef, walk.budget)
        attachments = [
            (_decode(item.long_filename(), None) or f"attachment-{index}", item.data)
            for index, item in enumerate(tnef.attachments)
        ]
    except ExtractionError:
        raise
    except Exception as exc:  # tnefparse raises ValueError, IndexError, struct errors...
        raise ExtractionError("corrupt") from exc
    walk.text(subject, sub="header:subject")
    walk.text(body, sub="body")
    for name, payload in attachments:
        if isinstance(payload, bytes) and payload:
            walk.child(payload, name)
