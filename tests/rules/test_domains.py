"""Domains and addresses compare in one form: lower-case A-labels, IDN U-label == A-label."""

from __future__ import annotations

import re

import pytest

from scanner.rules.domains import domain_of, normalize_address, to_alabel


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("xn--r8jz45g.jp", "xn--r8jz45g.jp"),
        ("XN--R8JZ45G.JP", "xn--r8jz45g.jp"),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),
        ("さくら商事.jp", "xn--y8jl1nw59iebh.jp"),
        ("mail.acme.co.jp", "mail.acme.co.jp"),
        ("a-b.example", "a-b.example"),
    ],
)
def test_to_alabel_gives_lowercase_ascii(domain: str, expected: str) -> None:
    """Each spelling of a domain maps to exactly the expected lower-case A-label."""
    assert to_alabel(domain) == expected


def test_idn_ulabel_equals_alabel() -> None:
    """The U-label and the A-label of one IDN are the same domain after normalization."""
    assert to_alabel("例え.jp") == to_alabel("xn--r8jz45g.jp")


def test_lookalike_is_a_different_domain() -> None:
    """A Cyrillic look-alike of acme.example normalizes to a different A-label."""
    assert to_alabel("аcme.example") == "xn--cme-5cd.example"
    assert to_alabel("аcme.example") != to_alabel("acme.example")


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("", "the domain is empty"),
        ("a b.com", "a domain has no spaces"),
        ("x@acme.example", "a domain has no '@'"),
        ("*.acme.example", "wildcards are not needed"),
        (".acme.example", "a domain does not start with a dot"),
        ("acme.example.", "a domain does not end with a dot"),
        ("https://acme.example", "a domain is not a URL"),
        ("localhost", "a domain needs at least one dot"),
        ("a..b", "not a valid domain name"),
        ("-acme.example", "not a valid domain name"),
        ("xn--zz.jp", "not a valid domain name"),
        ("under_score.example", "not a valid domain name"),
        ("a" * 64 + ".example", "not a valid domain name"),
    ],
)
def test_to_alabel_rejects_with_plain_reason(domain: str, reason: str) -> None:
    """Invalid domains raise ValueError whose message says what is wrong."""
    with pytest.raises(ValueError, match="^" + re.escape(reason)):
        to_alabel(domain)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Tanaka@Example.CO.JP", "tanaka@example.co.jp"),
        ("user@例え.jp", "user@xn--r8jz45g.jp"),
        ("USER@XN--R8JZ45G.JP", "user@xn--r8jz45g.jp"),
        ("  cfo@partner.example ", "cfo@partner.example"),
        ("first.last+tag@acme.example", "first.last+tag@acme.example"),
        ('"john doe"@acme.example', '"john doe"@acme.example'),
        ("postmaster@[192.0.2.1]", "postmaster@[192.0.2.1]"),
        ("田中@例え.jp", "田中@xn--r8jz45g.jp"),
    ],
)
def test_normalize_address(address: str, expected: str) -> None:
    """Addresses compare with a lower-case local part and an A-label domain."""
    assert normalize_address(address) == expected


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("no-at-sign", "an address needs an '@'"),
        ("@acme.example", "the part before '@' is empty"),
        ("user@", "the domain after '@' is empty"),
        ("a b@acme.example", "the part before '@' contains a space"),
        ("<user@acme.example>", "the part before '@' contains a space or a character"),
        (".user@acme.example", "the part before '@' has a misplaced dot"),
        ("a..b@acme.example", "the part before '@' has a misplaced dot"),
        ("x" * 65 + "@acme.example", "the part before '@' is longer than 64"),
        ("user@*.acme.example", "wildcards are not needed"),
        ("user@acme", "a domain needs at least one dot"),
    ],
)
def test_normalize_address_rejects(address: str, reason: str) -> None:
    """Invalid addresses raise ValueError naming the part that is wrong."""
    with pytest.raises(ValueError, match="^" + re.escape(reason)):
        normalize_address(address)


def test_domain_of() -> None:
    """domain_of gives the A-label domain of an address."""
    assert domain_of("Sales@さくら商事.jp") == "xn--y8jl1nw59iebh.jp"
    assert domain_of("a@Mail.ACME.example") == "mail.acme.example"


@pytest.mark.parametrize(
    "hostile",
    ["\x00@\x00", "a@" + "x." * 200 + "jp", "a@\u200b.jp", "a@b@c.example", "@", "a@.", "a@[::1"],
)
def test_hostile_recipients_raise_only_value_error(hostile: str) -> None:
    """Whatever a recipient looks like, the only failure is a ValueError (never a crash)."""
    with pytest.raises(ValueError, match=r"\w"):
        normalize_address(hostile)
