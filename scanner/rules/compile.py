"""``RulesetSpec`` → ``CompiledRuleset``: everything the hot path needs, computed once.

Owns: group resolution, A-label domains and normalized addresses for scopes, the list of unique
normalized patterns across all rules with the rules each belongs to, the matcher, and the
ruleset version (a hash of the content, so every instance and every audit record can say which
rules judged a message).

Must not: read the clock (``today`` is an argument), do I/O, or validate (the spec is already
valid; a ``ValueError`` here is a bug in a reader, not a user error).

Hazards: compile time grows with the number of terms (100k is a real customer base); the
per-term work is one ``normalize_term`` call and a dict lookup. Expired rules stay in the
compiled ruleset (``CompiledRule.active_on`` decides per scan day) so a scan dated before
``today`` still sees them; their patterns cost only automaton size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from scanner.match.engine import build_matcher
from scanner.normalize import normalize_term
from scanner.rules.domains import normalize_address, to_alabel
from scanner.rules.model import CompiledRule, CompiledRuleset, RulesetSpec, RuleSpec, Scope


def canonical_json(spec: RulesetSpec) -> str:
    """The content of a ruleset as canonical JSON: same rules, same text, whatever the file form.

    Rule order is kept (it is the order of hits); group order is not (a mapping has none);
    source lines are left out (reformatting a file does not change its rules).
    """

    def rule(r: RuleSpec) -> dict[str, Any]:
        return {
            "id": r.id,
            "action": r.action.label,
            "terms": list(r.terms),
            "recipient_domains": list(r.recipient_domains),
            "customer": r.customer,
            "owner": r.owner,
            "description": r.description,
            "allow": {
                "domains": list(r.allow.domains),
                "addresses": list(r.allow.addresses),
                "groups": list(r.allow.groups),
                "internal": r.allow.internal,
            },
            "expires": r.expires.isoformat() if r.expires else None,
        }

    content = {
        "version": 1,
        "settings": {
            "internal_domains": list(spec.settings.internal_domains),
            "unscannable": spec.settings.unscannable.label,
        },
        "groups": {name: list(members) for name, members in spec.groups.items()},
        "rules": [rule(r) for r in spec.rules],
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def ruleset_version(spec: RulesetSpec) -> str:
    """``sha256:`` and the first 16 hex digits of the hash of the canonical JSON."""
    digest = hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()
    return f"sha256:{digest[:16]}"


def compile_ruleset(
    spec: RulesetSpec, *, today: dt.date, engine: str | None = None
) -> CompiledRuleset:
    """Build the immutable ruleset a scan runs against; ``today`` becomes its default day.

    ``engine`` names the matcher engine (default: the fastest installed one).
    """
    groups = {
        name: frozenset(normalize_address(a) for a in members)
        for name, members in spec.groups.items()
    }
    rules: list[CompiledRule] = []
    pattern_index: dict[str, int] = {}
    owners: list[list[int]] = []
    for index, spec_rule in enumerate(spec.rules):
        addresses = {normalize_address(a) for a in spec_rule.allow.addresses}
        for group in spec_rule.allow.groups:
            addresses |= groups[group]
        rules.append(
            CompiledRule(
                id=spec_rule.id,
                action=spec_rule.action,
                scope=Scope(
                    domains=frozenset(to_alabel(d) for d in spec_rule.allow.domains),
                    addresses=frozenset(addresses),
                    internal=spec_rule.allow.internal,
                ),
                recipient_domains=frozenset(to_alabel(d) for d in spec_rule.recipient_domains),
                has_terms=bool(spec_rule.terms),
                customer=spec_rule.customer,
                owner=spec_rule.owner,
                expires=spec_rule.expires,
            )
        )
        for term in spec_rule.terms:
            pattern = normalize_term(term)
            if not pattern:  # the readers reject such terms; never build an empty pattern
                continue
            at = pattern_index.get(pattern)
            if at is None:
                at = pattern_index[pattern] = len(owners)
                owners.append([index])
            elif owners[at][-1] != index:  # two terms of one rule may normalize alike
                owners[at].append(index)
    patterns = list(pattern_index)
    return CompiledRuleset(
        version=ruleset_version(spec),
        rules=tuple(rules),
        pattern_rules=tuple(tuple(o) for o in owners),
        matcher=build_matcher(patterns, engine),
        internal_domains=frozenset(to_alabel(d) for d in spec.settings.internal_domains),
        unscannable_action=spec.settings.unscannable,
        as_of=today,
        spec=spec,
        domain_rules=tuple(i for i, rule in enumerate(rules) if rule.recipient_domains),
    )
