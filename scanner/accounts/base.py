"""Accounts of the review app: users, roles, server-side sessions and API tokens.

This module owns the contract every account store satisfies (SQLite today, PostgreSQL next) and
the plain records crossing it; it must not import a database driver, a web framework or a hash
library. Its hazard is credential handling: a store keeps only password hashes (argon2) and the
SHA-256 of session ids and API tokens, so a copy of the database does not let anyone log in; the
plain session id or token exists only in the caller's hands (the cookie, the integration).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from scanner.errors import MaruhiError


class Role(enum.StrEnum):
    """What a user may do; ``admin`` implies every other role."""

    REVIEWER = "reviewer"  # quarantine: list, view with context, release, reject
    RULES_ADMIN = "rules-admin"  # rules: upload, activate, roll back (maybe limited in scope)
    AUDITOR = "auditor"  # read-only: audit, ledger, quarantine metadata (no content)
    ADMIN = "admin"  # everything, users included


class AccountError(MaruhiError):
    """A user-facing account problem (unknown user, weak password, duplicate name)."""


@dataclass(frozen=True)
class User:
    """A local account; ``customers``/``rule_prefixes`` limit a rules admin (empty: no limit)."""

    name: str
    roles: frozenset[Role]
    customers: tuple[str, ...] = ()
    rule_prefixes: tuple[str, ...] = ()
    disabled: bool = False

    def has(self, *roles: Role) -> bool:
        """True when the user holds any of ``roles`` (admin holds them all)."""
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    @property
    def limited(self) -> bool:
        return Role.ADMIN not in self.roles and bool(self.customers or self.rule_prefixes)

    def may_manage_rule(self, rule_id: str, customer: str | None) -> bool:
        """Whether this user may add, change or remove the rule ``rule_id``."""
        if not self.has(Role.RULES_ADMIN):
            return False
        if not self.limited:
            return True
        if customer is not None and customer in self.customers:
            return True
        return any(rule_id.startswith(p) for p in self.rule_prefixes)


@dataclass(frozen=True)
class Session:
    """A logged-in browser: who, its CSRF token, and when it was last used."""

    user: User
    csrf_token: str
    created_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class ApiToken:
    """An integration's token (the secret itself is never stored or listed)."""

    id: str
    user_name: str
    label: str
    created_at: datetime
    revoked: bool = False


class AccountStore(ABC):
    """Users, sessions and tokens. Every method is blocking and thread-safe; times are passed in."""

    # -- users --------------------------------------------------------------------------------

    @abstractmethod
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
        """Create a user; ``AccountError`` when the name exists or the password is too weak."""

    @abstractmethod
    def set_password(self, name: str, password: str, *, now: datetime) -> None:
        """Replace the password and end every session of the user."""

    @abstractmethod
    def set_roles(
        self,
        name: str,
        roles: Collection[Role],
        *,
        customers: Collection[str] = (),
        rule_prefixes: Collection[str] = (),
    ) -> User:
        """Replace roles and limits; ends the user's sessions (their rights changed)."""

    @abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or re-enable) a user; disabling ends every session and token use."""

    @abstractmethod
    def get_user(self, name: str) -> User | None:
        """The user, or None."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """All users by name."""

    @abstractmethod
    def verify_password(self, name: str, password: str) -> User | None:
        """The user when the password is right and the user enabled; costs the same otherwise."""

    # -- sessions -----------------------------------------------------------------------------

    @abstractmethod
    def create_session(self, name: str, *, now: datetime) -> tuple[str, Session]:
        """A fresh random session id (returned once, stored hashed) and its session."""

    @abstractmethod
    def touch_session(
        self, session_id: str, *, now: datetime, idle: timedelta, lifetime: timedelta
    ) -> Session | None:
        """The live session for ``session_id`` (and mark it used), or None when unknown, idle
        longer than ``idle``, older than ``lifetime`` or its user disabled (then it is deleted)."""

    @abstractmethod
    def delete_session(self, session_id: str) -> None:
        """Log out: forget the session."""

    # -- API tokens ---------------------------------------------------------------------------

    @abstractmethod
    def create_token(self, name: str, label: str, *, now: datetime) -> tuple[str, ApiToken]:
        """A new token for user ``name``: the secret (shown once) and its record."""

    @abstractmethod
    def token_user(self, secret: str) -> User | None:
        """The enabled user of a live token, or None."""

    @abstractmethod
    def list_tokens(self, name: str | None = None) -> list[ApiToken]:
        """Tokens (never their secrets), optionally of one user."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> None:
        """Make the token unusable."""

    @abstractmethod
    def close(self) -> None:
        """Release database handles."""
