"""Tests of the embedded account store: passwords, roles, sessions, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scanner.accounts.base import AccountError, Role, User
from scanner.accounts.sqlite import SqliteAccounts
from tests.web.factories import fast_hasher

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PW = "a long enough password"
IDLE, LIFE = timedelta(minutes=30), timedelta(hours=12)


def db_bytes(tmp_path: Path) -> bytes:
    """The database as stored on disk, WAL included (recent writes live there)."""
    return b"".join(p.read_bytes() for p in tmp_path.glob("accounts.sqlite3*"))


@pytest.fixture
def accounts(tmp_path: Path) -> SqliteAccounts:
    """A fresh account store with one reviewer."""
    store = SqliteAccounts(tmp_path, hasher=fast_hasher())
    store.add_user("Alice", PW, [Role.REVIEWER], now=T0)
    return store


def test_password_is_stored_as_argon2_hash(accounts: SqliteAccounts, tmp_path: Path) -> None:
    """The database holds an argon2id hash, never the password."""
    raw = db_bytes(tmp_path)
    assert PW.encode() not in raw
    assert b"$argon2id$" in raw


@pytest.mark.parametrize(("name", "password", "ok"), [
    ("alice", PW, True), ("ALICE", PW, True), ("alice", PW + "x", False),
    ("nobody", PW, False),
])
def test_verify_password(accounts: SqliteAccounts, name: str, password: str, ok: bool) -> None:
    """Names are case-insensitive; a wrong password or unknown user gives None."""
    assert (accounts.verify_password(name, password) is not None) is ok


def test_weak_password_and_duplicate_rejected(accounts: SqliteAccounts) -> None:
    """Short passwords and existing names are refused with AccountError."""
    with pytest.raises(AccountError):
        accounts.add_user("bob", "short", [Role.REVIEWER], now=T0)
    with pytest.raises(AccountError):
        accounts.add_user("alice", PW, [Role.REVIEWER], now=T0)


def test_session_idle_timeout_and_lifetime(accounts: SqliteAccounts) -> None:
    """A session dies after the idle timeout and after its absolute lifetime."""
    sid, _ = accounts.create_session("alice", now=T0)
    assert accounts.touch_session(sid, now=T0 + timedelta(minutes=29), idle=IDLE, lifetime=LIFE)
    assert accounts.touch_session(sid, now=T0 + timedelta(minutes=70), idle=IDLE,
                                  lifetime=LIFE) is None
    sid2, _ = accounts.create_session("alice", now=T0)
    t = T0
    for _ in range(30):  # keep it busy past the lifetime
        t += timedelta(minutes=25)
        live = accounts.touch_session(sid2, now=t, idle=IDLE, lifetime=LIFE)
    assert live is None


def test_password_change_ends_sessions(accounts: SqliteAccounts) -> None:
    """After passwd, old sessions are gone and the new password works."""
    sid, _ = accounts.create_session("alice", now=T0)
    accounts.set_password("alice", PW + "2", now=T0)
    assert accounts.touch_session(sid, now=T0, idle=IDLE, lifetime=LIFE) is None
    assert accounts.verify_password("alice", PW + "2") is not None


def test_disabled_user_cannot_log_in_or_use_tokens(accounts: SqliteAccounts) -> None:
    """Disabling blocks password, session and token use."""
    secret, _ = accounts.create_token("alice", "addin", now=T0)
    assert accounts.token_user(secret) is not None
    accounts.set_disabled("alice", True)
    assert accounts.verify_password("alice", PW) is None
    assert accounts.token_user(secret) is None


def test_token_revocation_and_hashing(accounts: SqliteAccounts, tmp_path: Path) -> None:
    """Tokens are stored hashed and stop working when revoked."""
    secret, token = accounts.create_token("alice", "addin", now=T0)
    assert secret.encode() not in db_bytes(tmp_path)
    assert token.id.encode() in db_bytes(tmp_path)
    accounts.revoke_token(token.id)
    assert accounts.token_user(secret) is None
    assert accounts.token_user("mrh_bogus") is None


@pytest.mark.parametrize(("user", "rule", "customer", "ok"), [
    (User("a", frozenset({Role.RULES_ADMIN})), "x", None, True),
    (User("a", frozenset({Role.RULES_ADMIN}), customers=("ACME",)), "x", "ACME", True),
    (User("a", frozenset({Role.RULES_ADMIN}), customers=("ACME",)), "x", "Other", False),
    (User("a", frozenset({Role.RULES_ADMIN}), rule_prefixes=("acme-",)), "acme-1", None, True),
    (User("a", frozenset({Role.RULES_ADMIN}), rule_prefixes=("acme-",)), "zzz", None, False),
    (User("a", frozenset({Role.REVIEWER})), "x", None, False),
    (User("a", frozenset({Role.ADMIN}), customers=("ACME",)), "x", "Other", True),
])
def test_rule_scope_of_rules_admins(user: User, rule: str, customer: str | None, ok: bool) -> None:
    """A limited rules admin manages only their customers' rules or prefixes."""
    assert user.may_manage_rule(rule, customer) is ok
