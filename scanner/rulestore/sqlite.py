"""The embedded rule store: ``rules.sqlite3`` under the data directory.

Owns the schema and SQL of rule versions and the activation log; nothing SQLite-specific leaves
this module. It must not log sources or put their content in an error. Hazard: activation is
one INSERT into ``activations`` inside ``BEGIN IMMEDIATE``, and the active version is the last
activation row, so readers in other processes see either the old or the new version, never a mix.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from scanner.errors import TransientError
from scanner.rules.compile import ruleset_version
from scanner.rules.load import parse_rules_bytes
from scanner.rulestore.base import Activation, RuleStore, RuleStoreError, RuleVersion

DB_NAME = "rules.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    filename TEXT NOT NULL,
    rule_count INTEGER NOT NULL,
    source BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_versions_hash ON rule_versions (content_hash, id);
CREATE TABLE IF NOT EXISTS activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER NOT NULL REFERENCES rule_versions (id),
    at TEXT NOT NULL,
    by_user TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS activations_no_update BEFORE UPDATE ON activations
BEGIN SELECT RAISE(ABORT, 'activations are append-only'); END;
CREATE TRIGGER IF NOT EXISTS activations_no_delete BEFORE DELETE ON activations
BEGIN SELECT RAISE(ABORT, 'activations are append-only'); END;
"""

_VERSION_COLUMNS = (
    "id, content_hash, created_at, author, reason, filename, rule_count, length(source) AS size"
)


def _ts(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime given to the rule store")
    return dt.isoformat(timespec="microseconds")


class SqliteRuleStore(RuleStore):
    """``RuleStore`` on ``<data_dir>/rules.sqlite3``."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                data_dir / DB_NAME, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TransientError(f"cannot open the rules database ({type(exc).__name__})") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise TransientError(f"rules database busy ({type(exc).__name__})") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise TransientError(f"rules database error ({type(exc).__name__})") from exc
                raise

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise TransientError(f"rules database error ({type(exc).__name__})") from exc

    @staticmethod
    def _version(row: sqlite3.Row) -> RuleVersion:
        return RuleVersion(
            id=row["id"],
            content_hash=row["content_hash"],
            created_at=datetime.fromisoformat(row["created_at"]),
            author=row["author"],
            reason=row["reason"],
            filename=row["filename"],
            rule_count=row["rule_count"],
            size=row["size"],
        )

    @staticmethod
    def _activation(row: sqlite3.Row) -> Activation:
        return Activation(
            seq=row["seq"],
            version_id=row["version_id"],
            at=datetime.fromisoformat(row["at"]),
            by=row["by_user"],
            reason=row["reason"],
        )

    def create_version(
        self,
        source: bytes,
        filename: str,
        *,
        author: str,
        reason: str,
        now: datetime,
        activate: bool,
    ) -> RuleVersion:
        spec = parse_rules_bytes(source, filename)  # RuleError: nothing is stored
        content_hash = ruleset_version(spec)
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO rule_versions (content_hash, created_at, author, reason, filename,"
                " rule_count, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (content_hash, _ts(now), author, reason, filename, len(spec.rules), source),
            )
            version_id = cursor.lastrowid
            assert version_id is not None
            if activate:
                db.execute(
                    "INSERT INTO activations (version_id, at, by_user, reason) VALUES (?, ?, ?, ?)",
                    (version_id, _ts(now), author, reason),
                )
        return RuleVersion(
            version_id, content_hash, now, author, reason, filename, len(spec.rules), len(source)
        )

    def activate(self, version_id: int, *, by: str, reason: str, now: datetime) -> Activation:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM rule_versions WHERE id = ?", (version_id,)).fetchone():
                raise RuleStoreError(f"no rules version {version_id}")
            cursor = db.execute(
                "INSERT INTO activations (version_id, at, by_user, reason) VALUES (?, ?, ?, ?)",
                (version_id, _ts(now), by, reason),
            )
            seq = cursor.lastrowid
            assert seq is not None
        return Activation(seq, version_id, now, by, reason)

    def get(self, version_id: int) -> RuleVersion:
        rows = self._rows(
            f"SELECT {_VERSION_COLUMNS} FROM rule_versions WHERE id = ?", (version_id,)
        )
        if not rows:
            raise RuleStoreError(f"no rules version {version_id}")
        return self._version(rows[0])

    def source(self, version_id: int) -> bytes:
        rows = self._rows("SELECT source FROM rule_versions WHERE id = ?", (version_id,))
        if not rows:
            raise RuleStoreError(f"no rules version {version_id}")
        return bytes(rows[0]["source"])

    def find_by_hash(self, content_hash: str) -> RuleVersion | None:
        rows = self._rows(
            f"SELECT {_VERSION_COLUMNS} FROM rule_versions WHERE content_hash = ?"
            " ORDER BY id DESC LIMIT 1",
            (content_hash,),
        )
        return self._version(rows[0]) if rows else None

    def history(self, *, limit: int = 100) -> list[RuleVersion]:
        rows = self._rows(
            f"SELECT {_VERSION_COLUMNS} FROM rule_versions ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [self._version(r) for r in rows]

    def activations(self, *, limit: int = 100) -> list[Activation]:
        rows = self._rows("SELECT * FROM activations ORDER BY seq DESC LIMIT ?", (limit,))
        return [self._activation(r) for r in rows]

    def active_version(self) -> RuleVersion | None:
        rows = self._rows(
            f"SELECT {_VERSION_COLUMNS} FROM rule_versions WHERE id ="
            " (SELECT version_id FROM activations ORDER BY seq DESC LIMIT 1)"
        )
        return self._version(rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
