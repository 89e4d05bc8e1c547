"""Accounting of one message's consumption against its ``Limits``.

Every extractor charges what it inflates or produces here, so a zip bomb inside a docx inside a
zip is stopped by the same counters as a top-level one. The clock is injected (``clock``) because
the scan core reads no clock of its own; without one, only the worker pool's timeout applies.
"""

from __future__ import annotations

from collections.abc import Callable

from scanner.errors import LimitExceeded
from scanner.limits import Limits


class Budget:
    """Mutable counters for one message; raises ``LimitExceeded`` naming the limit hit."""

    def __init__(self, limits: Limits, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._clock = clock
        self._deadline = clock() + limits.max_scan_seconds if clock is not None else None
        self.decompressed_bytes = 0
        self.extracted_chars = 0

    def check_time(self) -> None:
        if self._clock is not None and self._deadline is not None and (
            self._clock() > self._deadline
        ):
            raise LimitExceeded("max_scan_seconds")

    def charge_decompressed(self, nbytes: int) -> None:
        self.decompressed_bytes += nbytes
        if self.decompressed_bytes > self.limits.max_decompressed_bytes:
            raise LimitExceeded("max_decompressed_bytes")

    def check_ratio(self, compressed: int, uncompressed: int) -> None:
        if uncompressed > max(compressed, 1) * self.limits.max_compression_ratio and (
            uncompressed > 1024 * 1024
        ):
            raise LimitExceeded("max_compression_ratio")

    def check_entries(self, count: int) -> None:
        if count > self.limits.max_archive_entries:
            raise LimitExceeded("max_archive_entries")

    def charge_chars(self, nchars: int) -> None:
        self.extracted_chars += nchars
        if self.extracted_chars > self.limits.max_extracted_chars:
            raise LimitExceeded("max_extracted_chars")
