"""Versioned rule sets (upload → version → activation → rollback): interface and opener.

``open_rulestore(data_dir)`` gives the embedded SQLite implementation; ``ActiveRuleset`` keeps
the active version compiled once for callers that scan in-process (the review app's check API).
"""

from __future__ import annotations

from pathlib import Path

from scanner.rulestore.base import (
    Activation,
    GrantIn,
    RuleStore,
    RuleStoreError,
    RuleVersion,
    ScopeGrant,
)

__all__ = ["Activation", "GrantIn", "RuleStore", "RuleStoreError", "RuleVersion", "ScopeGrant",
           "open_rulestore"]


def open_rulestore(data_dir: Path | str) -> RuleStore:
    """Open (creating if needed) the embedded rule store under ``data_dir``."""
    from scanner.rulestore.sqlite import SqliteRuleStore

    return SqliteRuleStore(Path(data_dir))
