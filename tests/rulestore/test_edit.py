"""Scope edits made from the web app, their canonical source, and grants recorded with a version."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scanner.errors import RuleError
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import Allow
from scanner.rulestore.base import GrantIn
from scanner.rulestore.edit import (
    ScopeEntry,
    entry_for,
    extend_scope,
    narrow_scope,
    spec_source,
)
from scanner.rulestore.sqlite import SqliteRuleStore
from tests.web.factories import RULES_YAML

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = parse_rules_bytes(RULES_YAML, "r.yaml")


def _falcon_allow(spec: object) -> Allow:
    return next(r for r in spec.rules if r.id == "falcon").allow  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "recipient", "field", "value"), [
    ("address", "CFO@Rival.example", "addresses", ("cfo@rival.example",)),
    ("domain", "cfo@rival.example", "domains", ("acme.example", "rival.example")),
])
def test_extend_adds_one_entry_and_round_trips(kind: str, recipient: str, field: str,
                                               value: tuple[str, ...]) -> None:
    """The entry lands in the rule's allow list and the written YAML reads back equal."""
    spec, added = extend_scope(SPEC, [entry_for("falcon", kind, recipient)])  # type: ignore[arg-type]
    assert getattr(_falcon_allow(spec), field) == value
    assert len(added) == 1
    assert parse_rules_bytes(spec_source(spec), "x.yaml") == spec


def test_extend_is_idempotent_and_idn_aware() -> None:
    """An entry already allowed (also as its A-label) is not added twice."""
    spec, _ = extend_scope(SPEC, [ScopeEntry("falcon", "domain", "ライバル.example")])
    again, added = extend_scope(spec, [ScopeEntry("falcon", "domain", "xn--eckue3ck.example")])
    assert added == []
    assert again == spec


def test_extend_refuses_unknown_and_scopeless_rules() -> None:
    """An unknown rule is a KeyError; a recipient_domains-only rule has no scope to widen."""
    with pytest.raises(KeyError):
        extend_scope(SPEC, [ScopeEntry("nope", "address", "a@b.example")])
    scopeless = dataclasses.replace(SPEC, rules=(dataclasses.replace(
        SPEC.rules[0], terms=(), recipient_domains=("rival.example",)),))
    with pytest.raises(ValueError, match="falcon"):
        extend_scope(scopeless, [ScopeEntry("falcon", "address", "a@b.example")])


def test_narrow_removes_only_what_is_there() -> None:
    """Narrowing undoes an extension and ignores entries someone removed since."""
    entry = ScopeEntry("falcon", "address", "cfo@rival.example")
    wide, _ = extend_scope(SPEC, [entry])
    back, removed = narrow_scope(wide, [entry, ScopeEntry("gone", "domain", "x.example")])
    assert back == SPEC
    assert removed == [entry]


def test_spec_source_refuses_what_does_not_read_back() -> None:
    """A domain the loader refuses makes the written file invalid: RuleError, nothing stored."""
    spec, _ = extend_scope(SPEC, [ScopeEntry("falcon", "domain", "bad domain!")])
    with pytest.raises(RuleError):
        spec_source(spec)


def test_grants_recorded_and_closed_with_versions(tmp_path: Path) -> None:
    """A grant is stored with the version that adds it and closed by the one that removes it."""
    store = SqliteRuleStore(tmp_path)
    store.create_version(RULES_YAML, "r.yaml", author="a", reason="r", now=T0, activate=True)
    wide, _ = extend_scope(SPEC, [ScopeEntry("falcon", "address", "cfo@rival.example")])
    v2 = store.create_version(spec_source(wide), "x.yaml", author="boss", reason="ext", now=T0,
                              activate=True, grants=[GrantIn("falcon", "address",
                                                             "cfo@rival.example",
                                                             date(2026, 2, 1), "Q1")])
    [grant] = store.grants()
    assert (grant.version_id, grant.by, grant.quarantine_id, grant.open) == (v2.id, "boss", "Q1",
                                                                            True)
    v3 = store.create_version(RULES_YAML, "r.yaml", author="lapse", reason="lapse", now=T0,
                              activate=True, close_grants=[grant.id])
    assert store.grants() == []
    [closed] = store.grants(open_only=False)
    assert closed.closed_version_id == v3.id
    store.close()
