"""Excel CSV import/export: encodings, merged rows, located problems, and lossless round trips."""

from __future__ import annotations

import codecs
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.errors import Problem, RuleError
from scanner.model import Action
from scanner.normalize import normalize_term
from scanner.rules import validate
from scanner.rules.csvio import (
    COLUMNS,
    header_key,
    parse_rules_csv,
    ruleset_to_csv,
    ruleset_to_yaml,
)
from scanner.rules.load import parse_rules_yaml
from scanner.rules.model import Allow, RulesetSpec, RuleSpec, Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

JA_CSV = (
    "ルールID,顧客,担当者,用語,許可ドメイン,許可アドレス,許可グループ,社内許可,動作,期限\r\n"
    "falcon,株式会社アクメ,tanaka@example.co.jp,ファルコン計画,acme.co.jp;例え.jp,"
    "cfo@partner.example,deal-team,TRUE,保留,2027/3/31\r\n"
    "falcon,,,Project Falcon,,,,,,\r\n"
    "price,さくら商事,,価格表,sakura.example,,,,reject,2027-12-31\r\n"
)
GROUPS_CSV = "グループ,メンバー\r\ndeal-team,tanaka@example.co.jp;suzuki@example.co.jp\r\n"

JA_SPEC = RulesetSpec(
    settings=Settings(),
    groups={"deal-team": ("tanaka@example.co.jp", "suzuki@example.co.jp")},
    rules=(
        RuleSpec(
            id="falcon",
            action=Action.HOLD,
            terms=("ファルコン計画", "Project Falcon"),
            customer="株式会社アクメ",
            owner="tanaka@example.co.jp",
            allow=Allow(
                domains=("acme.co.jp", "例え.jp"),
                addresses=("cfo@partner.example",),
                groups=("deal-team",),
                internal=True,
            ),
            expires=dt.date(2027, 3, 31),
        ),
        RuleSpec(
            id="price",
            action=Action.REJECT,
            terms=("価格表",),
            customer="さくら商事",
            allow=Allow(domains=("sakura.example",)),
            expires=dt.date(2027, 12, 31),
        ),
    ),
)


def with_groups(text: str) -> str:
    """The rule rows of ``text`` followed by a group row, under one merged header."""
    header, *rows = text.split("\r\n")
    out = [header + ",グループ,メンバー"]
    out += [row + ",," for row in rows if row]
    out.append("," * header.count(",") + ",deal-team,tanaka@example.co.jp;suzuki@example.co.jp")
    return "\r\n".join(out) + "\r\n"


def problems_of(data: bytes, filename: str = "rules.csv") -> list[Problem]:
    with pytest.raises(RuleError) as caught:
        parse_rules_csv(data, filename)
    return caught.value.problems


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), id="utf-8-bom"),
        pytest.param(lambda t: t.encode("utf-8"), id="utf-8"),
        pytest.param(lambda t: t.encode("cp932"), id="cp932"),
    ],
)
def test_japanese_csv_in_every_excel_encoding(encode: object) -> None:
    """The same Japanese sheet saved as UTF-8 with BOM, UTF-8 or cp932 gives the same spec."""
    data = encode(with_groups(JA_CSV))  # type: ignore[operator]
    assert parse_rules_csv(data, "ja.csv") == JA_SPEC


def test_cp932_bytes_really_are_cp932() -> None:
    """The cp932 test input is not valid UTF-8, so the fallback is what decoded it."""
    data = with_groups(JA_CSV).encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert parse_rules_csv(data, "ja.csv").rules[0].terms == ("ファルコン計画", "Project Falcon")


def test_rule_lines_point_at_first_row() -> None:
    """A merged rule remembers the physical line of its first row."""
    spec = parse_rules_csv(with_groups(JA_CSV).encode(), "ja.csv")
    assert [r.line for r in spec.rules] == [2, 4]


def test_undecodable_bytes_are_located() -> None:
    """Bytes that are neither UTF-8 nor cp932 give one problem at their line and byte column."""
    data = b"id,term\r\nfalcon,ok\r\nprice,ab\x81\x20cd\r\n"
    assert [(p.line, p.column) for p in problems_of(data)] == [(3, 9)]
    assert "UTF-8 or cp932" in problems_of(data)[0].message


def test_bom_then_invalid_utf8_is_not_guessed_as_cp932() -> None:
    """A file that claims UTF-8 with a BOM but is not UTF-8 is an error, not a cp932 guess."""
    data = codecs.BOM_UTF8 + "id,term\r\nfalcon,価格表\r\n".encode("cp932")
    problems = problems_of(data)
    assert [(p.line, p.column) for p in problems] == [(2, 8)]  # the BOM is not a column
    assert "not UTF-8 text" in problems[0].message


