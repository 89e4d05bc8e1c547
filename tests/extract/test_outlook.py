"""Outlook .msg walking on real messages: headers, body, code pages and attachments."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.outlook import walk_msg
from scanner.extract.walk import Collector, Walk
from scanner.limits import Limits


def _walk(data: bytes) -> tuple[Collector, list[tuple[str, int, str | None]]]:
    """Walk a .msg as the attachment ``mail.msg``, recording children instead of opening them."""
    children: list[tuple[str, int, str | None]] = []

    def record(walk: Walk, payload: bytes, name: str, content_type: str | None) -> None:
        children.append((walk.location, len(payload), content_type))

    out = Collector()
    walk = Walk(
        location="attachment:mail.msg",
        archive_depth=1,
        budget=Budget(Limits()),
        out=out,
        dispatch=record,
    )
    walk_msg(walk, data)
    return out, children


CORPUS = [
    ("msgextractor_strangeDate.msg", "header:subject", "MSG Test File"),
    ("msgextractor_strangeDate.msg", "body", '"Jane Doe" or "Jane Roe" for females'),
    ("textract_msg_standardized_text.msg", "header:subject", "the quick brown fox"),
    ("textract_msg_standardized_text.msg", "header:from", "Matthew Walker"),
    ("textract_msg_standardized_text.msg", "body", "jumps over the lazy dog"),
    ("tika_test-outlook2003.msg", "header:subject", "Welcome to Microsoft Office Outlook 2003"),
    ("tika_test-outlook2003.msg", "header:to", "New Outlook User"),
    ("tika_test-outlook2003.msg", "body", "Thank you for using Microsoft"),
    # Big5 (PR_INTERNET_CPID 950) 8-bit strings, which extract-msg alone decodes as Latin-1.
    ("tika_testMSG_chinese.msg", "header:subject", "MSG 格式測試"),
    ("tika_testMSG_chinese.msg", "header:from", "張毓倫"),
    ("tika_testMSG_chinese.msg", "body", "高票當選雲林縣總工會"),
]


@pytest.mark.parametrize(("filename", "sub", "phrase"), CORPUS)
def test_corpus_phrase(corpus_dir: Path, filename: str, sub: str, phrase: str) -> None:
    """Each real message yields its subject, addresses and body at the right location."""
    out, _ = _walk((corpus_dir / filename).read_bytes())
    texts = {segment.location: segment.text for segment in out.segments}
    assert phrase in texts[f"attachment:mail.msg/{sub}"]


def test_every_corpus_msg_is_covered(corpus_dir: Path) -> None:
    """The phrase table names every .msg in the corpus."""
    assert {p.name for p in corpus_dir.glob("*.msg")} == {name for name, _, _ in CORPUS}


def test_attachments_become_children(corpus_dir: Path) -> None:
    """Each attachment is handed to the dispatcher with its name and MIME type."""
    _, children = _walk((corpus_dir / "tika_test-outlook2003.msg").read_bytes())
    assert len(children) == 11
    assert children[0][0] == "attachment:mail.msg/1.jpg"
    assert {content_type for _, _, content_type in children} == {"image/jpeg"}
    assert all(size > 1000 for _, size, _ in children)


@pytest.mark.parametrize(
    "data",
    [b"not a msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600],
    ids=["not-ole", "broken-ole"],
)
def test_corrupt_msg_is_corrupt(data: bytes) -> None:
    """Garbage and broken containers raise ExtractionError("corrupt")."""
    with pytest.raises(ExtractionError) as caught:
        _walk(data)
    assert caught.value.reason == "corrupt"


def test_other_ole_file_is_not_a_message(corpus_dir: Path) -> None:
    """A Word document handed to the .msg walker is refused, not half-read."""
    with pytest.raises(ExtractionError):
        _walk((corpus_dir / "tika_testWORD.doc").read_bytes())
