"""The one decision: hits and unreadable parts → the message's action, with readable reasons.

Rules only say hit/miss and scope; this module alone says what wins, by the precedence table
below (strongest first), so the relay, the poller and the CLI can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from scanner.model import Action, Hit, Unscannable

# Precedence, strongest first: a reject anywhere beats a hold, a hold beats a flag. A rule whose
# every recipient is in scope contributes nothing; unreadable parts contribute the configured
# ``settings.unscannable`` action.
PRECEDENCE: tuple[Action, ...] = (Action.REJECT, Action.HOLD, Action.FLAG, Action.PASS)


def decide(
    hits: Sequence[Hit], unscannable: Sequence[Unscannable], unscannable_action: Action
) -> tuple[Action, tuple[str, ...]]:
    """The action for a message and the reasons that produced it (rule ids, never terms)."""
    candidates: list[tuple[Action, str]] = []
    for hit in hits:
        if hit.out_of_scope:
            candidates.append(
                (hit.action, f"rule {hit.rule_id} at {hit.location}: "
                 f"{len(hit.out_of_scope)} recipient(s) out of scope")
            )
    if unscannable and unscannable_action is not Action.PASS:
        candidates.append(
            (unscannable_action, f"{len(unscannable)} part(s) unscannable")
        )
    for action in PRECEDENCE:
        reasons = tuple(dict.fromkeys(r for a, r in candidates if a is action))
        if reasons:
            return action, reasons
    return Action.PASS, ()
