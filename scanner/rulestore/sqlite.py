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
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from scanner.errors import TransientError
from scanner.rules.compile import ruleset_version
from scanner.rules.load import parse_rules_bytes
from scanner.rulestore.base import (
    Activation,
    GrantIn,
    RuleStore,
    RuleStoreError,
    RuleVersion,
    ScopeGrant,
)
from scanner.sqlitetx import write_transaction

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
CREATE TABLE IF NOT EXISTS scope_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER NOT NULL REFERENCES rule_versions (id),
    rule_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
    value TEXT NOT NULL,
    until TEXT NOT NULL,
    quarantine_id TEXT,
    by_user TEXT NOT NULL,
    created_at TEXT NOT NULL,
    closed_at TEXT,
    closed_version_id INTEGER REFERENCES rule_versions (id)
);
CREATE INDEX IF NOT EXISTS scope_grants_open ON scope_grants (until) WHERE closed_at IS NULL;
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

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction under the thread lock; SQLite errors become TransientError."""
        return write_transaction(self._db, self._lock, "rules database")

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
        grants: Sequence[GrantIn] = (),
        close_grants: Sequence[int] = (),
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
            self._write_grants(db, grants, close_grants, version_id, author, now)
        return RuleVersion(
            version_id, content_hash, now, author, reason, filename, len(spec.rules), len(source)
        )

    @staticmethod
    def _write_grants(db: sqlite3.Connection, grants: Sequence[GrantIn],
                      close_grants: Sequence[int], version_id: int | None, by: str,
                      now: datetime) -> None:
        for grant_id in close_grants:
            db.execute("UPDATE scope_grants SET closed_at = ?, closed_version_id = ?"
                       " WHERE id = ? AND closed_at IS NULL", (_ts(now), version_id, grant_id))
        for g in grants:
            if version_id is None:
                raise RuleStoreError("a grant needs the version that added its entry")
            db.execute(
                "INSERT INTO scope_grants (version_id, rule_id, kind, value, until,"
                " quarantine_id, by_user, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (version_id, g.rule_id, g.kind, g.value, g.until.isoformat(), g.quarantine_id,
                 by, _ts(now)),
            )

    def update_grants(self, grants: Sequence[GrantIn], close_grants: Sequence[int], *,
                      version_id: int | None, by: str, now: datetime) -> None:
        with self._tx() as db:
            self._write_grants(db, grants, close_grants, version_id, by, now)

    def grants(self, *, open_only: bool = True, limit: int = 500) -> list[ScopeGrant]:
        where = "WHERE closed_at IS NULL" if open_only else ""
        rows = self._rows(f"SELECT * FROM scope_grants {where} ORDER BY until, id LIMIT ?",
                          (limit,))
        return [
            ScopeGrant(
                id=r["id"], version_id=r["version_id"], rule_id=r["rule_id"], kind=r["kind"],
                value=r["value"], until=date.fromisoformat(r["until"]),
                quarantine_id=r["quarantine_id"], by=r["by_user"],
                created_at=datetime.fromisoformat(r["created_at"]),
                closed_at=datetime.fromisoformat(r["closed_at"]) if r["closed_at"] else None,
                closed_version_id=r["closed_version_id"],
            )
            for r in rows
        ]

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
