"""Senders' release requests: ``requests.sqlite3`` under the data directory.

Owns the requests a sender makes from the status link of a hold notice (a justification and a
time per request), so reviewers see them in the message view and the list. Kept apart from the
quarantine database (its own file, like accounts and rules) because the quarantine store's
schema belongs to the store; the audit log still gets one ``release_request`` event per request.
Must not log a justification: it is free text from someone who knows the secret. Hazard: the
writer is anyone holding a link, so requests per message are capped (``MAX_PER_MESSAGE``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scanner.errors import TransientError

DB_NAME = "requests.sqlite3"
MAX_PER_MESSAGE = 5  # enough to add a detail or two; not a channel for unlimited writes
MAX_JUSTIFICATION = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS release_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    quarantine_id TEXT NOT NULL,
    at TEXT NOT NULL,
    justification TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS release_requests_qid ON release_requests (quarantine_id, id);
"""


class TooManyRequests(Exception):
    """The message already has ``MAX_PER_MESSAGE`` requests."""


@dataclass(frozen=True)
class ReleaseRequest:
    id: int
    quarantine_id: str
    at: datetime
    justification: str


class ReleaseRequests:
    """The request table; blocking and thread-safe (one connection under a lock)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(data_dir / DB_NAME, timeout=10, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TransientError(f"cannot open release requests ({type(exc).__name__})") from exc

    def add(self, quarantine_id: str, justification: str, *, now: datetime) -> ReleaseRequest:
        """Record one request; ``TooManyRequests`` when the message has its share already."""
        text = justification.strip()[:MAX_JUSTIFICATION]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                (count,) = self._db.execute(
                    "SELECT count(*) FROM release_requests WHERE quarantine_id = ?",
                    (quarantine_id,)).fetchone()
                if count >= MAX_PER_MESSAGE:
                    self._db.execute("ROLLBACK")
                    raise TooManyRequests
                cursor = self._db.execute(
                    "INSERT INTO release_requests (quarantine_id, at, justification)"
                    " VALUES (?, ?, ?)", (quarantine_id, now.isoformat(), text))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise TransientError(f"release request not stored ({type(exc).__name__})") from exc
        assert cursor.lastrowid is not None
        return ReleaseRequest(cursor.lastrowid, quarantine_id, now, text)

    def for_message(self, quarantine_id: str) -> list[ReleaseRequest]:
        """The message's requests, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, quarantine_id, at, justification FROM release_requests"
                " WHERE quarantine_id = ? ORDER BY id", (quarantine_id,)).fetchall()
        return [ReleaseRequest(r[0], r[1], datetime.fromisoformat(r[2]), r[3]) for r in rows]

    def counts(self, quarantine_ids: Collection[str]) -> dict[str, int]:
        """Requests per message for one list page (ids without requests are left out)."""
        ids = list(quarantine_ids)[:1000]
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        with self._lock:
            rows = self._db.execute(
                f"SELECT quarantine_id, count(*) FROM release_requests"
                f" WHERE quarantine_id IN ({marks}) GROUP BY quarantine_id", ids).fetchall()
        return {r[0]: r[1] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
