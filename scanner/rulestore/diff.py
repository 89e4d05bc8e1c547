"""What a new rule set changes against the active one: rules added, removed and changed.

Owns the comparison of two ``RulesetSpec`` values by rule id (terms added/removed, scope, action,
expiry, owner, customer) and of settings and groups. It must not format a term into anything
but the returned values: ``summary()`` (for the audit log and logs) carries rule ids and counts
only; the UI may show terms to rules admins. Hazard: a rules admin limited to some customers is
judged on this diff (``outside``), so it must see every rule a change touches, including the
rules whose scope changes only through a group they use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scanner.rules.model import RulesetSpec, RuleSpec


@dataclass(frozen=True)
class RuleChange:
    """One rule present in both versions whose content differs."""

    rule_id: str
    old: RuleSpec
    new: RuleSpec
    terms_added: tuple[str, ...]
    terms_removed: tuple[str, ...]
    # field name -> (old, new) as display text, for everything but the terms
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RulesetDiff:
    added: tuple[RuleSpec, ...]
    removed: tuple[RuleSpec, ...]
    changed: tuple[RuleChange, ...]
    settings_changed: dict[str, tuple[str, str]]
    groups_changed: tuple[str, ...]
    # Rules left out by ``visible_to`` (their terms are another customer's secrets).
    hidden: int = 0

    def visible_to(self, allowed: Callable[[str, str | None], bool]) -> RulesetDiff:
        """The part of this diff a (possibly customer-limited) rules admin may read."""
        added = tuple(r for r in self.added if allowed(r.id, r.customer))
        removed = tuple(r for r in self.removed if allowed(r.id, r.customer))
        changed = tuple(
            c for c in self.changed
            if allowed(c.rule_id, c.old.customer) and allowed(c.rule_id, c.new.customer)
        )
        hidden = (len(self.added) - len(added) + len(self.removed) - len(removed)
                  + len(self.changed) - len(changed))
        return RulesetDiff(added, removed, changed, self.settings_changed,
                           self.groups_changed, hidden=self.hidden + hidden)

    @property
    def empty(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.settings_changed
            or self.groups_changed
        )

    def touched(self) -> list[tuple[str, str | None]]:
        """(rule id, customer) of every rule this change affects, old and new customer both."""
        out: list[tuple[str, str | None]] = []
        for r in (*self.added, *self.removed):
            out.append((r.id, r.customer))
        for c in self.changed:
            out.append((c.rule_id, c.old.customer))
            out.append((c.rule_id, c.new.customer))
        return out

    def outside(self, allowed: Callable[[str, str | None], bool]) -> list[str]:
        """Rule ids touched by this change that ``allowed(rule_id, customer)`` refuses."""
        refused: dict[str, None] = {}
        for rule_id, customer in self.touched():
            if not allowed(rule_id, customer):
                refused.setdefault(rule_id, None)
        return list(refused)

    def summary(self) -> dict[str, Any]:
        """Content-free description for the audit log: rule ids and counts, never terms."""
        return {
            "added": [r.id for r in self.added],
            "removed": [r.id for r in self.removed],
            "changed": {
                c.rule_id: {
                    "terms_added": len(c.terms_added),
                    "terms_removed": len(c.terms_removed),
                    "fields": sorted(c.fields),
                }
                for c in self.changed
            },
            "settings": sorted(self.settings_changed),
            "groups": list(self.groups_changed),
        }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "label"):
        return str(value.label)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _rule_fields(rule: RuleSpec) -> dict[str, str]:
    return {
        "action": _text(rule.action),
        "customer": _text(rule.customer),
        "owner": _text(rule.owner),
        "expires": _text(rule.expires),
        "description": _text(rule.description),
        "recipient_domains": _text(rule.recipient_domains),
        "allow.domains": _text(rule.allow.domains),
        "allow.addresses": _text(rule.allow.addresses),
        "allow.groups": _text(rule.allow.groups),
        "allow.internal": "true" if rule.allow.internal else "false",
    }


def diff_rulesets(old: RulesetSpec | None, new: RulesetSpec) -> RulesetDiff:
    """Compare ``new`` against ``old`` (None: everything in ``new`` is added)."""
    old_rules = {r.id: r for r in (old.rules if old else ())}
    new_rules = {r.id: r for r in new.rules}
    added = tuple(r for r in new.rules if r.id not in old_rules)
    removed = tuple(r for r in (old.rules if old else ()) if r.id not in new_rules)
    changed = []
    for rule in new.rules:
        before = old_rules.get(rule.id)
        if before is None or before == rule:
            continue
        old_f, new_f = _rule_fields(before), _rule_fields(rule)
        fields = {k: (old_f[k], new_f[k]) for k in new_f if old_f[k] != new_f[k]}
        old_terms, new_terms = set(before.terms), set(rule.terms)
        changed.append(
            RuleChange(
                rule_id=rule.id,
                old=before,
                new=rule,
                terms_added=tuple(t for t in rule.terms if t not in old_terms),
                terms_removed=tuple(t for t in before.terms if t not in new_terms),
                fields=fields,
            )
        )
    settings: dict[str, tuple[str, str]] = {}
    if old is None or old.settings.internal_domains != new.settings.internal_domains:
        settings["internal_domains"] = (
            _text(old.settings.internal_domains) if old else "",
            _text(new.settings.internal_domains),
        )
    if old is None or old.settings.unscannable != new.settings.unscannable:
        settings["unscannable"] = (
            _text(old.settings.unscannable) if old else "",
            _text(new.settings.unscannable),
        )
    old_groups = old.groups if old else {}
    group_names = sorted(set(old_groups) | set(new.groups))
    groups = tuple(g for g in group_names if old_groups.get(g) != new.groups.get(g))
    # A rule whose group changed members has a changed scope even if its own text did not.
    listed = {c.rule_id for c in changed} | {r.id for r in added}
    for rule in new.rules:
        if rule.id not in listed and set(rule.allow.groups) & set(groups) and rule.id in old_rules:
            changed.append(
                RuleChange(rule.id, old_rules[rule.id], rule, (), (),
                           {"allow.groups (members)": ("", ", ".join(
                               g for g in rule.allow.groups if g in groups))})
            )
    return RulesetDiff(added, removed, tuple(changed), settings, groups)
