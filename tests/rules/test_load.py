"""The YAML reader: valid files give the exact spec; every kind of mistake is located precisely."""

from __future__ import annotations

import codecs
import datetime as dt

import pytest

from scanner.errors import Problem, RuleError
from scanner.model import Action
from scanner.rules.load import parse_rules_bytes, parse_rules_yaml
from scanner.rules.model import Allow, RulesetSpec, RuleSpec, Settings

DESIGN_EXAMPLE = """\
version: 1
settings:
  internal_domains: [example.co.jp]   # recipients here are internal
  unscannable: flag                   # pass | flag | hold | reject (default flag)
groups:
  deal-team-falcon: [tanaka@example.co.jp, suzuki@example.co.jp]
rules:
  - id: falcon                        # unique, stable; used in audit and UI
    customer: ACME Corp
    owner: tanaka@example.co.jp       # the salesperson who registered the secret
    terms: ["Project Falcon", "ファルコン計画"]
    allow:
      domains: [acme.example]         # and subdomains
      addresses: [cfo@partner.example]
      groups: [deal-team-falcon]
      internal: false                 # true: every internal recipient is in scope
    action: hold                      # flag | hold | reject
    expires: 2026-12-31               # inclusive; from the next day the rule is inactive
  - id: rival-domain
    recipient_domains: [rival.example]  # no terms: any mail to these domains hits
    action: flag
"""


def problems_of(text: str, filename: str = "rules.yaml") -> list[Problem]:
    with pytest.raises(RuleError) as caught:
        parse_rules_yaml(text, filename)
    return caught.value.problems


def test_design_example_parses_to_exact_spec() -> None:
    """The example of DESIGN.md gives exactly the expected settings, groups and rules."""
    spec = parse_rules_yaml(DESIGN_EXAMPLE, "design.yaml")
    assert spec == RulesetSpec(
        settings=Settings(internal_domains=("example.co.jp",), unscannable=Action.FLAG),
        groups={"deal-team-falcon": ("tanaka@example.co.jp", "suzuki@example.co.jp")},
        rules=(
            RuleSpec(
                id="falcon",
                action=Action.HOLD,
                terms=("Project Falcon", "ファルコン計画"),
                customer="ACME Corp",
                owner="tanaka@example.co.jp",
                allow=Allow(
                    domains=("acme.example",),
                    addresses=("cfo@partner.example",),
                    groups=("deal-team-falcon",),
                    internal=False,
                ),
                expires=dt.date(2026, 12, 31),
            ),
            RuleSpec(id="rival-domain", action=Action.FLAG, recipient_domains=("rival.example",)),
        ),
    )
    assert [r.line for r in spec.rules] == [8, 19]
    assert type(spec.rules[0].terms[0]) is str  # plain str, not a ruamel ScalarString


def test_defaults_strip_and_dedupe() -> None:
    """Missing action means hold, missing unscannable means flag, terms are stripped and deduped."""
    spec = parse_rules_yaml(
        "version: 1\nrules:\n  - id: a\n    terms: [' Falcon ', Falcon, 'Falcon', ファルコン]\n",
        "r.yaml",
    )
    assert spec.settings == Settings(internal_domains=(), unscannable=Action.FLAG)
    assert spec.rules[0].action is Action.HOLD
    assert spec.rules[0].terms == ("Falcon", "ファルコン")


def test_quoted_expires_and_empty_optional_text() -> None:
    """A quoted date is accepted like a plain one, and an empty customer counts as absent."""
    spec = parse_rules_yaml(
        'version: 1\nrules:\n  - id: a\n    terms: [x]\n    expires: "2027-01-31"\n'
        '    customer: "  "\n',
        "r.yaml",
    )
    assert spec.rules[0].expires == dt.date(2027, 1, 31)
    assert spec.rules[0].customer is None


RULE = "version: 1\nrules:\n  - id: a\n    terms: [x]\n"

