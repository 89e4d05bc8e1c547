"""Text layer of PDF files, page by page, with PDFium (pypdfium2).

Owns opening a PDF from memory and reading the text layer of every page; scanned pages with no
text layer yield nothing (OCR is not part of extraction). It must not render, touch files or
log. Hazards: PDFium is C code fed hostile input, and is not thread-safe, which is acceptable
because a scan runs alone in its worker process; every page and text page is closed as soon as
it is read, the clock is checked per page, and the text is bounded by what the budget still
allows, because a few kilobytes of compressed content streams can draw pages of text.
"""

from __future__ import annotations

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from scanner.errors import EncryptedError, ExtractionError, LimitExceeded
from scanner.extract.budget import Budget


def pdf_text(data: bytes, budget: Budget) -> str:
    """Text of every page, pages separated by a form feed; ``EncryptedError`` when a password
    is needed (a PDF with only an owner password opens, and its text is read)."""
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise EncryptedError() from exc
        raise ExtractionError("corrupt") from exc
    room = budget.limits.max_extracted_chars - budget.extracted_chars
    pages: list[str] = []
    try:
        for index in range(len(document)):
            budget.check_time()
            page = document[index]
            try:
                text_page = page.get_textpage()
                try:
                    text = text_page.get_text_range()
                finally:
                    text_page.close()
            finally:
                page.close()
            # PDFium ends lines with CRLF; matching and reviewers expect plain newlines.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            # U+FFFE marks a hyphen PDFium found at a line end: rejoin the word it split.
            text = text.replace("\ufffe\n", "").replace("\ufffe", "")
            room -= len(text) + 1
            if room < 0:
                raise LimitExceeded("max_extracted_chars")
            pages.append(text)
    except pdfium.PdfiumError as exc:
        raise ExtractionError("corrupt") from exc
    finally:
        document.close()
    return "\f".join(pages)
