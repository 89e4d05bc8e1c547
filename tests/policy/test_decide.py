"""The precedence table: reject > hold > flag > pass, with the unscannable policy."""

from __future__ import annotations

import pytest

from scanner.model import Action, Hit, Unscannable
from scanner.policy.decide import decide


def hit(action: Action, out: tuple[str, ...] = ("x@out.example",), rule: str = "r") -> Hit:
    return Hit(rule_id=rule, location="body", out_of_scope=out, action=action)


U = Unscannable("attachment:a.zip", "encrypted")


@pytest.mark.parametrize(
    ("hits", "unscannable", "policy", "expected"),
    [
        ([], [], Action.FLAG, Action.PASS),
        ([hit(Action.HOLD, out=())], [], Action.FLAG, Action.PASS),
        ([hit(Action.FLAG)], [], Action.FLAG, Action.FLAG),
        ([hit(Action.FLAG), hit(Action.HOLD)], [], Action.FLAG, Action.HOLD),
        ([hit(Action.HOLD), hit(Action.REJECT), hit(Action.FLAG)], [], Action.PASS, Action.REJECT),
        ([], [U], Action.FLAG, Action.FLAG),
        ([], [U], Action.PASS, Action.PASS),
        ([], [U], Action.REJECT, Action.REJECT),
        ([hit(Action.FLAG)], [U], Action.HOLD, Action.HOLD),
        ([hit(Action.REJECT)], [U], Action.HOLD, Action.REJECT),
    ],
)
def test_precedence(
    hits: list[Hit], unscannable: list[Unscannable], policy: Action, expected: Action
) -> None:
    """The strongest applicable action wins; in-scope hits contribute nothing."""
    action, reasons = decide(hits, unscannable, policy)
    assert action is expected
    assert bool(reasons) is (expected is not Action.PASS)


def test_reasons_name_rules_not_terms() -> None:
    """Reasons mention rule ids and locations only."""
    _, reasons = decide([hit(Action.HOLD, rule="falcon")], [], Action.FLAG)
    assert reasons == ("rule falcon at body: 1 recipient(s) out of scope",)