# (name, file text, expected line, column, message fragment, rule id)
INVALID = [
    (
        "yaml-syntax",
        "version: 1\nrules:\n\t- id: a\n",
        3,
        1,
        "YAML syntax: found character '\\t' that cannot start any token",
        None,
    ),
    (
        "yaml-unclosed-flow",
        "version: 1\nrules:\n  - id: a\n    terms: [x, y\n",
        5,
        1,
        "YAML syntax:",
        None,
    ),
    ("duplicate-key", "version: 1\nversion: 1\n", 2, 1, "duplicate key", None),
    ("empty-file", "", 1, 1, "the rules file is empty", None),
    ("top-level-list", "- id: a\n", 1, 1, "must be a mapping with version", None),
    ("missing-version", "rules: []\n", 1, 1, "missing version", None),
    ("unsupported-version", "version: 2\n", 1, 10, "unsupported version", None),
    ("version-as-text", "version: '1'\n", 1, 10, "unsupported version", None),
    (
        "unknown-top-key",
        "version: 1\nrulez: []\n",
        2,
        1,
        "unknown key in the rules file (did you mean 'rules'?)",
        None,
    ),
    (
        "unknown-settings-key",
        "version: 1\nsettings:\n  internal_domain: [a.example]\n",
        3,
        3,
        "unknown key in settings (did you mean 'internal_domains'?)",
        None,
    ),
    (
        "unknown-rule-key",
        RULE + "    acton: flag\n",
        5,
        5,
        "unknown key in a rule (did you mean 'action'?)",
        "a",
    ),
    (
        "unknown-allow-key",
        RULE + "    allow: {domain: [acme.example]}\n",
        5,
        13,
        "unknown key in allow (did you mean 'domains'?)",
        "a",
    ),
    (
        "settings-not-mapping",
        "version: 1\nsettings: flag\n",
        2,
        11,
        "settings must be a mapping",
        None,
    ),
    (
        "terms-not-list",
        "version: 1\nrules:\n  - id: a\n    terms: Falcon\n",
        4,
        12,
        "terms must be a list",
        "a",
    ),
    (
        "term-number",
        "version: 1\nrules:\n  - id: a\n    terms: [x, 4980]\n",
        4,
        16,
        "must be text, not a number (put it in quotes)",
        "a",
    ),
    (
        "internal-not-bool",
        RULE + "    allow:\n      internal: yes\n",
        6,
        17,
        "internal must be true or false, not text",
        "a",
    ),
    (
        "id-number",
        "version: 1\nrules:\n  - id: 2024\n    terms: [x]\n",
        3,
        9,
        "id must be text",
        None,
    ),
    (
        "id-bad-chars",
        "version: 1\nrules:\n  - id: falcon plan\n    terms: [x]\n",
        3,
        9,
        "rule id may use only ASCII",
        None,
    ),
    ("rule-without-id", "version: 1\nrules:\n  - terms: [x]\n", 3, 5, "rule without id", None),
    (
        "neither-terms-nor-domains",
        "version: 1\nrules:\n  - id: a\n    action: flag\n",
        3,
        5,
        "neither terms nor recipient_domains",
        "a",
    ),
    (
        "both-terms-and-domains",
        RULE + "    recipient_domains: [rival.example]\n",
        3,
        5,
        "both terms and recipient_domains",
        "a",
    ),
    (
        "duplicate-id",
        RULE + "  - id: a\n    terms: [y]\n",
        5,
        9,
        "duplicate rule id 'a' (first defined at line 3)",
        "a",
    ),
    (
        "empty-term",
        "version: 1\nrules:\n  - id: a\n    terms: [x, '  ']\n",
        4,
        16,
        "empty term",
        "a",
    ),
    (
        "unknown-group",
        "version: 1\ngroups:\n  team: [a@example.co.jp]\nrules:\n  - id: a\n    terms: [x]\n"
        "    allow: {groups: [tema]}\n",
        7,
        22,
        "unknown group (did you mean 'team'?); defined groups: team",
        "a",
    ),
    (
        "group-member-not-address",
        "version: 1\ngroups:\n  team: [a@example.co.jp, tanaka]\n",
        3,
        27,
        "in a group: invalid address: an address needs an '@'",
        None,
    ),
    (
        "group-bad-name",
        "version: 1\ngroups:\n  deal team: [a@example.co.jp]\n",
        3,
        3,
        "group name may use only ASCII",
        None,
    ),
    (
        "domain-wildcard",
        RULE + "    allow: {domains: ['*.acme.example']}\n",
        5,
        23,
        "invalid domain: wildcards are not needed",
        "a",
    ),
    (
        "domain-with-at",
        RULE + "    allow:\n      domains: [cfo@acme.example]\n",
        6,
        17,
        "invalid domain: a domain has no '@'",
        "a",
    ),
    (
        "domain-leading-dot",
        RULE + "    allow:\n      domains: [.acme.example]\n",
        6,
        17,
        "a domain does not start with a dot",
        "a",
    ),
    (
        "domain-space",
        RULE + "    allow:\n      domains: ['acme .example']\n",
        6,
        17,
        "a domain has no spaces",
        "a",
    ),
    (
        "recipient-domain-invalid",
        "version: 1\nrules:\n  - id: a\n    recipient_domains: [rival]\n",
        4,
        25,
        "invalid domain: a domain needs at least one dot",
        "a",
    ),
    (
        "internal-domain-invalid",
        "version: 1\nsettings:\n  internal_domains: [example..jp]\n",
        3,
        22,
        "invalid domain",
        None,
    ),
    (
        "address-invalid",
        RULE + "    allow:\n      addresses: ['cfo partner.example']\n",
        6,
        19,
        "invalid address",
        "a",
    ),
    ("owner-invalid", RULE + "    owner: tanaka\n", 5, 12, "owner: invalid address", "a"),
    ("date-no-such-day", RULE + "    expires: 2027-02-30\n", 5, 14, "no such day", "a"),
    (
        "date-wrong-form",
        RULE + "    expires: 2027/3/31\n",
        5,
        14,
        "write expires as YYYY-MM-DD",
        "a",
    ),
    (
        "date-number",
        RULE + "    expires: 20270331\n",
        5,
        14,
        "expires must be text, not a number",
        "a",
    ),
    ("action-pass", RULE + "    action: pass\n", 5, 13, "'pass' is not a rule action", "a"),
    (
        "action-typo",
        RULE + "    action: hodl\n",
        5,
        13,
        "invalid action: use flag, hold or reject (did you mean 'hold'?)",
        "a",
    ),
    (
        "unscannable-invalid",
        "version: 1\nsettings:\n  unscannable: ignore\n",
        3,
        16,
        "invalid unscannable setting: use pass, flag, hold or reject",
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment", "rule_id"),
    [pytest.param(*row[1:], id=row[0]) for row in INVALID],
)
def test_invalid_file_reports_located_problem(
    text: str, line: int, column: int, fragment: str, rule_id: str | None
) -> None:
    """Each kind of mistake is reported once, at the exact line and column of the bad node."""
    problems = problems_of(text)
    assert [(p.line, p.column, p.rule_id) for p in problems] == [(line, column, rule_id)], problems
    assert fragment in problems[0].message
    assert problems[0].file == "rules.yaml"


def test_term_that_normalizes_to_nothing() -> None:
    """A term of only invisible characters (a zero-width space) is rejected at its position."""
    problems = problems_of('version: 1\nrules:\n  - id: a\n    terms: [x, "\\u200b"]\n')
    assert [(p.line, p.column, p.rule_id) for p in problems] == [(4, 16, "a")]
    assert problems[0].message == (
        "term is empty after normalization (only spaces or invisible characters)"
    )


SEVERAL = """\
version: 2
setings: {}
groups:
  g1: [a@b.example, notanaddress]
rules:
  - id: a
    terms: ["", x]
    allow: {domains: ["*.x.com"], groups: [g2], internal: yes}
    action: pass
    expires: 2026-13-01
    foo: 1
  - customer: x
  - id: a
    terms: [y]
    action: hodl
  - id: b
"""


def test_several_problems_are_all_reported_in_reading_order() -> None:
    """A file with many mistakes reports every one of them, sorted by line and column."""
    problems = problems_of(SEVERAL, "bad.yaml")
    assert [(p.line, p.column, p.rule_id) for p in problems] == [
        (1, 10, None),  # version 2
        (2, 1, None),  # setings
        (4, 21, None),  # notanaddress
        (7, 13, "a"),  # empty term
        (8, 23, "a"),  # wildcard domain
        (8, 44, "a"),  # unknown group g2
        (8, 59, "a"),  # internal: yes
        (9, 13, "a"),  # pass
        (10, 14, "a"),  # 2026-13-01
        (11, 5, "a"),  # foo
        (12, 5, None),  # rule without id
        (12, 5, None),  # ... and without terms
        (13, 9, "a"),  # duplicate id
        (15, 13, "a"),  # hodl
        (16, 5, "b"),  # no terms
    ]
    assert str(problems[0]) == "bad.yaml:1:10: unsupported version: this Maruhi reads version 1"


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nrules:\n  - id: a\n    terms: [TOPSECRET]\n    terms: [TOPSECRET2]\n",
        "version: 1\nrules:\n  - id: a\n    terms: [314159265]\n",
        "version: 1\nrules:\n  - id: a\n    terms: [[TOPSECRET]]\n",
    ],
)
def test_messages_never_quote_a_term(text: str) -> None:
    """Problems about terms (even YAML duplicate-key errors) never contain the term itself."""
    problems = problems_of(text)
    assert problems
    for problem in problems:
        assert "TOPSECRET" not in str(problem)
        assert "314159265" not in str(problem)


