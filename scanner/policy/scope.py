"""Recipient scope: for a rule that hit, which recipients may not receive its secret.

A recipient is in scope when its address is allowed, its domain is an allowed domain or a
subdomain of one (label-wise: ``acme.example.evil.test`` and ``evilacme.example`` never match
``acme.example``), or the rule allows every internal recipient and its domain is internal.
Domains compare as lower-case A-labels, so ``例え.jp`` equals ``xn--r8jz45g.jp``. A recipient that
cannot be parsed is out of scope: failing closed is the only safe answer for a DLP check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scanner.rules.domains import domain_of, normalize_address, to_alabel
from scanner.rules.model import CompiledRule


@dataclass(frozen=True)
class Recipient:
    """A recipient as given (for reports) and in comparable form (``None`` if unparseable)."""

    original: str
    address: str | None
    domain: str | None


def parse_recipient(original: str) -> Recipient:
    try:
        address = normalize_address(original)
        return Recipient(original, address, domain_of(address))
    except ValueError:
        return Recipient(original, None, None)


def parse_recipients(addresses: Iterable[str]) -> tuple[Recipient, ...]:
    return tuple(parse_recipient(a) for a in addresses)


def domain_within(domain: str, allowed: frozenset[str]) -> bool:
    """True when ``domain`` equals an allowed domain or is a subdomain of one (label-wise)."""
    if domain in allowed:
        return True
    labels = domain.split(".")
    return any(".".join(labels[i:]) in allowed for i in range(1, len(labels)))


def in_scope(rule: CompiledRule, recipient: Recipient, internal_domains: frozenset[str]) -> bool:
    if recipient.address is None or recipient.domain is None:
        return False
    scope = rule.scope
    if recipient.address in scope.addresses:
        return True
    if scope.domains and domain_within(recipient.domain, scope.domains):
        return True
    return scope.internal and domain_within(recipient.domain, internal_domains)


def out_of_scope(
    rule: CompiledRule, recipients: Sequence[Recipient], internal_domains: frozenset[str]
) -> tuple[str, ...]:
    """Recipients (as given) outside ``rule``'s scope, in envelope order."""
    return tuple(r.original for r in recipients if not in_scope(rule, r, internal_domains))


def recipients_in_domains(
    recipients: Sequence[Recipient], domains: frozenset[str]
) -> tuple[str, ...]:
    """Recipients addressed to one of ``domains`` (for ``recipient_domains`` rules)."""
    return tuple(
        r.original for r in recipients if r.domain is not None and domain_within(r.domain, domains)
    )


def alabel_or_none(domain: str) -> str | None:
    try:
        return to_alabel(domain)
    except ValueError:
        return None
