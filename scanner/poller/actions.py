"""What the poller does with a verdict, per folder kind: decided here, performed by the loop.

``plan`` is a pure function (verdict + folder kind + options → ``Plan``), written as a small
table so the policy is visible: Sent/journal → incident + category + optional move + notices;
Drafts → an advisory category with the reason. ``reason_tag`` builds the text a user sees on the
item. It must not perform I/O. Hazard: the reason is shown in the user's mailbox and stored on
the server, so it names rule ids, customers and out-of-scope recipients — never a term, a
subject or any text of the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.model import Action, Verdict
from scanner.poller.source import FolderKind
from scanner.rules.model import CompiledRuleset

TAG_PREFIX = "Maruhi"
INCIDENT_TAG = "Maruhi-Incident"
QUARANTINE_FOLDER = "Maruhi Quarantine"
# Outlook categories are at most 255 characters; keep well inside, and the list readable.
MAX_TAG_CHARS = 200
MAX_LISTED_RECIPIENTS = 3


@dataclass(frozen=True)
class ActionOptions:
    """Configured remediation: whether to move the sender's copy and from which action on."""

    move_sent: bool = False  # move the sender's copy to the quarantine folder
    move_threshold: Action = Action.HOLD  # ...when the verdict is at least this strong
    quarantine_folder: str = QUARANTINE_FOLDER
    compliance: tuple[str, ...] = ()  # addresses told of every incident


@dataclass(frozen=True)
class Plan:
    """The actions for one item; ``incident`` implies notices to owners and compliance."""

    incident: bool = False
    tags: tuple[str, ...] = ()
    move_to: str | None = None

    @property
    def outcome(self) -> str:
        """The ledger's word for what happened."""
        if self.incident:
            return "incident"
        return "tagged" if self.tags else "pass"


def reason_tag(verdict: Verdict, ruleset: CompiledRuleset) -> str:
    """``Maruhi: ACME Corp (falcon) → a@x, b@y`` — customers, rule ids, out-of-scope recipients."""
    customers = {r.id: r.customer for r in ruleset.rules}
    parts: list[str] = []
    recipients: dict[str, None] = {}
    for hit in verdict.hits:
        if not hit.out_of_scope:
            continue  # a hit whose recipients are all in scope is not a finding
        customer = customers.get(hit.rule_id)
        label = f"{customer} ({hit.rule_id})" if customer else hit.rule_id
        if label not in parts:
            parts.append(label)
        for rcpt in hit.out_of_scope:
            recipients.setdefault(rcpt, None)
    if not parts and verdict.unscannable:
        parts.append("unscannable content")
    listed = list(recipients)[:MAX_LISTED_RECIPIENTS]
    if len(recipients) > MAX_LISTED_RECIPIENTS:
        listed.append(f"+{len(recipients) - MAX_LISTED_RECIPIENTS}")
    text = f"{TAG_PREFIX}: {', '.join(parts) or verdict.action.label}"
    if listed:
        text += f" → {', '.join(listed)}"
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 1] + "…"


def plan(
    kind: FolderKind, verdict: Verdict, ruleset: CompiledRuleset, options: ActionOptions
) -> Plan:
    """Decide the actions for one scanned item (see the module docstring's table)."""
    if verdict.action is Action.PASS:
        return Plan()
    reason = reason_tag(verdict, ruleset)
    if kind is FolderKind.DRAFTS:
        # Not sent yet: nothing to record; the Send click cannot be blocked from the server.
        return Plan(tags=(reason,))
    strong = verdict.action >= options.move_threshold
    move = (
        options.quarantine_folder
        if kind is FolderKind.SENT and options.move_sent and strong
        else None
    )
    return Plan(incident=True, tags=(INCIDENT_TAG, reason), move_to=move)


def owners_of(verdict: Verdict, ruleset: CompiledRuleset) -> tuple[str, ...]:
    """The owners of the rules with an out-of-scope hit (who registered the secret)."""
    owner = {r.id: r.owner for r in ruleset.rules}
    found: dict[str, None] = {}
    for hit in verdict.hits:
        address = owner.get(hit.rule_id)
        if hit.out_of_scope and address:
            found.setdefault(address, None)
    return tuple(found)
