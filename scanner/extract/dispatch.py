"""Route one part to the extractor of its sniffed kind, and contain every failure to that part.

This is the only place that knows which module handles which format. Format modules are imported
on first use so that a process that never meets a .ppt never pays for its reader. Whatever goes
wrong inside an extractor (our limits, a library's exception on a corrupt file, even a library
bug) becomes an ``Unscannable`` at the part's location; the message still gets its verdict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from scanner.errors import ExtractionError, LimitExceeded
from scanner.extract.budget import Budget
from scanner.extract.sniff import Kind, sniff
from scanner.extract.walk import Walk

LeafExtractor = Callable[[bytes, Budget], str]
ContainerWalker = Callable[[Walk, bytes], None]

# kind → "module:function"; leaves return text, containers walk their members.
_LEAVES: dict[Kind, str] = {
    Kind.DOCX: "scanner.extract.ooxml:docx_text",
    Kind.XLSX: "scanner.extract.ooxml:xlsx_text",
    Kind.PPTX: "scanner.extract.ooxml:pptx_text",
    Kind.ODF: "scanner.extract.odf:odf_text",
    Kind.PDF: "scanner.extract.pdf:pdf_text",
    Kind.RTF: "scanner.extract.rtf:rtf_text",
    Kind.DOC: "scanner.extract.legacy:doc_text",
    Kind.XLS: "scanner.extract.legacy:xls_text",
    Kind.PPT: "scanner.extract.legacy:ppt_text",
}
_CONTAINERS: dict[Kind, str] = {
    Kind.ZIP: "scanner.extract.archive:walk_zip",
    Kind.EML: "scanner.extract.mime:walk_eml",
    Kind.MSG: "scanner.extract.outlook:walk_msg",
    Kind.TNEF: "scanner.extract.tnef:walk_tnef",
}
_resolved: dict[str, Any] = {}


def _resolve(target: str) -> Any:
    if target not in _resolved:
        module, _, func = target.partition(":")
        _resolved[target] = getattr(importlib.import_module(module), func)
    return _resolved[target]


def split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """``text/plain; charset=x`` → (``text/plain``, ``x``)."""
    if not content_type:
        return None, None
    bare, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return bare.strip().lower() or None, charset


def dispatch(walk: Walk, data: bytes, name: str, content_type: str | None) -> None:
    """Extract ``data`` (a part named ``name``) at ``walk.location``; never raises."""
    try:
        # The name leaves the company with the part and may itself carry a secret.
        walk.text(name)
        walk.budget.check_time()
        if walk.archive_depth > walk.budget.limits.max_archive_depth:
            raise LimitExceeded("max_archive_depth")
        bare, charset = split_content_type(content_type)
        kind = sniff(data, name, bare)
        _extract_kind(walk, kind, data, charset)
    except LimitExceeded as exc:
        walk.unscannable(exc.reason)
    except ExtractionError as exc:
        walk.unscannable(exc.reason)
    except RecursionError:
        walk.unscannable("max_mime_depth")
    except MemoryError:
        walk.unscannable("max_decompressed_bytes")
    except Exception:
        # A third-party parser failing on hostile bytes must not cost the whole message.
        walk.unscannable("corrupt")


def _extract_kind(walk: Walk, kind: Kind, data: bytes, charset: str | None) -> None:
    if kind is Kind.MEDIA:
        return  # no text layer; not unscannable until OCR exists (DESIGN.md)
    if kind is Kind.TEXT:
        from scanner.extract.text import decode_text

        walk.text(decode_text(data, charset))
    elif kind is Kind.HTML:
        from scanner.extract.html import html_bytes_text

        walk.text(html_bytes_text(data, charset))
    elif kind is Kind.OFFICE_ENCRYPTED:
        raise ExtractionError("encrypted")
    elif kind in _LEAVES:
        leaf: LeafExtractor = _resolve(_LEAVES[kind])
        walk.text(leaf(data, walk.budget))
    elif kind in _CONTAINERS:
        container: ContainerWalker = _resolve(_CONTAINERS[kind])
        container(walk, data)
    else:
        raise ExtractionError("unsupported-format")
