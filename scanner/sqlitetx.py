"""Write transactions on a SQLite connection shared by threads, for every SQLite-backed store.

Each store (quarantine, accounts, rule versions) keeps one connection in autocommit mode behind
a lock and writes in ``BEGIN IMMEDIATE`` transactions, so that the daemon, the web app and CLI
processes serialize on the database lock instead of failing half-way. SQLite errors become
``TransientError`` naming which database, never the SQL or its parameters (they may hold
addresses or reasons). Hazard: a transaction that raises anything is rolled back whole.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from scanner.errors import TransientError


@contextmanager
def write_transaction(
    db: sqlite3.Connection, lock: threading.Lock | threading.RLock, what: str
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` under ``lock``; rollback on any exception."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TransientError(f"{what} busy ({type(exc).__name__})") from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            # The transaction may already be gone (e.g. after a failed COMMIT).
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise TransientError(f"{what} error ({type(exc).__name__})") from exc
            raise
