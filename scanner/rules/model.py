"""The rule values after validation (``RuleSpec``) and after compilation (``CompiledRuleset``).

A ``RulesetSpec`` is the faithful content of a rules file; a ``CompiledRuleset`` adds everything
the hot path needs (normalized patterns, one matcher, resolved groups, A-label domains) and is
immutable so that a running daemon can swap one reference atomically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from scanner.match.engine import Matcher
from scanner.model import Action


@dataclass(frozen=True)
class Allow:
    """Where a rule's secret may travel."""

    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    internal: bool = False


@dataclass(frozen=True)
class RuleSpec:
    """One rule as written by a sales admin (validated, not yet compiled)."""

    id: str
    action: Action
    terms: tuple[str, ...] = ()
    recipient_domains: tuple[str, ...] = ()
    customer: str | None = None
    owner: str | None = None
    allow: Allow = field(default_factory=Allow)
    expires: dt.date | None = None
    description: str | None = None
    # 1-based line of the rule in its source file, for messages that point back to it. Not part
    # of the rule's content: equality and the ruleset version ignore it (reformatting a file or
    # converting it between YAML and CSV changes lines, not rules).
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Settings:
    internal_domains: tuple[str, ...] = ()
    unscannable: Action = Action.FLAG


@dataclass(frozen=True)
class RulesetSpec:
    """A whole rules file: settings, groups and rules, in file order."""

    settings: Settings
    groups: dict[str, tuple[str, ...]]
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True)
class Scope:
    """A rule's allowed recipients in comparable form: lower-case A-label domains, addresses."""

    domains: frozenset[str]
    addresses: frozenset[str]
    internal: bool


@dataclass(frozen=True)
class CompiledRule:
    id: str
    action: Action
    scope: Scope
    recipient_domains: frozenset[str]
    has_terms: bool
    customer: str | None
    owner: str | None
    expires: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        """Expiry is inclusive: the rule still applies on its ``expires`` day."""
        return self.expires is None or day <= self.expires


@dataclass(frozen=True)
class CompiledRuleset:
    """Everything ``scan`` needs, built once per rules version off the hot path."""

    version: str
    rules: tuple[CompiledRule, ...]
    # Pattern i of the matcher belongs to rules pattern_rules[i] (indices into ``rules``).
    pattern_rules: tuple[tuple[int, ...], ...]
    matcher: Matcher
    internal_domains: frozenset[str]
    unscannable_action: Action
    # The day used for expiry when the caller gives none (the compile day).
    as_of: dt.date
    spec: RulesetSpec
    # Indices of the rules with ``recipient_domains`` (checked on every message, so listed
    # once here rather than found by walking all rules per scan).
    domain_rules: tuple[int, ...] = ()
