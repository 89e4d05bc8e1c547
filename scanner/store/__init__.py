"""The quarantine store: one interface (``base``), the embedded SQLite + files implementation.

Callers import from here: ``open_store(data_dir)`` gives the default implementation, and the
records/errors of ``base`` are re-exported. Nothing outside ``scanner.store`` knows which
backend is in use.
"""

from __future__ import annotations

from pathlib import Path

from scanner.store.base import (
    AuditEvent,
    ContentGoneError,
    Decision,
    Disclosure,
    IncidentOrigin,
    NotFoundError,
    NoticeKind,
    OutboxItem,
    OutboxKind,
    OutboxState,
    QuarantineRecord,
    QuarantineStore,
    Status,
    StoreError,
    StoreStats,
)

__all__ = [
    "AuditEvent",
    "ContentGoneError",
    "Decision",
    "Disclosure",
    "IncidentOrigin",
    "NotFoundError",
    "NoticeKind",
    "OutboxItem",
    "OutboxKind",
    "OutboxState",
    "QuarantineRecord",
    "QuarantineStore",
    "Status",
    "StoreError",
    "StoreStats",
    "open_store",
]


def open_store(data_dir: Path | str) -> QuarantineStore:
    """Open (creating if needed) the embedded store under ``data_dir``."""
    from scanner.store.sqlite import SqliteStore

    return SqliteStore(Path(data_dir))
