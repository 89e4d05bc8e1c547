"""The embedded account store: one SQLite file (``accounts.sqlite3``) beside the quarantine.

Owns the schema and SQL of users, sessions and API tokens; nothing SQLite-specific leaves this
module. It must not log or raise with a password, a session id or a token. Hazards: (1) timing —
``verify_password`` hashes a dummy password for unknown users so a login's duration does not tell
whether a name exists; (2) concurrency — one connection behind a lock (FastAPI runs sync
endpoints in a thread pool), writes in ``BEGIN IMMEDIATE`` so the daemon and a CLI process
serialize on the database lock. A PostgreSQL implementation keeps the same tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from scanner.accounts.base import AccountError, AccountStore, ApiToken, Role, Session, User
from scanner.errors import TransientError
from scanner.sqlitetx import write_transaction

DB_NAME = "accounts.sqlite3"
MIN_PASSWORD_CHARS = 12  # NIST SP 800-63B asks for 8; reviewers see secrets, so a little more
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._@-")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    customers TEXT NOT NULL DEFAULT '[]',
    rule_prefixes TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_name);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL REFERENCES users (name),
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""

TOKEN_PREFIX = "mrh_"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ts(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime given to the account store")
    return dt.isoformat(timespec="microseconds")


def check_name(name: str) -> str:
    """A user name: lower-case letters, digits and ``._@-``; returned normalized."""
    normalized = name.strip().lower()
    if not normalized or len(normalized) > 128 or not set(normalized) <= _NAME_CHARS:
        raise AccountError("a user name is 1-128 characters of a-z 0-9 . _ @ -")
    return normalized


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def parse_roles(roles: Collection[str | Role]) -> frozenset[Role]:
    try:
        return frozenset(Role(str(r).strip()) for r in roles)
    except ValueError as exc:
        known = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role; roles are: {known}") from exc


class SqliteAccounts(AccountStore):
    """``AccountStore`` on ``<data_dir>/accounts.sqlite3``."""

    def __init__(self, data_dir: Path, *, hasher: PasswordHasher | None = None) -> None:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._hasher = hasher or PasswordHasher()
        # Hashed once so unknown users cost one verify like known ones.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                data_dir / DB_NAME, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TransientError(
                f"cannot open the account database ({type(exc).__name__})"
            ) from exc

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction under the thread lock; SQLite errors become TransientError."""
        return write_transaction(self._db, self._lock, "account database")

    def _one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            name=row["name"],
            roles=frozenset(Role(r) for r in json.loads(row["roles"])),
            customers=tuple(json.loads(row["customers"])),
            rule_prefixes=tuple(json.loads(row["rule_prefixes"])),
            disabled=bool(row["disabled"]),
        )

    # -- users --------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str,
        roles: Collection[Role],
        *,
        now: datetime,
        customers: Collection[str] = (),
        rule_prefixes: Collection[str] = (),
    ) -> User:
        name = check_name(name)
        check_password(password)
        role_set = parse_roles(roles)
        digest = self._hasher.hash(password)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"user {name} already exists")
            db.execute(
                "INSERT INTO users (name, password_hash, roles, customers, rule_prefixes,"
                " created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    digest,
                    json.dumps(sorted(r.value for r in role_set)),
                    json.dumps(list(customers), ensure_ascii=False),
                    json.dumps(list(rule_prefixes), ensure_ascii=False),
                    _ts(now),
                    _ts(now),
                ),
            )
        return User(name, role_set, tuple(customers), tuple(rule_prefixes))

    def _require(self, db: sqlite3.Connection, name: str) -> str:
        name = check_name(name)
        if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"no user {name}")
        return name

    def set_password(self, name: str, password: str, *, now: datetime) -> None:
        check_password(password)
        digest = self._hasher.hash(password)
        with self._tx() as db:
            name = self._require(db, name)
            db.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                (digest, _ts(now), name),
            )
            db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))

    def set_roles(
        self,
        name: str,
        roles: Collection[Role],
        *,
        customers: Collection[str] = (),
        rule_prefixes: Collection[str] = (),
    ) -> User:
        role_set = parse_roles(roles)
        with self._tx() as db:
            name = self._require(db, name)
            db.execute(
                "UPDATE users SET roles = ?, customers = ?, rule_prefixes = ? WHERE name = ?",
                (
                    json.dumps(sorted(r.value for r in role_set)),
                    json.dumps(list(customers), ensure_ascii=False),
                    json.dumps(list(rule_prefixes), ensure_ascii=False),
                    name,
                ),
            )
            db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
        user = self.get_user(name)
        assert user is not None
        return user

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self._tx() as db:
            name = self._require(db, name)
            db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            if disabled:
                db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))

    def get_user(self, name: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE name = ?", (name.strip().lower(),))
        return None if row is None else self._user(row)

    def list_users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [self._user(r) for r in rows]

    def verify_password(self, name: str, password: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE name = ?", (name.strip().lower(),))
        digest = self._dummy_hash if row is None else row["password_hash"]
        try:
            self._hasher.verify(digest, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._tx() as db:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ?",
                    (self._hasher.hash(password), row["name"]),
                )
        return self._user(row)

    # -- sessions -----------------------------------------------------------------------------

    def create_session(self, name: str, *, now: datetime) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self._tx() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise AccountError(f"no user {name}")
            db.execute(
                "INSERT INTO sessions (id_hash, user_name, csrf_token, created_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (_sha256(session_id), name, csrf, _ts(now), _ts(now)),
            )
        return session_id, Session(self._user(row), csrf, now, now)

    def touch_session(
        self, session_id: str, *, now: datetime, idle: timedelta, lifetime: timedelta
    ) -> Session | None:
        key = _sha256(session_id)
        row = self._one(
            "SELECT s.*, u.name, u.roles, u.customers, u.rule_prefixes, u.disabled"
            " FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.id_hash = ?",
            (key,),
        )
        if row is None:
            return None
        created = datetime.fromisoformat(row["created_at"])
        last_seen = datetime.fromisoformat(row["last_seen"])
        if row["disabled"] or now - last_seen > idle or now - created > lifetime:
            self.delete_session(session_id)
            return None
        # Write last_seen at most once a minute: a page load fires several requests.
        if now - last_seen > timedelta(seconds=60):
            with self._tx() as db:
                db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (_ts(now), key))
            last_seen = now
        return Session(self._user(row), row["csrf_token"], created, last_seen)

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_sha256(session_id),))

    # -- API tokens ---------------------------------------------------------------------------

    def create_token(self, name: str, label: str, *, now: datetime) -> tuple[str, ApiToken]:
        token_id = secrets.token_hex(6)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._tx() as db:
            name = self._require(db, name)
            db.execute(
                "INSERT INTO api_tokens (id, secret_hash, user_name, label, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_id, _sha256(secret), name, label, _ts(now)),
            )
        return secret, ApiToken(token_id, name, label, now)

    def token_user(self, secret: str) -> User | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        row = self._one(
            "SELECT u.* FROM api_tokens t JOIN users u ON u.name = t.user_name"
            " WHERE t.secret_hash = ? AND t.revoked = 0",
            (_sha256(secret),),
        )
        if row is None or row["disabled"]:
            return None
        return self._user(row)

    def list_tokens(self, name: str | None = None) -> list[ApiToken]:
        with self._lock:
            if name is None:
                rows = self._db.execute("SELECT * FROM api_tokens ORDER BY created_at").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM api_tokens WHERE user_name = ? ORDER BY created_at",
                    (name.strip().lower(),),
                ).fetchall()
        return [
            ApiToken(
                r["id"],
                r["user_name"],
                r["label"],
                datetime.fromisoformat(r["created_at"]),
                bool(r["revoked"]),
            )
            for r in rows
        ]

    def revoke_token(self, token_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (token_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
