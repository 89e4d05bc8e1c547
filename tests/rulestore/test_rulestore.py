"""Tests of versioned rule sets: upload, activation, rollback, diff, compiled cache."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.errors import RuleError
from scanner.rules.load import parse_rules_bytes
from scanner.rulestore.active import ActiveRuleset
from scanner.rulestore.base import RuleStoreError
from scanner.rulestore.diff import diff_rulesets
from scanner.rulestore.sqlite import SqliteRuleStore
from tests.web.factories import RULES_YAML

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqliteRuleStore:
    """An empty rule store."""
    return SqliteRuleStore(tmp_path)


def test_nothing_active_before_first_activation(store: SqliteRuleStore) -> None:
    """An inactive upload does not become active by itself."""
    store.create_version(RULES_YAML, "r.yaml", author="a", reason="r", now=T0, activate=False)
    assert store.active_version() is None
    assert store.active_source() is None


def test_activate_and_rollback(store: SqliteRuleStore) -> None:
    """The last activation wins; rollback re-activates an older version byte for byte."""
    v1 = store.create_version(RULES_YAML, "r.yaml", author="a", reason="one", now=T0,
                              activate=True)
    v2_src = RULES_YAML.replace(b"Heron-77", b"Heron-78")
    v2 = store.create_version(v2_src, "r.yaml", author="b", reason="two", now=T0, activate=True)
    assert store.active_version() == v2
    store.activate(v1.id, by="c", reason="oops", now=T0)
    assert store.active_source() == (RULES_YAML, "r.yaml")
    assert [a.version_id for a in store.activations()] == [v1.id, v2.id, v1.id]


def test_invalid_upload_stores_nothing(store: SqliteRuleStore) -> None:
    """A rules file with problems raises RuleError and creates no version."""
    with pytest.raises(RuleError):
        store.create_version(b"version: 1\nrules:\n  - id: x\n    action: explode\n", "r.yaml",
                             author="a", reason="r", now=T0, activate=True)
    assert store.history() == []


def test_unknown_version(store: SqliteRuleStore) -> None:
    """Activating a version that does not exist fails without a row."""
    with pytest.raises(RuleStoreError):
        store.activate(99, by="a", reason="r", now=T0)
    assert store.activations() == []


def test_diff_reports_terms_scopes_added_removed() -> None:
    """The diff lists added/removed rules, term changes and scope changes; summary has no terms."""
    old = parse_rules_bytes(RULES_YAML, "old.yaml")
    new_src = RULES_YAML.replace(b'"Heron-77"', b'"Heron-77", "Heron-88"').replace(
        b"domains: [acme.example]", b"domains: [acme.example, acme2.example]")
    new_src = new_src.replace(b"  - id: heron", b"  - id: kite\n    terms: [Kite]\n"
                              b"    action: flag\n  - id: heron")
    new = parse_rules_bytes(new_src, "new.yaml")
    diff = diff_rulesets(old, new)
    assert [r.id for r in diff.added] == ["kite"]
    changed = {c.rule_id: c for c in diff.changed}
    assert changed["heron"].terms_added == ("Heron-88",)
    assert "allow.domains" in changed["falcon"].fields
    assert "Heron-88" not in repr(diff.summary())
    removed = diff_rulesets(new, old)
    assert [r.id for r in removed.removed] == ["kite"]


def test_active_ruleset_compiles_once_per_version(store: SqliteRuleStore) -> None:
    """The cache returns the same compiled object until another version is activated."""
    active = ActiveRuleset(store)
    assert active.get() is None
    store.create_version(RULES_YAML, "r.yaml", author="a", reason="r", now=T0, activate=True)
    first = active.get()
    assert first is not None
    assert active.get() is first
    store.create_version(RULES_YAML.replace(b"Heron-77", b"Heron-99"), "r.yaml", author="a",
                         reason="r", now=T0, activate=True)
    assert active.get() is not first
