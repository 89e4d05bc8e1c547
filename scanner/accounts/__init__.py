"""Accounts of the review app (users, roles, sessions, API tokens): interface and opener.

Callers import from here; ``open_accounts(data_dir)`` gives the embedded SQLite implementation.
"""

from __future__ import annotations

from pathlib import Path

from scanner.accounts.base import AccountError, AccountStore, ApiToken, Role, Session, User

__all__ = ["AccountError", "AccountStore", "ApiToken", "Role", "Session", "User", "open_accounts"]


def open_accounts(data_dir: Path | str) -> AccountStore:
    """Open (creating if needed) the embedded account store under ``data_dir``."""
    from scanner.accounts.sqlite import SqliteAccounts

    return SqliteAccounts(Path(data_dir))
