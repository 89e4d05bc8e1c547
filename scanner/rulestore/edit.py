"""Changes made to a rule set from the web app (not an upload): widen or narrow one rule's scope.

Owns the pure transformations ``RulesetSpec -> RulesetSpec`` behind "release with scope
extension" and the lapse of a time-limited extension, and ``spec_source``, which turns the result
into the canonical YAML a new rule version stores (``ruleset_to_yaml``; the source of a version
made in the web app is therefore YAML even when the active one was a CSV upload — the *content*
is the same rules, as the diff shows). Must not do I/O or read the clock. Hazard: the serialised
file is parsed back and compared with the spec, so a writer bug can never activate a rule set
that differs from what the reviewer confirmed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from scanner.errors import Problem, RuleError
from scanner.rules.csvio import ruleset_to_yaml
from scanner.rules.domains import to_alabel
from scanner.rules.load import parse_rules_bytes
from scanner.rules.model import RulesetSpec, RuleSpec

GrantKind = Literal["address", "domain"]


@dataclass(frozen=True)
class ScopeEntry:
    """One allowance to add to (or remove from) a rule: an address or a domain."""

    rule_id: str
    kind: GrantKind
    value: str  # lower-case address, or the domain as the reviewer chose it (U- or A-label)


def entry_for(rule_id: str, kind: GrantKind, recipient: str) -> ScopeEntry:
    """The allowance that puts ``recipient`` (an address) in scope: itself or its domain."""
    address = recipient.strip().lower()
    if kind == "domain":
        return ScopeEntry(rule_id, kind, address.rpartition("@")[2])
    return ScopeEntry(rule_id, kind, address)


def _same_domain(a: str, b: str) -> bool:
    try:
        return to_alabel(a) == to_alabel(b)
    except Exception:  # an unconvertible name compares as written
        return a.lower() == b.lower()


def _present(rule: RuleSpec, entry: ScopeEntry) -> bool:
    if entry.kind == "domain":
        return any(_same_domain(d, entry.value) for d in rule.allow.domains)
    return entry.value in (a.lower() for a in rule.allow.addresses)


def _rule(spec: RulesetSpec, rule_id: str) -> RuleSpec:
    for rule in spec.rules:
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)


def _replace(spec: RulesetSpec, new: RuleSpec) -> RulesetSpec:
    return dataclasses.replace(
        spec, rules=tuple(new if r.id == new.id else r for r in spec.rules))


def can_extend(rule: RuleSpec) -> bool:
    """A rule with terms has a scope; a ``recipient_domains``-only rule hits by address alone."""
    return bool(rule.terms)


def extend_scope(spec: RulesetSpec, entries: list[ScopeEntry]
                 ) -> tuple[RulesetSpec, list[ScopeEntry]]:
    """``spec`` with each entry added to its rule's allow list, and the entries really added
    (those already allowed are skipped, so repeating an extension changes nothing).

    ``KeyError`` for an unknown rule, ``ValueError`` for a rule without a scope."""
    added: list[ScopeEntry] = []
    for entry in entries:
        rule = _rule(spec, entry.rule_id)
        if not can_extend(rule):
            raise ValueError(entry.rule_id)
        if _present(rule, entry) or entry in added:
            continue
        allow = rule.allow
        if entry.kind == "domain":
            allow = dataclasses.replace(allow, domains=(*allow.domains, entry.value))
        else:
            allow = dataclasses.replace(allow, addresses=(*allow.addresses, entry.value))
        spec = _replace(spec, dataclasses.replace(rule, allow=allow))
        added.append(entry)
    return spec, added


def narrow_scope(spec: RulesetSpec, entries: list[ScopeEntry]
                 ) -> tuple[RulesetSpec, list[ScopeEntry]]:
    """``spec`` without the entries (a lapsed extension), and those that were still there.

    A rule that no longer exists, or no longer lists the entry, is left alone: someone changed
    it since, and their version stands."""
    removed: list[ScopeEntry] = []
    for entry in entries:
        try:
            rule = _rule(spec, entry.rule_id)
        except KeyError:
            continue
        if not _present(rule, entry):
            continue
        allow = rule.allow
        if entry.kind == "domain":
            allow = dataclasses.replace(allow, domains=tuple(
                d for d in allow.domains if not _same_domain(d, entry.value)))
        else:
            allow = dataclasses.replace(allow, addresses=tuple(
                a for a in allow.addresses if a.lower() != entry.value))
        spec = _replace(spec, dataclasses.replace(rule, allow=allow))
        removed.append(entry)
    return spec, removed


def spec_source(spec: RulesetSpec, filename: str = "rules.yaml") -> bytes:
    """The canonical YAML of ``spec``; ``RuleError`` when it does not read back as ``spec``."""
    data = ruleset_to_yaml(spec).encode("utf-8")
    again = parse_rules_bytes(data, filename)  # RuleError: e.g. a domain the loader refuses
    if again != spec:
        raise RuleError([Problem(filename, None, None,
                                 "the rules written from the web app do not read back the same")])
    return data


@dataclass(frozen=True)
class RuleForm:
    """One rule's editable fields as a person typed them (validated only by the loader)."""

    terms: tuple[str, ...]
    allow_domains: tuple[str, ...]
    allow_addresses: tuple[str, ...]
    allow_groups: tuple[str, ...]
    allow_internal: bool
    action: str
    expires: str  # "" for none; any other text is validated (and reported) by the loader


def form_of(rule: RuleSpec) -> RuleForm:
    return RuleForm(rule.terms, rule.allow.domains, rule.allow.addresses, rule.allow.groups,
                    rule.allow.internal, rule.action.label,
                    rule.expires.isoformat() if rule.expires else "")


def edited_source(spec: RulesetSpec, rule_id: str, form: RuleForm) -> bytes:
    """The canonical YAML of ``spec`` with one rule's fields replaced by ``form``, as text.

    Nothing is validated here: the result goes through the same loader as an upload, so a
    mistake in the form gets the same messages as the same mistake in a file. ``KeyError`` for
    an unknown rule."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    _rule(spec, rule_id)
    yaml = YAML(typ="rt", pure=True)
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    yaml.allow_unicode = True
    doc = yaml.load(ruleset_to_yaml(spec))
    node = next(n for n in doc["rules"] if n["id"] == rule_id)

    def flow(items: tuple[str, ...]) -> CommentedSeq:
        seq = CommentedSeq(items)
        seq.fa.set_flow_style()
        return seq

    if form.terms:
        node["terms"] = CommentedSeq(form.terms)
    else:
        node.pop("terms", None)
    allow = CommentedMap()
    for key, values in (("domains", form.allow_domains), ("addresses", form.allow_addresses),
                        ("groups", form.allow_groups)):
        if values:
            allow[key] = flow(values)
    if form.allow_internal:
        allow["internal"] = True
    if allow:
        node["allow"] = allow
    else:
        node.pop("allow", None)
    node["action"] = form.action
    if form.expires.strip():
        # As text: the loader reads "2027-03-31" as a date and reports anything else exactly
        # as in an uploaded file.
        node["expires"] = form.expires.strip()
    else:
        node.pop("expires", None)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue().encode("utf-8")
