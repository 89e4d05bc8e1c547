"""Release with scope extension, and the lapse of time-limited extensions.

Owns the one reviewer action that releases a held message *and* widens the scope of the rules
it hit: each chosen out-of-scope recipient (the address, or its whole domain) is added to the
rule's ``allow`` list in a new rule version, activated atomically (the relay polls the rule
store's active version and hot-swaps), then the message is released through the store (atomic,
idempotent). Both steps are audited (``scope_extend`` here, ``release`` by the store) and linked
by the quarantine id and the version id.

"Until a date" is not in the rules format (a rule's ``allow`` entries have no expiry). Instead the
version that adds the entry records a *grant* in the rule store in the same transaction; once the
date has passed, ``lapse_due`` (run by the web app every few minutes) writes a follow-up version
without the entry and closes the grant, again in one transaction. So the widened scope never
outlives its record; it may outlive its date by up to one check interval, or while the web app
is not running (it catches up on start). A lapse removes the entry if the rule still lists it —
a later upload that also lists the entry loses it too; the grants list on the rules page shows
what will lapse.

Roles: releasing needs ``reviewer``; widening a rule needs ``rules-admin`` for that rule (a rules
admin limited to some customers only for theirs); ``admin`` holds both. Must not log or audit a
term: audit details carry rule ids, addresses and version ids. Hazard: two reviewers extending at
once in one process are serialised by a lock; across processes the second one finds the entry
already present and creates no version.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import HTTPException

from scanner.accounts.base import Role
from scanner.rules.model import RuleSpec
from scanner.rulestore.base import GrantIn, RuleVersion, ScopeGrant
from scanner.rulestore.edit import (
    GrantKind,
    ScopeEntry,
    can_extend,
    entry_for,
    extend_scope,
    narrow_scope,
    spec_source,
)
from scanner.store.base import Decision, NotFoundError
from scanner.web.context import WebContext
from scanner.web.security import Forbidden, Principal

LAPSE_ACTOR = "maruhi-scope-lapse"
_lock = threading.Lock()


@dataclass(frozen=True)
class ExtensionResult:
    decision: Decision
    version: RuleVersion | None  # None: every entry was already allowed
    added: list[ScopeEntry] = field(default_factory=list)


def _entry_json(e: ScopeEntry) -> dict[str, str]:
    return {"rule": e.rule_id, "kind": e.kind, "value": e.value}


def release_with_extension(
    ctx: WebContext,
    principal: Principal,
    quarantine_id: str,
    picks: list[tuple[str, str]],
    kind: GrantKind,
    until: date | None,
    reason: str,
) -> ExtensionResult:
    """Widen the rules for ``picks`` (rule id, out-of-scope recipient) and release the message.

    422 (``HTTPException``) for an empty reason or choice, a pick that is not an out-of-scope
    recipient of that rule in this message, or a date in the past; 403 when the caller may not
    change one of the rules."""
    reason = reason.strip()
    if not reason or not picks:
        raise HTTPException(422)
    user = principal.user
    if not user.has(Role.REVIEWER):
        raise Forbidden
    today = ctx.now().date()
    if until is not None and until < today:
        raise HTTPException(422)
    try:
        record = ctx.store.get(quarantine_id)
    except NotFoundError as exc:
        raise HTTPException(404) from exc
    if record.public_status != "held":
        raise HTTPException(409)  # decided already: widen rules in the rules pages instead
    allowed_picks = {(h.rule_id, a) for h in record.hits for a in h.out_of_scope}
    if any(p not in allowed_picks for p in picks):
        raise HTTPException(422)
    entries = list(dict.fromkeys(entry_for(rule_id, kind, rcpt) for rule_id, rcpt in picks))

    with _lock:
        version = ctx.rules.active_version()
        if version is None:
            raise HTTPException(409)
        spec = ctx.active.spec(version.id)
        rules: dict[str, RuleSpec] = {r.id: r for r in spec.rules}
        for e in entries:
            rule = rules.get(e.rule_id)
            if rule is None or not can_extend(rule):
                raise HTTPException(422)
            if not user.may_manage_rule(rule.id, rule.customer):
                raise Forbidden
        new_spec, added = extend_scope(spec, entries)
        # An entry already allowed by an open grant: a later date (or none) supersedes it.
        open_grants = ctx.rules.grants()
        supersede: list[ScopeGrant] = [
            g for g in open_grants
            if ScopeEntry(g.rule_id, g.kind, g.value) in entries  # type: ignore[arg-type]
            and (until is None or until > g.until)
        ]
        grants_for_added = [GrantIn(e.rule_id, e.kind, e.value, until, quarantine_id)
                            for e in added] if until is not None else []
        renewed = [GrantIn(g.rule_id, g.kind, g.value, until, quarantine_id)
                   for g in supersede] if until is not None else []
        now = ctx.now()
        new_version: RuleVersion | None = None
        label = f" until {until.isoformat()}" if until else ""
        if added:
            new_version = ctx.rules.create_version(
                spec_source(new_spec), "scope-extension.yaml", author=principal.name,
                reason=f"scope extension{label} on release of {quarantine_id}: {reason}",
                now=now, activate=True, grants=[*grants_for_added, *renewed],
                close_grants=[g.id for g in supersede],
            )
        elif supersede:
            ctx.rules.update_grants(renewed, [g.id for g in supersede], version_id=version.id,
                                    by=principal.name, now=now)
        if new_version is not None or supersede:
            ctx.store.append_audit(
                actor=principal.name, action="scope_extend",
                object_id=f"rules:v{(new_version or version).id}",
                details={"quarantine_id": quarantine_id,
                         "version": new_version.id if new_version else None,
                         "previous": version.id,
                         "added": [_entry_json(e) for e in added],
                         "renewed": [g.id for g in supersede],
                         "until": until.isoformat() if until else None, "reason": reason},
                now=now,
            )
    decision = ctx.store.release(quarantine_id, by=principal.name, reason=reason, now=ctx.now())
    return ExtensionResult(decision, new_version, added)


def lapse_due(ctx: WebContext) -> RuleVersion | None:
    """Remove the entries of grants whose date has passed; the new version, if one was needed."""
    today = ctx.now().date()
    if not any(g.until < today for g in ctx.rules.grants()):
        return None
    with _lock:
        # Read again under the lock: a reviewer may have renewed a grant meanwhile.
        due = [g for g in ctx.rules.grants() if g.until < today]
        if not due:
            return None
        version = ctx.rules.active_version()
        now = ctx.now()
        entries = [ScopeEntry(g.rule_id, g.kind, g.value) for g in due]  # type: ignore[arg-type]
        new_version: RuleVersion | None = None
        removed: list[ScopeEntry] = []
        if version is not None:
            new_spec, removed = narrow_scope(ctx.active.spec(version.id), entries)
            if removed:
                new_version = ctx.rules.create_version(
                    spec_source(new_spec), "scope-lapse.yaml", author=LAPSE_ACTOR,
                    reason="time-limited scope extension lapsed (grants "
                    + ", ".join(f"#{g.id}" for g in due) + ")",
                    now=now, activate=True, close_grants=[g.id for g in due])
        if new_version is None:
            ctx.rules.update_grants([], [g.id for g in due], version_id=None, by=LAPSE_ACTOR,
                                    now=now)
        details: dict[str, Any] = {
            "grants": [g.id for g in due], "removed": [_entry_json(e) for e in removed],
            "version": new_version.id if new_version else None,
            "previous": version.id if version else None,
        }
        ctx.store.append_audit(actor=LAPSE_ACTOR, action="scope_lapse",
                               object_id=f"rules:v{new_version.id}" if new_version else None,
                               details=details, now=now)
    return new_version
