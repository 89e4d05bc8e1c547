"""Properties of the whole scan: a registered term is found however the message carries it."""

from __future__ import annotations

import datetime as dt
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.model import Action, Envelope
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_yaml
from scanner.scan import scan
from tests.extract.factories import make_message

RULES = """
version: 1
settings: {internal_domains: [example.co.jp]}
rules:
  - id: en
    terms: ["Project Falcon"]
    allow: {domains: [acme.example]}
    action: hold
  - id: ja
    terms: ["ファルコン計画"]
    allow: {domains: [acme.example]}
    action: hold
"""
RULESET = compile_ruleset(parse_rules_yaml(RULES, "props.yaml"), today=dt.date(2026, 11, 26))
ENVELOPE = Envelope("tanaka@example.co.jp", ("outsider@other.example",))

# Text around the term: words, Japanese, punctuation, but ending/starting with a space so that a
# Latin term keeps its word boundary.
_filler = st.text(
    alphabet=st.sampled_from(list("abc xyz 123 日本語のテキスト、。 \n")), max_size=60
)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _halfwidth_katakana(text: str) -> str:
    table = {"フ": "ﾌ", "ァ": "ｧ", "ル": "ﾙ", "コ": "ｺ", "ン": "ﾝ"}
    return "".join(table.get(c, c) for c in text)


_EN_VARIANTS = st.sampled_from(
    [
        "Project Falcon",
        "PROJECT FALCON",
        "project  falcon",
        "Project\tFalcon",
        "Project\nFalcon",
        "Project\u3000Falcon",
        _fullwidth("Project Falcon"),
        _fullwidth("PROJECT") + " falcon",
    ]
)
_JA_VARIANTS = st.sampled_from(
    [
        "ファルコン計画",
        "ファル\nコン計画",
        _halfwidth_katakana("ファルコン") + "計画",
        "ファルコン\n計画",
    ]
)
# (charset, transfer encoding) pairs a mailer may use; ISO-2022-JP is 7-bit by definition.
_ENCODINGS = st.sampled_from(
    [
        ("utf-8", "base64"),
        ("utf-8", "quoted-printable"),
        ("utf-8", "8bit"),
        ("shift_jis", "base64"),
        ("shift_jis", "8bit"),
        ("euc-jp", "quoted-printable"),
        ("iso-2022-jp", "7bit"),
        ("iso-2022-jp", "base64"),
        ("utf-16", "base64"),
    ]
)


def _encodable(text: str, charset: str) -> bool:
    codec = {"shift_jis": "cp932", "iso-2022-jp": "iso2022_jp", "euc-jp": "euc_jp"}.get(
        charset, charset
    )
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=_filler, after=_filler, variant=st.one_of(_EN_VARIANTS, _JA_VARIANTS),
       encoding=_ENCODINGS, where=st.sampled_from(["body", "attachment", "html"]))
def test_term_found_in_any_variant_and_encoding(
    before: str, after: str, variant: str, encoding: tuple[str, str], where: str
) -> None:
    """Width, case, whitespace, line-wrap, charset and transfer-encoding never hide a term."""
    charset, cte = encoding
    text = f"{before} {variant} {after}"
    if not _encodable(text, charset):
        text = unicodedata.normalize("NFKC", text)
        if not _encodable(text, charset):
            return
    if where == "body":
        raw = make_message(body=text, charset=charset, cte=cte, to="outsider@other.example")
    elif where == "html":
        raw = make_message(body=None, html=f"<div>{text}</div>", charset=charset,
                           cte=cte, to="outsider@other.example")
    else:
        codec = {"shift_jis": "cp932", "iso-2022-jp": "iso2022_jp", "euc-jp": "euc_jp"}.get(
            charset, charset)
        raw = make_message(body="see attachment", to="outsider@other.example",
                           attachments=(("note.txt", text.encode(codec), "text/plain"),))
    verdict = scan(raw, ENVELOPE, RULESET)
    assert verdict.action is Action.HOLD, (text, charset, cte, where)
    assert verdict.hits[0].out_of_scope == ("outsider@other.example",)


def test_attachment_name_is_scanned_and_never_echoed() -> None:
    """A term in an attachment or zip member name is a hit, and the location is redacted."""
    from tests.extract.factories import make_zip

    raw = make_message(body="see attachments", to="outsider@other.example", attachments=(
        ("Project Falcon budget.txt", b"numbers only", "text/plain"),
        ("docs.zip", make_zip({"ファルコン計画/plan.txt": b"no", "other.txt": b"fine"}),
         "application/zip"),
    ))
    verdict = scan(raw, ENVELOPE, RULESET)
    assert [(h.rule_id, h.location) for h in verdict.hits] == [
        ("en", "attachment:redacted-1.txt"),
        ("ja", "attachment:docs.zip/redacted-2/plan.txt"),
    ]
    text = str(verdict.to_json()) + " ".join(verdict.reasons)
    assert "falcon" not in text.lower()
    assert "ファルコン" not in text
