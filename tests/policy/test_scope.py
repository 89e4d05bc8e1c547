"""Recipient scope: domains and subdomains, addresses, internal, IDN, look-alikes."""

from __future__ import annotations

import pytest

from scanner.model import Action
from scanner.policy.scope import out_of_scope, parse_recipients, recipients_in_domains
from scanner.rules.model import CompiledRule, Scope

INTERNAL = frozenset({"example.co.jp"})


def make_rule(
    *,
    domains: tuple[str, ...] = (),
    addresses: tuple[str, ...] = (),
    internal: bool = False,
) -> CompiledRule:
    return CompiledRule(
        id="r",
        action=Action.HOLD,
        scope=Scope(frozenset(domains), frozenset(addresses), internal),
        recipient_domains=frozenset(),
        has_terms=True,
        customer=None,
        owner=None,
        expires=None,
    )


@pytest.mark.parametrize(
    ("recipient", "allowed"),
    [
        ("cfo@acme.example", True),
        ("CFO@ACME.EXAMPLE", True),
        ("x@sales.acme.example", True),
        ("x@deep.sales.acme.example", True),
        ("x@acme.example.evil.test", False),
        ("x@acme-example.com", False),
        ("x@evilacme.example", False),
        ("x@example", False),
        ("x@аcme.example", False),  # Cyrillic 'а': a look-alike, a different A-label
        ("partner@xn--r8jz45g.jp", True),
        ("partner@例え.jp", True),
        ("partner@sub.例え.jp", True),
        ("not an address", False),
        ("", False),
    ],
)
def test_domain_scope(recipient: str, allowed: bool) -> None:
    """Allowed domains cover themselves and subdomains only, case- and IDN-insensitively."""
    rule = make_rule(domains=("acme.example", "xn--r8jz45g.jp"))
    result = out_of_scope(rule, parse_recipients([recipient]), INTERNAL)
    assert result == (() if allowed else (recipient,))


def test_addresses_and_internal() -> None:
    """Named addresses and (when allowed) internal recipients are in scope; others are not."""
    rule = make_rule(addresses=("cfo@partner.example",), internal=True)
    rcpts = ["cfo@partner.example", "ceo@partner.example", "a@example.co.jp", "b@x.example.co.jp"]
    assert out_of_scope(rule, parse_recipients(rcpts), INTERNAL) == ("ceo@partner.example",)


def test_internal_not_allowed_means_out_of_scope() -> None:
    """Internal recipients are out of scope unless the rule says internal: true."""
    rule = make_rule(domains=("acme.example",))
    assert out_of_scope(rule, parse_recipients(["a@example.co.jp"]), INTERNAL) == (
        "a@example.co.jp",
    )


def test_recipient_domains() -> None:
    """recipient_domains rules pick the recipients addressed to those domains and subdomains."""
    rcpts = parse_recipients(["a@rival.example", "b@mail.rival.example", "c@rival.example.org"])
    assert recipients_in_domains(rcpts, frozenset({"rival.example"})) == (
        "a@rival.example",
        "b@mail.rival.example",
    )
