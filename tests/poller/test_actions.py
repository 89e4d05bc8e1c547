"""The action table per folder kind and the reason text users see on their items."""

from __future__ import annotations

import pytest

from scanner.model import Action, Envelope, Verdict
from scanner.poller.actions import INCIDENT_TAG, ActionOptions, owners_of, plan, reason_tag
from scanner.poller.source import FolderKind
from scanner.rules.model import CompiledRuleset
from scanner.scan import scan
from tests.poller.factories import SECRET, TODAY, make_message


def _verdict(
    ruleset: CompiledRuleset, *, to: tuple[str, ...], body: str = f"{SECRET} plan"
) -> Verdict:
    raw = make_message(to=to, body=body)
    return scan(raw, Envelope("tanaka@example.co.jp", to), ruleset, today=TODAY)


@pytest.mark.parametrize(
    ("kind", "move_sent", "to", "incident", "moved"),
    [
        (FolderKind.SENT, False, ("x@rival.example",), True, False),
        (FolderKind.SENT, True, ("x@rival.example",), True, True),
        (FolderKind.JOURNAL, True, ("x@rival.example",), True, False),
        (FolderKind.DRAFTS, True, ("x@rival.example",), False, False),
        (FolderKind.SENT, True, ("buyer@acme.example",), False, False),
    ],
)
def test_plan_table(
    ruleset: CompiledRuleset,
    kind: FolderKind,
    move_sent: bool,
    to: tuple[str, ...],
    incident: bool,
    moved: bool,
) -> None:
    """Sent/journal findings are incidents (only Sent copies move); drafts are only tagged;
    an in-scope message gets nothing."""
    verdict = _verdict(ruleset, to=to)
    decided = plan(kind, verdict, ruleset, ActionOptions(move_sent=move_sent))
    assert decided.incident is incident
    assert (decided.move_to is not None) is moved
    assert bool(decided.tags) is (verdict.action is not Action.PASS)


def test_flag_strength_does_not_move_by_default(ruleset: CompiledRuleset) -> None:
    """The move threshold defaults to hold: a flag-rule disclosure stays where it is."""
    verdict = _verdict(ruleset, to=("a@rival.example",), body="Lynx merger")
    assert verdict.action is Action.FLAG
    decided = plan(FolderKind.SENT, verdict, ruleset, ActionOptions(move_sent=True))
    assert decided.incident
    assert decided.move_to is None
    assert INCIDENT_TAG in decided.tags


def test_reason_names_customer_rule_and_recipients_never_the_term(
    ruleset: CompiledRuleset,
) -> None:
    """The reason lists customer, rule id and out-of-scope recipients (capped), no term."""
    to = (*(f"r{i}@rival.example" for i in range(5)), "ok@acme.example")
    text = reason_tag(_verdict(ruleset, to=to), ruleset)
    assert text.startswith("Maruhi: ACME Corp (falcon) → r0@rival.example")
    assert "+2" in text
    assert "ok@acme.example" not in text
    assert SECRET.lower() not in text.lower()
    assert len(text) <= 200


def test_owners_are_those_of_rules_with_out_of_scope_hits(ruleset: CompiledRuleset) -> None:
    """Only owners of rules that actually disclosed are told."""
    assert owners_of(_verdict(ruleset, to=("x@rival.example",)), ruleset) == (
        "owner@example.co.jp",
    )
    assert owners_of(_verdict(ruleset, to=("b@acme.example",)), ruleset) == ()