def test_multiline_cell_shifts_line_numbers() -> None:
    """A quoted cell spanning three lines moves later cells and rows to their physical lines."""
    text = (
        "id,description,term,allow_domains\r\n"  # line 1
        'a,"first line\nsecond line\nthird line",x,*.bad.example\r\n'  # lines 2-4
        "b,,y,bad domain.example\r\n"  # line 5
    )
    problems = problems_of(text.encode())
    assert [(p.line, p.column, p.rule_id) for p in problems] == [(4, 4, "a"), (5, 4, "b")]
    assert problems[0].message.startswith(
        "column 'allow_domains': invalid domain: wildcards"
    )
    assert str(problems[1]) == (
        "rules.csv:5:4: [rule b] column 'allow_domains': invalid domain: "
        "a domain has no spaces"
    )


def test_conflicting_rule_columns_name_both_lines() -> None:
    """Rows of one rule that disagree on a rule column are reported at the later cell."""
    text = (
        "id,term,customer,action,allow_domains\r\n"
        "a,x,ACME,hold,a.example;b.example\r\n"
        "a,y,ACME,hold,b.example;a.example\r\n"  # same set of domains: agrees
        "a,z,Acme Corp,reject,\r\n"
    )
    problems = problems_of(text.encode())
    assert [(p.line, p.column, p.rule_id) for p in problems] == [(4, 3, "a"), (4, 4, "a")]
    assert problems[0].message == (
        "column 'customer': differs from line 2 of the same rule; rows of one rule must agree "
        "(repeat the same value or leave the cell empty)"
    )


def test_settings_rows_and_group_rows_merge() -> None:
    """Setting rows set settings; several rows of one group add members."""
    text = (
        "id,term,allow_groups,group,members,setting,value\r\n"
        "a,x,team,,,,\r\n"
        ",,,team,a@example.co.jp,,\r\n"
        ',,,team,"b@example.co.jp\nc@example.co.jp",,\r\n'  # lines 4-5
        ",,,,,internal_domains,example.co.jp;example.com\r\n"
        ",,,,,unscannable,Reject\r\n"
        ",,,,,,\r\n"
    )
    spec = parse_rules_csv(text.encode(), "r.csv")
    assert spec.groups == {"team": ("a@example.co.jp", "b@example.co.jp", "c@example.co.jp")}
    assert spec.settings == Settings(
        internal_domains=("example.co.jp", "example.com"), unscannable=Action.REJECT
    )
    assert spec.rules == (
        RuleSpec(id="a", action=Action.HOLD, terms=("x",), allow=Allow(groups=("team",))),
    )


def test_recipient_domains_rule_has_no_term_row() -> None:
    """A rule with only recipient domains is one row with an empty term."""
    spec = parse_rules_csv(
        b"id,term,recipient_domains,action\r\nrival,,rival.example,flag\r\n", "r.csv"
    )
    assert spec.rules == (
        RuleSpec(id="rival", action=Action.FLAG, recipient_domains=("rival.example",)),
    )