def test_parse_bytes_yaml_with_bom() -> None:
    """UTF-8 YAML with a BOM parses like the same file without one."""
    data = codecs.BOM_UTF8 + DESIGN_EXAMPLE.encode("utf-8")
    assert parse_rules_bytes(data, "r.yaml") == parse_rules_yaml(DESIGN_EXAMPLE, "r.yaml")


def test_parse_bytes_undecodable_yaml_reports_line() -> None:
    """Bytes that are not UTF-8 in a YAML file give one problem at the line of the bad byte."""
    data = "version: 1\nrules:\n  - id: a\n    terms: [価格表]\n".encode("cp932")
    with pytest.raises(RuleError) as caught:
        parse_rules_bytes(data, "r.yaml")
    assert [(p.line, p.column) for p in caught.value.problems] == [(4, 13)]
    assert "cannot decode the file as UTF-8" in caught.value.problems[0].message


def test_parse_bytes_picks_csv_by_extension_and_by_content() -> None:
    """A .csv name, or a header row we know under any name, selects the CSV reader."""
    data = b"id,term\r\nfalcon,Project Falcon\r\n"
    expected = RulesetSpec(
        settings=Settings(),
        groups={},
        rules=(RuleSpec(id="falcon", action=Action.HOLD, terms=("Project Falcon",)),),
    )
    assert parse_rules_bytes(data, "upload.CSV") == expected
    assert parse_rules_bytes(data, "upload") == expected
    assert (
        parse_rules_bytes("ルールID,用語\r\nfalcon,Project Falcon\r\n".encode("cp932"), "x")
        == expected
    )


def test_yaml_extension_never_sniffed_as_csv() -> None:
    """A .yaml file is read as YAML even when its first line looks like a CSV header."""
    with pytest.raises(RuleError) as caught:
        parse_rules_bytes(b"id,term\nfalcon,x\n", "rules.yaml")
    assert caught.value.problems[0].message.startswith(("the rules file must be", "YAML syntax"))
