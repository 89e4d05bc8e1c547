"""Every real document of the shared corpus, attached to a message, gives up its text to scan().

The phrase tables of the per-format extractor tests (phrases read off each document by eye) are
reused here end to end: the phrase becomes a rule's term, the document is attached as
``application/octet-stream`` (so sniffing, not the label, picks the extractor), and the scan must
report a hit inside that attachment with the outsider recipient out of scope.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from scanner.model import Action, Envelope
from scanner.rules.compile import compile_ruleset
from scanner.rules.model import Allow, RulesetSpec, RuleSpec, Settings
from scanner.scan import scan
from tests.conftest import CORPUS as CORPUS_DIR
from tests.extract import test_legacy, test_odf, test_ooxml, test_pdf, test_rtf
from tests.extract.factories import make_message
from tests.extract.test_outlook import CORPUS as MSG_CORPUS

# Formats without an extractor-level phrase table: text in many charsets, CSV, HTML, mail, zip.
OTHER = [
    ("cpython_cjk_big5.txt", "在資訊科技快速發展的今天"),
    ("cpython_cjk_euc_jp.txt", "教育用のプログラミング言語"),
    ("cpython_cjk_euc_kr.txt", "강력한 프로그래밍 언어입니다"),
    ("cpython_cjk_gb2312.txt", "功能强大而完善的通用型计算机程序设计语言"),
    ("cpython_cjk_iso2022_jp.txt", "教育用のプログラミング言語"),
    ("cpython_cjk_shift_jis.txt", "教育用のプログラミング言語"),
    ("textract_csv_raw_text.csv", "NUMBER OF POTHOLES FILLED"),
    ("tika_test-columnar.csv", "Square of the Record Number"),
    ("textract_html_raw_text.html", "The Avalanche at Tunnel Creek"),
    ("tika_testHTML.html", "Indexation du fichier"),
    ("tika_testHTML_charset_utf16le.html", "This is a sample text"),
    ("tika_testXHTML.html", "ability of Apache Tika to extract content"),
    ("tika_testEmailWithPNGAtt.eml", "This email has a PNG attachment"),
    ("tika_testRFC822_base64.eml", "with international characters, voilà"),
    ("tika_testRFC822_multipart_attachments.eml", "This is test email for EML1"),
    ("tika_test-documents.zip", "written in NeoOffice"),
]

PHRASES: list[tuple[str, str]] = sorted(
    {
        *((name, phrase) for name, phrase in test_ooxml.CORPUS),
        *((name, phrase) for name, phrase in test_odf.CORPUS),
        *((name, phrase) for name, phrase in test_pdf.CORPUS),
        *((name, phrase) for name, phrase in test_rtf.CORPUS),
        *((name, phrase) for name, phrase in test_legacy.CORPUS),
        *((name, phrase) for name, _, phrase in MSG_CORPUS),
        *OTHER,
    }
)
OUTSIDER = "outsider@other.example"


def _ruleset(term: str):  # type: ignore[no-untyped-def]
    spec = RulesetSpec(
        settings=Settings(internal_domains=("example.co.jp",)),
        groups={},
        rules=(RuleSpec(id="doc", action=Action.HOLD, terms=(term,),
                        allow=Allow(domains=("acme.example",))),),
    )
    return compile_ruleset(spec, today=dt.date(2026, 11, 26))


def test_every_corpus_document_has_a_phrase() -> None:
    """The tables cover every document in the shared corpus (none silently skipped)."""
    documents = {p.name for p in CORPUS_DIR.iterdir() if p.name != "SOURCES.md"}
    assert documents == {name for name, _ in PHRASES}


@pytest.mark.parametrize(("filename", "phrase"), PHRASES)
def test_phrase_found_in_attached_document(filename: str, phrase: str) -> None:
    """The phrase, registered as a term, is found inside the attached real document."""
    data = (CORPUS_DIR / filename).read_bytes()
    raw = make_message(body="see attachment", to=OUTSIDER,
                       attachments=((filename, data, "application/octet-stream"),))
    verdict = scan(raw, Envelope("tanaka@example.co.jp", (OUTSIDER,)), _ruleset(phrase))
    locations = [hit.location for hit in verdict.hits]
    assert any(loc.startswith(f"attachment:{filename}") for loc in locations), (
        locations, verdict.unscannable)
    assert verdict.action is Action.HOLD
    assert all(hit.out_of_scope == (OUTSIDER,) for hit in verdict.hits)


@pytest.mark.parametrize("path", sorted(p for p in CORPUS_DIR.iterdir() if p.name != "SOURCES.md"),
                         ids=lambda p: p.name)
def test_corpus_document_extracts_without_unscannable(path: Path) -> None:
    """No real document is reported unscannable (they are neither encrypted nor corrupt)."""
    raw = make_message(body="x", to=OUTSIDER,
                       attachments=((path.name, path.read_bytes(), "application/octet-stream"),))
    verdict = scan(raw, Envelope("a@example.co.jp", (OUTSIDER,)), _ruleset("zzzz-no-such-term"))
    assert verdict.unscannable == ()