# (name, csv text, [(line, column, rule id)], message fragment of the first problem)
INVALID_CSV = [
    ("empty-file", "", [(1, 1, None)], "the CSV file is empty"),
    (
        "unknown-header",
        "id,trem\r\na,x\r\n",
        [(1, 2, None)],
        "unknown column (did you mean 'term'?)",
    ),
    (
        "duplicate-header",
        "id,term,用語\r\na,x,y\r\n",
        [(1, 3, None)],
        "column '用語' repeats column 2",
    ),
    ("missing-id-column", "term,customer\r\nx,y\r\n", [(1, None, None)], "missing column 'id'"),
    (
        "bad-id",
        "id,term\r\nfalcon plan,x\r\n",
        [(2, 1, None)],
        "rule id may use only",
    ),
    (
        "empty-term-row-only",
        "id,term\r\na,\r\n",
        [(2, None, "a")],
        "neither a term nor recipient_domains",
    ),
    (
        "both",
        "id,term,recipient_domains\r\na,x,rival.example\r\n",
        [(2, None, "a")],
        "both terms and recipient_domains",
    ),
    ("bad-action", "id,term,action\r\na,x,pass\r\n", [(2, 3, "a")], "'pass' is not a rule action"),
    (
        "bad-date",
        "id,term,expires\r\na,x,31/03/2027\r\n",
        [(2, 3, "a")],
        "write expires as YYYY-MM-DD",
    ),
    (
        "bad-bool",
        "id,term,allow_internal\r\na,x,maybe\r\n",
        [(2, 3, "a")],
        "not true or false",
    ),
    (
        "bad-owner",
        "id,term,担当者\r\na,x,tanaka\r\n",
        [(2, 3, "a")],
        "column '担当者': invalid address",
    ),
    (
        "bad-address-in-list",
        "id,term,allow_addresses\r\na,x,ok@acme.example;not-an-address\r\n",
        [(2, 3, "a")],
        "invalid address",
    ),
    (
        "unknown-group",
        "id,term,allow_groups,group,members\r\na,x,tema,,\r\n,,,team,a@example.co.jp\r\n",
        [(2, 3, "a")],
        "unknown group (did you mean 'team'?); defined groups: team",
    ),
    (
        "bad-member",
        "id,group,members\r\n,team,tanaka\r\n",
        [(2, 3, None)],
        "column 'members': invalid address",
    ),
    (
        "row-of-two-kinds",
        "id,term,group\r\na,x,team\r\n",
        [(2, None, None)],
        "a row is either a rule (id), a group or a setting, not id and group",
    ),
    (
        "row-without-kind",
        "id,term\r\n,x\r\n",
        [(2, None, None)],
        "a row needs one of id, group or setting",
    ),
    (
        "rule-column-on-group-row",
        "id,term,group,members\r\n,x,team,a@example.co.jp\r\n",
        [(2, 2, None)],
        "column 'term': must be empty on a group row",
    ),
    (
        "unknown-setting",
        "id,setting,value\r\n,unscanable,hold\r\n",
        [(2, 2, None)],
        "unknown setting (did you mean 'unscannable'?)",
    ),
    (
        "bad-unscannable",
        "id,setting,value\r\n,unscannable,ignore\r\n",
        [(2, 3, None)],
        "invalid unscannable setting",
    ),
    (
        "value-without-header",
        "id,term\r\na,x,extra\r\n",
        [(2, 3, None)],
        "column '#3': a value in a column without a known header",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "fragment"), [pytest.param(*row[1:], id=row[0]) for row in INVALID_CSV]
)
def test_invalid_csv_reports_located_problems(
    text: str, where: list[tuple[int, int | None, str | None]], fragment: str
) -> None:
    """Each kind of CSV mistake is reported at its physical line and 1-based column."""
    problems = problems_of(text.encode("utf-8"))
    assert [(p.line, p.column, p.rule_id) for p in problems] == where, problems
    assert fragment in problems[0].message


def test_term_that_normalizes_to_nothing_is_located() -> None:
    """A term of only invisible characters (soft hyphen, zero-width space) is located."""
    problems = problems_of("id,term\r\na,\u00ad\u200b\r\n".encode())
    assert [(p.line, p.column, p.rule_id) for p in problems] == [(2, 2, "a")]
    assert problems[0].message == (
        "column 'term': term is empty after normalization (only spaces or invisible characters)"
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("ルールID", "id"),
        ("ルールＩＤ", "id"),
        (" Rule ID ", "id"),
        ("Allow-Domains", "allow_domains"),
        ("許可ドメイン", "allow_domains"),
        ("期限", "expires"),
        ("宛先ドメイン", "recipient_domains"),
        ("社内許可", "allow_internal"),
        ("nonsense", None),
    ],
)
def test_header_aliases(cell: str, expected: str | None) -> None:
    """English and Japanese header spellings map to the canonical column name."""
    assert header_key(cell) == expected


def test_export_is_excel_shaped() -> None:
    """Export is UTF-8 with BOM, CRLF line ends, the canonical header, one row per term."""
    data = ruleset_to_csv(JA_SPEC)
    assert data.startswith(codecs.BOM_UTF8)
    text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == ",".join(COLUMNS)
    assert "\n" not in text.replace("\r\n", "")
    assert lines[1] == (
        "falcon,株式会社アクメ,tanaka@example.co.jp,,ファルコン計画,,acme.co.jp;例え.jp,"
        "cfo@partner.example,deal-team,true,hold,2027-03-31,,,,"
    )
    assert lines[3] == "price,さくら商事,,,価格表,,sakura.example,,,false,reject,2027-12-31,,,,"
    assert lines[4:] == [
        ",,,,,,,,,,,,deal-team,tanaka@example.co.jp;suzuki@example.co.jp,,",
        ",,,,,,,,,,,,,,internal_domains,",
        ",,,,,,,,,,,,,,unscannable,flag",
        "",
    ]


