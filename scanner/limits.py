"""Limits on hostile input, as named constants with the reason for each value.

Exceeding a limit never truncates silently: the part concerned becomes an ``Unscannable`` whose
reason is the limit's field name (for example ``max_archive_depth``), so that the unscannable
policy applies and a reviewer sees which limit was hit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Hard bounds applied while extracting text from one message."""

    # A relay accepts at most this much; larger input is refused before scanning (SIZE).
    max_message_bytes: int = 50 * 1024 * 1024
    # Legitimate mail nests multipart a handful of levels; 200-level nests are attacks on
    # recursive parsers.
    max_mime_depth: int = 32
    # zip in zip in docx in eml: real mail rarely exceeds 4; each level multiplies work.
    max_archive_depth: int = 6
    # Total bytes inflated from all archives/compressed streams in one message: bounds memory.
    max_decompressed_bytes: int = 200 * 1024 * 1024
    # A zip entry inflating more than this ratio is a bomb (text compresses ~10x, XML ~30x).
    max_compression_ratio: int = 200
    # Archives with more entries than this are almost always generated to exhaust the scanner.
    max_archive_entries: int = 10_000
    # Text fed to the matcher per message; beyond it, the rest is unscannable, not ignored.
    max_extracted_chars: int = 50_000_000
    # One message must not hold a scanner worker longer than this (enforced by the budget's
    # clock inside scan and by the worker pool's timeout outside it).
    max_scan_seconds: float = 20.0


DEFAULT_LIMITS = Limits()