def test_yaml_export_is_the_design_form() -> None:
    """ruleset_to_yaml writes the DESIGN.md layout: flow lists, one term per line, plain dates."""
    assert ruleset_to_yaml(JA_SPEC) == (
        "# Maruhi rules file: see rules/README.md and rules/maruhi-rules.schema.json\n"
        "version: 1\n"
        "settings:\n"
        "  internal_domains: []\n"
        "  unscannable: flag\n"
        "groups:\n"
        "  deal-team: [tanaka@example.co.jp, suzuki@example.co.jp]\n"
        "rules:\n"
        "  - id: falcon\n"
        "    customer: 株式会社アクメ\n"
        "    owner: tanaka@example.co.jp\n"
        "    terms:\n"
        "      - ファルコン計画\n"
        "      - Project Falcon\n"
        "    allow:\n"
        "      domains: [acme.co.jp, 例え.jp]\n"
        "      addresses: [cfo@partner.example]\n"
        "      groups: [deal-team]\n"
        "      internal: true\n"
        "    action: hold\n"
        "    expires: 2027-03-31\n"
        "\n"
        "  - id: price\n"
        "    customer: さくら商事\n"
        "    terms:\n"
        "      - 価格表\n"
        "    allow:\n"
        "      domains: [sakura.example]\n"
        "    action: reject\n"
        "    expires: 2027-12-31\n"
    )


@pytest.mark.parametrize("name", ["example-en.yaml", "example-ja.yaml"])
def test_examples_round_trip_through_csv_and_yaml(name: str) -> None:
    """Each example file survives YAML → CSV → spec and YAML → YAML → spec unchanged."""
    spec = parse_rules_yaml((RULES_DIR / name).read_text("utf-8"), name)
    assert parse_rules_csv(ruleset_to_csv(spec), "x.csv") == spec
    assert parse_rules_yaml(ruleset_to_yaml(spec), "x.yaml") == spec


def test_template_csv_is_valid() -> None:
    """The CSV template is UTF-8 with BOM and holds one rule with two terms."""
    data = (RULES_DIR / "template.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    spec = parse_rules_csv(data, "template.csv")
    assert [(r.id, len(r.terms)) for r in spec.rules] == [("falcon", 2)]


# -- Hypothesis: any valid spec round-trips ----------------------------------------------------

DOMAINS = [
    "acme.example",
    "例え.jp",
    "xn--r8jz45g.jp",
    "sub.acme.example",
    "さくら商事.jp",
    "a-b.co.jp",
]
ADDRESSES = ["tanaka@example.co.jp", "CFO@Partner.example", "田中@例え.jp", "x+y@acme.example"]
TEXT = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="\x85"),
    min_size=1,
    max_size=12,
).map(str.strip)
TERMS = TEXT.filter(lambda t: bool(t) and bool(normalize_term(t).strip()))
OPTIONAL_TEXT = st.one_of(st.none(), TEXT.filter(bool))
IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}", fullmatch=True)


@st.composite
def rulesets(draw: st.DrawFn) -> RulesetSpec:
    group_names = draw(st.lists(IDS, unique=True, max_size=3))
    groups = {
        name: tuple(draw(st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=3)))
        for name in group_names
    }
    rules = []
    for rule_id in draw(st.lists(IDS, unique=True, min_size=1, max_size=4)):
        with_terms = draw(st.booleans())
        terms = (
            tuple(draw(st.lists(TERMS, unique=True, min_size=1, max_size=4))) if with_terms else ()
        )
        rules.append(
            RuleSpec(
                id=rule_id,
                action=draw(st.sampled_from(list(validate.RULE_ACTIONS.values()))),
                terms=terms,
                recipient_domains=()
                if with_terms
                else tuple(draw(st.lists(st.sampled_from(DOMAINS), unique=True, min_size=1))),
                customer=draw(OPTIONAL_TEXT),
                owner=draw(st.one_of(st.none(), st.sampled_from(ADDRESSES))),
                description=draw(OPTIONAL_TEXT),
                allow=Allow(
                    domains=tuple(
                        draw(st.lists(st.sampled_from(DOMAINS), unique=True, max_size=3))
                    ),
                    addresses=tuple(
                        draw(st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=2))
                    ),
                    groups=tuple(draw(st.lists(st.sampled_from(group_names), unique=True)))
                    if group_names
                    else (),
                    internal=draw(st.booleans()),
                ),
                expires=draw(
                    st.one_of(st.none(), st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)))
                ),
            )
        )
    return RulesetSpec(
        settings=Settings(
            internal_domains=tuple(
                draw(st.lists(st.sampled_from(DOMAINS), unique=True, max_size=2))
            ),
            unscannable=draw(st.sampled_from(list(Action))),
        ),
        groups=groups,
        rules=tuple(rules),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets())
def test_any_valid_spec_round_trips(spec: RulesetSpec) -> None:
    """Any valid ruleset is unchanged by spec → YAML → spec and by spec → YAML → CSV → spec."""
    via_yaml = parse_rules_yaml(ruleset_to_yaml(spec), "p.yaml")
    assert via_yaml == spec
    assert parse_rules_csv(ruleset_to_csv(via_yaml), "p.csv") == spec
